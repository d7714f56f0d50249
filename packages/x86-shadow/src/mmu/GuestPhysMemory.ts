import type { GuestMemory, Memslot, MemslotTable } from '@hvmmu/core';

/**
 * Guest-physical memory as the shadow MMU's walks read it: the memslot
 * table's `GuestMemory`, with a fast path for the common case — a read of a
 * page that already has its own host frame in the last slot used — that
 * reads `slot.frames` directly (no fmod, no search). Everything else (writes
 * with their dirty marking and copy-on-write, zero-frame reads, holes,
 * read-only slots, slots being deleted) goes to `MemslotTable.resolve`, so
 * the semantics are exactly the table's. Nothing is cached but the slot
 * object, whose range and `invalid` flag are checked on every call.
 */
export class GuestPhysMemory implements GuestMemory {
  readonly view: DataView;
  private last: Memslot | undefined = undefined;
  /**
   * Resolutions for writing so far: a caller that sees it unchanged across a
   * walk knows the walk wrote nothing (no A/D update) through this memory.
   */
  writeResolves = 0;

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
      const hfn = slot.frames[gfn - slot.baseGfn]!;
      if (hfn >= 0) return hfn * 4096 + offset;
    }
    if (write) this.writeResolves++;
    return this.memslots.resolve(gpa, write);
  }
}
