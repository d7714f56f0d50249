import { GuestPhysMemory } from '@hvmmu/core';
/** How a software walk of L1's partition-scoped tree for an L2 ended (KVM's return values). */
export const L1WalkStatus = {
  OK: 0,
  /** -EINVAL: a malformed tree (root size, NLS, misaligned table, a leaf at the root or a directory at the bottom, a leaf's RPN not aligned to its page size). */
  BAD_TREE: 1,
  /** -ENOENT: an invalid entry on the way. */
  NO_ENTRY: 2,
  /** -EFAULT: a table entry in memory that is not L1's (`entryAddr` names it). */
  BAD_ADDRESS: 3,
} as const;

/** Reads a big-endian doubleword of L1 memory into `hi`/`lo`; false when no memory backs it. */
export interface L1DoublewordReader {
  hi: number;
  lo: number;
  read64(gpa: number, littleEndian: boolean): boolean;
}

const TWO_POW_32 = 0x1_0000_0000;
const NO_FRAMES = new Int32Array(0);

/**
 * KVM's software walk of the partition-scoped tree L1 keeps in its own
 * memory for an L2 (book3s_64_mmu_radix.c kvmppc_mmu_walk_radix_tree, called
 * from kvmhv_translate_addr_nested with L1's cached PATE dw0): L2 real
 * address → L1 real address, with the leaf's permissions and R/C. Unlike
 * the hardware walk (`RadixWalker`), a table entry L1 memory does not back
 * is an error of its own (-EFAULT, reported to L1 as PRTABLE_FAULT with the
 * entry's address), and the tree must be the 52-bit shape KVM supports.
 * At most four reads: bounded whatever L1 wrote.
 *
 * Reused for every walk; the fields hold the last result.
 */
export class L1PartitionWalk {
  status: number = L1WalkStatus.OK;
  /** The leaf (hi, lo) on success. */
  leafHi = 0;
  leafLo = 0;
  /** log2 of the leaf's page size. */
  shift = 0;
  /** The L1 real address the L2 address maps to (hi, lo). */
  raHi = 0;
  raLo = 0;
  /** BAD_ADDRESS: the failing entry's L1 real address. */
  entryAddr = 0;
  /** Entries read. */
  reads = 0;

  // When L1 memory is a VM's memslots (the nested HV's case), entries are read from the frame
  // table of the slot the last entry was in, inline: the walk runs on every L2 fault, and a
  // call into GuestPhysMemory per entry cost three times the reads (ppc.radix.nested). The slot
  // is forgotten whenever the memslots change (their generation); its frames are read afresh.
  private readonly phys: GuestPhysMemory | null;
  private readonly view: DataView;
  private slotGeneration = -1;
  private slotBase = 0;
  private slotPages = 0;
  private slotFrames: Int32Array = NO_FRAMES;
  private hi = 0;
  private lo = 0;

  constructor(private readonly memory: L1DoublewordReader) {
    this.phys = memory instanceof GuestPhysMemory ? memory : null;
    this.view = this.phys !== null ? this.phys.view : new DataView(new ArrayBuffer(8));
  }

  /**
   * Walk the tree rooted at PATE dw0 (`rootHi`, `rootLo`) for L2 real address
   * (`gHi`, `gLo`). True on success (a leaf; no permission checked here).
   */
  walk(rootHi: number, rootLo: number, gHi: number, gLo: number): boolean {
    this.reads = 0;
    const phys = this.phys;
    if (phys !== null && phys.memslots.generation !== this.slotGeneration) {
      this.slotGeneration = phys.memslots.generation;
      this.slotPages = 0;
    }
    // RTS: bits 62..61 (RTS1) and 7..5 (RTS2) of dw0; a 52-bit tree only (RTS + 31 = 52).
    const rts = (((rootHi >>> 29) & 3) << 3) | ((rootLo >>> 5) & 7);
    if (rts + 31 !== 52) return this.fail(L1WalkStatus.BAD_TREE);
    let offset = 52;
    let baseHi = rootHi & 0x0fff_ffff;
    let baseLo = (rootLo & 0xffff_ff00) >>> 0;
    let bits = rootLo & 0x1f;
    let hi = 0;
    let lo = 0;
    let level = 3;
    for (; level >= 0; level--) {
      // POWER9's shapes only (p9_supported_radix_bits): NLS 13, 9, 9, then 9 or 5 (4K or 64K pages).
      if (level === 0 ? bits !== 5 && bits !== 9 : bits !== (level === 3 ? 13 : 9)) return this.fail(L1WalkStatus.BAD_TREE);
      offset -= bits;
      // The table base must be aligned to the table's size (2^(bits + 3) bytes, at most 64 KiB).
      if ((baseLo & ((1 << (bits + 3)) - 1)) !== 0) return this.fail(L1WalkStatus.BAD_TREE);
      // Shifts, not powers: this walk runs on every L2 fault (Math.pow was half its cost).
      const mask = (1 << bits) - 1;
      const index =
        offset >= 32 ? (gHi >>> (offset - 32)) & mask : offset + bits <= 32 ? (gLo >>> offset) & mask : ((gLo >>> offset) | (gHi << (32 - offset))) & mask;
      const addr = baseHi * TWO_POW_32 + baseLo + index * 8;
      this.reads++;
      if (!this.read(addr)) {
        this.entryAddr = addr;
        return this.fail(L1WalkStatus.BAD_ADDRESS);
      }
      hi = this.hi;
      lo = this.lo;
      if ((hi & 0x8000_0000) === 0) return this.fail(L1WalkStatus.NO_ENTRY);
      if ((hi & 0x4000_0000) !== 0) break;
      baseHi = hi & 0x0fff_ffff;
      baseLo = (lo & 0xffff_ff00) >>> 0;
      bits = lo & 0x1f;
    }
    // A leaf is needed, and not in the root (512 GiB pages are not supported).
    if (level < 0 || level === 3) return this.fail(L1WalkStatus.BAD_TREE);
    // Its RPN aligned to its page size (offset is 12, 16, 21 or 30 here; KVM: "if (gpa & ((1ul << offset) - 1)) return -EINVAL").
    if ((lo & 0xffff_f000 & ((1 << offset) - 1)) !== 0) return this.fail(L1WalkStatus.BAD_TREE);
    this.leafHi = hi >>> 0;
    this.leafLo = lo >>> 0;
    this.shift = offset;
    // RPN (bits 56..12) above the page offset, the L2 address's bits below it.
    const raHi = hi & 0x01ff_ffff;
    let raLo = lo & 0xffff_f000;
    // A leaf below the root maps at most 1 GiB: offset is 30, 21, 16 or 12.
    const m = (1 << offset) - 1;
    raLo = (raLo & ~m) | (gLo & m);
    this.raHi = raHi >>> 0;
    this.raLo = raLo >>> 0;
    this.status = L1WalkStatus.OK;
    return true;
  }

  /** The big-endian doubleword at L1 real address `addr` into hi/lo; false where L1 memory does not back it. */
  private read(addr: number): boolean {
    // The gfn by a shift below 2^31 (a division on every level otherwise); an entry is 8-aligned here.
    const index = (addr <= 0x7fff_ffff ? addr >>> 12 : Math.floor(addr / 4096)) - this.slotBase;
    if (index >= 0 && index < this.slotPages) {
      const hfn = this.slotFrames[index]!;
      if (hfn >= 0) {
        const off = hfn * 4096 + (addr & 0xfff);
        this.hi = this.view.getUint32(off, false);
        this.lo = this.view.getUint32(off + 4, false);
        return true;
      }
    }
    return this.readThrough(addr);
  }

  /** `read` through the reader (a page without its own frame, another slot, or not a VM's memory), remembering the slot. */
  private readThrough(addr: number): boolean {
    const memory = this.memory;
    if (!memory.read64(addr, false)) return false;
    this.hi = memory.hi;
    this.lo = memory.lo;
    const phys = this.phys;
    if (phys !== null) {
      const slot = phys.readSlot(Math.floor(addr / 4096));
      if (slot !== undefined && slot.touched) {
        this.slotBase = slot.baseGfn;
        this.slotPages = slot.npages;
        this.slotFrames = slot.frames;
      }
    }
    return true;
  }

  private fail(status: number): false {
    this.status = status;
    return false;
  }
}
