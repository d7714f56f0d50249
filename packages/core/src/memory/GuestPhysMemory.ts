import type { Memslot } from '../memslot/Memslot.js';
import type { MemslotTable } from '../memslot/MemslotTable.js';
import type { GuestMemory } from './GuestMemory.js';

/**
 * Guest-physical memory as an MMU's walks read it: the memslot table's
 * `GuestMemory`, with a fast path for the common case — a read of a page
 * that already has its own host frame in the last slot used — that reads the
 * slot's frame table directly (no fmod, no search). Everything else (writes
 * with their dirty marking and copy-on-write, zero-frame reads, holes,
 * read-only slots, slots being deleted) goes to `MemslotTable.resolve`, so
 * the semantics are exactly the table's. Nothing is cached but the slot
 * object, whose range and `invalid` flag are checked on every call.
 *
 * Entry reads in either byte order (x86 tables are little-endian, POWER's
 * big-endian) return -1 where no memory backs the address, so a walker
 * never throws on a guest's table pointer.
 */
export class GuestPhysMemory implements GuestMemory {
  readonly view: DataView;
  private last: Memslot | undefined = undefined;
  /**
   * Resolutions for writing so far: a caller that sees it unchanged across a
   * walk knows the walk wrote nothing (no A/D update) through this memory.
   */
  writeResolves = 0;
  /** High and low halves of the last successful `read64`. */
  hi = 0;
  lo = 0;

  constructor(readonly memslots: MemslotTable) {
    this.view = memslots.view;
  }

  /**
   * The live slot holding `gfn` for a read, or undefined if none does (a
   * hole, or a slot being deleted or moved). A caller that reads a
   * non-negative `frames` entry of it gets what `resolve` would return for a
   * read there; for any other entry it must ask `resolve`, which handles the
   * zero frame and faults frames in.
   */
  readSlot(gfn: number): Memslot | undefined {
    const slot = this.last;
    if (slot !== undefined && !slot.invalid && gfn >= slot.baseGfn && gfn < slot.baseGfn + slot.npages) return slot;
    const found = this.memslots.findByGfn(gfn);
    if (found !== undefined) this.last = found;
    return found;
  }

  resolve(gpa: number, write: boolean): number {
    if (!write && gpa >= 0 && gpa <= Number.MAX_SAFE_INTEGER) {
      // ToInt32 is exact modulo 2^32 for safe integers, so this is gpa mod 4096.
      const offset = gpa & 0xfff;
      const gfn = (gpa - offset) / 4096;
      let slot = this.last;
      if (slot === undefined || slot.invalid || gfn < slot.baseGfn || gfn >= slot.baseGfn + slot.npages) {
        slot = this.memslots.findByGfn(gfn);
        if (slot === undefined) return -1;
        this.last = slot;
      }
      const hfn = slot.frameAt(gfn - slot.baseGfn);
      if (hfn >= 0) return hfn * 4096 + offset;
    }
    if (write) this.writeResolves++;
    return this.memslots.resolve(gpa, write);
  }

  /** The 32-bit value at gpa (4-byte aligned accesses stay in one page), or -1 if no memory backs it. */
  read32(gpa: number, littleEndian: boolean): number {
    const off = this.resolve(gpa, false);
    if (off < 0 || gpa % 4 !== 0) return -1;
    return this.view.getUint32(off, littleEndian);
  }

  /** The 64-bit value at an 8-byte aligned gpa into `hi`/`lo`; false if no memory backs it. */
  read64(gpa: number, littleEndian: boolean): boolean {
    const off = this.resolve(gpa, false);
    if (off < 0 || gpa % 8 !== 0) return false;
    const view = this.view;
    this.hi = view.getUint32(littleEndian ? off + 4 : off, littleEndian);
    this.lo = view.getUint32(littleEndian ? off : off + 4, littleEndian);
    return true;
  }

  /** Store a 64-bit value at an 8-byte aligned gpa (marks the page dirty); false if no writable memory backs it. */
  write64(gpa: number, hi: number, lo: number, littleEndian: boolean): boolean {
    if (gpa % 8 !== 0) return false;
    const off = this.resolve(gpa, true);
    if (off < 0) return false;
    const view = this.view;
    view.setUint32(littleEndian ? off + 4 : off, hi >>> 0, littleEndian);
    view.setUint32(littleEndian ? off : off + 4, lo >>> 0, littleEndian);
    return true;
  }
}
