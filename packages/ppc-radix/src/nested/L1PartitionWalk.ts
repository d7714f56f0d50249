import { GuestPhysMemory } from '@hvmmu/core';
import { UINT32_FIELD } from '../format/Uint32Field.js';
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
/** Page walk cache entries (a power of two), direct-mapped by 2 MiB region of the L2 real address. */
const PWC_ENTRIES = 16;

export interface L1PartitionWalkOptions {
  /**
   * Keep, per 2 MiB region of an L2's real addresses, the bottom table the
   * last walk of that tree reached, so the next walk there reads one entry:
   * a processor's page walk cache (POWER ISA v3.0 Book III 6.10.1), which
   * software invalidates with tlbie RIC 1 or 2 — an L1 that frees a table
   * of its tree for an L2 issues H_TLB_INVALIDATE RIC 1 (Linux:
   * kvmppc_radix_flush_pwc on pseries). KVM's own walk keeps nothing ("we
   * don't cache this"); the owner drops this cache with
   * `invalidatePageWalkCache` on every H_TLB_INVALIDATE of any form and every
   * partition-table change, and it goes by itself when the memslots change.
   * Default false.
   */
  readonly pageWalkCache?: boolean;
}

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
  leafHi = UINT32_FIELD;
  leafLo = UINT32_FIELD;
  /** log2 of the leaf's page size. */
  shift = 0;
  /** The L1 real address the L2 address maps to (hi, lo). */
  raHi = 0;
  raLo = UINT32_FIELD;
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
  private hi = UINT32_FIELD;
  private lo = UINT32_FIELD;
  // The page walk cache: per entry the region (L2 real address >> 21, -1 if empty), the tree
  // (PATE dw0 halves), the bottom table's L1 real address (halves) and NLS.
  private readonly pwc: boolean;
  private readonly pwcRegion = new Float64Array(PWC_ENTRIES).fill(-1);
  private readonly pwcRoot = new Int32Array(PWC_ENTRIES * 2);
  private readonly pwcTable = new Uint32Array(PWC_ENTRIES * 2);
  private readonly pwcNls = new Uint8Array(PWC_ENTRIES);

  constructor(
    private readonly memory: L1DoublewordReader,
    options: L1PartitionWalkOptions = {},
  ) {
    this.phys = memory instanceof GuestPhysMemory ? memory : null;
    this.view = this.phys !== null ? this.phys.view : new DataView(new ArrayBuffer(8));
    this.pwc = options.pageWalkCache === true;
  }

  /** Forget the page walk cache (H_TLB_INVALIDATE, a partition-table change). */
  invalidatePageWalkCache(): void {
    this.pwcRegion.fill(-1);
  }

  /**
   * Walk the tree rooted at PATE dw0 (`rootHi`, `rootLo`) for L2 real address
   * (`gHi`, `gLo`). True on success (a leaf; no permission checked here).
   */
  walk(rootHi: number, rootLo: number, gHi: number, gLo: number): boolean {
    this.reads = 0;
    const phys = this.phys;
    if (phys !== null && phys.memslots.generation !== this.slotGeneration) {
      // The memslots changed: what L1 memory holds at the cached tables' addresses may have too.
      this.slotGeneration = phys.memslots.generation;
      this.slotPages = 0;
      this.pwcRegion.fill(-1);
    }
    // L2 real address bits 63..21 (gHi < 2^28 here: the region is exact in a double).
    const region = gHi * 2048 + (gLo >>> 21);
    const slot = region & (PWC_ENTRIES - 1);
    if (this.pwc && this.pwcRegion[slot] === region && this.pwcRoot[2 * slot] === (rootHi | 0) && this.pwcRoot[2 * slot + 1] === (rootLo | 0)) {
      return this.bottom(this.pwcTable[2 * slot]!, this.pwcTable[2 * slot + 1]!, this.pwcNls[slot]!, gLo);
    }
    // The one tree KVM walks (p9_supported_radix_bits), its four levels written out: a 52-bit
    // tree (RTS + 31 = 52; RTS1 is dw0 bits 62..61, RTS2 bits 7..5), NLS 13, 9, 9, then 9 or 5
    // (4K or 64K pages); each table aligned to its size (2^(NLS + 3) bytes). A leaf may be at
    // levels 1..3 (1G, 2M, 4K/64K), not at the root (512 GiB pages are not supported).
    const rts = (((rootHi >>> 29) & 3) << 3) | ((rootLo >>> 5) & 7);
    if (rts !== 21 || (rootLo & 0x1f) !== 13 || (rootLo & 0xff00) !== 0) return this.fail(L1WalkStatus.BAD_TREE);
    // Root: address bits 51..39.
    if (!this.entry(rootHi & 0x0fff_ffff, rootLo & 0xffff_0000, (gHi >>> 7) & 0x1fff)) return false;
    let hi = this.hi;
    let lo = this.lo;
    if ((hi & 0x4000_0000) !== 0) return this.fail(L1WalkStatus.BAD_TREE);
    // Level 1: bits 38..30.
    if ((lo & 0x1f) !== 9 || (lo & 0xf00) !== 0) return this.fail(L1WalkStatus.BAD_TREE);
    if (!this.entry(hi & 0x0fff_ffff, lo & 0xffff_f000, ((gHi << 2) | (gLo >>> 30)) & 511)) return false;
    hi = this.hi;
    lo = this.lo;
    let offset = 30;
    if ((hi & 0x4000_0000) === 0) {
      // Level 2: bits 29..21.
      if ((lo & 0x1f) !== 9 || (lo & 0xf00) !== 0) return this.fail(L1WalkStatus.BAD_TREE);
      if (!this.entry(hi & 0x0fff_ffff, lo & 0xffff_f000, (gLo >>> 21) & 511)) return false;
      hi = this.hi;
      lo = this.lo;
      offset = 21;
      if ((hi & 0x4000_0000) === 0) {
        // Level 3: bits 20..12 (NLS 9, 4 KiB aligned) or 20..16 (NLS 5, 256 bytes aligned).
        const nls = lo & 0x1f;
        if (nls === 9) {
          if ((lo & 0xf00) !== 0) return this.fail(L1WalkStatus.BAD_TREE);
          offset = 12;
        } else if (nls === 5) {
          offset = 16;
        } else {
          return this.fail(L1WalkStatus.BAD_TREE);
        }
        if (this.pwc) {
          this.pwcRegion[slot] = region;
          this.pwcRoot[2 * slot] = rootHi;
          this.pwcRoot[2 * slot + 1] = rootLo;
          this.pwcTable[2 * slot] = hi & 0x0fff_ffff;
          this.pwcTable[2 * slot + 1] = lo & 0xffff_ff00;
          this.pwcNls[slot] = nls;
        }
        return this.bottom(hi & 0x0fff_ffff, lo & 0xffff_ff00, nls, gLo);
      }
    }
    return this.leaf(hi, lo, offset, gLo);
  }

  /** The walk's last level, in the bottom table at (baseHi, baseLo) of NLS 9 or 5 (shape and alignment checked). */
  private bottom(baseHi: number, baseLo: number, nls: number, gLo: number): boolean {
    const offset = nls === 9 ? 12 : 16;
    if (!this.entry(baseHi, baseLo, (gLo >>> offset) & ((1 << nls) - 1))) return false;
    // A directory at the bottom: no leaf.
    if ((this.hi & 0x4000_0000) === 0) return this.fail(L1WalkStatus.BAD_TREE);
    return this.leaf(this.hi, this.lo, offset, gLo);
  }

  /** The leaf (hi, lo) of a 2^offset page maps L2 real address bits (.., gLo): checked and recorded. */
  private leaf(hi: number, lo: number, offset: number, gLo: number): boolean {
    // The leaf's RPN aligned to its page size (KVM: "if (gpa & ((1ul << offset) - 1)) return -EINVAL").
    const m = (1 << offset) - 1;
    if ((lo & 0xffff_f000 & m) !== 0) return this.fail(L1WalkStatus.BAD_TREE);
    this.leafHi = hi >>> 0;
    this.leafLo = lo >>> 0;
    this.shift = offset;
    // RPN (bits 56..12) above the page offset, the L2 address's bits below it.
    this.raHi = (hi & 0x01ff_ffff) >>> 0;
    this.raLo = ((lo & 0xffff_f000 & ~m) | (gLo & m)) >>> 0;
    this.status = L1WalkStatus.OK;
    return true;
  }

  /** Read entry `index` of the table at (baseHi, baseLo) into hi/lo; false (status set) if L1 memory does not back it or it is invalid. */
  private entry(baseHi: number, baseLo: number, index: number): boolean {
    const addr = baseHi * TWO_POW_32 + (baseLo >>> 0) + index * 8;
    this.reads++;
    if (!this.read(addr)) {
      this.entryAddr = addr;
      return this.fail(L1WalkStatus.BAD_ADDRESS);
    }
    return (this.hi & 0x8000_0000) !== 0 || this.fail(L1WalkStatus.NO_ENTRY);
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
