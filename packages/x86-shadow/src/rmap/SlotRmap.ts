import { allocatePerPage } from '@hvmmu/core';
import type { X86Memslot } from '../X86ShadowTypes.js';
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
  /** Live entries (skip markers not counted). */
  entries = 0;
  /** Skip markers written by the invalid table's remove. */
  skipped = 0;
  private arrays: SlotRmapArrays | null = null;

  constructor(
    private readonly baseGfn: number,
    private readonly npages: number,
  ) {}

  /** `heads[level - 1][index]`: pte_list head words. */
  get heads(): Uint32Array[] {
    return (this.arrays ?? this.allocate()).heads;
  }

  get pool(): PteListPool {
    return (this.arrays ?? this.allocate()).pool;
  }

  /** Upper-level shadow pages shadowing each gfn (KVM gfn_write_track). */
  get writeTrack(): Uint16Array {
    return (this.arrays ?? this.allocate()).writeTrack;
  }

  /**
   * Valid shadow pages with gptes at each gfn, any level: lets the fault
   * path skip the hash-bucket walk of mmu_try_to_unsync_pages for the
   * common gfn that holds no guest page table.
   */
  get shadowed(): Uint16Array {
    return (this.arrays ?? this.allocate()).shadowed;
  }

  /** Whether the per-page arrays exist yet (they are made on first use, so an untouched slot costs nothing). */
  get allocated(): boolean {
    return this.arrays !== null;
  }

  get byteLength(): number {
    const a = this.arrays;
    if (a === null) return 0;
    let n = a.pool.byteLength + a.writeTrack.byteLength + a.shadowed.byteLength;
    for (const h of a.heads) n += h.byteLength;
    return n;
  }

  /** The slot is gone: drop the arrays. */
  release(): void {
    this.arrays = null;
    this.entries = 0;
    this.skipped = 0;
  }

  private allocate(): SlotRmapArrays {
    const { baseGfn, npages } = this;
    const arrays = allocatePerPage('x86 rmap', npages, () => {
      const heads: Uint32Array[] = [];
      for (let level = 1; level <= RMAP_LEVELS; level++) {
        heads.push(new Uint32Array(gfnToIndex(baseGfn + npages - 1, baseGfn, level) + 1));
      }
      // Start small: a slot's rmap memory grows with what is mapped, not its size.
      return { heads, pool: new PteListPool(16), writeTrack: new Uint16Array(npages), shadowed: new Uint16Array(npages) };
    });
    this.arrays = arrays;
    return arrays;
  }
}

interface SlotRmapArrays {
  readonly heads: Uint32Array[];
  readonly pool: PteListPool;
  readonly writeTrack: Uint16Array;
  readonly shadowed: Uint16Array;
}

/** The slot's rmap data (made by the MMU's prepareMemslot). */
export function slotRmap(slot: X86Memslot): SlotRmap {
  return slot.arch;
}
