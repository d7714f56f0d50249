import { HvmmuError, type GuestMemory, type HostMemory } from '@hvmmu/core';

/** Bytes of one window chunk: a host frame. */
const CHUNK = 4096;
/** The partition table: 2^(PATS+12) bytes with PATS 4, 4096 LPIDs of 16 bytes (KVM's nested LPID limit). */
export const PARTITION_TABLE_PATS = 4;
export const PARTITION_TABLE_BYTES = 1 << (PARTITION_TABLE_PATS + 12);
/** A root directory: 2^13 entries of 8 bytes (POWER9 requires NLS 13 at the root of a 52-bit tree). */
export const ROOT_DIRECTORY_BYTES = 8 << 13;
/** Root directories one space holds: L1's, and the shadow trees of up to 63 nested guests at once (one shadow LPID each). */
export const DEFAULT_ROOT_DIRECTORIES = 64;

/**
 * L0's real address space as the radix walker reads it: host memory, whose
 * host real address is the byte offset in the pool (host frame hfn is at
 * hfn * 4096), plus windows above the pool for the tables that must be
 * 64 KiB and aligned to it — the partition table (PATS 4) and the root
 * directory of each partition-scoped tree (2^13 entries: POWER ISA v3.0
 * Book III 6.7.10.2 with POWER9's shape, QEMU ppc_radix64_is_valid_level).
 * Core's host frames are 4 KiB with no contiguous allocation, so a window
 * is backed 4 KiB at a time by frames allocated when a part of it is first
 * needed; an unbacked part reads as unbacked memory (zero: invalid entries).
 *
 * Every other table page is one host frame at its own address, so the
 * entries are real big-endian radix entries the `RadixWalker` and
 * `enumerateRadixTree` read unchanged. Several trees share one space and one
 * partition table (L1's tree, and later the shadow trees of its L2s, each
 * under its own LPID), each with its own root window.
 */
export class HostRealSpace implements GuestMemory {
  readonly view: DataView;
  /** Host real address of the partition table (PTCR's PATB). */
  readonly partitionTableBase: number;
  /** The frame backing each window chunk, or -1: the partition table's 16, then 16 per root directory. */
  readonly chunks: Int32Array;
  private readonly poolBytes: number;
  private readonly windowBase: number;
  private readonly windowBytes: number;
  private readonly rootInUse: Uint8Array;
  /** Trees whose partition-table entry is written: the table's frames stay while any is. */
  private pateUsers = 0;
  /**
   * Bumped whenever a tree of this space frees its tables (the only time a
   * table is freed or unlinked: trees grow until freed whole): the vCPUs'
   * page walk caches hold while it is unchanged (KVM flushes the PWC,
   * kvmppc_radix_flush_pwc, when it frees a table).
   */
  tableEpoch = 0;

  constructor(
    readonly host: HostMemory,
    readonly rootDirectories = DEFAULT_ROOT_DIRECTORIES,
  ) {
    if (!Number.isInteger(rootDirectories) || rootDirectories < 1 || rootDirectories > 4096) {
      throw new HvmmuError('BAD_ARGUMENT', `a host real space holds 1..4096 root directories, got ${String(rootDirectories)}`);
    }
    this.view = host.view;
    this.poolBytes = host.byteLength;
    this.windowBase = Math.ceil(host.byteLength / PARTITION_TABLE_BYTES) * PARTITION_TABLE_BYTES;
    this.windowBytes = PARTITION_TABLE_BYTES + rootDirectories * ROOT_DIRECTORY_BYTES;
    this.chunks = new Int32Array(this.windowBytes / CHUNK).fill(-1);
    this.rootInUse = new Uint8Array(rootDirectories);
    this.partitionTableBase = this.windowBase;
  }

  resolve(addr: number, _write: boolean): number {
    if (addr >= 0 && addr < this.poolBytes) return addr;
    const w = addr - this.windowBase;
    if (!(w >= 0 && w < this.windowBytes)) return -1;
    // The windows are a few MiB: w is a small integer, so shifts and masks are exact.
    const frame = this.chunks[w >>> 12]!;
    return frame < 0 ? -1 : frame * CHUNK + (w & (CHUNK - 1));
  }

  /** Take a root directory window; returns its host real address. */
  allocateRoot(): number {
    const index = this.rootInUse.indexOf(0);
    if (index < 0) throw new HvmmuError('HOST_OUT_OF_MEMORY', `all ${this.rootDirectories} root directory windows of this host real space are in use`);
    this.rootInUse[index] = 1;
    return this.windowBase + PARTITION_TABLE_BYTES + index * ROOT_DIRECTORY_BYTES;
  }

  /** Free a root directory's frames (its tree is gone); `keep` leaves the window taken for the same tree's next use. */
  releaseRoot(root: number, keep: boolean): void {
    this.tableEpoch++;
    const first = (root - this.windowBase) / CHUNK;
    for (let i = first; i < first + ROOT_DIRECTORY_BYTES / CHUNK; i++) this.freeChunk(i);
    if (!keep) this.rootInUse[(root - this.windowBase - PARTITION_TABLE_BYTES) / ROOT_DIRECTORY_BYTES] = 0;
  }

  /** A tree writes its partition-table entry: back its chunk (false, nothing changed, if no frame is free). */
  acquirePate(lpid: number): boolean {
    const chunk = ((lpid * 16) / CHUNK) | 0;
    if (this.chunks[chunk]! < 0) {
      if (this.host.framesFree < 1) return false;
      this.chunks[chunk] = this.host.allocFrame();
    }
    this.pateUsers++;
    return true;
  }

  /** A tree cleared its partition-table entry: when none is left, the table's frames go. */
  releasePate(): void {
    if (--this.pateUsers > 0) return;
    for (let i = 0; i < PARTITION_TABLE_BYTES / CHUNK; i++) this.freeChunk(i);
  }

  /** The pool offset of window address `addr`, backing its chunk with a new frame first if `allocate`; -1 if unbacked. */
  windowOffset(addr: number, allocate: boolean): number {
    const w = addr - this.windowBase;
    const chunk = (w / CHUNK) | 0;
    let frame = this.chunks[chunk]!;
    if (frame < 0) {
      if (!allocate) return -1;
      frame = this.host.allocFrame();
      this.chunks[chunk] = frame;
    }
    return frame * CHUNK + (w % CHUNK);
  }

  /** Whether the chunk holding window address `addr` is backed. */
  windowBacked(addr: number): boolean {
    return this.chunks[((addr - this.windowBase) / CHUNK) | 0]! >= 0;
  }

  /** Frames backing the windows. */
  get windowFrames(): number {
    let n = 0;
    for (let i = 0; i < this.chunks.length; i++) if (this.chunks[i]! >= 0) n++;
    return n;
  }

  private freeChunk(i: number): void {
    const frame = this.chunks[i]!;
    if (frame >= 0) this.host.freeFrame(frame);
    this.chunks[i] = -1;
  }
}
