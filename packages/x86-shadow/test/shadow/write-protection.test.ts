import { describe, expect, it } from 'vitest';
import { Access, FaultKind, FaultOutcome } from '@hvmmu/core';
import { SP_UNSYNC, X86ShadowMmu, roleLevel } from '@hvmmu/x86-shadow/internal';
import { NX_HI, P, TableBuilder, U, W, controlsFor, makeVm } from './helpers/guest.js';
import { checkInvariants } from './helpers/invariants.js';

/** A 4-level guest that maps its own page-table pages at 0x7000_0000 + k pages. */
function selfMappingGuest() {
  const t = makeVm();
  const b = new TableBuilder(t.mem, 'long4', 0x10_0000);
  const pml4 = b.root();
  b.map4k(pml4, 0x40_0000, 0x20_0000, P | W | U);
  b.map4k(pml4, 0x40_1000, 0x20_1000, P | W | U);
  const pt = b.entryAt(pml4, 0x40_0000, 1) & ~0xfff;
  const pd = b.entryAt(pml4, 0x40_0000, 2) & ~0xfff;
  // Windows onto the guest's PT and PD, in another PT (so the PT page itself is not self-mapped).
  b.map4k(pml4, 0x7000_0000, pt, P | W);
  b.map4k(pml4, 0x7000_1000, pd, P | W);
  t.mem.write32(0x20_0000, 0xaaaa, true);
  t.mem.write32(0x20_1000, 0xbbbb, true);
  t.mem.write32(0x20_2000, 0xcccc, true);
  expect(t.x.loadControlRegisters(controlsFor('long4', pml4))).toBe(true);
  return { ...t, b, pml4, pt, pd, mmu: t.vm.mmu as X86ShadowMmu };
}

describe('write protection of shadowed guest page tables', () => {
  it('a leaf table goes unsync on the first guest write; INVLPG resyncs the entry', () => {
    const t = selfMappingGuest();
    const { x, vm, mmu, pt } = t;
    expect(x.read(0x40_0000, 4)).toBe(true);
    expect(x.readLo).toBe(0xaaaa);
    // The guest rewrites its PTE for 0x40_0000 to point at 0x20_2000 (no emulation: the PT goes unsync).
    expect(x.write(0x7000_0000 + ((0x40_0000 / 4096) % 512) * 8, 4, (0x20_2000 | P | W | U) >>> 0)).toBe(true);
    expect(vm.stats()['emulatedWrites']).toBe(0);
    expect(vm.stats()['unsyncs']).toBe(1);
    const spt = mmu.pages.spt;
    let unsync = 0;
    for (let sp = 1; sp < spt.capacity; sp++) {
      if (spt.isInUse(sp) && (spt.flags[sp]! & SP_UNSYNC) !== 0) {
        unsync++;
        expect(spt.gfn[sp]).toBe(pt / 4096);
        expect(roleLevel(spt.role[sp]!)).toBe(1);
      }
    }
    expect(unsync).toBe(1);
    expect(checkInvariants(vm)).toEqual([]);
    // Without a TLB flush the old translation may still be used (architecturally allowed)…
    expect(x.read(0x40_0000, 4)).toBe(true);
    expect(x.readLo).toBe(0xaaaa);
    // …INVLPG resyncs the unsync entry and the new mapping takes effect.
    x.invlpg(0x40_0000);
    expect(x.read(0x40_0000, 4)).toBe(true);
    expect(x.readLo).toBe(0xcccc);
    expect(checkInvariants(vm)).toEqual([]);
  });

  it('re-pointing a gpte to another gfn on the same host frame (zero frame) re-files the rmap entry', () => {
    const t = selfMappingGuest();
    const { x, vm, b, pml4 } = t;
    // 0x40_4000 → untouched gfn 0x300, user, NX: both gfns read as the shared zero frame.
    b.map4k(pml4, 0x40_4000, 0x30_0000, P | U, NX_HI);
    expect(x.read(0x40_4000, 4)).toBe(true);
    // The guest re-points the (now unsync) PTE at untouched gfn 0x301, executable, and does not INVLPG.
    expect(x.write(0x7000_0000 + ((0x40_4000 / 4096) % 512) * 8, 8, (0x30_1000 | P | U) >>> 0, 0)).toBe(true);
    // A fetch misses on the stale NX spte; the fault maps gfn 0x301 — same frame, other gfn.
    expect(x.read(0x40_4000, 4, 2 /* Access.FETCH */)).toBe(true);
    expect(checkInvariants(vm)).toEqual([]);
  });

  it('a CR3 write syncs every unsync page of the root and write-protects it again', () => {
    const t = selfMappingGuest();
    const { x, vm, mmu, pml4 } = t;
    expect(x.read(0x40_1000, 4)).toBe(true);
    // Make the PTE of 0x40_1000 not present through the window.
    expect(x.write(0x7000_0000 + ((0x40_1000 / 4096) % 512) * 8, 8, 0, 0)).toBe(true);
    expect(mmu.pages.unsyncPages).toBe(1);
    expect(x.setCr3(pml4)).toBe(true);
    expect(mmu.pages.unsyncPages).toBe(0);
    expect(vm.stats()['syncs']).toBeGreaterThan(0);
    expect(x.read(0x40_1000, 4)).toBe(false);
    expect(t.vcpu.fault.kind).toBe(FaultKind.GUEST);
    // The PT is write-protected again: the next guest write unsyncs it once more.
    expect(x.write(0x7000_0000 + 8 * 5, 4, 0)).toBe(true);
    expect(vm.stats()['unsyncs']).toBe(2);
    expect(checkInvariants(vm)).toEqual([]);
  });

  it('an upper-level table is write-tracked: guest writes are emulated and zap the written spte', () => {
    const t = selfMappingGuest();
    const { x, vm, b, pml4 } = t;
    expect(x.read(0x40_0000, 4)).toBe(true);
    // Point PDE 2 (VA 0x40_0000) at a fresh PT mapping 0x40_0000 → 0x20_1000.
    const newPt = b.page();
    b.write(newPt, 0x20_1000 | P | W | U);
    const pdeOffset = ((0x40_0000 / 0x20_0000) % 512) * 8;
    expect(x.write(0x7000_1000 + pdeOffset, 8, (newPt | P | W | U) >>> 0, 0)).toBe(true);
    expect(vm.stats()['emulatedWrites']).toBe(1);
    expect(vm.stats()['pdeZapped']).toBe(1);
    // The zapped spte takes the new PDE at once (no INVLPG needed for the shadow, the TLB was flushed).
    expect(x.read(0x40_0000, 4)).toBe(true);
    expect(x.readLo).toBe(0xbbbb);
    expect(b.read(b.entryAt(pml4, 0x40_0000, 2)).lo & ~0xfff).toBe(newPt);
    expect(checkInvariants(vm)).toEqual([]);
  });

  it('write flooding: three emulated writes to an upper table not used in between zap it', () => {
    const t = selfMappingGuest();
    const { x, vm } = t;
    expect(x.read(0x40_0000, 4)).toBe(true);
    const zapped = vm.stats()['zappedPages']!;
    // Write unused PDEs (nothing present there) three times.
    for (let k = 0; k < 3; k++) expect(x.write(0x7000_1000 + 8 * (100 + k), 8, 0, 0)).toBe(true);
    expect(vm.stats()['emulatedWrites']).toBe(3);
    expect(vm.stats()['mmuFlooded']).toBe(1);
    expect(vm.stats()['zappedPages']).toBeGreaterThan(zapped);
    // The PD is no longer shadowed: writes go straight through now.
    expect(x.write(0x7000_1000 + 8 * 200, 8, 0, 0)).toBe(true);
    expect(vm.stats()['emulatedWrites']).toBe(3);
    // Using the tables rebuilds the shadow.
    expect(x.read(0x40_0000, 4)).toBe(true);
    expect(checkInvariants(vm)).toEqual([]);
  });

  it('a shadow fault resets the write-flooding count of every page on its path, the leaf table included', () => {
    // KVM FNAME(fetch): clear_sp_write_flooding_count on each shadow page from the root down to
    // the level of the guest leaf; a table in active use for translation is not "flooded".
    // `afterHardwareMiss`: the fault follows the hardware walk's miss on the empty level-1 entry
    // (the fault path reuses that walk); otherwise the handler is entered directly and walks itself.
    for (const afterHardwareMiss of [true, false]) {
      const t = selfMappingGuest();
      const { x, mmu, vcpu } = t;
      const spt = mmu.pages.spt;
      expect(x.read(0x40_0000, 4)).toBe(true);
      const path: number[] = [];
      let sp = x.rootSp;
      for (let level = 4; level >= 1; level--) {
        path.push(sp);
        if (level === 1) break;
        const index = Math.floor(0x40_1000 / 2 ** (12 + 9 * (level - 1))) % 512;
        const lo = spt.sptLo[sp * 512 + index]!;
        sp = ((spt.sptHi[sp * 512 + index]! & 0x7ff) << 20) | (lo >>> 12);
      }
      // Two emulated writes to each table since it was last used (a third would zap it).
      for (const p of path) for (let k = 0; k < 2; k++) spt.countFloodingWrite(p);
      expect(spt.floodedPages).toBe(4);
      // 0x40_1000 shares all four tables with 0x40_0000 and is not mapped yet: a fault.
      const faults = mmu.stats()['shadowFaults']!;
      if (!afterHardwareMiss) {
        expect(mmu.handleFault(vcpu, 0x40_1000 / 4096, Access.READ, 0, vcpu.fault)).toBe(FaultOutcome.RETRY);
      }
      expect(x.read(0x40_1000, 4)).toBe(true);
      expect(x.readLo).toBe(0xbbbb);
      expect(mmu.stats()['shadowFaults']).toBe(faults + 1);
      expect(path.map((p) => spt.writeFlooding[p])).toEqual([0, 0, 0, 0]);
      expect(spt.floodedPages).toBe(0);
      expect(checkInvariants(t.vm)).toEqual([]);
    }
  });

  it('a misaligned write to a shadowed table zaps the shadow page', () => {
    const t = selfMappingGuest();
    const { x, vm } = t;
    expect(x.read(0x40_0000, 4)).toBe(true);
    // 2 bytes at offset 7 straddle two 8-byte PDEs (and are < 4 bytes).
    expect(x.write(0x7000_1000 + 7, 2, 0)).toBe(true);
    expect(vm.stats()['emulatedWrites']).toBe(1);
    expect(vm.stats()['mmuFlooded']).toBe(1);
    expect(x.read(0x40_0000, 4)).toBe(true);
    expect(checkInvariants(vm)).toEqual([]);
  });

  it('zapping the current root (a misaligned write to the guest PML4) leaves no TLB entry behind', () => {
    const t = selfMappingGuest();
    const { x, vm, b, pml4, vcpu } = t;
    b.map4k(pml4, 0x7000_2000, pml4, P | W); // the guest maps its PML4 too
    expect(x.read(0x40_0000, 4)).toBe(true);
    expect(x.read(0x40_1000, 4)).toBe(true);
    expect(vcpu.tlb.countValid()).toBeGreaterThan(0);
    // A 2-byte write into PML4 entry 100: misaligned → the root page itself is zapped.
    expect(x.write(0x7000_2000 + 100 * 8 + 3, 2, 0)).toBe(true);
    expect(vm.stats()['mmuFlooded']).toBe(1);
    expect(vcpu.tlb.countValid()).toBe(0);
    expect(checkInvariants(vm)).toEqual([]);
    expect(x.read(0x40_0000, 4)).toBe(true);
    expect(x.readLo).toBe(0xaaaa);
  });

  it('a 1-byte write at a gpte-aligned offset is not misaligned (guests clear status bits bytewise)', () => {
    const t = selfMappingGuest();
    const { x, vm } = t;
    expect(x.read(0x40_0000, 4)).toBe(true);
    expect(x.write(0x7000_1000 + 8 * 300, 1, 0)).toBe(true);
    expect(vm.stats()['mmuFlooded']).toBe(0);
    expect(vm.stats()['emulatedWrites']).toBe(1);
  });

  it('CR0.WP=0: a supervisor write to a read-only user page maps it U=0/W=1 and a user access flips it back', () => {
    const t = makeVm();
    const b = new TableBuilder(t.mem, 'long4', 0x10_0000);
    const pml4 = b.root();
    b.map4k(pml4, 0x40_0000, 0x20_0000, P | U); // read-only user page
    const c = controlsFor('long4', pml4);
    expect(t.x.loadControlRegisters({ ...c, cr0: (c.cr0 & ~(1 << 16)) >>> 0 })).toBe(true);
    expect(t.x.write(0x40_0000, 4, 0x77)).toBe(true);
    expect(t.mem.read32(0x20_0000, true)).toBe(0x77);
    const mmu = t.vm.mmu as X86ShadowMmu;
    let e = mmu.findLeaf(t.x, 0x400);
    expect(mmu.pages.spt.sptLo[e]! & 6).toBe(2); // W=1, U=0
    // A user read faults in hardware (U=0) and is remapped U=1, W=0.
    expect(t.x.read(0x40_0000, 4, 4 /* Access.USER */)).toBe(true);
    e = mmu.findLeaf(t.x, 0x400);
    expect(mmu.pages.spt.sptLo[e]! & 6).toBe(4);
    // A user write is still refused by the guest's tables.
    expect(t.x.write(0x40_0000, 4, 1, 0, 4 | 1)).toBe(false);
    expect(t.vcpu.fault.code).toBe(1 | 2 | 4);
    expect(checkInvariants(t.vm)).toEqual([]);
  });
});
