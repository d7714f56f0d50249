import { HvmmuError, type GuestMemory } from '@hvmmu/core';
import { RADIX_L_HI, RADIX_NLB_HI, RADIX_PTE, RADIX_V_HI } from '../format/RadixEntry.js';
import { PATE0_HR_HI, PATE1_GR_HI } from '../format/PartitionTable.js';

const TWO_POW_32 = 0x1_0000_0000;

/** Linux's radix geometries (arch/powerpc/include/asm/book3s/64/radix-4k.h, radix-64k.h): entries per level, root first. */
export const RadixGeometry = {
  /** 4 KiB base pages: 13/9/9/9. */
  '4k': [13, 9, 9, 9],
  /** 64 KiB base pages: 13/9/9/5. */
  '64k': [13, 9, 9, 5],
} as const;
export type RadixGeometryName = keyof typeof RadixGeometry;

/** Leaf attributes for `RadixTreeBuilder.map` (EAA, R/C, ATT). */
export interface RadixLeafFlags {
  readonly read?: boolean;
  readonly write?: boolean;
  readonly execute?: boolean;
  /** EAA privilege bit: only MSR[PR]=0 may access. */
  readonly privileged?: boolean;
  /** R already set (default true). */
  readonly referenced?: boolean;
  /** C already set (default: equal to `write`). */
  readonly changed?: boolean;
  /** ATT field, 0..3 (0 normal, 2 non-idempotent I/O). */
  readonly att?: number;
}

/**
 * Builds radix trees, a process table and a partition table in guest (or
 * host) memory the way Linux lays them out, for tests, examples and
 * workloads — the VMM-side counterpart of a guest kernel's page-table code.
 * Tables are carved from an arena [base, base + size) of the memory; entries
 * are written big-endian (POWER ISA v3.0 Book III 6.7.10). Misuse (an
 * unaligned or unsupported page, an arena that is full, an address outside
 * the tree) throws `HvmmuError`.
 */
export class RadixTreeBuilder {
  private next: number;
  private readonly end: number;

  constructor(
    private readonly memory: GuestMemory,
    arenaBase: number,
    arenaBytes: number,
  ) {
    if (!Number.isSafeInteger(arenaBase) || arenaBase < 0 || arenaBase % 4096 !== 0 || !Number.isSafeInteger(arenaBytes) || arenaBytes <= 0) {
      throw new HvmmuError('BAD_ARGUMENT', `table arena must be 4 KiB aligned with a positive size, got ${arenaBase} + ${arenaBytes}`);
    }
    this.next = arenaBase;
    this.end = arenaBase + arenaBytes;
  }

  /** The first arena address not yet used. */
  get cursor(): number {
    return this.next;
  }

  /** A zeroed block of `bytes`, aligned to its size (tables must be naturally aligned). */
  allocate(bytes: number): number {
    const align = Math.max(bytes, 8);
    const at = Math.ceil(this.next / align) * align;
    if (at + bytes > this.end) throw new HvmmuError('BAD_ARGUMENT', `radix table arena is full (${bytes} more bytes needed)`);
    for (let a = at; a < at + bytes; a += 8) this.write64(a, 0, 0);
    this.next = at + bytes;
    return at;
  }

  /** A new, empty tree with `geometry`. */
  createTree(geometry: RadixGeometryName = '64k'): RadixTree {
    const levels = RadixGeometry[geometry];
    return new RadixTree(this, levels, this.allocate(8 << levels[0]!));
  }

  /** A process table of 2^(prts + 12) bytes; returns its base. */
  createProcessTable(prts = 0): RadixTable {
    return new RadixTable(this, this.allocate(2 ** (prts + 12)), prts);
  }

  /** @internal */
  write64(addr: number, hi: number, lo: number): void {
    const off = this.memory.resolve(addr, true);
    if (off < 0) throw new HvmmuError('BAD_ARGUMENT', `no writable memory at 0x${addr.toString(16)} for a radix table`);
    this.memory.view.setUint32(off, hi >>> 0, false);
    this.memory.view.setUint32(off + 4, lo >>> 0, false);
  }

  /** @internal */
  read64(addr: number): [number, number] {
    const off = this.memory.resolve(addr, false);
    if (off < 0) throw new HvmmuError('BAD_ARGUMENT', `no memory at 0x${addr.toString(16)} for a radix table`);
    return [this.memory.view.getUint32(off, false), this.memory.view.getUint32(off + 4, false)];
  }
}

/** A process or partition table: 16-byte entries indexed by PID or LPID. */
export class RadixTable {
  constructor(
    private readonly builder: RadixTreeBuilder,
    readonly base: number,
    /** PRTS / PATS: the table is 2^(sizeField + 12) bytes. */
    readonly sizeField: number,
  ) {}

  get entries(): number {
    return 2 ** (this.sizeField + 8);
  }

  /** The PTCR (or PATE dw1 / H_SET_PARTITION_TABLE argument) naming this table, as halves. */
  pointer(): [number, number] {
    return [Math.floor(this.base / TWO_POW_32), ((this.base % TWO_POW_32) | this.sizeField) >>> 0];
  }

  /** Write entry `index` (two doublewords). */
  setEntry(index: number, dw0: readonly [number, number], dw1: readonly [number, number]): void {
    if (!Number.isInteger(index) || index < 0 || index >= this.entries)
      throw new HvmmuError('BAD_ARGUMENT', `table index ${index} outside 0..${this.entries - 1}`);
    this.builder.write64(this.base + index * 16, dw0[0], dw0[1]);
    this.builder.write64(this.base + index * 16 + 8, dw1[0], dw1[1]);
  }

  /** Process-table entry for PID `pid` pointing at `tree` (dw1 unused for radix). */
  setProcess(pid: number, tree: RadixTree): void {
    this.setEntry(pid, tree.rootEntry(), [0, 0]);
  }

  /** Partition-table entry for `lpid`: HR, the partition-scoped `tree`, and the guest's process table (a guest real pointer, PRTB | PRTS). */
  setPartition(lpid: number, tree: RadixTree, processTable: readonly [number, number]): void {
    const root = tree.rootEntry();
    this.setEntry(lpid, [root[0] | PATE0_HR_HI, root[1]], [processTable[0] | PATE1_GR_HI, processTable[1]]);
  }

  clearEntry(index: number): void {
    this.setEntry(index, [0, 0], [0, 0]);
  }
}

/** One radix tree: a 52-bit address space mapped with 4K/64K/2M/1G leaves. */
export class RadixTree {
  constructor(
    private readonly builder: RadixTreeBuilder,
    /** Index bits per level, root first. */
    readonly levels: readonly number[],
    readonly root: number,
  ) {}

  /** The root's doubleword as a process-table entry or PATE dw0 (without HR): RTS = 52 bits, RPDB, RPDS. */
  rootEntry(): [number, number] {
    // RTS = 21 (52 bits): RTS1 = 0b10 in bits 62..61, RTS2 = 0b101 in bits 7..5 (Linux radix__get_tree_size).
    return [(0x4000_0000 | (Math.floor(this.root / TWO_POW_32) & RADIX_NLB_HI)) >>> 0, ((this.root % TWO_POW_32) | (0b101 << 5) | this.levels[0]!) >>> 0];
  }

  /**
   * This tree as a partition-table entry's dw0 (HR set: a radix partition),
   * what an L1 hypervisor writes for an L2 whose partition-scoped tree it is
   * (`L1NestedHost.setEntry`).
   */
  pateDw0(): bigint {
    const [hi, lo] = this.rootEntry();
    return (BigInt((hi | PATE0_HR_HI) >>> 0) << 32n) | BigInt(lo);
  }

  /** Page sizes (log2) a leaf may have in this tree: the base page, 2M, 1G. */
  get pageShifts(): readonly number[] {
    return [52 - this.levels[0]! - this.levels[1]!, 52 - this.levels[0]! - this.levels[1]! - this.levels[2]!, 52 - this.levels.reduce((a, b) => a + b, 0)];
  }

  /**
   * Map [addr, addr + 2^pageShift) to real address `ra` with a leaf of that
   * size (addr is the 52-bit in-tree address: an EA without its quadrant
   * bits, or a guest real address). Directories are made as needed;
   * mapping over an existing leaf replaces it.
   */
  map(addr: number, ra: number, pageShift: number, flags: RadixLeafFlags = {}): void {
    const shifts = this.pageShifts;
    const depth = shifts.indexOf(pageShift);
    if (depth < 0) throw new HvmmuError('BAD_ARGUMENT', `page size 2^${pageShift} is not one of this tree's (${shifts.map((s) => `2^${s}`).join(', ')})`);
    const size = 2 ** pageShift;
    if (!Number.isSafeInteger(addr) || addr < 0 || addr >= 2 ** 52 || addr % size !== 0)
      throw new HvmmuError('BAD_ARGUMENT', `address 0x${addr.toString(16)} is not a ${size}-byte aligned 52-bit address`);
    if (!Number.isSafeInteger(ra) || ra < 0 || ra >= 2 ** 53 || ra % size !== 0)
      throw new HvmmuError('BAD_ARGUMENT', `real address 0x${ra.toString(16)} is not ${size}-byte aligned`);
    const entryAddr = this.entryFor(addr, depth + 1, true);
    this.builder.write64(entryAddr, leafHi(ra), leafLo(ra, flags, pageShift));
  }

  /** Clear the leaf mapping `addr` (of whatever size); returns false if none. */
  unmap(addr: number): boolean {
    for (let level = 1; level <= 3; level++) {
      const entry = this.entryFor(addr, level, false);
      if (entry < 0) return false;
      const [hi] = this.builder.read64(entry);
      if ((hi & RADIX_V_HI) === 0) return false;
      if ((hi & RADIX_L_HI) !== 0) {
        this.builder.write64(entry, 0, 0);
        return true;
      }
    }
    return false;
  }

  /** Overwrite the leaf's low word bits: set `set`, clear `clear` (for R/C and EAA changes). */
  updateLeaf(addr: number, set: number, clear: number): boolean {
    for (let level = 1; level <= 3; level++) {
      const entry = this.entryFor(addr, level, false);
      if (entry < 0) return false;
      const [hi, lo] = this.builder.read64(entry);
      if ((hi & RADIX_V_HI) === 0) return false;
      if ((hi & RADIX_L_HI) !== 0) {
        this.builder.write64(entry, hi, ((lo | set) & ~clear) >>> 0);
        return true;
      }
    }
    return false;
  }

  /** Address of the entry for `addr` at `level` (0 = root), creating directories above it if `create`; -1 if absent. */
  private entryFor(addr: number, level: number, create: boolean): number {
    let table = this.root;
    let shift = 52;
    for (let l = 0; ; l++) {
      const bits = this.levels[l]!;
      shift -= bits;
      const index = Math.floor(addr / 2 ** shift) % 2 ** bits;
      const entry = table + index * 8;
      if (l === level) return entry;
      const [hi, lo] = this.builder.read64(entry);
      if ((hi & RADIX_V_HI) === 0 || (hi & RADIX_L_HI) !== 0) {
        if (!create) return -1;
        const childBits = this.levels[l + 1]!;
        const child = this.builder.allocate(8 << childBits);
        // A directory entry: V, NLB, NLS (Linux writes RADIX_P?D_VAL_BITS | child pa).
        this.builder.write64(entry, (RADIX_V_HI | Math.floor(child / TWO_POW_32)) >>> 0, ((child % TWO_POW_32) | childBits) >>> 0);
        table = child;
      } else {
        table = (hi & RADIX_NLB_HI) * TWO_POW_32 + ((lo & 0xffff_ff00) >>> 0);
      }
    }
  }
}

function leafHi(ra: number): number {
  return (RADIX_V_HI | RADIX_L_HI | (Math.floor(ra / TWO_POW_32) & 0x01ff_ffff)) >>> 0;
}

function leafLo(ra: number, f: RadixLeafFlags, pageShift: number): number {
  let lo = ra % TWO_POW_32;
  if (pageShift < 32) lo -= lo % 2 ** pageShift;
  if (f.referenced !== false) lo |= RADIX_PTE.R;
  if (f.changed ?? f.write === true) lo |= RADIX_PTE.C;
  if (f.read !== false) lo |= RADIX_PTE.READ;
  if (f.write === true) lo |= RADIX_PTE.READ_WRITE;
  if (f.execute === true) lo |= RADIX_PTE.EXECUTE;
  if (f.privileged === true) lo |= RADIX_PTE.PRIVILEGED;
  if (f.att !== undefined) lo |= (f.att & 3) << 4;
  return lo >>> 0;
}
