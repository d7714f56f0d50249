import { describe, expect, it } from 'vitest';
import { HostMemory } from '@hvmmu/core';
import { HostRealSpace, PartitionScopedTree, RadixAccess, RadixRegisters, RadixTranslation, RadixWalker, enumerateRadixTree } from '@hvmmu/ppc-radix';

/** A tree for LPID 1 over a 4 MiB host: the windows start at 4 MiB (partition table) and 4 MiB + 64 KiB (root). */
function tree(): { host: HostMemory; tree: PartitionScopedTree } {
  const host = new HostMemory({ bytes: 4 << 20 });
  return { host, tree: new PartitionScopedTree(new HostRealSpace(host), 1) };
}

describe('PartitionScopedTree (L0 partition-scoped table, POWER ISA v3.0 entries)', () => {
  it('names its partition table in PTCR (PATB 4 MiB, PATS 4) and writes the PATE as kvmppc_setup_partition_table', () => {
    const { host, tree: t } = tree();
    expect(t.ptcr()).toEqual([0, 0x0040_0004]);
    expect(t.ready).toBe(false);
    expect(t.ensureReady()).toBe(true);
    t.setProcessTable(0, 0x0001_0000);
    // dw0: HR | RTS 52 (0b10 << 61, 0b101 << 5) | RPDB 0x410000 | RPDS 13; dw1: GR | PRTB 0x10000 | PRTS 0.
    expect(t.pate()).toEqual([0xc000_0000, 0x0041_00ad, 0x8000_0000, 0x0001_0000]);
    const off = t.space.resolve(0x40_0000 + 16, false);
    expect([host.view.getUint32(off), host.view.getUint32(off + 4), host.view.getUint32(off + 8), host.view.getUint32(off + 12)]).toEqual([
      0xc000_0000, 0x0041_00ad, 0x8000_0000, 0x0001_0000,
    ]);
    // Only the partition table's first 4 KiB is backed.
    expect(t.space.windowFrames).toBe(1);
    expect(t.space.resolve(0x40_1000, false)).toBe(-1);
  });

  it('inserts a 4 KiB leaf with its directories (V | NLB | NLS 9) and the leaf word V | L | RPN | flags', () => {
    const { host, tree: t } = tree();
    t.ensureReady();
    const framesBefore = host.framesInUse;
    const gfn = 0x4_0000_0123; // gpa 0x4000_0012_3000: root index 128 (bits 51..39), PUD 0, PMD 0, PTE 0x123
    const off = t.insert(gfn, 0x345, 0x187);
    // The root's window chunk and three tables.
    expect(host.framesInUse - framesBefore).toBe(4);
    expect(t.tablePages).toBe(3);
    expect(t.leaves).toBe(1);
    expect([t.hiAt(off), t.loAt(off)]).toEqual([0xc000_0000, 0x0034_5187]);
    expect(t.pteOffset(gfn)).toBe(off);
    expect(t.isLeaf(off)).toBe(true);
    expect(t.hfnAt(off)).toBe(0x345);
    const rootOff = t.space.resolve(0x41_0000 + 128 * 8, false);
    expect(host.view.getUint32(rootOff) >>> 0).toBe(0x8000_0000);
    expect(host.view.getUint32(rootOff + 4) & 0x1f).toBe(9);
    // A second leaf in the same PTE table allocates nothing.
    const more = host.framesInUse;
    t.insert(gfn + 1, 0x346, 0x105);
    expect(host.framesInUse).toBe(more);
    expect(t.leaves).toBe(2);
    expect(t.pteOffset(gfn + 512)).toBe(-1);
  });

  it('refuses an insert the host cannot back whole, changing nothing', () => {
    const host = new HostMemory({ bytes: 8 * 4096 });
    const t = new PartitionScopedTree(new HostRealSpace(host), 1);
    expect(t.ensureReady()).toBe(true);
    while (host.framesFree > 3) host.allocFrame();
    expect(t.insert(5, 1, 0x105)).toBe(-1);
    expect(host.framesFree).toBe(3);
    expect(t.tablePages).toBe(0);
    expect(t.pteOffset(5)).toBe(-1);
  });

  it('is walked unchanged by RadixWalker (the partition-scoped step of a guest real-mode access) and listed by enumerateRadixTree', () => {
    const { tree: t } = tree();
    t.ensureReady();
    t.insert(0x80, 0x200, 0x105); // R | read | exec, no RW
    const regs = new RadixRegisters();
    regs.hv = false;
    regs.lpidr = 1;
    [regs.ptcrHi, regs.ptcrLo] = t.ptcr();
    regs.ir = false;
    regs.dr = false;
    const walker = new RadixWalker(t.space);
    const out = new RadixTranslation();
    expect(walker.translate(regs, 0, 0x8_0123, RadixAccess.LOAD, out)).toBe(true);
    expect(out.ra).toBe(0x20_0123);
    expect(out.pageShift).toBe(12);
    // PATE (2 reads) + a 4-level partition-scoped walk.
    expect(out.refs).toBe(6);
    // A store: the leaf has no RW → HDSI PROTFAULT | STORE with ASDR = the gpa.
    expect(walker.translate(regs, 0, 0x8_0123, RadixAccess.STORE, out)).toBe(false);
    expect(out.vector).toBe(0xe00);
    expect(out.cause >>> 0).toBe(0x0a00_0000);
    expect(out.asdrLo).toBe(0x8_0123);
    const [dw0Hi, dw0Lo] = t.pate();
    const listing = enumerateRadixTree(t.space, dw0Hi & 0x7fff_ffff, dw0Lo);
    expect(listing.leaves.map((l) => [l.address, l.ra, l.pageShift, l.supervisorProt])).toEqual([[0x8_0000n, 0x20_0000n, 12, 5]]);
  });

  it('clears, updates and frees: free returns every frame, the windows included', () => {
    const { host, tree: t } = tree();
    const base = host.framesInUse;
    t.ensureReady();
    const a = t.insert(1, 0x10, 0x187);
    t.insert(2 ** 27 + 7, 0x11, 0x187); // root index 1: same window chunk, new tables
    expect(t.updateLo(a, 0x100, 0)).toBe(0x0001_0187);
    expect(t.loAt(a)).toBe(0x0001_0087);
    expect(t.clear(a)).toBe(0x0001_0087);
    expect(t.isLeaf(a)).toBe(false);
    expect(t.leaves).toBe(1);
    const seen: number[] = [];
    t.forEachLeaf((gfn) => seen.push(gfn));
    expect(seen).toEqual([2 ** 27 + 7]);
    t.free();
    expect(host.framesInUse).toBe(base);
    expect(t.ready).toBe(false);
    expect(t.leaves).toBe(0);
  });

  it('shares one space and one partition table between trees (L1 at LPID 1, a shadow tree at LPID 2), each with its own root window', () => {
    const { host, tree: l1 } = tree();
    const base = host.framesInUse;
    const shadow = new PartitionScopedTree(l1.space, 2);
    expect(shadow.rootDirectoryBase).toBe(0x42_0000);
    l1.ensureReady();
    shadow.ensureReady();
    l1.insert(1, 0x10, 0x187);
    shadow.insert(1, 0x20, 0x105);
    expect(l1.hfnAt(l1.pteOffset(1))).toBe(0x10);
    expect(shadow.hfnAt(shadow.pteOffset(1))).toBe(0x20);
    // Both entries in the one partition-table page: PATE[2].dw0 names the shadow root.
    const pate2 = l1.space.resolve(0x40_0000 + 32, false);
    expect(host.view.getUint32(pate2 + 4)).toBe(0x0042_00ad);
    shadow.release();
    expect(l1.ready).toBe(true);
    expect(host.view.getUint32(l1.space.resolve(0x40_0000 + 16, false))).toBe(0xc000_0000);
    expect(host.view.getUint32(pate2)).toBe(0);
    l1.free();
    expect(host.framesInUse).toBe(base);
    expect(new PartitionScopedTree(l1.space, 3).rootDirectoryBase).toBe(0x42_0000);
    expect(() => new PartitionScopedTree(l1.space, 0)).toThrow(/LPID/);
  });
});
