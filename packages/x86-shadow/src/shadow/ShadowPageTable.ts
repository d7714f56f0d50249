import { injectable } from 'tsyringe';
import { HvmmuError } from '@hvmmu/core';
import { PTE_LIST_MAX_SPTEP, PteListPool } from '../rmap/PteList.js';
import { SPTE_ENT_PER_PAGE } from '../spte/Spte.js';

/** KVM_MMU_HASH_SHIFT: 4096 hash buckets. */
export const MMU_HASH_SHIFT = 12;
export const MMU_HASH_BUCKETS = 1 << MMU_HASH_SHIFT;

/** Per-page flag bits (`ShadowPageTable.flags`). */
export const SP_IN_USE = 1 << 0;
/** A special (vCPU-local) shadow page: PAE root or pml4/pml5 wrapper (Lai Jiangshan's 2022 special-root series). */
export const SP_SPECIAL = 1 << 1;
/** Level-1 indirect page whose gptes may have changed without resync. */
export const SP_UNSYNC = 1 << 2;
export const SP_HASHED = 1 << 3;
export const SP_ON_ACTIVE_LIST = 1 << 4;

/** Words of the 512-bit unsync_child_bitmap. */
export const UNSYNC_BITMAP_WORDS = SPTE_ENT_PER_PAGE / 32;

const INITIAL_PAGES = 64;
/** sptep = id × 512 + index must fit a pte_list entry. */
const MAX_PAGES = Math.floor(PTE_LIST_MAX_SPTEP / SPTE_ENT_PER_PAGE);

/** GOLDEN_RATIO_64 (include/linux/hash.h) in 16-bit limbs, low first. */
const GR0 = 0x83eb;
const GR1 = 0x80b5;
const GR2 = 0x8646;
const GR3 = 0x61c8;

/**
 * KVM kvm_page_table_hashfn: `hash_64(gfn, 12)` = the top 12 bits of
 * gfn × GOLDEN_RATIO_64 mod 2^64, computed on 16-bit limbs so every partial
 * product stays exact in a double.
 */
export function mmuHash(gfn: number): number {
  const lo = gfn >>> 0;
  const hi = Math.floor(gfn / 0x1_0000_0000) >>> 0;
  const a0 = lo & 0xffff;
  const a1 = lo >>> 16;
  const a2 = hi & 0xffff;
  const a3 = hi >>> 16;
  let c = a0 * GR0;
  c = Math.floor(c / 65536) + a0 * GR1 + a1 * GR0;
  c = Math.floor(c / 65536) + a0 * GR2 + a1 * GR1 + a2 * GR0;
  c = Math.floor(c / 65536) + a0 * GR3 + a1 * GR2 + a2 * GR1 + a3 * GR0;
  return (c % 65536) >>> (16 - MMU_HASH_SHIFT);
}

/**
 * Every shadow page of a VM in struct-of-arrays form (KVM's `struct
 * kvm_mmu_page` fields, one typed array each, indexed by page id), with the
 * gfn hash (`mmu_page_hash`), the FIFO active list (`active_mmu_pages`: new
 * pages at the head, the tail holds the oldest) and a free list of ids.
 *
 * Page id 0 is never allocated: it is the active list's sentinel and makes
 * `sptep = id × 512 + index` non-zero for every real entry. This class only
 * stores; the life-cycle rules (mmu.c) live in `ShadowPages`.
 */
@injectable()
export class ShadowPageTable {
  capacity = 0;
  /** The 512 shadow entries of each page, low and high halves. */
  sptLo = new Uint32Array(0);
  sptHi = new Uint32Array(0);
  /** KVM shadowed_translation: per entry `gfn × 8 + ACC` of what the spte shadows. */
  translation = new Float64Array(0);
  role = new Uint32Array(0);
  gfn = new Float64Array(0);
  /** mmu_valid_gen at creation. */
  gen = new Uint8Array(0);
  flags = new Uint8Array(0);
  rootCount = new Int32Array(0);
  unsyncChildren = new Uint16Array(0);
  unsyncBitmap = new Uint32Array(0);
  /** pte_list head of the parent entries pointing at this page (in `parents`). */
  parentPtes = new Uint32Array(0);
  /** KVM write_flooding_count: emulated writes since the page was last used (see `countFloodingWrite`). */
  writeFlooding = new Uint8Array(0);
  /** Pages whose write-flooding count is not 0: while none is, a fault has none to clear. */
  floodedPages = 0;
  hashNext = new Int32Array(0);
  hashPrev = new Int32Array(0);
  listNext = new Int32Array(0);
  listPrev = new Int32Array(0);
  /** First page id of each hash bucket (0 = empty). */
  readonly buckets = new Int32Array(MMU_HASH_BUCKETS);
  /** Descriptors of every page's parent_ptes list. */
  readonly parents = new PteListPool(256);

  /** Pages allocated (ordinary and special). */
  allocated = 0;
  private nextFresh = 1;
  private freeTop = 0;
  private freeIds = new Int32Array(0);

  constructor() {
    this.grow(INITIAL_PAGES);
    this.listNext[0] = 0;
    this.listPrev[0] = 0;
  }

  /** Bytes of every typed array this table holds (host memory cost). */
  get byteLength(): number {
    return (
      this.sptLo.byteLength +
      this.sptHi.byteLength +
      this.translation.byteLength +
      this.role.byteLength +
      this.gfn.byteLength +
      this.gen.byteLength +
      this.flags.byteLength +
      this.rootCount.byteLength +
      this.unsyncChildren.byteLength +
      this.unsyncBitmap.byteLength +
      this.parentPtes.byteLength +
      this.writeFlooding.byteLength +
      this.hashNext.byteLength +
      this.hashPrev.byteLength +
      this.listNext.byteLength +
      this.listPrev.byteLength +
      this.buckets.byteLength +
      this.freeIds.byteLength +
      this.parents.byteLength
    );
  }

  /** A zeroed page with no links; the caller sets role, gfn, gen and flags. */
  alloc(): number {
    let id: number;
    if (this.freeTop > 0) {
      id = this.freeIds[--this.freeTop]!;
    } else {
      if (this.nextFresh === this.capacity) this.grow(this.capacity * 2);
      id = this.nextFresh++;
    }
    const base = id * SPTE_ENT_PER_PAGE;
    this.sptLo.fill(0, base, base + SPTE_ENT_PER_PAGE);
    this.sptHi.fill(0, base, base + SPTE_ENT_PER_PAGE);
    this.translation.fill(0, base, base + SPTE_ENT_PER_PAGE);
    this.unsyncBitmap.fill(0, id * UNSYNC_BITMAP_WORDS, (id + 1) * UNSYNC_BITMAP_WORDS);
    this.role[id] = 0;
    this.gfn[id] = 0;
    this.gen[id] = 0;
    this.flags[id] = SP_IN_USE;
    this.rootCount[id] = 0;
    this.unsyncChildren[id] = 0;
    this.parentPtes[id] = 0;
    this.clearWriteFlooding(id);
    this.hashNext[id] = 0;
    this.hashPrev[id] = 0;
    this.listNext[id] = 0;
    this.listPrev[id] = 0;
    this.allocated++;
    return id;
  }

  /** Return an id to the free list; it must be unhashed and off the active list. */
  free(id: number): void {
    if ((this.flags[id]! & (SP_HASHED | SP_ON_ACTIVE_LIST)) !== 0 || (this.flags[id]! & SP_IN_USE) === 0) {
      throw new HvmmuError('BAD_ARGUMENT', `shadow page ${id} freed while still linked or not in use`);
    }
    this.flags[id] = 0;
    this.clearWriteFlooding(id);
    this.freeIds[this.freeTop++] = id;
    this.allocated--;
  }
  /** The page was used by a fault or a root load: its write-flooding count restarts at 0. */
  clearWriteFlooding(sp: number): void {
    // Usually no page is flooded: one load, not one per page.
    if (this.floodedPages !== 0 && this.writeFlooding[sp] !== 0) {
      this.writeFlooding[sp] = 0;
      this.floodedPages--;
    }
  }

  /**
   * `clearWriteFlooding` for the pages of a shadow path: `path[top]` down to
   * `path[2]` (one page per level), then `last`.
   */
  clearPathFlooding(path: Int32Array, top: number, last: number): void {
    if (this.floodedPages === 0) return;
    for (let level = top; level >= 2; level--) this.clearWriteFlooding(path[level]!);
    this.clearWriteFlooding(last);
  }

  /** One more emulated write to the page's table (saturating at 255); returns the new count. */
  countFloodingWrite(sp: number): number {
    const n = this.writeFlooding[sp]!;
    if (n === 0) this.floodedPages++;
    const next = Math.min(255, n + 1);
    this.writeFlooding[sp] = next;
    return next;
  }

  isInUse(id: number): boolean {
    return id > 0 && id < this.capacity && (this.flags[id]! & SP_IN_USE) !== 0;
  }

  // --------------------------------------------------------------- hash

  /** Head of the hash bucket of gfn (0 = empty); follow `hashNext`. */
  bucketHead(gfn: number): number {
    return this.buckets[mmuHash(gfn)]!;
  }

  /** hlist_add_head into the bucket of the page's gfn. */
  hashAdd(id: number): void {
    const b = mmuHash(this.gfn[id]!);
    const head = this.buckets[b]!;
    this.hashNext[id] = head;
    this.hashPrev[id] = 0;
    if (head !== 0) this.hashPrev[head] = id;
    this.buckets[b] = id;
    this.flags[id]! |= SP_HASHED;
  }

  hashDel(id: number): void {
    if ((this.flags[id]! & SP_HASHED) === 0) return;
    const next = this.hashNext[id]!;
    const prev = this.hashPrev[id]!;
    if (prev !== 0) this.hashNext[prev] = next;
    else this.buckets[mmuHash(this.gfn[id]!)] = next;
    if (next !== 0) this.hashPrev[next] = prev;
    this.hashNext[id] = 0;
    this.hashPrev[id] = 0;
    this.flags[id]! &= ~SP_HASHED;
  }

  // -------------------------------------------------------- active list

  /** Newest page (0 if none). */
  get activeHead(): number {
    return this.listNext[0]!;
  }

  /** Oldest page (0 if none). */
  get activeTail(): number {
    return this.listPrev[0]!;
  }

  /** list_add: new pages go to the head, so the tail holds the oldest (fast zap relies on this FIFO order). */
  listAddHead(id: number): void {
    const first = this.listNext[0]!;
    this.listNext[id] = first;
    this.listPrev[id] = 0;
    this.listPrev[first] = id;
    this.listNext[0] = id;
    this.flags[id]! |= SP_ON_ACTIVE_LIST;
  }

  listDel(id: number): void {
    if ((this.flags[id]! & SP_ON_ACTIVE_LIST) === 0) return;
    const next = this.listNext[id]!;
    const prev = this.listPrev[id]!;
    this.listNext[prev] = next;
    this.listPrev[next] = prev;
    this.listNext[id] = 0;
    this.listPrev[id] = 0;
    this.flags[id]! &= ~SP_ON_ACTIVE_LIST;
  }

  // ---------------------------------------------------- unsync bitmap

  testUnsyncBit(id: number, index: number): boolean {
    return (this.unsyncBitmap[id * UNSYNC_BITMAP_WORDS + (index >>> 5)]! & (1 << (index & 31))) !== 0;
  }

  /** Sets the bit; returns true if it was already set (test_and_set_bit). */
  testAndSetUnsyncBit(id: number, index: number): boolean {
    const w = id * UNSYNC_BITMAP_WORDS + (index >>> 5);
    const bit = 1 << (index & 31);
    const old = this.unsyncBitmap[w]!;
    this.unsyncBitmap[w] = old | bit;
    return (old & bit) !== 0;
  }

  clearUnsyncBit(id: number, index: number): void {
    const w = id * UNSYNC_BITMAP_WORDS + (index >>> 5);
    this.unsyncBitmap[w]! &= ~(1 << (index & 31));
  }

  /** Set bits of the unsync bitmap (for invariant checks). */
  unsyncBitCount(id: number): number {
    let n = 0;
    for (let k = 0; k < UNSYNC_BITMAP_WORDS; k++) {
      let v = this.unsyncBitmap[id * UNSYNC_BITMAP_WORDS + k]!;
      while (v !== 0) {
        v &= v - 1;
        n++;
      }
    }
    return n;
  }

  private grow(capacity: number): void {
    if (capacity > MAX_PAGES) {
      if (this.capacity >= MAX_PAGES) {
        throw new HvmmuError('HOST_OUT_OF_MEMORY', `shadow page table is full (${MAX_PAGES} pages)`);
      }
      capacity = MAX_PAGES;
    }
    const entries = capacity * SPTE_ENT_PER_PAGE;
    this.sptLo = copyInto(new Uint32Array(entries), this.sptLo);
    this.sptHi = copyInto(new Uint32Array(entries), this.sptHi);
    this.translation = copyInto(new Float64Array(entries), this.translation);
    this.role = copyInto(new Uint32Array(capacity), this.role);
    this.gfn = copyInto(new Float64Array(capacity), this.gfn);
    this.gen = copyInto(new Uint8Array(capacity), this.gen);
    this.flags = copyInto(new Uint8Array(capacity), this.flags);
    this.rootCount = copyInto(new Int32Array(capacity), this.rootCount);
    this.unsyncChildren = copyInto(new Uint16Array(capacity), this.unsyncChildren);
    this.unsyncBitmap = copyInto(new Uint32Array(capacity * UNSYNC_BITMAP_WORDS), this.unsyncBitmap);
    this.parentPtes = copyInto(new Uint32Array(capacity), this.parentPtes);
    this.writeFlooding = copyInto(new Uint8Array(capacity), this.writeFlooding);
    this.hashNext = copyInto(new Int32Array(capacity), this.hashNext);
    this.hashPrev = copyInto(new Int32Array(capacity), this.hashPrev);
    this.listNext = copyInto(new Int32Array(capacity), this.listNext);
    this.listPrev = copyInto(new Int32Array(capacity), this.listPrev);
    this.freeIds = copyInto(new Int32Array(capacity), this.freeIds);
    this.capacity = capacity;
  }
}

function copyInto<T extends Uint8Array | Uint16Array | Uint32Array | Int32Array | Float64Array>(to: T, from: T): T {
  to.set(from as never);
  return to;
}
