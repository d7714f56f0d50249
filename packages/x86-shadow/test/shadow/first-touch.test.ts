import { describe, expect, it } from 'vitest';
import { Access, FaultKind } from '@hvmmu/core';
import type { X86ShadowMmu } from '@hvmmu/x86-shadow/internal';
import { A, NX_HI, P, TableBuilder, U, W, controlsFor, makeVm } from './helpers/guest.js';
import { checkInvariants } from './helpers/invariants.js';
import { EC_ID as PF_ID, EC_P as PF_P, EC_U as PF_U, EC_W as PF_W } from '../walker/accessOracle.js';

// The common first touch (a 4 KiB page behind a level-1 shadow page that already exists) reads only
// the leaf gpte and takes the upper levels' rights from that shadow page's role, as KVM's
// FNAME(sync_spte) does. These tests hold it to what a full guest walk gives: the upper levels'
// U/S, R/W and XD, and their A bits once the guest has cleared one through an emulated write.

const VA0 = 0x40_0000;
const VA1 = 0x40_1000;
/** The guest's windows onto its own PD and PT (writable, supervisor). */
const PD_WINDOW = 0x7000_0000;
const PT_WINDOW = 0x7000_1000;

/**
 * A 4-level guest mapping VA0 and VA1 (same PT) with user-writable, executable PTEs whose
 * A and D are set, under a PDE with `pdeFlags`; the PD is also mapped at PD_WINDOW.
 */
function guest(pdeFlags: number, pdeHi = 0) {
  const t = makeVm();
  const b = new TableBuilder(t.mem, 'long4', 0x10_0000);
  const pml4 = b.root();
  b.map4k(pml4, VA0, 0x20_0000, P | W | U | A | 0x40);
  b.map4k(pml4, VA1, 0x20_1000, P | W | U | A | 0x40);
  const pdeGpa = b.entryAt(pml4, VA0, 2);
  const pd = pdeGpa & ~0xfff;
  const pt = b.read(pdeGpa).lo & ~0xfff;
  b.write(pdeGpa, (pt | pdeFlags) >>> 0, pdeHi);
  b.map4k(pml4, PD_WINDOW, pd, P | W);
  t.mem.write32(0x20_0000, 0xaaaa, true);
  t.mem.write32(0x20_1000, 0xbbbb, true);
  expect(t.x.loadControlRegisters(controlsFor('long4', pml4))).toBe(true);
  return { ...t, b, pml4, pdeGpa, mmu: t.vm.mmu as X86ShadowMmu };
}

describe('first touch behind an existing level-1 shadow page', () => {
  it("refuses a user access when the PDE is supervisor-only, with the full walk's error code", () => {
    const t = guest(P | W | A);
    expect(t.x.read(VA0, 4)).toBe(true);
    const faults = t.mmu.stats()['shadowFaults']!;
    t.x.setCpl(3);
    expect(t.x.read(VA1, 4)).toBe(false);
    expect(t.vcpu.fault.kind).toBe(FaultKind.GUEST);
    expect(t.vcpu.fault.code).toBe(PF_P | PF_U);
    expect(t.mmu.stats()['shadowFaults']).toBe(faults);
    t.x.setCpl(0);
    expect(t.x.read(VA1, 4)).toBe(true);
    expect(t.x.readLo).toBe(0xbbbb);
    expect(checkInvariants(t.vm)).toEqual([]);
  });

  it('refuses a write under CR0.WP when the PDE is read-only, and a fetch when it has XD', () => {
    const ro = guest(P | U | A);
    expect(ro.x.read(VA0, 4)).toBe(true);
    expect(ro.x.write(VA1, 4, 1)).toBe(false);
    expect(ro.vcpu.fault.code).toBe(PF_P | PF_W);
    expect(ro.x.read(VA1, 4)).toBe(true);

    const nx = guest(P | W | U | A, NX_HI);
    expect(nx.x.read(VA0, 4)).toBe(true);
    expect(nx.x.read(VA1, 4, Access.FETCH)).toBe(false);
    expect(nx.vcpu.fault.code).toBe(PF_P | PF_ID);
    expect(nx.x.read(VA1, 4)).toBe(true);
    expect(checkInvariants(ro.vm)).toEqual([]);
    expect(checkInvariants(nx.vm)).toEqual([]);
  });

  it('sets A in the PDE again after the guest cleared it through an emulated write', () => {
    const t = guest(P | W | U | A);
    // VA1's PTE starts not present; the guest maps its PT at PT_WINDOW to fix it.
    const pteGpa = t.b.entryAt(t.pml4, VA1, 1);
    t.b.write(pteGpa, (0x20_1000 | W | U | A | 0x40) >>> 0);
    t.b.map4k(t.pml4, PT_WINDOW, pteGpa & ~0xfff, P | W);
    expect(t.x.read(VA0, 4)).toBe(true);
    // The hardware walk misses on VA1's empty level-1 entry, the guest walk faults (not present).
    expect(t.x.read(VA1, 4)).toBe(false);
    expect(t.vcpu.fault.kind).toBe(FaultKind.GUEST);
    expect(t.vcpu.fault.code).toBe(0);
    // The guest makes the PTE present (its PT goes unsync: no emulation, no flush) …
    expect(t.x.write(PT_WINDOW + (pteGpa & 0xfff), 4, (0x20_1000 | P | W | U | A | 0x40) >>> 0)).toBe(true);
    // … and clears A in its PDE through its own mapping of the write-protected PD: that write is
    // emulated and drops the shadow link below the PDE.
    const pdIndex = (t.pdeGpa & 0xfff) / 8;
    const pde = t.b.read(t.pdeGpa);
    const emulated = t.vm.stats()['emulatedWrites']!;
    expect(t.x.write(PD_WINDOW + pdIndex * 8, 4, (pde.lo & ~A) >>> 0)).toBe(true);
    expect(t.vm.stats()['emulatedWrites']).toBe(emulated + 1);
    expect(t.b.read(t.pdeGpa).lo & A).toBe(0);
    // The next touch of VA1 walks that PDE again, as hardware would: A is set again. (The miss
    // recorded before the PDE write must not be reused: the link it relied on is gone.)
    expect(t.x.read(VA1, 4)).toBe(true);
    expect(t.x.readLo).toBe(0xbbbb);
    expect(t.b.read(t.pdeGpa).lo & A).toBe(A);
    expect(checkInvariants(t.vm)).toEqual([]);
  });
});
