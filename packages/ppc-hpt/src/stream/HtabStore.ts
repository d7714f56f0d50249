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
  /** Write the entry's guest view (dword0, dword1 big-endian) at `out[at..at+16)`. */
  guestView(index: number, out: DataView, at: number): void;
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
  constructor(readonly hpt: HashPageTable) {}

  get entries(): number {
    return this.hpt.entries;
  }

  present(index: number): boolean {
    return this.hpt.isValid(index);
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

  guestView(index: number, out: DataView, at: number): void {
    const v = this.hpt.view;
    const src = index * 16;
    out.setUint32(at, v.getUint32(src, false), false);
    // The hypervisor's own dword0 bits (0x40 KVM HVLOCK / QEMU dirty, 0x20 ABSENT) never reach a stream.
    out.setUint32(at + 4, v.getUint32(src + 4, false) & ~0x60, false);
    out.setUint32(at + 8, v.getUint32(src + 8, false), false);
    out.setUint32(at + 12, v.getUint32(src + 12, false), false);
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
