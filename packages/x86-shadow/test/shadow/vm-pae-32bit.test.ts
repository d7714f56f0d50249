import { describe, expect, it } from 'vitest';
import { FaultKind } from '@hvmmu/core';
import {
  ROLE_DIRECT,
  ROLE_HAS_4_BYTE_GPTE,
  ROOT_SPECIAL,
  SP_HASHED,
  SP_ON_ACTIVE_LIST,
  SP_SPECIAL,
  X86ShadowMmu,
  roleLevel,
  roleQuadrant,
} from '@hvmmu/x86-shadow/internal';
import { P, PS, TableBuilder, U, W, controlsFor, makeVm, type TestVm } from './helpers/guest.js';
import { checkInvariants } from './helpers/invariants.js';

interface PageInfo {
  id: number;
  gfn: number;
  level: number;
  quadrant: number;
  direct: boolean;
  special: boolean;
}

function shadowPages(t: TestVm): PageInfo[] {
  const spt = (t.vm.mmu as X86ShadowMmu).pages.spt;
  const out: PageInfo[] = [];
  for (let id = 1; id < spt.capacity; id++) {
    if (!spt.isInUse(id)) continue;
    const role = spt.role[id]!;
    out.push({
      id,
      gfn: spt.gfn[id]!,
      level: roleLevel(role),
      quadrant: roleQuadrant(role),
      direct: (role & ROLE_DIRECT) !== 0,
      special: (spt.flags[id]! & SP_SPECIAL) !== 0,
    });
  }
  return out;
}

describe('32-bit (2-level) guest', () => {
  function guest32() {
    const t = makeVm();
    const b = new TableBuilder(t.mem, 'bits32', 0x10_0000);
    const pd = b.root();
    return { ...t, b, pd };
  }

  it('is shadowed under a PAE special root with quadrants for the 4-byte tables', () => {
    const t = guest32();
    const { b, pd, x } = t;
    b.map4k(pd, 0x0040_0000, 0x20_0000, P | W | U); // PDE 1, PT half 0 (VA bit 21 = 0)
    b.map4k(pd, 0x0060_0000, 0x20_1000, P | W | U); // same PT, half 1 (VA bit 21 = 1)
    b.map4k(pd, 0xc000_0000, 0x20_2000, P | W | U); // PD quarter 3
    expect(x.loadControlRegisters(controlsFor('bits32', pd))).toBe(true);
    for (const va of [0x0040_0000, 0x0060_0000, 0xc000_0000]) expect(x.write(va + 8, 4, va >>> 12)).toBe(true);
    expect(t.mem.read32(0x20_1008, true)).toBe(0x600);
    expect(x.rootKind).toBe(ROOT_SPECIAL);
    const sps = shadowPages(t);
    const pae = sps.filter((s) => s.special);
    expect(pae).toHaveLength(1);
    expect(pae[0]).toMatchObject({ level: 3, gfn: 0 });
    // Level-2 pages at the guest PD gfn, quadrants 0 (VA < 1 GiB) and 3 (0xc000_0000).
    const pds = sps
      .filter((s) => !s.special && s.level === 2)
      .map((s) => [s.gfn, s.quadrant])
      .sort();
    expect(pds).toEqual([
      [pd / 4096, 0],
      [pd / 4096, 3],
    ]);
    // Two PAE PTs shadow the first guest PT (quadrants 0 and 1), one the other.
    const pt1 = b.entryAt(pd, 0x0040_0000, 1);
    const pts = sps
      .filter((s) => s.level === 1)
      .map((s) => [s.gfn, s.quadrant])
      .sort();
    expect(pts).toContainEqual([Math.floor(pt1 / 4096), 0]);
    expect(pts).toContainEqual([Math.floor(pt1 / 4096), 1]);
    expect(pts).toHaveLength(3);
    expect(checkInvariants(t.vm)).toEqual([]);
  });

  it('maps a 4 MiB PSE page with two direct 2 MiB halves of 4 KiB sptes', () => {
    const t = guest32();
    const { b, pd, x } = t;
    // PDE for 0x0080_0000 → 4 MiB page at 0x00c0_0000.
    b.write(b.entryGpa(pd, 0x0080_0000, 2), 0x00c0_0000 | P | W | U | PS);
    expect(x.loadControlRegisters(controlsFor('bits32', pd))).toBe(true);
    expect(x.write(0x0080_0000 + 0x1234, 4, 11)).toBe(true);
    expect(x.write(0x00a0_0000 + 0x10, 4, 12)).toBe(true); // second 2 MiB half
    expect(t.mem.read32(0x00c0_1234, true)).toBe(11);
    expect(t.mem.read32(0x00e0_0010, true)).toBe(12);
    const direct = shadowPages(t)
      .filter((s) => s.direct)
      .map((s) => s.gfn)
      .sort((a, c) => a - c);
    expect(direct).toEqual([0xc00, 0xe00]);
    expect(checkInvariants(t.vm)).toEqual([]);
  });

  it('emulates a write to the guest PD and zaps both 2 MiB sptes the 4-byte PDE covered', () => {
    const t = guest32();
    const { b, pd, x } = t;
    b.map4k(pd, 0x0040_0000, 0x20_0000, P | W | U);
    b.map4k(pd, 0x0060_0000, 0x20_1000, P | W | U);
    b.map4k(pd, 0x7000_0000, pd, P | W); // the guest maps its own PD
    expect(x.loadControlRegisters(controlsFor('bits32', pd))).toBe(true);
    expect(x.read(0x0040_0000, 4)).toBe(true);
    expect(x.read(0x0060_0000, 4)).toBe(true);
    // Clear PDE 1 (4-byte, offset 4) through the guest's own mapping: write-tracked → emulated.
    expect(x.write(0x7000_0000 + 4, 4, 0)).toBe(true);
    expect(t.vm.stats()['emulatedWrites']).toBe(1);
    expect(t.vm.stats()['pdeZapped']).toBe(2);
    // Takes effect at once: both halves fault not-present.
    expect(x.read(0x0040_0000, 4)).toBe(false);
    expect(t.vcpu.fault.kind).toBe(FaultKind.GUEST);
    expect(t.vcpu.fault.code).toBe(0);
    expect(checkInvariants(t.vm)).toEqual([]);
  });
});

describe('PAE guest', () => {
  function guestPae() {
    const t = makeVm();
    const b = new TableBuilder(t.mem, 'pae', 0x10_0000);
    const pdpt = b.root();
    return { ...t, b, pdpt };
  }

  it('uses the cached PDPTEs; a changed PDPTE frees the root at the next CR3 load', () => {
    const t = guestPae();
    const { b, pdpt, x } = t;
    b.map4k(pdpt, 0x0040_0000, 0x20_0000, P | W | U);
    b.map4k(pdpt, 0x4000_0000, 0x20_1000, P | W | U); // PDPTE 1
    expect(x.loadControlRegisters(controlsFor('pae', pdpt))).toBe(true);
    expect(x.write(0x0040_0000, 4, 1)).toBe(true);
    expect(x.write(0x4000_0000, 4, 2)).toBe(true);
    expect(x.rootKind).toBe(ROOT_SPECIAL);
    const rootBefore = x.rootSp;
    const pds = shadowPages(t).filter((s) => s.level === 2 && !s.special);
    expect(pds).toHaveLength(2);
    expect(pds.every((s) => s.quadrant === 0)).toBe(true);
    // Change PDPTE 1 in memory: the cached copy keeps being used until CR3 is loaded.
    const newPd = b.page();
    b.write(pdpt + 8, newPd | P);
    expect(x.read(0x4000_0000, 4)).toBe(true);
    const freed = t.vm.stats()['rootsFreed']!;
    expect(x.setCr3(pdpt)).toBe(true);
    expect(t.vm.stats()['rootsFreed']).toBe(freed + 1);
    expect(x.read(0x4000_0000, 4)).toBe(false); // the new PD is empty
    expect(x.rootKind).toBe(ROOT_SPECIAL);
    expect(rootBefore).toBeGreaterThan(0);
    expect(checkInvariants(t.vm)).toEqual([]);
  });

  it('a reserved bit in a present PDPTE makes the CR3 load fail (#GP) and changes nothing', () => {
    const t = guestPae();
    const { b, pdpt, x } = t;
    b.map4k(pdpt, 0x0040_0000, 0x20_0000, P | W | U);
    expect(x.loadControlRegisters(controlsFor('pae', pdpt))).toBe(true);
    expect(x.read(0x0040_0000, 4)).toBe(true);
    const bad = b.page();
    b.write(bad, (b.read(pdpt).lo | W) >>> 0); // W is reserved in a PDPTE
    expect(x.setCr3(bad)).toBe(false);
    expect(x.regs.cr3).toBe(pdpt);
    expect(x.read(0x0040_0000, 4)).toBe(true);
  });

  it('maps a 2 MiB page with a direct level-1 shadow page', () => {
    const t = guestPae();
    const { b, pdpt, x } = t;
    b.map4k(pdpt, 0x0040_0000, 0x20_0000, P | W | U); // creates the PD
    const pdeGpa = b.entryAt(pdpt, 0x0060_0000, 2);
    b.write(pdeGpa, 0x0060_0000 | P | W | U | PS);
    expect(x.loadControlRegisters(controlsFor('pae', pdpt))).toBe(true);
    expect(x.write(0x0060_0000 + 0x5000, 4, 99)).toBe(true);
    expect(t.mem.read32(0x0060_5000, true)).toBe(99);
    const direct = shadowPages(t).filter((s) => s.direct);
    expect(direct.map((s) => [s.gfn, s.level])).toEqual([[0x600, 1]]);
    expect(checkInvariants(t.vm)).toEqual([]);
  });
});

describe('paging off', () => {
  it('maps gva = gpa through four direct level-2 pages under the PAE special root', () => {
    const t = makeVm();
    expect(t.x.write(0x0030_0000, 4, 5)).toBe(true);
    expect(t.x.write(0x00c0_0000, 4, 6)).toBe(true);
    expect(t.mem.read32(0x0030_0000, true)).toBe(5);
    expect(t.x.rootKind).toBe(ROOT_SPECIAL);
    const sps = shadowPages(t);
    expect(sps.filter((s) => s.level === 2 && s.direct).map((s) => s.gfn)).toEqual([0]);
    expect(
      sps
        .filter((s) => s.level === 1 && s.direct)
        .map((s) => s.gfn)
        .sort((a, c) => a - c),
    ).toEqual([0x200, 0xc00]);
    expect(checkInvariants(t.vm)).toEqual([]);
  });
});

describe('special shadow pages (the 2022 KVM special-root series)', () => {
  it('PAE root: no gfn, not hashed, not on the active list, not accounted, not write-protected', () => {
    const t = makeVm();
    const b = new TableBuilder(t.mem, 'bits32', 0x10_0000);
    const pd = b.root();
    b.map4k(pd, 0x0040_0000, 0x20_0000, P | W | U);
    b.map4k(pd, 0x7000_0000, pd, P | W); // guest maps its PD
    expect(t.x.loadControlRegisters(controlsFor('bits32', pd))).toBe(true);
    expect(t.x.read(0x0040_0000, 4)).toBe(true);
    const mmu = t.vm.mmu as X86ShadowMmu;
    const spt = mmu.pages.spt;
    const root = t.x.rootSp;
    expect(spt.flags[root]! & SP_SPECIAL).toBe(SP_SPECIAL);
    expect(spt.gfn[root]).toBe(0);
    expect(spt.flags[root]! & (SP_HASHED | SP_ON_ACTIVE_LIST)).toBe(0);
    let onList = false;
    for (let sp = spt.activeHead; sp !== 0; sp = spt.listNext[sp]!) if (sp === root) onList = true;
    expect(onList).toBe(false);
    // Not accounted: n_used counts only the ordinary pages (PD quarter 0 + PT).
    expect(t.vm.stats()['shadowPages']).toBe(2);
    expect(t.vm.stats()['specialShadowPages']).toBe(1);
    // gfn 0 (the special page's "gfn") is not write-protected: the guest writes it directly.
    b.map4k(pd, 0x7100_0000, 0, P | W);
    expect(t.x.write(0x7100_0000, 4, 1)).toBe(true);
    expect(t.vm.stats()['emulatedWrites']).toBe(0);
    expect(checkInvariants(t.vm)).toEqual([]);
  });

  it('is never cached as a previous root: a CR3 switch frees it directly', () => {
    const t = makeVm();
    const b = new TableBuilder(t.mem, 'bits32', 0x10_0000);
    const pdA = b.root();
    const pdB = b.root();
    b.map4k(pdA, 0x0040_0000, 0x20_0000, P | W | U);
    b.map4k(pdB, 0x0040_0000, 0x20_1000, P | W | U);
    expect(t.x.loadControlRegisters(controlsFor('bits32', pdA))).toBe(true);
    expect(t.x.read(0x0040_0000, 4)).toBe(true);
    const freedBefore = t.vm.stats()['specialPagesFreed'] ?? 0;
    expect(t.x.setCr3(pdB)).toBe(true);
    expect(Array.from(t.x.prevSp)).toEqual([0, 0, 0]);
    expect(t.vm.stats()['specialShadowPages']).toBe(0);
    expect(t.vm.stats()['rootsFreed']).toBeGreaterThan(freedBefore);
    // The ordinary level-2/level-1 pages of pdA stay cached (hashed, on the active list).
    expect(t.vm.stats()['shadowPages']).toBe(2);
    expect(t.x.read(0x0040_0000, 4)).toBe(true);
    expect(t.mem.get(0).frames[0x201]).toBeDefined();
    expect(checkInvariants(t.vm)).toEqual([]);
  });

  it('pml4 / pml5 special levels wrap the PAE page when the host root is 4 or 5 levels', () => {
    for (const hostRootLevel of [4, 5]) {
      const t = makeVm({ backendOptions: { hostRootLevel: hostRootLevel as 3 | 4 | 5 } });
      const b = new TableBuilder(t.mem, 'bits32', 0x10_0000);
      const pd = b.root();
      b.map4k(pd, 0x0040_0000, 0x20_0000, P | W | U);
      b.map4k(pd, 0xc040_0000, 0x20_1000, P | W | U);
      expect(t.x.loadControlRegisters(controlsFor('bits32', pd))).toBe(true);
      expect(t.x.write(0x0040_0000, 4, 1)).toBe(true);
      expect(t.x.write(0xc040_0000, 4, 2)).toBe(true);
      expect(t.x.rootKind).toBe(ROOT_SPECIAL);
      const specials = shadowPages(t)
        .filter((s) => s.special)
        .map((s) => s.level)
        .sort();
      expect(specials).toEqual(hostRootLevel === 4 ? [3, 4] : [3, 4, 5]);
      expect(t.x.rootLevel).toBe(hostRootLevel);
      expect(checkInvariants(t.vm)).toEqual([]);
      // Freeing walks down through entry 0 and frees every special page.
      t.x.freeRoots(1);
      expect(shadowPages(t).filter((s) => s.special)).toHaveLength(0);
      expect(t.vm.stats()['specialShadowPages']).toBe(0);
      expect(checkInvariants(t.vm)).toEqual([]);
    }
  });

  it('a 4-level guest under a 5-level host gets a passthrough root (ordinary, hashed)', () => {
    const t = makeVm({ backendOptions: { hostRootLevel: 5 } });
    const b = new TableBuilder(t.mem, 'long4', 0x10_0000);
    const pml4 = b.root();
    b.map4k(pml4, 0x40_0000, 0x20_0000, P | W | U);
    b.map4k(pml4, 0xffff_ffff_f000 * 0 + 0x7fff_ffff_f000, 0x20_1000, P | W | U);
    expect(t.x.loadControlRegisters(controlsFor('long4', pml4))).toBe(true);
    expect(t.x.write(0x40_0000, 4, 3)).toBe(true);
    expect(t.x.write(0x7fff_ffff_f000, 4, 4)).toBe(true);
    const mmu = t.vm.mmu as X86ShadowMmu;
    const spt = mmu.pages.spt;
    const root = t.x.rootSp;
    expect(spt.role[root]! & (1 << 18)).toBe(1 << 18);
    expect(spt.role[root]! & 0xf).toBe(5);
    expect(spt.gfn[root]).toBe(pml4 / 4096);
    expect(spt.flags[root]! & (SP_SPECIAL | SP_HASHED)).toBe(SP_HASHED);
    // Passthrough pages have no gptes: not counted as indirect.
    const sps = shadowPages(t);
    expect(sps.filter((s) => s.level === 4 && s.gfn === pml4 / 4096)).toHaveLength(1);
    expect(checkInvariants(t.vm)).toEqual([]);
    // PAE 4-byte flag never appears on 8-byte guests.
    expect(sps.every((s) => (spt.role[s.id]! & ROLE_HAS_4_BYTE_GPTE) === 0)).toBe(true);
  });

  it('is obsoleted by a fast zap, unlinked from its obsolete children, and freed or reused', () => {
    const t = makeVm();
    const b = new TableBuilder(t.mem, 'bits32', 0x10_0000);
    const pd = b.root();
    b.map4k(pd, 0x0040_0000, 0x20_0000, P | W | U);
    expect(t.x.loadControlRegisters(controlsFor('bits32', pd))).toBe(true);
    expect(t.x.read(0x0040_0000, 4)).toBe(true);
    const mmu = t.vm.mmu as X86ShadowMmu;
    const spt = mmu.pages.spt;
    const root = t.x.rootSp;
    // Fast zap: the special page is not zapped (not on the active list), but its children are,
    // which clears its entries through their parent pointers.
    mmu.pages.zapAllFast();
    expect(spt.isInUse(root)).toBe(true);
    for (let i = 0; i < 4; i++) expect(spt.sptLo[root * 512 + i]).toBe(0);
    expect(mmu.pages.isObsolete(root)).toBe(true);
    // A second obsoleting pass before the vCPU runs again: generation toggles back, the page is valid again…
    mmu.pages.zapAllFast();
    expect(mmu.pages.isObsolete(root)).toBe(false);
    // …and the vCPU keeps it when it next enters.
    expect(t.x.read(0x0040_0000, 4)).toBe(true);
    expect(t.x.rootSp).toBe(root);
    expect(checkInvariants(t.vm)).toEqual([]);
    // One pass followed by an entry frees it and builds a new one.
    mmu.pages.zapAllFast();
    const freed = t.vm.stats()['specialShadowPages'];
    expect(freed).toBe(1);
    expect(t.x.read(0x0040_0000, 4)).toBe(true);
    expect(mmu.pages.isObsolete(t.x.rootSp)).toBe(false);
    expect(checkInvariants(t.vm)).toEqual([]);
  });
});
