import { HvmmuError } from '../errors/HvmmuError.js';
import type { BackendTypes } from '../vm/BackendTypes.js';

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

/** Allocate a typed array for per-page metadata, reporting an engine refusal as the host being out of memory. */
export function allocatePerPage<A>(what: string, pages: number, make: () => A): A {
  try {
    return make();
  } catch (error) {
    if (error instanceof RangeError) {
      throw new HvmmuError('HOST_OUT_OF_MEMORY', `cannot allocate the ${what} of a ${pages}-page memslot (${error.message})`, { pages });
    }
    throw error;
  }
}

/**
 * One guest memory region: `npages` guest frames starting at `baseGfn`,
 * backed page by page by host frames that are faulted in on first touch
 * (reads of untouched pages see the shared zero frame, as anonymous memory
 * does on a Linux host; the first write gives the page its own frame).
 *
 * Per-page tables are allocated when first needed, not at creation, so a
 * large slot costs nothing until the guest touches it.
 *
 * Fields are public for the MMU's hot paths; change a slot only through
 * `MemslotTable`.
 */
export class Memslot<T extends BackendTypes = BackendTypes> {
  readonly id: number;
  baseGfn: number;
  readonly npages: number;
  flags: number;
  /** One bit per page, set by guest writes while LOG_DIRTY_PAGES is on. */
  dirtyBitmap: Uint32Array | null = null;
  /**
   * The rmap strategy table this slot currently goes through (`normal`, then
   * `invalid` once deleted or moved): `slot->arch.ops` of the 2013 KVM patch
   * "KVM: MMU: introduce invalid rmap handlers".
   */
  rmapOps: T['rmapOps'];
  /** True once deletion/move started: lookups no longer find the slot. */
  invalid = false;
  /** The backend's per-slot data (its rmaps), made by the MMU's `prepareMemslot`. */
  arch!: T['slotData'];
  private frameTable: Int32Array | null = null;

  constructor(id: number, baseGfn: number, npages: number, flags: number, rmapOps: T['rmapOps']) {
    this.id = id;
    this.baseGfn = baseGfn;
    this.npages = npages;
    this.flags = flags;
    this.rmapOps = rmapOps;
  }

  /**
   * Per guest page: host frame number, `FRAME_NONE` or `FRAME_ZERO`.
   * Allocated on first use (HOST_OUT_OF_MEMORY if the host cannot).
   */
  get frames(): Int32Array {
    return this.frameTable ?? this.allocateFrames();
  }

  /** Host frame of page `index` without allocating the table (FRAME_NONE while it does not exist). */
  frameAt(index: number): number {
    const table = this.frameTable;
    return table === null ? FRAME_NONE : (table[index] ?? FRAME_NONE);
  }

  /** Whether any page has been touched (the frame table exists). */
  get touched(): boolean {
    return this.frameTable !== null;
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
    return (bitmap[i >>> 5]! & (1 << (i & 31))) !== 0;
  }

  /** Drop the frame table (the slot's frames were freed). */
  releaseFrames(): void {
    this.frameTable = null;
  }

  private allocateFrames(): Int32Array {
    const table = allocatePerPage('frame table', this.npages, () => new Int32Array(this.npages).fill(FRAME_NONE));
    this.frameTable = table;
    return table;
  }
}
