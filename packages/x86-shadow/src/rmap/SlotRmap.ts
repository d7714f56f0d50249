import { HvmmuError, type Memslot } from '@hvmmu/core';
import { PteListPool } from './PteList.js';

/** Mapping levels with an rmap: 4 KiB, 2 MiB, 1 GiB (KVM KVM_NR_PAGE_SIZES). */
export const RMAP_LEVELS = 3;

/** Pages covered by one entry at `level` (1 → 1, 2 → 512, 3 → 262144). */
export function pagesPerLevel(level: number): number {
  return 2 ** (9 * (level - 1));
}

/**
 * KVM gfn_to_index: index of gfn's rmap head at `level` in a slot based at
 * `baseGfn` (both rounded down to the level's page size first).
 */
export function gfnToIndex(gfn: number, baseGfn: number, level: number): number {
  if (level === 1) return gfn - baseGfn;
  const span = pagesPerLevel(level);
  return Math.floor(gfn / span) - Math.floor(baseGfn / span);
}

/**
 * The x86 per-memslot data (`kvm_memory_slot.arch`): one rmap head per gfn
 * and level (KVM `rmap[3]`, indexed as mmu.c gfn_to_rmap() does), the
 * descriptors those lists use, and `gfn_write_track` (number of upper-level
 * shadow pages shadowing each gfn). Allocated when the slot is prepared,
 * dropped when it is freed — the invalid-rmap strategy's "memory freed with
 * the slot".
 */
export class SlotRmap {
  /** `heads[level - 1][index]`: pte_list head words. */
  readonly heads: Uint32Array[];
  readonly pool: PteListPool;
  readonly writeTrack: Uint16Array;
  /**
   * Valid shadow pages with gptes at each gfn, any level: lets the fault
   * path skip the hash-bucket walk of mmu_try_to_unsync_pages for the
   * common gfn that holds no guest page table.
   */
  readonly shadowed: Uint16Array;
  /** Live entries (skip markers not counted). */
  entries = 0;
  /** Skip markers written by the invalid table's remove. */
  skipped = 0;

  constructor(baseGfn: number, npages: number) {
    this.heads = [];
    for (let level = 1; level <= RMAP_LEVELS; level++) {
      const n = gfnToIndex(baseGfn + npages - 1, baseGfn, level) + 1;
      this.heads.push(new Uint32Array(n));
    }
    // Start small: a slot's rmap memory grows with what is mapped, not its size.
    this.pool = new PteListPool(16);
    this.writeTrack = new Uint16Array(npages);
    this.shadowed = new Uint16Array(npages);
  }

  get byteLength(): number {
    let n = this.pool.byteLength + this.writeTrack.byteLength + this.shadowed.byteLength;
    for (const h of this.heads) n += h.byteLength;
    return n;
  }
}

/** The slot's rmap data; throws if the slot was never prepared by this backend (a core/backend bug). */
export function slotRmap(slot: Memslot): SlotRmap {
  const arch = slot.arch;
  if (!(arch instanceof SlotRmap)) {
    throw new HvmmuError('BACKEND_MISSING_BINDING', `memslot ${slot.id} has no x86 rmap data (was it prepared by this MMU?)`);
  }
  return arch;
}
