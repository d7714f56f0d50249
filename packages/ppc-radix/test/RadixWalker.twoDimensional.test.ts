import { describe, expect, it } from 'vitest';
import { FlatGuestMemory, type GuestMemory } from '@hvmmu/core';
import { Dsisr, RadixAccess, RadixRegisters, RadixTranslation, RadixTreeBuilder, RadixVector, RadixWalker } from '@hvmmu/ppc-radix';

const MiB = 1 << 20;
const GUEST_BASE = 16 * MiB; // guest real 0 is host real 16 MiB
const SHIFT_64K = 16;
const SHIFT_2M = 21;

/** The guest's own view of its memory: guest real address = host address - GUEST_BASE. */
class GuestRealView implements GuestMemory {
  constructor(private readonly host: FlatGuestMemory) {}
  get view(): DataView {
    return this.host.view;
  }
  resolve(gpa: number, write: boolean): number {
    return gpa >= 0 && gpa < 16 * MiB ? this.host.resolve(gpa + GUEST_BASE, write) : -1;
  }
}

/**
 * A 2-D setup: L0's partition table (PTCR) in host memory, one guest with
 * LPID 1 whose partition-scoped tree maps guest real [0, 16 MiB) to host
 * real [16 MiB, 32 MiB) with 64K pages, except the 64K page at guest real
 * 0x70_0000 (left unmapped) and 0x60_0000 (read-only). The guest's process
 * table and trees are in its own memory (guest real addresses).
 */
function setup() {
  const hostBuffer = new ArrayBuffer(32 * MiB);
  const host = new FlatGuestMemory(hostBuffer);
  const l0 = new RadixTreeBuilder(host, 1 * MiB, 8 * MiB);
  const partitionTable = l0.createProcessTable(0); // a partition table has the same shape: 16-byte entries
  const partitionTree = l0.createTree('64k');
  for (let g = 0; g < 16 * MiB; g += 1 << SHIFT_64K) {
    if (g === 0x70_0000) continue;
    partitionTree.map(g, g + GUEST_BASE, SHIFT_64K, { read: true, write: g !== 0x60_0000, execute: true });
  }
  const guest = new RadixTreeBuilder(new GuestRealView(host), 8 * MiB, 4 * MiB);
  const processTable = guest.createProcessTable(0);
  const userTree = guest.createTree('64k');
  processTable.setProcess(3, userTree);
  partitionTable.setPartition(1, partitionTree, processTable.pointer());
  const regs = new RadixRegisters();
  const [ptcrHi, ptcrLo] = partitionTable.pointer();
  regs.ptcrHi = ptcrHi;
  regs.ptcrLo = ptcrLo;
  regs.lpidr = 1;
  regs.pidr = 3;
  return { host, l0, guest, partitionTree, userTree, processTable, regs, walker: new RadixWalker(host), out: new RadixTranslation() };
}

describe('radix 2-D translation (guest under a radix hypervisor)', () => {
  it('translates EA → guest real → host real; every table read goes through the partition tree (31 reads with 64K pages)', () => {
    const { userTree, regs, walker, out } = setup();
    userTree.map(0x1000_0000, 0x40_0000, SHIFT_64K, { read: true, write: true });
    expect(walker.translate(regs, 0, 0x1000_1234, RadixAccess.STORE, out)).toBe(true);
    expect([out.guestRaHi, out.guestRaLo]).toEqual([0, 0x40_1234]);
    expect(out.ra).toBe(GUEST_BASE + 0x40_1234);
    expect(out.pageShift).toBe(16);
    // the partition-table entry (2 doublewords); the process-table entry: 4 partition reads + 1;
    // four process levels: 4 + 1 each; the final address: 4
    expect(out.refs).toBe(2 + 5 + 4 * 5 + 4);
  });

  it('the page size is the smaller of the two scopes; the access the AND of both', () => {
    const { userTree, regs, walker, out } = setup();
    userTree.map(0x2000_0000, 0x20_0000, SHIFT_2M, { read: true, write: true, execute: true });
    expect(walker.translate(regs, 0, 0x2000_0000 + 0x5_4321, RadixAccess.LOAD, out)).toBe(true);
    expect(out.ra).toBe(GUEST_BASE + 0x25_4321);
    expect(out.pageShift).toBe(16); // 2M process page over 64K partition pages
    expect(out.prot).toBe(7);
    userTree.map(0x3000_0000, 0x60_0000, SHIFT_64K, { read: true, write: true }); // over the read-only partition page
    expect(walker.translate(regs, 0, 0x3000_0010, RadixAccess.LOAD, out)).toBe(true);
    expect(out.prot).toBe(1);
    expect(walker.translate(regs, 0, 0x3000_0010, RadixAccess.STORE, out)).toBe(false);
    expect([out.vector, out.cause, out.darLo, out.asdrHi, out.asdrLo]).toEqual([RadixVector.HDSI, Dsisr.PROTFAULT | Dsisr.STORE, 0x3000_0010, 0, 0x60_0010]);
    expect(out.toHypervisor).toBe(true);
  });

  it('a guest real address the partition tree does not map: HDSI (store bit, HDAR, ASDR) or HISI for a fetch', () => {
    const { userTree, regs, walker, out } = setup();
    userTree.map(0x1000_0000, 0x70_0000, SHIFT_64K, { read: true, write: true, execute: true });
    expect(walker.translate(regs, 0, 0x1000_0abc, RadixAccess.STORE, out)).toBe(false);
    expect([out.vector, out.cause, out.darHi, out.darLo, out.asdrLo]).toEqual([RadixVector.HDSI, Dsisr.NOPTE | Dsisr.STORE, 0, 0x1000_0abc, 0x70_0abc]);
    expect(walker.translate(regs, 0, 0x1000_0abc, RadixAccess.FETCH, out)).toBe(false);
    expect([out.vector, out.cause, out.asdrLo]).toEqual([RadixVector.HISI, Dsisr.NOPTE, 0x70_0abc]);
  });

  it('a process-scoped table in unmapped guest memory: HDSI with PRTABLE_FAULT and the entry address in ASDR, reported as a load', () => {
    const { userTree, regs, walker, out } = setup();
    userTree.map(0x1000_0000, 0x40_0000, SHIFT_64K, { read: true });
    // Point PID 3's process-table entry at a root in guest real 0x70_0000, which the partition tree leaves unmapped.
    const view = walker.memory.view;
    const prte = GUEST_BASE + 8 * MiB + 3 * 16; // the process table is the guest arena's first block
    view.setUint32(prte + 4, (0x70_0000 | 0xa0 | 13) >>> 0, false);
    // root index of in-tree address 0x1000_0000 is 0: the entry is at the root's base
    for (const access of [RadixAccess.LOAD, RadixAccess.STORE, RadixAccess.FETCH]) {
      expect(walker.translate(regs, 0, 0x1000_0000, access, out)).toBe(false);
      expect([out.vector, out.cause, out.darLo, out.asdrLo]).toEqual([RadixVector.HDSI, Dsisr.NOPTE | Dsisr.PRTABLE_FAULT, 0x1000_0000, 0x70_0000]);
    }
  });

  it('partition-table checks: LPID 0 outside hypervisor state, an LPID past the table, a PATE without HR — HDSI BADCONFIG with ASDR = EA', () => {
    const { regs, walker, out } = setup();
    regs.lpidr = 0;
    expect(walker.translate(regs, 0, 0x1000_0000, RadixAccess.LOAD, out)).toBe(false);
    expect([out.vector, out.cause, out.asdrLo]).toEqual([RadixVector.HDSI, Dsisr.BADCONFIG, 0x1000_0000]);
    regs.lpidr = 256; // PATS 0: 256 entries
    expect(walker.translate(regs, 0, 0x1000_0000, RadixAccess.LOAD, out)).toBe(false);
    expect(out.cause).toBe(Dsisr.BADCONFIG);
    regs.lpidr = 2; // an empty entry
    expect(walker.translate(regs, 0, 0x1000_0000, RadixAccess.FETCH, out)).toBe(false);
    expect([out.vector, out.cause]).toEqual([RadixVector.HISI, Dsisr.BADCONFIG]);
  });

  it("partition-scoped R/C: a missing R is HDSI ATOMIC_RC for a guest (KVM's SET_RC), set in memory under the update policy", () => {
    const { partitionTree, userTree, regs, walker, out } = setup();
    userTree.map(0x1000_0000, 0x40_0000, SHIFT_64K, { read: true, write: true });
    partitionTree.updateLeaf(0x40_0000, 0, 0x100);
    expect(walker.translate(regs, 0, 0x1000_0000, RadixAccess.LOAD, out)).toBe(false);
    expect([out.vector, out.cause, out.asdrLo]).toEqual([RadixVector.HDSI, Dsisr.ATOMIC_RC, 0x40_0000]);
    const updating = new RadixWalker(walker.memory, { rc: 'update' });
    expect(updating.translate(regs, 0, 0x1000_0000, RadixAccess.LOAD, out)).toBe(true);
    expect(walker.translate(regs, 0, 0x1000_0000, RadixAccess.LOAD, out)).toBe(true);
  });

  it('hypervisor quadrants: 1 is (LPIDR, PIDR) and 2 is (LPIDR, 0), both 2-D; 0 and 3 are the hypervisor’s own', () => {
    const { processTable, guest, userTree, regs, walker, out } = setup();
    userTree.map(0x1000_0000, 0x40_0000, SHIFT_64K, { read: true });
    const kernelTree = guest.createTree('64k');
    kernelTree.map(0x1000_0000, 0x50_0000, SHIFT_64K, { read: true });
    processTable.setProcess(0, kernelTree);
    regs.hv = true;
    expect(walker.translate(regs, 0x4000_0000, 0x1000_0008, RadixAccess.LOAD, out)).toBe(true);
    expect(out.ra).toBe(GUEST_BASE + 0x40_0008);
    expect(walker.translate(regs, 0x8000_0000, 0x1000_0008, RadixAccess.LOAD, out)).toBe(true);
    expect(out.ra).toBe(GUEST_BASE + 0x50_0008);
    // Quadrant 3 in hypervisor state is LPID 0, whose partition-table entry is empty here.
    expect(walker.translate(regs, 0xc000_0000, 0x1000_0008, RadixAccess.LOAD, out)).toBe(false);
    expect(out.vector).toBe(RadixVector.HDSI);
  });

  it('table caches (cacheTableEntries): a warm walk reads 24 entries; a changed table entry is seen only after invalidateTableCaches, as after tlbie RIC=2', () => {
    const { host, userTree, regs, out } = setup();
    userTree.map(0x1000_0000, 0x40_0000, SHIFT_64K, { read: true });
    const walker = new RadixWalker(host, { cacheTableEntries: true });
    expect(walker.translate(regs, 0, 0x1000_0000, RadixAccess.LOAD, out)).toBe(true);
    expect(out.refs).toBe(31);
    expect(walker.translate(regs, 0, 0x1000_0000, RadixAccess.LOAD, out)).toBe(true);
    expect(out.refs).toBe(4 * 5 + 4); // four process levels 2-D, then the final address
    // The guest zeroes PID 3's process-table entry: cached, the old tree still answers.
    const prte = GUEST_BASE + 8 * MiB + 3 * 16;
    host.view.setUint32(prte, 0);
    host.view.setUint32(prte + 4, 0);
    expect(walker.translate(regs, 0, 0x1000_0000, RadixAccess.LOAD, out)).toBe(true);
    walker.invalidateTableCaches();
    expect(walker.translate(regs, 0, 0x1000_0000, RadixAccess.LOAD, out)).toBe(false);
    expect([out.vector, out.cause]).toEqual([RadixVector.DSI, Dsisr.BADCONFIG]);
  });

  it('page walk cache (pageWalkCache): a partition-scoped walk reads only the bottom entry of a cached 2 MiB region; a table the hypervisor replaces is seen after it bumps tableEpoch or invalidates (tlbie RIC=1)', () => {
    const { partitionTree, regs, out, host } = setup();
    regs.ir = false;
    regs.dr = false;
    const epoch = { tableEpoch: 0 };
    const walker = new RadixWalker(host, { pageWalkCache: epoch });
    const plain = new RadixWalker(host);
    // Guest real 0x40_1234: four levels (64K geometry 13/9/9/5), the PATE 2.
    expect(walker.translate(regs, 0, 0x40_1234, RadixAccess.LOAD, out)).toBe(true);
    expect([out.ra, out.refs]).toEqual([GUEST_BASE + 0x40_1234, 2 + 4]);
    // Warm: the region's bottom table is cached; a neighbour page there (0x41_0000) too.
    expect(walker.translate(regs, 0, 0x41_0010, RadixAccess.STORE, out)).toBe(true);
    expect([out.ra, out.refs]).toEqual([GUEST_BASE + 0x41_0010, 2 + 1]);
    // The bottom entry's own faults stay exact: the unmapped 64K page at 0x70_0000 is region
    // 0x60_0000's; the read-only page at 0x60_0000 refuses a store, as the plain walk does.
    for (const [gpa, access] of [
      [0x70_0000, RadixAccess.LOAD],
      [0x70_0000, RadixAccess.LOAD],
      [0x60_0000, RadixAccess.STORE],
    ] as const) {
      const expected = new RadixTranslation();
      expect(walker.translate(regs, 0, gpa, access, out)).toBe(plain.translate(regs, 0, gpa, access, expected));
      expect([out.vector, out.cause, out.asdrLo, out.partitionMissAddr]).toEqual([
        expected.vector,
        expected.cause,
        expected.asdrLo,
        expected.partitionMissAddr,
      ]);
    }
    // The hypervisor puts a 2M leaf where the region's bottom table was (freeing that table).
    partitionTree.map(0x40_0000, 0xa0_0000, SHIFT_2M, { read: true });
    expect(plain.translate(regs, 0, 0x40_1234, RadixAccess.LOAD, out)).toBe(true);
    expect(out.ra).toBe(0xa0_1234);
    // Until it says so, the cached table answers (the architecture allows it; KVM flushes the PWC).
    expect(walker.translate(regs, 0, 0x40_1234, RadixAccess.LOAD, out)).toBe(true);
    expect(out.ra).toBe(GUEST_BASE + 0x40_1234);
    epoch.tableEpoch++;
    expect(walker.translate(regs, 0, 0x40_1234, RadixAccess.LOAD, out)).toBe(true);
    expect([out.ra, out.pageShift, out.refs]).toEqual([0xa0_1234, SHIFT_2M, 2 + 3]);
    // A region mapped by a 2M leaf has no bottom table to cache: its walks read the tree, so a new leaf is seen at once.
    partitionTree.map(0x40_0000, GUEST_BASE + 0x40_0000, SHIFT_2M, { read: true });
    expect(walker.translate(regs, 0, 0x40_1234, RadixAccess.LOAD, out)).toBe(true);
    expect([out.ra, out.refs]).toEqual([GUEST_BASE + 0x40_1234, 2 + 3]);
    // tlbie RIC=1 empties the cache: a warm region (0x60_0000, refilled after the epoch moved) is walked in full again.
    expect(walker.translate(regs, 0, 0x61_0000, RadixAccess.LOAD, out)).toBe(true);
    expect(out.refs).toBe(2 + 4);
    expect(walker.translate(regs, 0, 0x61_0000, RadixAccess.LOAD, out)).toBe(true);
    expect(out.refs).toBe(2 + 1);
    walker.invalidatePageWalkCache();
    expect(walker.translate(regs, 0, 0x61_0000, RadixAccess.LOAD, out)).toBe(true);
    expect(out.refs).toBe(2 + 4);
  });
});
