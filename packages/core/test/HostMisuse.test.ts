import { describe, expect, it } from 'vitest';
import { container as rootContainer } from 'tsyringe';
import {
  Access,
  FRAME_NONE,
  FaultDestination,
  FaultKind,
  HYPERCALL_HANDLER,
  Hypervisor,
  OptionSpec,
  TRANSLATE_FAULT,
  resolveBackendOptions,
} from '@hvmmu/core';
import { expectHvmmuError } from './fixtures/assertions.js';
import { AddHypercall, PAPR_LIKE_ABI } from './fixtures/hypercalls.js';
import { makeTestBackend } from './fixtures/testBackend.js';

const PAGE = 4096;

describe('a host with no free frame', () => {
  it('ends a guest access with HOST_OUT_OF_MEMORY for the VMM, and the guest runs on once memory is freed', () => {
    const hv = new Hypervisor({ memoryBytes: 12 * PAGE });
    const vm = hv.createVm({ backend: makeTestBackend(), tlbEntries: 16 });
    vm.memslots.create({ id: 0, guestPhysAddr: 0, size: 64 * PAGE });
    vm.memslots.create({ id: 1, guestPhysAddr: 128 * PAGE, size: 2 * PAGE });
    vm.memslots.write8(128 * PAGE, 1);
    vm.memslots.write8(129 * PAGE, 1);
    const vcpu = vm.createVcpu();
    let page = 0;
    while (vcpu.translate(page * PAGE, Access.WRITE) !== TRANSLATE_FAULT) page++;
    expect(page).toBeGreaterThan(4);
    expect(vcpu.fault.kind).toBe(FaultKind.HOST_OUT_OF_MEMORY);
    expect(vcpu.fault.destination).toBe(FaultDestination.VMM);
    expect(hv.memory.framesFree).toBe(0);
    // A read of an untouched page maps the shared zero frame: it needs no new frame.
    expect(vcpu.translate(40 * PAGE, Access.READ)).toBe(hv.memory.zeroFrame * PAGE);
    // A guest-virtual write fails the same way, without an exception.
    expect(vcpu.write32(50 * PAGE, 1, true)).toBe(false);
    expect(vcpu.fault.kind).toBe(FaultKind.HOST_OUT_OF_MEMORY);
    expect(vm.stats().guestFramesInUse).toBe(page + 2);
    // The VMM frees memory (deletes slot 1): the same accesses now complete.
    vm.memslots.delete(1);
    expect(vcpu.translate(page * PAGE, Access.WRITE)).toBeGreaterThanOrEqual(0);
    expect(vcpu.write32(60 * PAGE, 1, true)).toBe(true); // the second frame slot 1 gave back
    expect(vcpu.write32(61 * PAGE, 1, true)).toBe(false);
    expect(vcpu.fault.kind).toBe(FaultKind.HOST_OUT_OF_MEMORY);
  });

  it('refuses a host-side write that would need a frame with a typed error, changing nothing', () => {
    const hv = new Hypervisor({ memoryBytes: 2 * PAGE });
    const vm = hv.createVm({ backend: makeTestBackend() });
    vm.memslots.create({ id: 0, guestPhysAddr: 0, size: 4 * PAGE });
    vm.memslots.write32(0, 1, true);
    vm.memslots.write32(PAGE, 1, true);
    expectHvmmuError(() => vm.memslots.write32(2 * PAGE, 1, true), 'HOST_OUT_OF_MEMORY');
    expect(vm.memslots.get(0).frameAt(2)).toBe(FRAME_NONE);
    expect(vm.memslots.framesInUse).toBe(2);
    expect(vm.memslots.hostOutOfMemory).toBe(false);
  });
});

describe('after destroyVm', () => {
  it('refuses every use of the VM, its memslots and its vCPUs; a second destroy is harmless', () => {
    const hv = new Hypervisor({ memoryBytes: 32 * PAGE });
    const vm = hv.createVm({ backend: makeTestBackend() });
    vm.memslots.create({ id: 0, guestPhysAddr: 0, size: 8 * PAGE });
    const vcpu = vm.createVcpu();
    expect(vcpu.write32(0, 5, true)).toBe(true);
    hv.destroyVm(vm);
    const free = hv.memory.framesFree;
    for (const use of [
      () => vm.memslots.create({ id: 1, guestPhysAddr: 0, size: PAGE }),
      () => vm.memslots.write32(0, 1, true),
      () => vm.memslots.read32(0, true),
      () => vm.memslots.writeBytes(0, new Uint8Array(4)),
      () => vcpu.write32(0, 1, true),
      () => vcpu.translate(0, Access.READ),
      () => vcpu.hypercall(1),
      () => vcpu.checkAlive(),
      () => vm.invalidateHostRange(0, 4),
    ]) {
      expectHvmmuError(use, 'VM_DESTROYED');
    }
    hv.destroyVm(vm);
    expect(hv.memory.framesFree).toBe(free);
  });
});

describe('memslot misuse', () => {
  function vm() {
    return new Hypervisor({ memoryBytes: 16 * PAGE }).createVm({ backend: makeTestBackend() });
  }

  it.each([2 ** 32, 2 ** 32 + 1, 2 ** 33 + 2, 4, -1, 1.5])('flags %s are refused at creation and on change', (flags) => {
    const v = vm();
    expectHvmmuError(() => v.memslots.create({ id: 0, guestPhysAddr: 0, size: PAGE, flags }), 'MEMSLOT_BAD_FLAGS');
    expect(v.memslots.count).toBe(0);
    v.memslots.create({ id: 0, guestPhysAddr: 0, size: PAGE });
    expectHvmmuError(() => v.memslots.setFlags(0, flags), 'MEMSLOT_BAD_FLAGS');
    expect(v.memslots.get(0).flags).toBe(0);
  });

  it.each([null, undefined, 5, 'slot'])('create(%s) is a typed error', (request) => {
    expectHvmmuError(() => vm().memslots.create(request as never), 'BAD_ARGUMENT');
  });

  it('a huge slot allocates nothing until the guest touches it', () => {
    const v = vm();
    const slot = v.memslots.create({ id: 0, guestPhysAddr: 0, size: (2 ** 31 - 1) * PAGE });
    expect(slot.touched).toBe(false);
    expect(slot.frameAt(12345)).toBe(-1);
    const small = v.memslots.create({ id: 1, guestPhysAddr: 2 ** 44, size: 4 * PAGE });
    v.memslots.write8(2 ** 44 + 1, 9);
    expect(small.touched).toBe(true);
    expect(slot.touched).toBe(false);
  });

  it.each([
    ['write8 300', (t: ReturnType<typeof vm>) => t.memslots.write8(0, 300)],
    ['write16 NaN', (t: ReturnType<typeof vm>) => t.memslots.write16(0, Number.NaN, true)],
    ['write32 2^32', (t: ReturnType<typeof vm>) => t.memslots.write32(0, 2 ** 32, true)],
    ['write64Halves lo 2^40', (t: ReturnType<typeof vm>) => t.memslots.write64Halves(0, 0, 2 ** 40, true)],
    ['host write32 2^33', (t: ReturnType<typeof vm>) => t.memslots.host.write32(0, 2 ** 33, true)],
  ])('%s is refused, nothing written', (_name, call) => {
    const v = vm();
    v.memslots.create({ id: 0, guestPhysAddr: 0, size: PAGE });
    expectHvmmuError(() => call(v), 'BAD_ARGUMENT');
    expect(v.memslots.read32(0, true)).toBe(0);
  });

  it.each([
    [0.5, 2],
    [-1, 2],
    [0, 2.5],
  ])('invalidateHostRange(%s, %s) is refused and bumps nothing', (start, end) => {
    const v = vm();
    const seq = v.memslots.invalidationSeq;
    expectHvmmuError(() => v.invalidateHostRange(start, end), 'BAD_ARGUMENT');
    expectHvmmuError(() => v.ageHostRange(start, end), 'BAD_ARGUMENT');
    expect(v.memslots.invalidationSeq).toBe(seq);
  });
});

describe("the embedding program's hypercalls", () => {
  it("are served beside the backend's, with those registered on the hypervisor's container", () => {
    const parent = rootContainer.createChildContainer();
    parent.register(HYPERCALL_HANDLER, { useValue: new AddHypercall(0x3000) });
    const hv = new Hypervisor({ memoryBytes: 16 * PAGE, container: parent });
    const vm = hv.createVm({
      backend: makeTestBackend({ hypercalls: () => [new AddHypercall(0x1000)], abi: PAPR_LIKE_ABI }),
      hypercalls: { handlers: [new AddHypercall(0x2000)] },
    });
    expect(vm.hypercalls.list().map((h) => h.number)).toEqual([0x1000, 0x2000, 0x3000]);
    const vcpu = vm.createVcpu();
    for (const number of [0x1000, 0x2000, 0x3000]) {
      vcpu.hcallRegs.setArg(0, 2).setArg(1, 5);
      expect(vcpu.hypercall(number)).toBe(PAPR_LIKE_ABI.success);
      expect(vcpu.hcallRegs.ret(0)).toBe(7);
    }
  });

  it('need an ABI when the backend has none; a clash with the backend is refused', () => {
    const hv = new Hypervisor({ memoryBytes: 16 * PAGE });
    expectHvmmuError(() => hv.createVm({ backend: makeTestBackend(), hypercalls: { handlers: [new AddHypercall()] } }), 'HCALL_NO_ABI');
    const vm = hv.createVm({ backend: makeTestBackend(), hypercalls: { handlers: [new AddHypercall()], abi: PAPR_LIKE_ABI } });
    expect(vm.createVcpu().hypercall(0x1234)).toBe(PAPR_LIKE_ABI.unknownFunction);
    expectHvmmuError(
      () =>
        hv.createVm({
          backend: makeTestBackend({ hypercalls: () => [new AddHypercall(0x1000)], abi: PAPR_LIKE_ABI }),
          hypercalls: { handlers: [new AddHypercall(0x1000)] },
        }),
      'HCALL_DUPLICATE',
    );
    expectHvmmuError(
      () =>
        hv.createVm({
          backend: makeTestBackend({ abi: PAPR_LIKE_ABI }),
          hypercalls: { handlers: [], abi: { ...PAPR_LIKE_ABI, name: 'other' } },
        }),
      'HCALL_ABI_MISMATCH',
    );
  });
});

describe('backend options', () => {
  const specs = {
    strategy: OptionSpec.oneOf(['a', 'b'] as const, 'a', 'which'),
    level: OptionSpec.oneOfNumbers([3, 4] as const, 3, 'how deep'),
    budget: OptionSpec.integer(1, 100, undefined, 'how many'),
    on: OptionSpec.boolean(false, 'whether'),
  };

  it('fills defaults and keeps given values', () => {
    expect(resolveBackendOptions('x', specs, undefined)).toEqual({ strategy: 'a', level: 3, budget: undefined, on: false });
    expect(resolveBackendOptions('x', specs, { strategy: 'b', budget: 7, on: true })).toEqual({ strategy: 'b', level: 3, budget: 7, on: true });
  });

  it('refuses unknown keys naming the valid ones, and bad values naming what is expected', () => {
    const unknown = expectHvmmuError(() => resolveBackendOptions('x', specs, { stratgy: 'b' }), 'BACKEND_UNKNOWN_OPTION');
    expect(unknown.message).toContain('valid options: strategy, level, budget, on');
    expect(expectHvmmuError(() => resolveBackendOptions('x', specs, { strategy: 'c' }), 'BACKEND_BAD_OPTION').message).toContain("one of 'a', 'b'");
    expect(expectHvmmuError(() => resolveBackendOptions('x', specs, { level: 5 }), 'BACKEND_BAD_OPTION').message).toContain('one of 3, 4');
    expectHvmmuError(() => resolveBackendOptions('x', specs, { budget: 0 }), 'BACKEND_BAD_OPTION');
    expectHvmmuError(() => resolveBackendOptions('x', specs, { budget: 1.5 }), 'BACKEND_BAD_OPTION');
    expectHvmmuError(() => resolveBackendOptions('x', specs, { on: 'yes' }), 'BACKEND_BAD_OPTION');
    expectHvmmuError(() => resolveBackendOptions('x', specs, null), 'BACKEND_BAD_OPTION');
    expectHvmmuError(() => resolveBackendOptions('x', specs, ['a']), 'BACKEND_BAD_OPTION');
  });
});
