import { describe, expect, it } from 'vitest';
import { GuestPhysMemory, Hypervisor } from '@hvmmu/core';
import { L1PartitionWalk, L1WalkStatus, RadixTreeBuilder, ppcRadixBackend, type L1DoublewordReader } from '@hvmmu/ppc-radix';

/** L1 memory as a map of big-endian doublewords; addresses at or above `limit` are not L1 memory. */
class Words implements L1DoublewordReader {
  hi = 0;
  lo = 0;
  readonly words = new Map<number, [number, number]>();
  constructor(readonly limit = 0x100_0000) {}
  set(addr: number, hi: number, lo: number): this {
    this.words.set(addr, [hi >>> 0, lo >>> 0]);
    return this;
  }
  read64(gpa: number): boolean {
    if (gpa >= this.limit) return false;
    [this.hi, this.lo] = this.words.get(gpa) ?? [0, 0];
    return true;
  }
}

// Hand-assembled entries (POWER ISA v3.0 Book III 6.7.10): a PDE is V (bit 63) | NLB | NLS; a PTE is V | L | RPN | flags.
const ROOT = 0x10_0000; // 64 KiB root (NLS 13)
const PUD = 0x12_0000; // 4 KiB tables (NLS 9)
const PMD = 0x12_1000;
const PTE = 0x12_2000;
/** PATE dw0 for a 52-bit tree (RTS = 21: RTS1 0b10, RTS2 0b101) rooted at ROOT with NLS 13. */
const DW0_HI = 0x4000_0000;
const DW0_LO = ROOT | (0b101 << 5) | 13;
const pde = (table: number, nls: number): [number, number] => [0x8000_0000, table | nls];
const pte = (ra: number, flags: number): [number, number] => [0xc000_0000, ra | flags];

function fourLevel(leafLevelFlags = 0x7): Words {
  // L2 real 0x4000_1234: root index 0, PUD index 1 (1 GiB), PMD index 0, PTE index 1.
  return new Words()
    .set(ROOT, ...pde(PUD, 9))
    .set(PUD + 8, ...pde(PMD, 9))
    .set(PMD, ...pde(PTE, 9))
    .set(PTE + 8, ...pte(0x77_7000, leafLevelFlags | 0x100));
}

describe('L1PartitionWalk (kvmppc_mmu_walk_radix_tree over L1 memory)', () => {
  it('walks four levels to a 4K leaf and keeps the page offset', () => {
    const w = new L1PartitionWalk(fourLevel());
    expect(w.walk(DW0_HI, DW0_LO, 0, 0x4000_1234)).toBe(true);
    expect(w.shift).toBe(12);
    expect([w.raHi, w.raLo]).toEqual([0, 0x77_7234]);
    expect(w.leafLo & 0xfff).toBe(0x107);
    expect(w.reads).toBe(4);
  });

  it('pageWalkCache: a second walk in the same 2 MiB region of the same tree reads only the bottom entry, with the same result and faults; invalidatePageWalkCache drops it', () => {
    const m = fourLevel().set(PTE + 16, ...pte(0x55_5000, 0x103));
    const w = new L1PartitionWalk(m, { pageWalkCache: true });
    expect(w.walk(DW0_HI, DW0_LO, 0, 0x4000_1234)).toBe(true);
    expect(w.reads).toBe(4);
    expect(w.walk(DW0_HI, DW0_LO, 0, 0x4000_2010)).toBe(true);
    expect([w.reads, w.raLo, w.shift, w.leafLo & 0xfff]).toEqual([1, 0x55_5010, 12, 0x103]);
    // The bottom entry's own faults: an invalid entry, a directory where the leaf should be.
    expect(w.walk(DW0_HI, DW0_LO, 0, 0x4000_3000)).toBe(false);
    expect([w.status, w.reads]).toEqual([L1WalkStatus.NO_ENTRY, 1]);
    m.set(PTE + 24, ...pde(PTE, 9));
    expect(w.walk(DW0_HI, DW0_LO, 0, 0x4000_3000)).toBe(false);
    expect([w.status, w.reads]).toEqual([L1WalkStatus.BAD_TREE, 1]);
    // Another region, or another tree: walked in full.
    expect(w.walk(DW0_HI, DW0_LO, 0, 0x4020_0000)).toBe(false);
    expect([w.status, w.reads]).toEqual([L1WalkStatus.NO_ENTRY, 3]);
    expect(w.walk(DW0_HI, DW0_LO + 0x1_0000, 0, 0x4000_1234)).toBe(false);
    expect([w.status, w.reads]).toEqual([L1WalkStatus.NO_ENTRY, 1]);
    // L1 turns the PMD entry into a 2M leaf: seen once the cache is dropped (H_TLB_INVALIDATE).
    m.set(PMD, ...pte(0x60_0000, 7));
    expect(w.walk(DW0_HI, DW0_LO, 0, 0x4000_1234)).toBe(true);
    expect(w.raLo).toBe(0x77_7234);
    w.invalidatePageWalkCache();
    expect(w.walk(DW0_HI, DW0_LO, 0, 0x4000_1234)).toBe(true);
    expect([w.reads, w.shift, w.raLo]).toEqual([3, 21, 0x60_1234]);
    // Without the option every walk is read in full.
    const plain = new L1PartitionWalk(fourLevel());
    for (let i = 0; i < 2; i++) {
      expect(plain.walk(DW0_HI, DW0_LO, 0, 0x4000_1234)).toBe(true);
      expect(plain.reads).toBe(4);
    }
  });

  it('a 2M leaf at the PMD and a 1G leaf at the PUD take the low address bits from the L2 address', () => {
    const m = new Words()
      .set(ROOT, ...pde(PUD, 9))
      .set(PUD + 8, ...pde(PMD, 9))
      .set(PMD + 8, ...pte(0x60_0000, 7));
    const w = new L1PartitionWalk(m);
    expect(w.walk(DW0_HI, DW0_LO, 0, 0x402a_bcde)).toBe(true);
    expect(w.shift).toBe(21);
    expect(w.raLo).toBe(0x60_0000 + 0x0a_bcde);
    m.set(PUD + 8, ...pte(0x8000_0000, 7));
    expect(w.walk(DW0_HI, DW0_LO, 0, 0x4123_4567)).toBe(true);
    expect(w.shift).toBe(30);
    expect([w.raHi, w.raLo]).toEqual([0, 0x8123_4567]);
  });

  it('refuses what KVM refuses: a tree that is not 52 bits, NLS other than 13/9/9/(9|5), a misaligned table, a leaf in the root, a directory at the bottom', () => {
    const w = new L1PartitionWalk(fourLevel());
    expect(w.walk(DW0_HI, (DW0_LO & ~0xe0) | (0b100 << 5), 0, 0x4000_1234)).toBe(false);
    expect(w.status).toBe(L1WalkStatus.BAD_TREE);
    expect(w.walk(DW0_HI, (DW0_LO & ~0x1f) | 12, 0, 0x4000_1234)).toBe(false);
    expect(w.status).toBe(L1WalkStatus.BAD_TREE);
    const m = fourLevel().set(PUD + 8, ...pde(PMD, 8));
    expect(new L1PartitionWalk(m).walk(DW0_HI, DW0_LO, 0, 0x4000_1234)).toBe(false);
    const mis = fourLevel().set(PUD + 8, ...pde(PMD + 0x800, 9));
    const wm = new L1PartitionWalk(mis);
    expect(wm.walk(DW0_HI, DW0_LO, 0, 0x4000_1234)).toBe(false);
    expect(wm.status).toBe(L1WalkStatus.BAD_TREE);
    const rootLeaf = new Words().set(ROOT, ...pte(0, 7));
    const wr = new L1PartitionWalk(rootLeaf);
    expect(wr.walk(DW0_HI, DW0_LO, 0, 0x1000)).toBe(false);
    expect(wr.status).toBe(L1WalkStatus.BAD_TREE);
    const bottomDir = fourLevel().set(PTE + 8, ...pde(0x13_0000, 9));
    const wb = new L1PartitionWalk(bottomDir);
    expect(wb.walk(DW0_HI, DW0_LO, 0, 0x4000_1234)).toBe(false);
    expect(wb.status).toBe(L1WalkStatus.BAD_TREE);
    // A loop (the PMD entry points at the PUD) is bounded: four reads at most, then refused.
    const loop = fourLevel()
      .set(PMD, ...pde(PUD, 9))
      .set(PUD + 8, ...pde(PMD, 9));
    const wl = new L1PartitionWalk(loop);
    expect(wl.walk(DW0_HI, DW0_LO, 0, 0x4000_1234)).toBe(false);
    expect(wl.reads).toBeLessThanOrEqual(4);
  });

  it('an invalid entry is NO_ENTRY; a table outside L1 memory is BAD_ADDRESS naming the entry', () => {
    const m = fourLevel();
    m.words.delete(PTE + 8);
    const w = new L1PartitionWalk(m);
    expect(w.walk(DW0_HI, DW0_LO, 0, 0x4000_1234)).toBe(false);
    expect(w.status).toBe(L1WalkStatus.NO_ENTRY);
    const far = fourLevel().set(PMD, ...pde(0x200_0000, 9));
    const wf = new L1PartitionWalk(far);
    expect(wf.walk(DW0_HI, DW0_LO, 0, 0x4000_1234)).toBe(false);
    expect(wf.status).toBe(L1WalkStatus.BAD_ADDRESS);
    expect(wf.entryAddr).toBe(0x200_0008);
  });

  it("over a VM's memslots (the nested HV's reader): the same walk, and a moved or deleted slot is seen at once, never its old frames", () => {
    const hv = new Hypervisor({ memoryBytes: 16 << 20 });
    const vm = hv.createVm({ backend: ppcRadixBackend });
    vm.memslots.create({ id: 0, guestPhysAddr: 0, size: 4 << 20 });
    const builder = new RadixTreeBuilder(vm.memslots, 1 << 20, 1 << 20);
    const tree = builder.createTree('4k');
    tree.map(0x4000_1000, 0x77_7000, 12, { read: true, write: true });
    const [dw0Hi, dw0Lo] = tree.rootEntry();
    const w = new L1PartitionWalk(new GuestPhysMemory(vm.memslots));
    for (let i = 0; i < 2; i++) {
      expect(w.walk(dw0Hi, dw0Lo, 0, 0x4000_1234)).toBe(true);
      expect([w.raHi, w.raLo, w.shift, w.reads]).toEqual([0, 0x77_7234, 12, 4]);
    }
    // An entry of a page L1 never wrote (the shared zero frame): invalid, as the reader reads it.
    expect(w.walk(dw0Hi, dw0Lo, 0, 0x8000_0000)).toBe(false);
    expect(w.status).toBe(L1WalkStatus.NO_ENTRY);
    // The slot moves to 8 MiB: the tables are no longer at the addresses the root names.
    vm.memslots.move(0, 8 << 20);
    expect(w.walk(dw0Hi, dw0Lo, 0, 0x4000_1234)).toBe(false);
    expect([w.status, w.entryAddr]).toEqual([L1WalkStatus.BAD_ADDRESS, (dw0Lo & 0xffff_ff00) + 0]);
    // Moved back, the same walk; deleted, no L1 memory at all.
    vm.memslots.move(0, 0);
    expect(w.walk(dw0Hi, dw0Lo, 0, 0x4000_1234)).toBe(true);
    expect(w.raLo).toBe(0x77_7234);
    vm.memslots.delete(0);
    expect(w.walk(dw0Hi, dw0Lo, 0, 0x4000_1234)).toBe(false);
    expect(w.status).toBe(L1WalkStatus.BAD_ADDRESS);
  });
});
