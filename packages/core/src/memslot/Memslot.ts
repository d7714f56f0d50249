import type { RmapOps } from '../rmap/RmapOps.js';

/** KVM's memslot flags, same values as the `KVM_MEM_*` uapi bits. */
export const MemslotFlags = {
  /** KVM_MEM_LOG_DIRTY_PAGES: record written pages in the dirty bitmap. */
  LOG_DIRTY_PAGES: 1 << 0,
  /** KVM_MEM_READONLY: guest writes are refused (fixed at creation). */
  READONLY: 1 << 1,
} as const;

export const MEMSLOT_VALID_FLAGS = MemslotFlags.LOG_DIRTY_PAGES | MemslotFlags.READONLY;

export type MemslotChange = 'create' | 'delete' | 'move' | 'flags';

/** Frame-table markers for guest pages that have no private host frame yet. */
export const FRAME_NONE = -1;
/** Read-faulted but never written: mapped to the host's shared zero frame. */
export const FRAME_ZERO = -2;

/**
 * One guest memory region: `npages` guest frames starting at `baseGfn`,
 * backed page by page by host frames that are faulted in on first touch
 * (reads of untouched pages see the shared zero frame, as anonymous memory
 * does on a Linux host; the first write gives the page its own frame).
 *
 * Fields are public for the MMU's hot paths; change a slot only through
 * `MemslotTable`.
 */
export class Memslot {
  readonly id: number;
  baseGfn: number;
  readonly npages: number;
  flags: number;
  /** Per guest page: host frame number, `FRAME_NONE` or `FRAME_ZERO`. */
  readonly frames: Int32Array;
  /** One bit per page, set by guest writes while LOG_DIRTY_PAGES is on. */
  dirtyBitmap: Uint32Array | null;
  /** The rmap operations table this slot currently uses (`slot->arch.ops` of the 2013 KVM invalid-rmap patch; see RmapOps). */
  rmapOps: RmapOps;
  /** True once deletion/move started: lookups no longer find the slot. */
  invalid = false;
  /** Backend per-slot data (rmaps, large-page info, write tracking). */
  arch: unknown = undefined;

  constructor(id: number, baseGfn: number, npages: number, flags: number, rmapOps: RmapOps) {
    this.id = id;
    this.baseGfn = baseGfn;
    this.npages = npages;
    this.flags = flags;
    this.frames = new Int32Array(npages).fill(FRAME_NONE);
    this.dirtyBitmap = (flags & MemslotFlags.LOG_DIRTY_PAGES) !== 0 ? new Uint32Array(Math.ceil(npages / 32)) : null;
    this.rmapOps = rmapOps;
  }

  get endGfn(): number {
    return this.baseGfn + this.npages;
  }

  get readOnly(): boolean {
    return (this.flags & MemslotFlags.READONLY) !== 0;
  }

  get dirtyLogging(): boolean {
    return (this.flags & MemslotFlags.LOG_DIRTY_PAGES) !== 0;
  }

  containsGfn(gfn: number): boolean {
    return gfn >= this.baseGfn && gfn < this.baseGfn + this.npages;
  }

  /** Mark gfn dirty if dirty logging is on (KVM mark_page_dirty_in_slot). */
  markDirty(gfn: number): void {
    const bitmap = this.dirtyBitmap;
    if (bitmap === null) return;
    const i = gfn - this.baseGfn;
    bitmap[i >>> 5] |= 1 << (i & 31);
  }

  isDirty(gfn: number): boolean {
    const bitmap = this.dirtyBitmap;
    if (bitmap === null) return false;
    const i = gfn - this.baseGfn;
    return (bitmap[i >>> 5] & (1 << (i & 31))) !== 0;
  }
}
