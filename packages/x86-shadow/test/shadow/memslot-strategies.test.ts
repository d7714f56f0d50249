import { describe, expect, it } from 'vitest';
import { FaultKind, RMAP_INVALID, RmapOpsRegistry, type TraceEvent, type Vm } from '@hvmmu/core';
import type { X86ShadowTypes } from '@hvmmu/x86-shadow/internal';
import { InvalidRmapFlush, FastZapFlush, PTE_LIST_SPTE_SKIP, SlotRmap, X86ShadowMmu, x86ShadowBackend, type X86RmapOps } from '@hvmmu/x86-shadow/internal';
import { P, TableBuilder, U, W, controlsFor, makeVm } from './helpers/guest.js';
import { checkInvariants } from './helpers/invariants.js';

const SLOT1_GPA = 0x1000_0000;
const SLOT1_PAGES = 64;

/** A 4-level guest touching 64 pages of slot 0 and 64 pages of slot 1. */
function guestWithTwoSlots(strategy: 'invalid-rmap' | 'fast-zap') {
  const t = makeVm({ backendOptions: { memslotInvalidation: strategy } });
  t.mem.create({ id: 1, guestPhysAddr: SLOT1_GPA, size: SLOT1_PAGES * 4096 });
  const b = new TableBuilder(t.mem, 'long4', 0x10_0000);
  const pml4 = b.root();
  for (let i = 0; i < 64; i++) {
    b.map4k(pml4, 0x4000_0000 + i * 4096, 0x80_0000 + i * 4096, P | W | U);
    b.map4k(pml4, 0x8000_0000 + i * 4096, SLOT1_GPA + i * 4096, P | W | U);
  }
  expect(t.x.loadControlRegisters(controlsFor('long4', pml4))).toBe(true);
  for (let i = 0; i < 64; i++) {
    expect(t.x.write(0x4000_0000 + i * 4096, 4, i)).toBe(true);
    expect(t.x.write(0x8000_0000 + i * 4096, 4, 0x100 + i)).toBe(true);
  }
  expect(checkInvariants(t.vm)).toEqual([]);
  return { ...t, b, pml4 };
}

describe.each(['invalid-rmap', 'fast-zap'] as const)('memslot delete/move with %s', (strategy) => {
  it('binds the strategy chosen in backendOptions', () => {
    const { vm } = guestWithTwoSlots(strategy);
    const mmu = vm.mmu as X86ShadowMmu;
    expect(mmu.flushStrategy).toBeInstanceOf(strategy === 'fast-zap' ? FastZapFlush : InvalidRmapFlush);
    expect(mmu.flushStrategy.name).toBe(strategy);
  });

  it('delete leaves no spte mapping the slot, and the guest then sees a hole', () => {
    const { vm, x, vcpu } = guestWithTwoSlots(strategy);
    const flushesBefore = vm.tlbs.remoteFlushes;
    const deleted = vm.memslots.get(1);
    expect(deleted.arch).toBeInstanceOf(SlotRmap);
    vm.memslots.delete(1);
    expect(checkInvariants(vm, { deletedRanges: [{ base: SLOT1_GPA / 4096, npages: SLOT1_PAGES }] })).toEqual([]);
    expect(vm.stats()['memslotFlushes']).toBe(1);
    // Every TLB lost the deleted translations (by flush or by generation).
    expect(vcpu.tlb.countValid()).toBe(0);
    expect(vm.tlbs.remoteFlushes).toBeGreaterThan(flushesBefore);
    expect(x.read(0x8000_0000, 4)).toBe(false);
    expect(vcpu.fault.kind).toBe(FaultKind.NO_MEMORY);
    // The slot's rmap memory went with it.
    expect(deleted.arch.allocated).toBe(false); // the rmap memory went with the slot
    expect(deleted.arch.byteLength).toBe(0);
    // Slot 0 is intact.
    expect(x.read(0x4000_0000 + 5 * 4096, 4)).toBe(true);
    expect(x.readLo).toBe(5);
    expect(checkInvariants(vm)).toEqual([]);
  });

  it('move: the old range maps nothing; the data is found at the new base', () => {
    const { vm, x, vcpu, b, pml4 } = guestWithTwoSlots(strategy);
    vm.memslots.move(1, 0x2000_0000);
    expect(checkInvariants(vm, { deletedRanges: [{ base: SLOT1_GPA / 4096, npages: SLOT1_PAGES }] })).toEqual([]);
    expect(x.read(0x8000_0000 + 3 * 4096, 4)).toBe(false);
    expect(vcpu.fault.kind).toBe(FaultKind.NO_MEMORY);
    b.map4k(pml4, 0xc000_0000, 0x2000_0000 + 3 * 4096, P | W | U);
    expect(x.read(0xc000_0000, 4)).toBe(true);
    expect(x.readLo).toBe(0x103);
    expect(checkInvariants(vm)).toEqual([]);
  });
});

describe('the two strategies differ in what they discard', () => {
  it("invalid-rmap drops only the slot's mappings; fast-zap discards every shadow page", () => {
    const inv = guestWithTwoSlots('invalid-rmap');
    const faultsBefore = inv.vm.stats()['shadowFaults']!;
    inv.vm.memslots.delete(1);
    expect(inv.vm.stats()['rmapEntries']).toBe(64);
    expect(inv.vm.stats()['fastZaps']).toBe(0);
    // Slot-0 pages are still mapped: no new shadow fault.
    for (let i = 0; i < 64; i++) expect(inv.x.read(0x4000_0000 + i * 4096, 4)).toBe(true);
    expect(inv.vm.stats()['shadowFaults']).toBe(faultsBefore);

    const fz = guestWithTwoSlots('fast-zap');
    const genBefore = fz.vm.stats()['mmuValidGen'];
    fz.vm.memslots.delete(1);
    expect(fz.vm.stats()['mmuValidGen']).toBe(1 - genBefore!);
    expect(fz.vm.stats()['fastZaps']).toBe(1);
    // Only the vCPU's (now invalid) root survives, pinned until the vCPU next enters and frees it.
    expect(fz.vm.stats()['shadowPages']).toBe(1);
    expect(fz.vm.stats()['rmapEntries']).toBe(0);
    const faultsBeforeZ = fz.vm.stats()['shadowFaults']!;
    for (let i = 0; i < 64; i++) expect(fz.x.read(0x4000_0000 + i * 4096, 4)).toBe(true);
    expect(fz.vm.stats()['shadowFaults']).toBe(faultsBeforeZ + 64);
    expect(checkInvariants(fz.vm)).toEqual([]);
  });

  it('invalid-rmap zaps shadow pages whose guest tables lived in the deleted slot', () => {
    const t = makeVm({ backendOptions: { memslotInvalidation: 'invalid-rmap' } });
    t.mem.create({ id: 1, guestPhysAddr: SLOT1_GPA, size: 16 * 4096 });
    // The page table for 0x4000_0000 lives in slot 1; its data page lives in slot 0.
    const b = new TableBuilder(t.mem, 'long4', 0x10_0000);
    const pml4 = b.root();
    const pdpt = b.page();
    const pd = b.page();
    b.write(pml4, pdpt | P | W | U);
    b.write(pdpt + 1 * 8, pd | P | W | U);
    const pt = SLOT1_GPA; // slot 1 page 0
    b.write(pd, pt | P | W | U);
    b.write(pt, 0x80_0000 | P | W | U);
    expect(t.x.loadControlRegisters(controlsFor('long4', pml4))).toBe(true);
    expect(t.x.write(0x4000_0000, 4, 9)).toBe(true);
    t.mem.delete(1);
    expect(checkInvariants(t.vm)).toEqual([]);
    // The guest's PT is gone: a walk reading it faults not-present, and no stale shadow path translates.
    expect(t.x.read(0x4000_0000, 4)).toBe(false);
    expect(t.vcpu.fault.kind).toBe(FaultKind.GUEST);
    expect(t.vcpu.fault.code).toBe(0);
  });
});

describe('the invalid rmap table (2013 KVM invalid rmap handlers patch)', () => {
  it('add and writeProtect warn (counter + trace) and change nothing', () => {
    const events: TraceEvent[] = [];
    const hv = makeVm().hv;
    const vm = hv.createVm({ backend: x86ShadowBackend, trace: (e) => events.push(e) });
    vm.memslots.create({ id: 0, guestPhysAddr: 0, size: 1 << 20 });
    const slot = vm.memslots.get(0);
    const invalid = getInvalidOps(vm);
    const r = slot.arch as SlotRmap;
    const before = r.heads[0]!.slice();
    invalid.add(slot, 5, 1, 5000);
    expect(invalid.writeProtect(slot, 5, 1)).toBe(false);
    expect(invalid.clearWritable(slot, 5, 1, false)).toBe(false);
    expect(r.heads[0]).toEqual(before);
    expect(vm.stats()['invalidRmapWarnings']).toBe(3);
    expect(events.filter((e) => e.kind === 'x86.rmap.invalid-warning').map((e) => e['op'])).toEqual(['add', 'writeProtect', 'writeProtect']);
  });

  it('remove clears in place with the skip marker; unmap/setPte/age/testAge drop sptes; memory stays', () => {
    const t = makeVm({ backendOptions: { memslotInvalidation: 'invalid-rmap' } });
    const b = new TableBuilder(t.mem, 'long4', 0x10_0000);
    const pml4 = b.root();
    // Four virtual pages alias each of gfns 0x800..0x803: four sptes per rmap list.
    for (let v = 0; v < 4; v++) for (let g = 0; g < 4; g++) b.map4k(pml4, 0x4000_0000 + v * 0x20_0000 + g * 4096, (0x800 + g) * 4096, P | W | U);
    expect(t.x.loadControlRegisters(controlsFor('long4', pml4))).toBe(true);
    for (let v = 0; v < 4; v++) for (let g = 0; g < 4; g++) expect(t.x.read(0x4000_0000 + v * 0x20_0000 + g * 4096, 4)).toBe(true);
    const slot = t.mem.get(0);
    const r = slot.arch as SlotRmap;
    const spt = (t.vm.mmu as X86ShadowMmu).pages.spt;
    const entries = (gfn: number) => {
      const out: number[] = [];
      r.pool.collect(r.heads[0]![gfn]!, out);
      return out;
    };
    const invalid = getInvalidOps(t.vm);
    const descsBefore = r.pool.inUse;
    const bytesBefore = r.byteLength;
    // remove: in place, shape and descriptor count unchanged.
    const victim = entries(0x800)[1]!;
    invalid.remove(slot, 0x800, 1, victim);
    expect(entries(0x800)).toHaveLength(4);
    expect(entries(0x800)[1]).toBe(PTE_LIST_SPTE_SKIP);
    // unmap / setPte / age / testAge each drop every spte on their list.
    for (const [gfn, op] of [
      [0x800, 'unmap'],
      [0x801, 'setPte'],
      [0x802, 'age'],
      [0x803, 'testAge'],
    ] as const) {
      const live = entries(gfn).filter((e) => e !== PTE_LIST_SPTE_SKIP);
      const result =
        op === 'unmap'
          ? invalid.unmap(slot, gfn, 1)
          : op === 'setPte'
            ? invalid.setPte(slot, gfn, 1, 1, false)
            : op === 'age'
              ? invalid.age(slot, gfn, 1)
              : invalid.testAge(slot, gfn, 1);
      expect(result).toBe(true); // every dropped spte was young (A set by make_spte)
      for (const e of live) expect(spt.sptLo[e]).toBe(0);
      expect(entries(gfn).every((e) => e === PTE_LIST_SPTE_SKIP)).toBe(true);
    }
    expect(r.pool.inUse).toBe(descsBefore);
    expect(r.byteLength).toBe(bytesBefore);
    // A second walk finds only skip markers: nothing to drop.
    expect(invalid.unmap(slot, 0x800, 1)).toBe(false);
  });
});

function getInvalidOps(vm: Vm<X86ShadowTypes>): X86RmapOps {
  return vm.container.resolve(RmapOpsRegistry).get(RMAP_INVALID) as X86RmapOps;
}
