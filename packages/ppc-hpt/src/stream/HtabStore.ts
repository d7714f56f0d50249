import { HashPageTable } from '../mmu/HashPageTable.js';

/**
 * What the HTAB stream reads and writes: a guest's HPT as the guest sees it
 * (KVM keeps the real HPT and a parallel guest view; under a virtual
 * hypervisor the table is the guest view), with a modified bit per entry.
 */
export interface HtabStore {
  readonly entries: number;
  /** The entry exists for the guest (KVM: V or ABSENT in the real HPT). */
  present(index: number): boolean;
  /** Linux's BOLTED bit (0x10 in dword0). */
  bolted(index: number): boolean;
  isModified(index: number): boolean;
  clearModified(index: number): void;
  /** The first present entry in [from, to), or `to`. */
  nextPresent(from: number, to: number): number;
  /** Clear the modified bits of entries [from, to). */
  clearModifiedRange(from: number, to: number): void;
  /** The first modified entry at or after `from`, or `entries` if none: a later pass skips unchanged entries without looking at them one by one. */
  nextModified(from: number): number;
  /** Write the entry's guest view (dword0, dword1 big-endian) at `out[at..at+16)`. */
  guestView(index: number, out: Uint8Array, at: number): void;
  /** H_REMOVE semantics, no flags: the entry becomes invalid. */
  remove(index: number): void;
  /** H_ENTER with H_EXACT at `index` of an entry already checked (V set, a valid page size). */
  enter(index: number, v0Hi: number, v0Lo: number, r1Hi: number, r1Lo: number): void;
  /**
   * Why the host would refuse this entry in H_ENTER (KVM's kvm_htab_write
   * fails the write with EIO then), or null; checked for every entry of a
   * record before any is applied. Absent: the host refuses nothing more.
   */
  refuses?(v0Hi: number, v0Lo: number, r1Hi: number, r1Lo: number): string | null;
}

/** A `HashPageTable` as an `HtabStore`: the table is the guest view (QEMU TCG, a virtual hypervisor). */
export class HashPageTableStore implements HtabStore {
  constructor(readonly hpt: HashPageTable) {
    const b = hpt.bytes;
    this.table32 = b.byteOffset % 4 === 0 ? new Uint32Array(b.buffer, b.byteOffset, b.byteLength >>> 2) : null;
  }

  get entries(): number {
    return this.hpt.entries;
  }

  present(index: number): boolean {
    return (this.hpt.bytes[index * 16 + 7]! & 1) !== 0;
  }

  bolted(index: number): boolean {
    return (this.hpt.view.getUint32(index * 16 + 4, false) & 0x10) !== 0;
  }

  isModified(index: number): boolean {
    return this.hpt.isModified(index);
  }

  clearModified(index: number): void {
    this.hpt.clearModified(index);
  }

  nextModified(from: number): number {
    return this.hpt.nextModified(from);
  }

  clearModifiedRange(from: number, to: number): void {
    this.hpt.clearModifiedRange(from, to);
  }

  nextPresent(from: number, to: number): number {
    const b = this.hpt.bytes;
    let i = from;
    // V is bit 0 of each entry's byte 7 (dword0 is big-endian).
    while (i < to && (b[i * 16 + 7]! & 1) === 0) i++;
    return i;
  }

  guestView(index: number, out: Uint8Array, at: number): void {
    const src = index * 16;
    if (out !== this.lastOut) this.viewOutput(out);
    const o32 = this.lastOut32;
    const t32 = this.table32;
    if (o32 !== null && t32 !== null && (at & 3) === 0) {
      // Four 32-bit words, byte order kept (both sides are the platform's own order).
      const w = at >>> 2;
      const t = src >>> 2;
      o32[w] = t32[t]!;
      o32[w + 1] = t32[t + 1]!;
      o32[w + 2] = t32[t + 2]!;
      o32[w + 3] = t32[t + 3]!;
    } else {
      const b = this.hpt.bytes;
      for (let k = 0; k < 16; k++) out[at + k] = b[src + k]!;
    }
    // The hypervisor's own dword0 bits (0x40 KVM HVLOCK / QEMU dirty, 0x20 ABSENT) never reach a stream.
    out[at + 7] = out[at + 7]! & ~0x60;
  }

  private readonly table32: Uint32Array | null;
  private lastOut: Uint8Array | null = null;
  private lastOut32: Uint32Array | null = null;

  /** A 32-bit view of an output buffer, made once per buffer (none when it is not 4-byte aligned). */
  private viewOutput(out: Uint8Array): void {
    this.lastOut = out;
    this.lastOut32 = out.byteOffset % 4 === 0 ? new Uint32Array(out.buffer, out.byteOffset, out.byteLength >>> 2) : null;
  }

  remove(index: number): void {
    this.hpt.bytes.fill(0, index * 16, index * 16 + 16);
    this.hpt.markModified(index);
  }

  enter(index: number, v0Hi: number, v0Lo: number, r1Hi: number, r1Lo: number): void {
    const v = this.hpt.view;
    v.setUint32(index * 16, v0Hi >>> 0, false);
    v.setUint32(index * 16 + 4, (v0Lo & ~0x60) >>> 0, false);
    v.setUint32(index * 16 + 8, r1Hi >>> 0, false);
    v.setUint32(index * 16 + 12, r1Lo >>> 0, false);
    this.hpt.markModified(index);
  }
}
