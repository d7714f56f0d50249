import { describe, expect, it } from 'vitest';
import { container, inject, injectable } from 'tsyringe';
import {
  Access,
  HOST_MEMORY,
  HypercallDispatcher,
  Hypervisor,
  MMU,
  MemslotTable,
  TRACE_HOOK,
  TlbShootdown,
  VM_CONFIG,
  type BackendModule,
  type TraceEvent,
  type TraceHook,
  type Vm,
} from '@hvmmu/core';
import { expectHvmmuError } from './fixtures/assertions.js';
import { AddHypercall, PAPR_LIKE_ABI } from './fixtures/hypercalls.js';
import { IdentityMmu } from './fixtures/IdentityMmu.js';
import { TEST_CAPABILITIES, identityMmu, makeTestBackend } from './fixtures/testBackend.js';

const PAGE = 4096;

/** A backend class that wants the trace hook, as backends' MMUs do. */
@injectable()
class TraceUser {
  constructor(@inject(TRACE_HOOK) readonly trace: TraceHook | null) {}
}

function hypervisor(frames = 256): Hypervisor {
  return new Hypervisor({ memoryBytes: frames * PAGE });
}

describe('Hypervisor', () => {
  it('owns the host memory pool and a child container that provides it', () => {
    const parent = container.createChildContainer();
    const hv = new Hypervisor({ memoryBytes: 64 * PAGE, container: parent });
    expect(hv.memory.frameCount).toBe(64);
    expect(hv.container.resolve(HOST_MEMORY)).toBe(hv.memory);
    expect(parent.isRegistered(HOST_MEMORY)).toBe(false);
    expect(new Hypervisor({ memoryBytes: PAGE, sharedMemory: true }).memory.buffer).toBeInstanceOf(SharedArrayBuffer);
  });

  it.each([0, 100, -PAGE])('memoryBytes %s is HOST_BAD_SIZE', (memoryBytes) => {
    expectHvmmuError(() => new Hypervisor({ memoryBytes }), 'HOST_BAD_SIZE');
  });

  const badBackends: Array<[string, unknown]> = [
    ['null', null],
    ['undefined', undefined],
    ['a number', 42],
    ['an empty object', {}],
    ['no register function', { id: 'x', description: '', capabilities: TEST_CAPABILITIES }],
    ['register that is not a function', { id: 'x', description: '', capabilities: TEST_CAPABILITIES, register: 'no' }],
    ['no capabilities', { id: 'x', description: '', register: () => {} }],
    ['null capabilities', { id: 'x', description: '', capabilities: null, register: () => {} }],
    ['a numeric id', { id: 7, description: '', capabilities: TEST_CAPABILITIES, register: () => {} }],
  ];
  it.each(badBackends)('a backend that is %s is BACKEND_INVALID and creates no VM', (_name, backend) => {
    const hv = hypervisor();
    expectHvmmuError(() => hv.createVm({ backend: backend as BackendModule }), 'BACKEND_INVALID');
    expect(hv.vms).toEqual([]);
    // No VM id was used up.
    expect(hv.createVm({ backend: makeTestBackend() }).name).toBe('vm0');
  });

  it('a backend that registers no MMU is BACKEND_MISSING_BINDING and creates no VM', () => {
    const hv = hypervisor();
    const error = expectHvmmuError(() => hv.createVm({ backend: makeTestBackend({ id: 'no-mmu', registerMmu: false }) }), 'BACKEND_MISSING_BINDING');
    expect(error.message).toContain("'no-mmu'");
    expect(error.message).toContain('MMU');
    expect(hv.vms).toEqual([]);
    expect(hv.memory.framesInUse).toBe(0);
  });

  it.each([11, 53, 40.5, Number.NaN, -1])('guestPhysBits %s is BAD_ARGUMENT', (guestPhysBits) => {
    const hv = hypervisor();
    expectHvmmuError(() => hv.createVm({ backend: makeTestBackend(), guestPhysBits }), 'BAD_ARGUMENT');
    expect(hv.vms).toEqual([]);
  });

  it.each([0, 3, 1000, 2 ** 25, 1.5, -2])('tlbEntries %s is TLB_BAD_SIZE', (tlbEntries) => {
    const hv = hypervisor();
    expectHvmmuError(() => hv.createVm({ backend: makeTestBackend(), tlbEntries }), 'TLB_BAD_SIZE');
    expect(hv.vms).toEqual([]);
  });

  it('applies defaults (52 physical bits, 1024 TLB entries) and the given options', () => {
    const hv = hypervisor();
    const a = hv.createVm({ backend: makeTestBackend() });
    expect(a.config).toEqual({ name: 'vm0', guestPhysBits: 52, tlbEntries: 1024, backendOptions: {} });
    const b = hv.createVm({ backend: makeTestBackend(), name: 'guest', guestPhysBits: 32, tlbEntries: 16 });
    expect(b.config).toEqual({ name: 'guest', guestPhysBits: 32, tlbEntries: 16, backendOptions: {} });
    // An option the backend does not declare is refused, naming the valid ones (none here).
    const bad = { mode: 'x' } as unknown as Record<string, never>;
    expectHvmmuError(() => hv.createVm({ backend: makeTestBackend(), backendOptions: bad }), 'BACKEND_UNKNOWN_OPTION');
    expect(b.createVcpu().tlb.size).toBe(16);
    // 32 physical bits: nothing may be placed at or above 4 GiB.
    expectHvmmuError(() => b.memslots.create({ id: 0, guestPhysAddr: 2 ** 32, size: PAGE }), 'MEMSLOT_OUT_OF_RANGE');
    a.memslots.create({ id: 0, guestPhysAddr: 2 ** 32, size: PAGE });
    expect(hv.vms.map((vm) => vm.id)).toEqual([0, 1]);
  });
});

describe('Vm composition', () => {
  it("builds its parts in a child container of the hypervisor, and the backend's MMU sees the same parts", () => {
    const hv = hypervisor();
    const backend = makeTestBackend({ id: 'identity-a' });
    const vm = hv.createVm({ backend });
    expect(vm.backend).toBe(backend);
    expect(vm.container).not.toBe(hv.container);
    expect(vm.container.resolve(HOST_MEMORY)).toBe(hv.memory);
    expect(vm.container.resolve(VM_CONFIG)).toBe(vm.config);
    expect(vm.container.resolve(MemslotTable)).toBe(vm.memslots);
    expect(vm.container.resolve(TlbShootdown)).toBe(vm.tlbs);
    expect(vm.container.resolve(HypercallDispatcher)).toBe(vm.hypercalls);
    expect(vm.container.resolve(MMU)).toBe(vm.mmu);
    const mmu = identityMmu(vm);
    expect(mmu.backendId).toBe('identity-a');
    expect(mmu.memslots).toBe(vm.memslots);
    expect(mmu.tlbs).toBe(vm.tlbs);
    expect(vm.memslots.host).toBe(hv.memory);
    // Nothing leaked into the hypervisor's container.
    expect(hv.container.isRegistered(MMU, true)).toBe(false);
    expect(hv.container.isRegistered(VM_CONFIG, true)).toBe(false);
  });

  it('injects TRACE_HOOK into backend classes: null when tracing is off, the hook when on', () => {
    const hv = hypervisor();
    const off = hv.createVm({ backend: makeTestBackend() });
    expect(off.container.resolve(TraceUser).trace).toBeNull();
    const hook: TraceHook = () => {};
    const on = hv.createVm({ backend: makeTestBackend(), trace: hook });
    expect(on.container.resolve(TraceUser).trace).toBe(hook);
  });

  it('registers the MMU as the memslot listener', () => {
    const vm = hypervisor().createVm({ backend: makeTestBackend() });
    vm.memslots.create({ id: 0, guestPhysAddr: 0, size: PAGE });
    expect(identityMmu(vm).events.map((e) => `${e.event}:${e.change}`)).toEqual(['prepare:create', 'commit:create']);
  });

  it('creates vCPUs with ids 0, 1, …, each attached to the MMU and in the shootdown set', () => {
    const vm = hypervisor().createVm({ backend: makeTestBackend(), tlbEntries: 64 });
    const v0 = vm.createVcpu();
    const v1 = vm.createVcpu();
    expect([v0.id, v1.id]).toEqual([0, 1]);
    expect(vm.vcpus).toEqual([v0, v1]);
    expect(vm.vcpu(1)).toBe(v1);
    expect(v0.tlb.size).toBe(64);
    expect(vm.tlbs.count).toBe(2);
    expect(identityMmu(vm).attached).toEqual([v0, v1]);
    for (const bad of [2, -1, 0.5, Number.NaN]) expectHvmmuError(() => vm.vcpu(bad), 'VCPU_BAD_ID');
  });
});

describe('two VMs in one process', () => {
  function twoVms(): { hv: Hypervisor; a: Vm; b: Vm } {
    const hv = hypervisor();
    const a = hv.createVm({
      backend: makeTestBackend({ id: 'backend-a', hypercalls: () => [new AddHypercall(0x1000)], abi: PAPR_LIKE_ABI }),
    });
    const b = hv.createVm({ backend: makeTestBackend({ id: 'backend-b', rmapTables: ['normal', 'invalid', 'b-only'] }) });
    return { hv, a, b };
  }

  it('with different backends share no state, only the host frame pool', () => {
    const { hv, a, b } = twoVms();
    expect(a.mmu.backendId).toBe('backend-a');
    expect(b.mmu.backendId).toBe('backend-b');
    expect(a.mmu).not.toBe(b.mmu);
    expect(a.memslots).not.toBe(b.memslots);
    expect(a.tlbs).not.toBe(b.tlbs);
    expect(a.hypercalls).not.toBe(b.hypercalls);
    // The same slot id and guest range in both, with different contents.
    a.memslots.create({ id: 0, guestPhysAddr: 0x10000, size: 4 * PAGE });
    b.memslots.create({ id: 0, guestPhysAddr: 0x10000, size: 4 * PAGE });
    a.memslots.write32(0x10000, 0xaaaa_aaaa, true);
    expect(b.memslots.read32(0x10000, true)).toBe(0);
    b.memslots.write32(0x10000, 0xbbbb_bbbb, true);
    expect(a.memslots.read32(0x10000, true)).toBe(0xaaaa_aaaa);
    expect(a.memslots.get(0).frames[0]).not.toBe(b.memslots.get(0).frames[0]);
    // One private frame each, plus the shared zero frame b's first read used.
    expect(hv.memory.framesInUse).toBe(a.memslots.framesInUse + b.memslots.framesInUse + 1);
    expect(hv.memory.isAllocated(hv.memory.zeroFrame)).toBe(true);
    // Generations and listeners are per VM.
    const gb = b.memslots.generation;
    const eventsB = identityMmu(b).events.length;
    a.memslots.move(0, 0x40000);
    expect(b.memslots.generation).toBe(gb);
    expect(identityMmu(b).events.length).toBe(eventsB);
    // Hypercalls and rmap strategies are per VM.
    expect(a.createVcpu().hypercall(0x1000)).toBe(PAPR_LIKE_ABI.success);
    expect(b.createVcpu().hypercall(0x1000)).toBe(-1); // b registered no hypercalls: the "none" ABI
    expect(a.container.isRegistered(MMU)).toBe(true);
  });

  it('translations, TLBs and host-side invalidations of one VM never touch the other', () => {
    const { a, b } = twoVms();
    a.memslots.create({ id: 0, guestPhysAddr: 0, size: 4 * PAGE });
    b.memslots.create({ id: 0, guestPhysAddr: 0, size: 4 * PAGE });
    const va = a.createVcpu();
    const vb = b.createVcpu();
    const ha = va.translate(0x1000, Access.WRITE);
    const hb = vb.translate(0x1000, Access.WRITE);
    expect(ha >> 12).not.toBe(hb >> 12);
    a.zapAll();
    expect(va.tlb.countValid()).toBe(0);
    expect(vb.tlb.countValid()).toBe(1);
    // Invalidating b's frame through a finds no page of a.
    expect(a.invalidateHostRange(hb >> 12, (hb >> 12) + 1)).toBe(0);
    expect(identityMmu(b).hfnOf.size).toBe(1);
    expect(b.invalidateHostRange(hb >> 12, (hb >> 12) + 1)).toBe(1);
    expect(identityMmu(b).hfnOf.size).toBe(0);
  });
});

describe('Vm host-side events', () => {
  function mapped(): { vm: Vm; hfn: number } {
    const vm = hypervisor().createVm({ backend: makeTestBackend() });
    vm.memslots.create({ id: 0, guestPhysAddr: 0x100000, size: 8 * PAGE });
    const vcpu = vm.createVcpu();
    const hpa = vcpu.translate(0x102abc, Access.WRITE);
    expect(hpa & 0xfff).toBe(0xabc);
    return { vm, hfn: Math.floor(hpa / PAGE) };
  }

  it('invalidateHostRange drops the mapping and the TLB entry; the next access faults it back in', () => {
    const { vm, hfn } = mapped();
    const vcpu = vm.vcpu(0);
    expect(vcpu.tlb.lookup(0, 0x102, Access.READ)).toBe(hfn);
    expect(vm.invalidateHostRange(hfn, hfn + 1)).toBe(1);
    expect(identityMmu(vm).events.at(-1)).toMatchObject({ event: 'invalidate', a: 0x102, b: 0x103 });
    expect(vcpu.tlb.lookup(0, 0x102, Access.READ)).toBe(-1);
    const misses = vcpu.tableMisses;
    expect(vcpu.translate(0x102000, Access.READ)).toBe(hfn * PAGE);
    expect(vcpu.tableMisses).toBe(misses + 1);
  });

  it('ageHostRange clears accessed state, testAgeHostRange only reads it', () => {
    const { vm, hfn } = mapped();
    expect(vm.testAgeHostRange(hfn, hfn + 1)).toBe(true);
    expect(vm.testAgeHostRange(hfn, hfn + 1)).toBe(true);
    expect(vm.ageHostRange(hfn, hfn + 1)).toBe(true);
    expect(vm.ageHostRange(hfn, hfn + 1)).toBe(false);
    expect(vm.testAgeHostRange(hfn, hfn + 1)).toBe(false);
    const ages = identityMmu(vm).events.filter((e) => e.event === 'age' || e.event === 'testAge');
    expect(ages.every((e) => e.slot === 0 && e.a === 0x102 && e.b === 0x103)).toBe(true);
    // Frames backing nothing of this VM are skipped.
    const before = identityMmu(vm).events.length;
    expect(vm.ageHostRange(hfn + 1, vm.memslots.host.frameCount + 10)).toBe(false);
    expect(identityMmu(vm).events.length).toBe(before);
  });

  it.each([
    [5, 4],
    [Number.NaN, 1],
  ])('host-range calls with a bad range [%s, %s) are BAD_ARGUMENT', (start, end) => {
    const { vm } = mapped();
    expectHvmmuError(() => vm.invalidateHostRange(start, end), 'BAD_ARGUMENT');
    expectHvmmuError(() => vm.ageHostRange(start, end), 'BAD_ARGUMENT');
    expectHvmmuError(() => vm.testAgeHostRange(start, end), 'BAD_ARGUMENT');
  });

  it('migrateHostFrame moves the page; the vCPU then reads the same data from the new frame', () => {
    const { vm, hfn } = mapped();
    const vcpu = vm.vcpu(0);
    vm.memslots.write32(0x102abc, 0x5555_aaaa, true);
    const fresh = vm.migrateHostFrame(hfn);
    expect(identityMmu(vm).events.at(-1)).toMatchObject({ event: 'changePte', a: 0x102, b: fresh });
    expect(vcpu.tlb.lookup(0, 0x102, Access.READ)).toBe(-1);
    const hpa = vcpu.translate(0x102abc, Access.READ);
    expect(hpa).toBe(fresh * PAGE + 0xabc);
    expect(vm.memslots.host.read32(hpa, true)).toBe(0x5555_aaaa);
    // change_pte re-pointed it read-only: a write faults once and stays on the new frame.
    expect(vcpu.translate(0x102abc, Access.WRITE)).toBe(hpa);
    expectHvmmuError(() => vm.migrateHostFrame(hfn), 'HOST_BAD_FRAME');
  });

  it('zapAll drops every mapping and flushes every vCPU', () => {
    const { vm } = mapped();
    const second = vm.createVcpu();
    second.translate(0x100000, Access.READ);
    vm.zapAll();
    expect(identityMmu(vm).hfnOf.size).toBe(0);
    expect(vm.vcpu(0).tlb.countValid() + second.tlb.countValid()).toBe(0);
    expect(vm.tlbs.remoteFlushes).toBeGreaterThanOrEqual(1);
  });

  it('stats gather the TLBs, memslots, hypercalls and the MMU', () => {
    const vm = hypervisor().createVm({ backend: makeTestBackend() });
    vm.memslots.create({ id: 0, guestPhysAddr: 0, size: 4 * PAGE });
    const vcpu = vm.createVcpu({ countTlbHits: true });
    vcpu.translate(0x0, Access.WRITE); // miss, fault, retry: 1 TLB miss
    vcpu.translate(0x8, Access.READ); // hit
    vcpu.translate(0x10, Access.WRITE); // hit
    vcpu.translate(0x9000, Access.READ); // no memory: 1 miss, 1 fault
    vcpu.hypercall(3);
    expect(vm.stats()).toEqual({
      vcpus: 1,
      memslots: 1,
      memslotGeneration: vm.memslots.generation,
      guestFramesInUse: 1,
      tlbHits: 2,
      tlbMisses: 2,
      accessFaults: 1,
      remoteTlbFlushes: 0,
      translationContexts: 1,
      hypercalls: 1,
      hypercallsUnknown: 1,
      mappings: 1,
      faultsHandled: 2,
      zaps: 0,
    });
  });
});

describe('Vm.destroy', () => {
  it('tears down in KVM order and frees every guest frame', () => {
    const hv = hypervisor();
    const baseline = hv.memory.framesInUse;
    const vm = hv.createVm({ backend: makeTestBackend() });
    vm.memslots.create({ id: 0, guestPhysAddr: 0, size: 8 * PAGE });
    vm.memslots.create({ id: 1, guestPhysAddr: 0x100000, size: 8 * PAGE, flags: 1 });
    const v0 = vm.createVcpu();
    const v1 = vm.createVcpu();
    for (let page = 0; page < 8; page++) v0.translate(page * PAGE, Access.WRITE);
    v1.translate(0x100000, Access.READ); // maps the shared zero frame
    vm.memslots.write8(0x101000, 1);
    expect(vm.memslots.framesInUse).toBe(9);
    const mmu = identityMmu(vm);
    mmu.events.length = 0;
    vm.destroy();
    expect(vm.isDestroyed).toBe(true);
    expect(mmu.events.map((e) => `${e.event}${e.change === '' ? '' : ':' + e.change}`)).toEqual([
      'detach',
      'detach',
      'zapAll',
      'flush:delete',
      'commit:delete',
      'flush:delete',
      'commit:delete',
    ]);
    expect(vm.memslots.count).toBe(0);
    expect(vm.memslots.framesInUse).toBe(0);
    // Only the shared zero frame, which a Linux host never frees either, remains.
    expect(hv.memory.framesInUse).toBe(baseline + 1);
    expect(hv.memory.isAllocated(hv.memory.zeroFrame)).toBe(true);
    expect(vm.tlbs.count).toBe(0);
    expect(hv.vms).toEqual([]);
  });

  it('afterwards every VM and vCPU call throws VM_DESTROYED, even for a page the TLB had cached', () => {
    const hv = hypervisor();
    const vm = hv.createVm({ backend: makeTestBackend() });
    vm.memslots.create({ id: 0, guestPhysAddr: 0, size: 4 * PAGE });
    const vcpu = vm.createVcpu();
    const hpa = vcpu.translate(0x1000, Access.WRITE);
    expect(vcpu.translate(0x1000, Access.READ)).toBe(hpa); // cached
    vm.destroy();
    vm.destroy(); // idempotent
    expect(vcpu.isReleased).toBe(true);
    expect(vcpu.tlb.countValid()).toBe(0);
    expectHvmmuError(() => vcpu.translate(0x1000, Access.READ), 'VM_DESTROYED');
    expectHvmmuError(() => vcpu.translatePage(1, Access.READ), 'VM_DESTROYED');
    expectHvmmuError(() => vcpu.hypercall(0), 'VM_DESTROYED');
    expectHvmmuError(() => vm.createVcpu(), 'VM_DESTROYED');
    expectHvmmuError(() => vm.invalidateHostRange(0, 10), 'VM_DESTROYED');
    expectHvmmuError(() => vm.ageHostRange(0, 10), 'VM_DESTROYED');
    expectHvmmuError(() => vm.testAgeHostRange(0, 10), 'VM_DESTROYED');
    expectHvmmuError(() => vm.migrateHostFrame(hpa >> 12), 'VM_DESTROYED');
    expectHvmmuError(() => vm.zapAll(), 'VM_DESTROYED');
    // The freed frame went back to the pool and can be handed to someone else.
    expect(hv.memory.isAllocated(hpa >> 12)).toBe(false);
  });

  it('Hypervisor.destroyVm destroys one VM and leaves the others running', () => {
    const hv = hypervisor();
    const a = hv.createVm({ backend: makeTestBackend() });
    const b = hv.createVm({ backend: makeTestBackend() });
    b.memslots.create({ id: 0, guestPhysAddr: 0, size: PAGE });
    hv.destroyVm(a);
    expect(a.isDestroyed).toBe(true);
    expect(hv.vms).toEqual([b]);
    b.memslots.write8(0, 7);
    expect(b.createVcpu().translate(0, Access.READ) >= 0).toBe(true);
    expect(hv.createVm({ backend: makeTestBackend() }).name).toBe('vm2');
  });

  it('a VM built with a trace hook traces its hypercalls', () => {
    const events: TraceEvent[] = [];
    const vm = hypervisor().createVm({
      backend: makeTestBackend({ hypercalls: () => [new AddHypercall(0x1000)], abi: PAPR_LIKE_ABI }),
      trace: (e) => events.push(e),
    });
    vm.createVcpu().hypercall(0x1000);
    expect(events).toEqual([{ kind: 'hcall', vcpu: 0, number: 0x1000, name: 'TEST_ADD', status: 0 }]);
    expect(vm.container.resolve(MMU)).toBeInstanceOf(IdentityMmu);
  });
});
