import type { GuestMemory, HostMemory } from '@hvmmu/core';

/** Bytes of one window chunk: a host frame. */
const CHUNK = 4096;
/** The partition table window: 2^(PATS+12) bytes with PATS 4, 4096 LPIDs of 16 bytes (KVM's nested LPID limit). */
export const PARTITION_TABLE_PATS = 4;
export const PARTITION_TABLE_BYTES = 1 << (PARTITION_TABLE_PATS + 12);
/** The root directory window: 2^13 entries of 8 bytes (POWER9 requires NLS 13 at the root of a 52-bit tree). */
export const ROOT_DIRECTORY_BYTES = 8 << 13;
/** Both windows, each aligned to its own size (64 KiB). */
const WINDOW_BYTES = PARTITION_TABLE_BYTES + ROOT_DIRECTORY_BYTES;
export const WINDOW_CHUNKS = WINDOW_BYTES / CHUNK;

/**
 * L0's real address space as the radix walker reads it: host memory, whose
 * host real address is the byte offset in the pool (a host frame hfn is at
 * hfn * 4096), plus two windows above the pool for the two tables that must
 * be 64 KiB and aligned to it — the partition table (PATS 4) and the root
 * directory of the partition-scoped tree (2^13 entries: POWER ISA v3.0 Book
 * III 6.7.10.2 with POWER9's shape, QEMU ppc_radix64_is_valid_level). Core's
 * host frames are 4 KiB with no contiguous allocation, so each window is
 * backed 4 KiB at a time by frames allocated when a part of it is first
 * needed; an unbacked part reads as unbacked memory (zero: invalid entries).
 *
 * Every other table page of the tree is one host frame at its own address,
 * so the entries are real big-endian radix entries the `RadixWalker` and
 * `enumerateRadixTree` read unchanged.
 */
export class HostRealSpace implements GuestMemory {
  readonly view: DataView;
  /** Host real address of the partition table (PTCR's PATB). */
  readonly partitionTableBase: number;
  /** Host real address of the partition-scoped root directory (the PATE's RPDB). */
  readonly rootDirectoryBase: number;
  /** The frame backing each window chunk, or -1. */
  readonly chunks = new Int32Array(WINDOW_CHUNKS).fill(-1);
  private readonly poolBytes: number;
  private readonly windowBase: number;

  constructor(readonly host: HostMemory) {
    this.view = host.view;
    this.poolBytes = host.byteLength;
    this.windowBase = Math.ceil(host.byteLength / PARTITION_TABLE_BYTES) * PARTITION_TABLE_BYTES;
    this.partitionTableBase = this.windowBase;
    this.rootDirectoryBase = this.windowBase + PARTITION_TABLE_BYTES;
  }

  resolve(addr: number, _write: boolean): number {
    if (addr >= 0 && addr < this.poolBytes) return addr;
    const w = addr - this.windowBase;
    if (!(w >= 0 && w < WINDOW_BYTES)) return -1;
    const frame = this.chunks[(w / CHUNK) | 0]!;
    return frame < 0 ? -1 : frame * CHUNK + (w % CHUNK);
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
    for (let i = 0; i < WINDOW_CHUNKS; i++) if (this.chunks[i]! >= 0) n++;
    return n;
  }

  /** Free every window frame (the tables they held are gone). */
  releaseWindows(): void {
    for (let i = 0; i < WINDOW_CHUNKS; i++) {
      const frame = this.chunks[i]!;
      if (frame >= 0) this.host.freeFrame(frame);
      this.chunks[i] = -1;
    }
  }
}
