import { describe, expect, it } from 'vitest';
import type { BackendModule, BackendTypes, GuestAddressSpaces, Vcpu } from '@hvmmu/core';
import { identityMapBackend } from '@hvmmu/reference';
import { x86GuestSide, x86ShadowBackend, type X86ShadowTypes } from '@hvmmu/x86-shadow';
import { checkExpectation } from '../src/workloads/ExpectationCheck.js';
import type { NestedGuestControl } from '../src/workloads/NestedGuestControl.js';
import { WorkloadInputError } from '../src/workloads/WorkloadInputError.js';
import { parseWorkload } from '../src/workloads/WorkloadParser.js';
import { runWorkload } from '../src/workloads/WorkloadRunner.js';
import type { WorkloadRunResult } from '../src/workloads/WorkloadRunResult.js';
import type { WorkloadInput } from '../src/workloads/WorkloadSchema.js';

type Ops = WorkloadInput['operations'];
const BASE = 0x400; // user pages at va 0x40_0000
const MEM = { memoryBytes: 32 << 20 };

function run(operations: Ops, extra: Partial<WorkloadInput> = {}, backend: BackendModule<BackendTypes> = x86ShadowBackend): WorkloadRunResult {
  return runWorkload(backend, parseWorkload({ version: 1, operations, ...extra }, 'test'), MEM);
}

/** The problems a run is refused with. */
function refusal(operations: Ops, extra: Partial<WorkloadInput> = {}, backend: BackendModule<BackendTypes> = x86ShadowBackend): readonly string[] {
  try {
    run(operations, extra, backend);
  } catch (error) {
    if (error instanceof WorkloadInputError) return error.problems;
    throw error;
  }
  return ['not refused'];
}

const slot = (pages: number, more: object = {}): Ops[number] => ({ op: 'createMemslot', slot: 0, gfn: 0, pages, ...more });

describe('runWorkload: counts against hand-computed expectations', () => {
  it('N sequential reads of M fresh pages: M first-touch misses, N - M hits, no faults', () => {
    // 8 pages, 4 reads per page in a row (stride 1 KiB): 32 reads.
    const r = run([slot(8), { op: 'map', vpn: BASE, gfn: 0, count: 8 }, { op: 'access', kind: 'read', va: BASE * 4096, count: 32, stride: 1024 }]);
    expect(r.accesses).toBe(32);
    expect(r.tlbMisses).toBe(8);
    expect(r.tlbHits).toBe(24);
    expect(r.faults).toEqual({
      guest: 0,
      guestResolved: 0,
      hypervisor: 0,
      hypervisorResolved: 0,
      vmm: 0,
      vmmByKind: { noMemory: 0, readOnly: 0, emulate: 0, retryLimit: 0, hostOutOfMemory: 0 },
    });
    expect(r.guest.maps).toBe(8);
    // The PML4, the kernel's direct map (a PDPT and a PD), and one PDPT, PD and PT: all 8 pages share a leaf table.
    expect(r.guest.tablePages).toBe(6);
    expect(r.operations).toBe(3);
    expect(r.backend).toBe('x86-shadow');
    expect(r.pagingMode).toBe('x86-4level');
    // vm.stats() counts the guest kernel's own misses too (its stores through the direct map).
    expect(r.backendStats['tlbMisses']).toBe(8 + r.guest.kernelTlbMisses);
  });

  it('passes over pages that fit the TLB hit after the first; a stride of the TLB size conflicts every time', () => {
    const fits = run([slot(64), { op: 'map', vpn: BASE, gfn: 0, count: 64 }, { op: 'access', kind: 'read', vpn: BASE, count: 64, repeat: 5 }]);
    expect([fits.tlbMisses, fits.tlbHits]).toEqual([64, 4 * 64]);
    // 1024-entry direct-mapped TLB: pages 1024 apart share an entry, so 4 of them evict each other.
    const conflicts = run([
      slot(4096),
      { op: 'map', vpn: BASE, gfn: 0, count: 4096 },
      { op: 'access', kind: 'read', vpn: BASE, count: 4, stride: 1024, repeat: 5 },
    ]);
    expect([conflicts.tlbMisses, conflicts.tlbHits]).toEqual([20, 0]);
  });

  it('a read maps the shared zero frame read-only: the first write to the page misses again (copy on write)', () => {
    const r = run([
      slot(1),
      { op: 'map', vpn: BASE, gfn: 0 },
      { op: 'access', kind: 'read', vpn: BASE },
      { op: 'access', kind: 'write', vpn: BASE },
      { op: 'access', kind: 'read', vpn: BASE },
      { op: 'access', kind: 'write', vpn: BASE },
    ]);
    expect([r.tlbMisses, r.tlbHits, r.faults.guest]).toEqual([2, 2, 0]);
  });

  it('guest-visible faults: a write to a read-only page, a user access to a supervisor page, an unmapped page, a fetch of a no-exec page', () => {
    const r = run([
      slot(4),
      { op: 'map', vpn: BASE, gfn: 0, rights: 'ru' },
      { op: 'map', vpn: BASE + 1, gfn: 1, rights: 'rw' },
      { op: 'map', vpn: BASE + 2, gfn: 2, rights: 'rwu' },
      { op: 'access', kind: 'write', vpn: BASE },
      { op: 'access', kind: 'read', vpn: BASE + 1 },
      { op: 'access', kind: 'read', mode: 'supervisor', vpn: BASE + 1 },
      { op: 'access', kind: 'read', vpn: BASE + 3, count: 2, repeat: 3 },
      { op: 'access', kind: 'fetch', vpn: BASE + 2 },
      { op: 'protect', vpn: BASE, rights: 'rwu' },
      { op: 'access', kind: 'write', vpn: BASE },
      { op: 'unmap', vpn: BASE },
      { op: 'access', kind: 'read', vpn: BASE },
    ]);
    // write to ru: 1; user read of supervisor: 1; 2 unmapped pages × 3 passes: 6; fetch of no-exec: 1; read after unmap: 1.
    expect(r.faults.guest).toBe(10);
    expect(r.faults.vmm).toBe(0);
    expect(r.accesses).toBe(12);
    expect([r.guest.maps, r.guest.protects, r.guest.unmaps]).toEqual([3, 1, 1]);
  });

  it('exits to the VMM: no memslot behind a gfn, a write to a read-only memslot, a deleted or moved memslot', () => {
    const r = run([
      slot(2),
      { op: 'createMemslot', slot: 1, gfn: 16, pages: 1, readOnly: true },
      { op: 'map', vpn: BASE, gfn: 0 },
      { op: 'map', vpn: BASE + 1, gfn: 8 }, // a hole
      { op: 'map', vpn: BASE + 2, gfn: 16 }, // ROM
      { op: 'access', kind: 'read', vpn: BASE + 1 },
      { op: 'access', kind: 'read', vpn: BASE + 2 },
      { op: 'access', kind: 'write', vpn: BASE + 2 },
      { op: 'access', kind: 'write', vpn: BASE },
      { op: 'moveMemslot', slot: 0, gfn: 32 },
      { op: 'access', kind: 'read', vpn: BASE }, // gfn 0 is a hole now
      { op: 'moveMemslot', slot: 0, gfn: 0 },
      { op: 'access', kind: 'read', vpn: BASE },
      { op: 'deleteMemslot', slot: 0 },
      { op: 'access', kind: 'read', vpn: BASE },
    ]);
    expect(r.faults.vmmByKind).toEqual({ noMemory: 3, readOnly: 1, emulate: 0, retryLimit: 0, hostOutOfMemory: 0 });
    expect(r.faults.vmm).toBe(4);
    expect(r.faults.guest).toBe(0);
    expect(r.host.memslotChanges).toBe(5);
  });

  it('dirty logging: a harvest counts the pages written since the last one', () => {
    const r = run([
      slot(8, { dirtyLog: true }),
      { op: 'map', vpn: BASE, gfn: 0, count: 8 },
      { op: 'access', kind: 'write', vpn: BASE, count: 3 },
      { op: 'access', kind: 'read', vpn: BASE + 3, count: 5 },
      { op: 'harvestDirtyLog', slot: 0 }, // 3
      { op: 'harvestDirtyLog', slot: 0 }, // 0
      { op: 'access', kind: 'write', vpn: BASE, count: 2 },
      { op: 'harvestDirtyLog', slot: 0 }, // 2: logging re-armed write protection
      { op: 'setDirtyLogging', slot: 0, enabled: false },
      { op: 'access', kind: 'write', vpn: BASE + 4 },
      { op: 'setDirtyLogging', slot: 0, enabled: true },
      { op: 'harvestDirtyLog', slot: 0 }, // 0: the write came while logging was off
    ]);
    expect(r.host.dirtyPagesHarvested).toBe(5);
  });

  it('host invalidation drops the mappings of pages with frames, and the next accesses miss', () => {
    const r = run([
      slot(8),
      { op: 'map', vpn: BASE, gfn: 0, count: 8 },
      { op: 'access', kind: 'write', vpn: BASE, count: 4 }, // 4 pages get frames of their own
      { op: 'invalidate', gfn: 0, count: 8 }, // pages 4..7 have none: nothing to invalidate
      { op: 'access', kind: 'read', vpn: BASE, count: 4 },
    ]);
    expect(r.host.pagesInvalidated).toBe(4);
    expect(r.host.mappingsDropped).toBe(4);
    expect([r.tlbMisses, r.tlbHits]).toEqual([8, 0]);
  });

  it('address spaces: the same page maps to each space’s own frame; on x86 every switch (a CR3 load) starts the TLB cold', () => {
    const r = run([
      slot(8),
      { op: 'createSpace' },
      { op: 'map', space: 0, vpn: BASE, gfn: 0, count: 4 },
      { op: 'map', space: 1, vpn: BASE, gfn: 4, count: 4 },
      { op: 'access', kind: 'write', vpn: BASE, count: 4, repeat: 2 },
      { op: 'switchSpace', space: 1 },
      { op: 'access', kind: 'write', vpn: BASE, count: 4, repeat: 2 },
      { op: 'switchSpace', space: 0 },
      { op: 'access', kind: 'write', vpn: BASE, count: 4, repeat: 2 },
    ]);
    expect([r.tlbMisses, r.tlbHits]).toEqual([12, 12]);
    expect(r.guest.spacesCreated).toBe(1);
    expect(r.guest.spaceSwitches).toBe(2);
    // Each space wrote its own 4 frames.
    expect(r.backendStats['guestFramesInUse']).toBeGreaterThanOrEqual(8);
  });

  it('several vCPUs: each has its own TLB; a map is seen by all of them', () => {
    const r = run(
      [
        slot(4),
        { op: 'map', vpn: BASE, gfn: 0, count: 2 },
        { op: 'access', kind: 'read', vpn: BASE, count: 2, repeat: 2 },
        { op: 'access', vcpu: 1, kind: 'read', vpn: BASE, count: 2, repeat: 2 },
        { op: 'map', vpn: BASE, gfn: 2, rights: 'ru' },
        { op: 'access', vcpu: 1, kind: 'write', vpn: BASE },
      ],
      { vcpus: 2 },
    );
    expect(r.vcpus).toBe(2);
    expect(r.faults.guest).toBe(1);
    expect(r.tlbMisses).toBe(2 + 2 + 1);
  });

  it('an "expect" block: the counts that differ, one line each', () => {
    const w = parseWorkload(
      {
        version: 1,
        operations: [slot(1), { op: 'map', vpn: BASE, gfn: 0 }, { op: 'access', kind: 'read', vpn: BASE, repeat: 3 }],
        expect: { accesses: 3, tlbMisses: 1, tlbHits: 3 },
      },
      'test',
    );
    const r = runWorkload(x86ShadowBackend, w, MEM);
    expect(checkExpectation(r, w.expect)).toEqual(['expect.tlbHits: expected 3, got 2']);
    expect(checkExpectation(r, { accesses: 3, guestFaults: 0, vmmExits: 0, hypervisorFaults: 0 })).toEqual([]);
  });
});

describe('runWorkload refuses what it cannot run, naming the operation', () => {
  it('before anything runs: vCPUs and spaces the workload lacks, addresses beyond the guest side, nested guests on x86', () => {
    expect(
      refusal([
        slot(1),
        { op: 'access', vcpu: 1, kind: 'read', vpn: 0 },
        { op: 'switchSpace', space: 1 },
        { op: 'createSpace' },
        { op: 'map', space: 1, vpn: 2 ** 35 - 1, gfn: 0, count: 2 },
        { op: 'access', kind: 'read', va: 2 ** 47 - 8, count: 2, stride: 8 },
        { op: 'enterNested', guest: 1 },
        { op: 'exitNested' },
      ]),
    ).toEqual([
      'operations[1].vcpu: the workload has 1 vCPU(s), 0..0 (set "vcpus")',
      'operations[2].space: address space 1 does not exist yet (1 so far; createSpace makes more)',
      "operations[4]: pages up to vpn 0x800000001 are beyond what backend 'x86-shadow' maps (vpn < 0x800000000)",
      "operations[5]: addresses up to 0x800000000000 are beyond what backend 'x86-shadow' maps (va < 0x800000000000)",
      "operations[6]: enterNested: backend 'x86-shadow' does not run nested guests (its guest side has no enterNested/exitNested)",
      "operations[7]: exitNested: backend 'x86-shadow' does not run nested guests (its guest side has no enterNested/exitNested)",
    ]);
  });

  it('while running: an operation the VM or the guest refuses stops the replay with its index', () => {
    expect(refusal([slot(4), { op: 'createMemslot', slot: 1, gfn: 2, pages: 4 }])[0]).toMatch(/^operations\[1\]: createMemslot: MEMSLOT_OVERLAP/);
    expect(refusal([slot(4), { op: 'deleteMemslot', slot: 3 }])[0]).toMatch(/^operations\[1\]: deleteMemslot: MEMSLOT_UNKNOWN/);
    expect(refusal([slot(4), { op: 'map', vpn: 1, gfn: 0 }, { op: 'protect', vpn: 1, count: 2, rights: 'r' }])).toEqual([
      'operations[2]: protect: vpn 0x2 is not mapped in address space 0',
    ]);
    expect(refusal([slot(4), { op: 'harvestDirtyLog', slot: 0 }])[0]).toMatch(/^operations\[1\]: harvestDirtyLog: MEMSLOT_BAD_FLAGS/);
  });

  it('a backend without a guest side is refused by name', () => {
    expect(refusal([slot(1)], {}, identityMapBackend as unknown as BackendModule<BackendTypes>)).toEqual([
      'it has no guest side (BackendModule.guestSide), so workloads cannot map pages through it; pick a backend that has one',
    ]);
  });

  it('a backend whose guest side can nest gets enterNested and exitNested, on the vCPU named', () => {
    const calls: string[] = [];
    const nestingBackend: BackendModule<X86ShadowTypes> = {
      ...x86ShadowBackend,
      id: 'x86-shadow-nesting-test',
      guestSide: {
        ...x86GuestSide,
        create(vm, area) {
          const side = x86GuestSide.create(vm, area);
          const nested: NestedGuestControl<X86ShadowTypes> = {
            enterNested: (vcpu: Vcpu<X86ShadowTypes>, guest: number) => calls.push(`enter ${vcpu.id} ${guest}`),
            exitNested: (vcpu: Vcpu<X86ShadowTypes>) => calls.push(`exit ${vcpu.id}`),
          };
          return Object.assign(side, nested) as GuestAddressSpaces<X86ShadowTypes>;
        },
      },
    };
    run(
      [
        { op: 'enterNested', vcpu: 1, guest: 5 },
        { op: 'exitNested', vcpu: 1 },
      ],
      { vcpus: 2 },
      nestingBackend as unknown as BackendModule<BackendTypes>,
    );
    expect(calls).toEqual(['enter 1 5', 'exit 1']);
  });

  it('a guest side that is its guest’s hypervisor (a radix L2 under its L1) gets the faults reflected to it, and the access runs again once resolved', async () => {
    const { ppcRadixBackend, radixNestedGuestSide } = await import('@hvmmu/ppc-radix');
    const nested = { ...ppcRadixBackend, guestSide: radixNestedGuestSide } as unknown as BackendModule<BackendTypes>;
    const workload = parseWorkload(
      {
        version: 1,
        operations: [slot(8), { op: 'map', vpn: BASE, gfn: 0, count: 8 }, { op: 'access', kind: 'write', vpn: BASE, count: 8, repeat: 2 }],
      },
      'test',
    );
    const r = runWorkload(nested, workload, { ...MEM, backendOptions: { nestedHv: true } });
    expect(r.accesses).toBe(16);
    // The L2's first access comes back to L1 twice: its tables' 2 MiB (past L1's own window), then its data's. L1 maps each and resumes it.
    expect(r.faults).toEqual({
      guest: 0,
      guestResolved: 0,
      hypervisor: 2,
      hypervisorResolved: 2,
      vmm: 0,
      vmmByKind: { noMemory: 0, readOnly: 0, emulate: 0, retryLimit: 0, hostOutOfMemory: 0 },
    });
    expect(r.backendStats['ppcRadixL2Reflected']).toBe(2);
    expect(r.backendStats['ppcRadixNestedEnters']).toBe(3);
    expect(r.backendStats['ppcRadixShadowLeaves']).toBeGreaterThanOrEqual(8);
  });

  it('enterNested / exitNested on ppc-radix: the radix guest runs its own address spaces one level down, nesting turned on for the run', async () => {
    const { ppcRadixBackend } = await import('@hvmmu/ppc-radix');
    const r = run(
      [
        slot(8),
        { op: 'map', vpn: BASE, gfn: 0, count: 8, rights: 'rwu' },
        { op: 'access', kind: 'write', vpn: BASE, count: 8 },
        { op: 'enterNested', guest: 0 },
        // As the L2: the same pages, now through L1's tree for it and the shadow tree.
        { op: 'access', kind: 'read', vpn: BASE, count: 8 },
        // The guest OS unmaps a page: its tlbie reaches the nested guest's partition too.
        { op: 'unmap', vpn: BASE },
        { op: 'access', kind: 'read', vpn: BASE },
        { op: 'exitNested' },
        { op: 'access', kind: 'read', vpn: BASE + 1, count: 7 },
      ],
      {},
      ppcRadixBackend as unknown as BackendModule<BackendTypes>,
    );
    expect(r.accesses).toBe(24);
    // One guest fault: the L2's read of the unmapped page (its own DSI: the L2 keeps running).
    expect(r.faults.guest).toBe(1);
    // The L2's first access comes back to L1 twice (its tree maps nothing yet): for the gigabyte of the guest
    // OS's tables (the runner's table area, at 512 GiB), then for the data's; L1 maps each and resumes the L2.
    expect(r.faults.hypervisor).toBe(2);
    expect(r.faults.hypervisorResolved).toBe(2);
    expect(r.faults.vmm).toBe(0);
    // Entered by the workload and twice by L1 after the exits it handled; left by those exits and the workload's.
    expect(r.backendStats['ppcRadixNestedEnters']).toBe(3);
    expect(r.backendStats['ppcRadixNestedExits']).toBe(3);
    expect(r.backendStats['ppcRadixL2Reflected']).toBe(2);
  });
});
