import { describe, expect, it } from 'vitest';
import { ROLE_HAS_4_BYTE_GPTE, ROOT_NORMAL, X86ShadowMmu, childRole, mmuHash, roleQuadrant } from '@hvmmu/x86-shadow/internal';
import { A, D, NX_HI, P, TableBuilder, U, W, controlsFor, makeVm } from './helpers/guest.js';

/*
 * Expected values are computed by hand from the KVM layouts:
 * role (kvm_host.h): level 0-3, has_4_byte_gpte 4, quadrant 5-6, direct 7,
 * access 8-10, invalid 11, efer_nx 12, cr0_wp 13, smep_andnot_wp 14,
 * smap_andnot_wp 15, passthrough 18.
 * spte (spte.h): P 0, W 1, U 2, A 5, D 6, host-writable 9, MMU-writable 10,
 * MMU-present 11, pfn 12+, NX 63.
 */

describe('role words (kvm_host.h, union kvm_mmu_page_role)', () => {
  it('CPU and root roles of each paging mode', () => {
    const t = makeVm();
    const b = new TableBuilder(t.mem, 'long4', 0x10_0000);
    const root = b.root();
    // Paging off: cpu role = direct | ACC_ALL = 0x780; root = that | level 3 | efer_nx = 0x1783.
    expect(t.x.cpuRole).toBe(0x780);
    expect(t.x.rootRole).toBe(0x1783);
    // 4-level, WP, NXE: 4 | 0x700 | nx 0x1000 | wp 0x2000.
    expect(t.x.loadControlRegisters(controlsFor('long4', root))).toBe(true);
    expect(t.x.cpuRole).toBe(0x3704);
    expect(t.x.rootRole).toBe(0x3704);
    // PAE: level 3.
    b.write(root, 0); // no present PDPTE: loading never fails
    expect(t.x.loadControlRegisters(controlsFor('pae', root))).toBe(true);
    expect(t.x.cpuRole).toBe(0x3703);
    expect(t.x.rootRole).toBe(0x3703);
    // 32-bit, WP, no NXE: 2 | 4-byte 0x10 | 0x700 | wp; root: level 3 and efer_nx forced.
    expect(t.x.loadControlRegisters(controlsFor('bits32', root))).toBe(true);
    expect(t.x.cpuRole).toBe(0x2712);
    expect(t.x.rootRole).toBe(0x3713);
    // WP=0 with SMEP and SMAP: smep_andnot_wp 0x4000 and smap_andnot_wp 0x8000, no cr0_wp.
    expect(t.x.loadControlRegisters({ cr0: 0x8000_0001, cr3: root, cr4: 0x20 | (1 << 20) | (1 << 21), efer: 0x800 | 0x100 })).toBe(true);
    expect(t.x.cpuRole).toBe(0xd704);
  });

  it("child roles: quadrants of a 32-bit guest's shadows", () => {
    const pd = 2 | ROLE_HAS_4_BYTE_GPTE | (7 << 8);
    // A 4-byte PT (4 MiB) is shadowed by two PAE PTs: quadrant = PDE index & 1 (VA bit 21).
    expect(roleQuadrant(childRole(pd, 6, false, 7))).toBe(0);
    expect(roleQuadrant(childRole(pd, 7, false, 7))).toBe(1);
    // The PAE root's four entries get the four PD quarters.
    const pae = 3 | ROLE_HAS_4_BYTE_GPTE | (7 << 8);
    expect([0, 1, 2, 3].map((i) => roleQuadrant(childRole(pae, i, false, 7)))).toEqual([0, 1, 2, 3]);
    // 8-byte guests never use quadrants.
    expect(roleQuadrant(childRole(2 | (7 << 8), 7, false, 7))).toBe(0);
    // The child gets level - 1, the given access and direct flag; passthrough never propagates.
    expect(childRole(5 | (1 << 18) | (7 << 8), 0, false, 5)).toBe(4 | (5 << 8));
    expect(childRole(2 | (7 << 8) | 0x3000, 3, true, 3)).toBe(1 | 0x80 | (3 << 8) | 0x3000);
  });

  it('gfn hash is hash_64(gfn, 12)', () => {
    // GOLDEN_RATIO_64 = 0x61C8864680B583EB; top 12 bits of gfn × it mod 2^64.
    expect(mmuHash(0)).toBe(0);
    expect(mmuHash(1)).toBe(0x61c);
    // 2 × 0x61C8864680B583EB = 0xC3910C8D016B07D6 → 0xc39.
    expect(mmuHash(2)).toBe(0xc39);
    // 3 × … = 0x1_2559_92D3_8220_8BC1 mod 2^64 → 0x255.
    expect(mmuHash(3)).toBe(0x255);
  });
});

describe('leaf sptes (spte.c, make_spte)', () => {
  function spteFor(va: number, lo: number, hi: number, access: 'read' | 'write') {
    const t = makeVm();
    const b = new TableBuilder(t.mem, 'long4', 0x10_0000);
    const pml4 = b.root();
    b.map4k(pml4, va, 0x20_0000, lo, hi);
    t.mem.write32(0x20_0000, 1, true); // give gfn 0x200 a private host frame
    expect(t.x.loadControlRegisters(controlsFor('long4', pml4))).toBe(true);
    expect(access === 'read' ? t.x.read(va, 4) : t.x.write(va, 4, 5)).toBe(true);
    const mmu = t.vm.mmu as X86ShadowMmu;
    const e = mmu.findLeaf(t.x, va / 4096);
    const hfn = t.mem.get(0).frames[0x200]!;
    expect(t.x.rootKind).toBe(ROOT_NORMAL);
    return { lo: mmu.pages.spt.sptLo[e]!, hi: mmu.pages.spt.sptHi[e]!, hfn };
  }

  it('writable user page after a write: P W U A D host-W MMU-W MMU-present', () => {
    const s = spteFor(0x40_0000, P | W | U, 0, 'write');
    expect(s.lo).toBe(((s.hfn << 12) | 0x1 | 0x2 | 0x4 | 0x20 | 0x40 | 0x200 | 0x400 | 0x800) >>> 0);
    expect(s.hi).toBe(0);
  });

  it('a clean guest leaf is mapped read-only on a read, keeping MMU-writable (protect_clean_gpte)', () => {
    const s = spteFor(0x40_0000, P | W | U, 0, 'read');
    // D=0 in the gpte: ACC_WRITE is dropped, so no W, no MMU-W; host-writable stays.
    expect(s.lo).toBe(((s.hfn << 12) | 0x1 | 0x4 | 0x20 | 0x200 | 0x800) >>> 0);
  });

  it('dirty writable gpte read: writable spte at once', () => {
    const s = spteFor(0x40_0000, P | W | U | A | D, 0, 'read');
    expect(s.lo & 0x7ff).toBe(0x1 | 0x2 | 0x4 | 0x20 | 0x40 | 0x200 | 0x400);
  });

  it('NX gpte: bit 63; supervisor page: no U', () => {
    const s = spteFor(0x40_0000, P | W, NX_HI, 'write');
    expect(s.hi).toBe(0x8000_0000);
    expect(s.lo & 0x4).toBe(0);
  });

  it('a read of a never-written page maps the shared zero frame without host-writable', () => {
    const t = makeVm();
    const b = new TableBuilder(t.mem, 'long4', 0x10_0000);
    const pml4 = b.root();
    b.map4k(pml4, 0x40_0000, 0x30_0000, P | W | U | A | D);
    expect(t.x.loadControlRegisters(controlsFor('long4', pml4))).toBe(true);
    expect(t.x.read(0x40_0000, 4)).toBe(true);
    const mmu = t.vm.mmu as X86ShadowMmu;
    let e = mmu.findLeaf(t.x, 0x400);
    const lo = mmu.pages.spt.sptLo[e]!;
    expect(lo >>> 12).toBe(t.mem.host.zeroFrame);
    expect(lo & 0x602).toBe(0); // no W, no host-W, no MMU-W
    // The first write copies on write: the notifier zaps the zero mapping, the retried fault maps a private frame.
    expect(t.x.write(0x40_0000, 4, 0xabc)).toBe(true);
    e = mmu.findLeaf(t.x, 0x400);
    expect(mmu.pages.spt.sptLo[e]! >>> 12).toBe(t.mem.get(0).frames[0x300]);
    expect(t.mem.read32(0x30_0000, true)).toBe(0xabc);
    expect(t.vm.stats()['invalidationRetries']).toBeGreaterThanOrEqual(1);
  });
});
