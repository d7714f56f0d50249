import { HvmmuError } from '@hvmmu/core';

/**
 * KVM's pte_list (mmu.c `pte_list_add` / `pte_list_remove`, 2023 layout
 * with `tail_count`), the encoding of both the rmaps and `parent_ptes`, on
 * typed arrays.
 *
 * A list head is one uint32 `val`:
 * - `0`: empty;
 * - even: a single entry, `val = sptep * 2` (KVM: bit 0 clear, the pointer);
 * - odd: a descriptor chain, `val = desc * 2 + 1` (KVM: `desc | 1`).
 *
 * `sptep` is a shadow-entry handle (shadow-page id × 512 + index, never 0).
 * A descriptor is `{ more, spte_count, tail_count, sptes[14] }` (17 words).
 * Only the head descriptor may be partly filled; every descriptor behind it
 * is full and `head.tail_count` counts the entries behind the head. Removal
 * moves the head's last entry into the hole, so tails stay full; an emptied
 * head is freed and the next descriptor becomes the head. A list never
 * shrinks back to the single-entry form.
 *
 * `PTE_LIST_SPTE_SKIP` is the marker the invalid-rmap strategy (Xiao
 * Guangrong's 2013 patch "KVM: MMU: introduce invalid rmap handlers")
 * writes over an entry it clears "concurrently": the list keeps its shape
 * and memory, walkers skip the marker.
 */
export const PTE_LIST_EXT = 14;
/** Words per descriptor: more, spte_count, tail_count, 14 entries. */
export const PTE_LIST_DESC_WORDS = 3 + PTE_LIST_EXT;
export const DESC_MORE = 0;
export const DESC_COUNT = 1;
export const DESC_TAIL = 2;
export const DESC_SPTES = 3;
/** Entry value meaning "cleared in place" (KVM's PTE_LIST_SPTE_SKIP). */
export const PTE_LIST_SPTE_SKIP = 0x7fff_ffff;
/** Largest entry handle a list can hold (the single form stores it doubled in a uint32). */
export const PTE_LIST_MAX_SPTEP = PTE_LIST_SPTE_SKIP - 1;

const INITIAL_DESCS = 64;
/** Descriptor ids are stored doubled in a uint32 head. */
const MAX_DESCS = 0x7fff_ffff;

export function isSingle(val: number): boolean {
  return val !== 0 && (val & 1) === 0;
}

export function isDescChain(val: number): boolean {
  return (val & 1) === 1;
}

/** The entry of a single-form head. */
export function singleEntry(val: number): number {
  return val >>> 1;
}

/** The head descriptor of a chain head. */
export function headDesc(val: number): number {
  return val >>> 1;
}

/**
 * A pool of pte_list descriptors with a free list (KVM's
 * `pte_list_desc_cache`), plus the list operations. One pool per memslot
 * for rmaps (so "memory freed with the slot" is literal) and one per VM for
 * parent pointers.
 */
export class PteListPool {
  /** Descriptor words; descriptor d occupies [d*17, d*17+17). Descriptor 0 is never used. */
  words: Uint32Array;
  private capacity: number;
  private next = 1;
  private freeHead = 0;
  /** Descriptors currently allocated. */
  inUse = 0;

  constructor(initialDescs: number = INITIAL_DESCS) {
    this.capacity = Math.max(2, initialDescs);
    this.words = new Uint32Array(this.capacity * PTE_LIST_DESC_WORDS);
  }

  /** Bytes of the descriptor array (what this pool costs the host). */
  get byteLength(): number {
    return this.words.byteLength;
  }

  allocDesc(): number {
    let d = this.freeHead;
    if (d !== 0) {
      this.freeHead = this.words[d * PTE_LIST_DESC_WORDS + DESC_MORE]!;
    } else {
      if (this.next === this.capacity) this.grow();
      d = this.next++;
    }
    const base = d * PTE_LIST_DESC_WORDS;
    this.words.fill(0, base, base + PTE_LIST_DESC_WORDS);
    this.inUse++;
    return d;
  }

  freeDesc(d: number): void {
    this.words[d * PTE_LIST_DESC_WORDS + DESC_MORE] = this.freeHead;
    this.freeHead = d;
    this.inUse--;
  }

  private grow(): void {
    if (this.capacity >= MAX_DESCS) {
      throw new HvmmuError('HOST_OUT_OF_MEMORY', 'pte_list descriptor pool is full');
    }
    const capacity = Math.min(MAX_DESCS, this.capacity * 2);
    const words = new Uint32Array(capacity * PTE_LIST_DESC_WORDS);
    words.set(this.words);
    this.words = words;
    this.capacity = capacity;
  }

  /**
   * pte_list_add: append `sptep` to the list at `heads[at]`. Returns the
   * number of entries before the add (KVM uses it for the rmap recycle
   * threshold).
   */
  add(heads: Uint32Array, at: number, sptep: number): number {
    const val = heads[at]!;
    if (val === 0) {
      heads[at] = sptep * 2;
      return 0;
    }
    if ((val & 1) === 0) {
      const d = this.allocDesc();
      const base = d * PTE_LIST_DESC_WORDS;
      const w = this.words;
      w[base + DESC_SPTES] = val >>> 1;
      w[base + DESC_SPTES + 1] = sptep;
      w[base + DESC_COUNT] = 2;
      w[base + DESC_TAIL] = 0;
      heads[at] = d * 2 + 1;
      return 1;
    }
    let d = val >>> 1;
    let w = this.words;
    let base = d * PTE_LIST_DESC_WORDS;
    const count = w[base + DESC_TAIL]! + w[base + DESC_COUNT]!;
    if (w[base + DESC_COUNT] === PTE_LIST_EXT) {
      // Tail descriptors stay full: a full head gets a new head in front of it.
      const nd = this.allocDesc();
      w = this.words;
      const nbase = nd * PTE_LIST_DESC_WORDS;
      w[nbase + DESC_MORE] = d;
      w[nbase + DESC_COUNT] = 0;
      w[nbase + DESC_TAIL] = count;
      heads[at] = nd * 2 + 1;
      d = nd;
      base = nbase;
    }
    const n = w[base + DESC_COUNT]!;
    w[base + DESC_SPTES + n] = sptep;
    w[base + DESC_COUNT] = n + 1;
    return count;
  }

  /**
   * pte_list_remove: drop `sptep` from the list at `heads[at]`, filling the
   * hole with the head descriptor's last entry. Returns false if the entry is
   * not on the list (a bug in the caller: KVM reports data corruption).
   */
  remove(heads: Uint32Array, at: number, sptep: number): boolean {
    const val = heads[at]!;
    if (val === 0) return false;
    if ((val & 1) === 0) {
      if (val >>> 1 !== sptep) return false;
      heads[at] = 0;
      return true;
    }
    const word = this.findInChain(val >>> 1, sptep);
    if (word < 0) return false;
    this.removeEntry(heads, at, word);
    return true;
  }

  /** Word index of `sptep` in the descriptor chain starting at `desc`, or -1. */
  private findInChain(desc: number, sptep: number): number {
    const w = this.words;
    for (let d = desc; d !== 0; d = w[d * PTE_LIST_DESC_WORDS + DESC_MORE]!) {
      const base = d * PTE_LIST_DESC_WORDS;
      const n = w[base + DESC_COUNT]!;
      for (let i = 0; i < n; i++) if (w[base + DESC_SPTES + i] === sptep) return base + DESC_SPTES + i;
    }
    return -1;
  }

  /** pte_list_desc_remove_entry: overwrite the slot at word `slotWord` with the head's last entry. */
  private removeEntry(heads: Uint32Array, at: number, slotWord: number): void {
    const w = this.words;
    const head = heads[at]! >>> 1;
    const hbase = head * PTE_LIST_DESC_WORDS;
    const j = w[hbase + DESC_COUNT]! - 1;
    w[slotWord] = w[hbase + DESC_SPTES + j]!;
    w[hbase + DESC_SPTES + j] = 0;
    w[hbase + DESC_COUNT] = j;
    if (j > 0) return;
    const more = w[hbase + DESC_MORE]!;
    heads[at] = more === 0 ? 0 : more * 2 + 1;
    this.freeDesc(head);
  }

  /**
   * The invalid-rmap "clear concurrently" (the 2013 patch above): overwrite
   * the entry with the skip marker, keeping the list's shape and memory.
   * Returns false if the entry is not on the list.
   */
  clearInPlace(heads: Uint32Array, at: number, sptep: number): boolean {
    const val = heads[at]!;
    if (val === 0) return false;
    if ((val & 1) === 0) {
      if (val >>> 1 !== sptep) return false;
      heads[at] = PTE_LIST_SPTE_SKIP * 2;
      return true;
    }
    const word = this.findInChain(val >>> 1, sptep);
    if (word < 0) return false;
    this.words[word] = PTE_LIST_SPTE_SKIP;
    return true;
  }

  /** pte_list_count (skip markers included: they still occupy their slot). */
  count(val: number): number {
    if (val === 0) return 0;
    if ((val & 1) === 0) return 1;
    const base = (val >>> 1) * PTE_LIST_DESC_WORDS;
    return this.words[base + DESC_TAIL]! + this.words[base + DESC_COUNT]!;
  }

  /** pte_list_destroy: free every descriptor of the list; the caller resets the head. */
  destroy(val: number): void {
    if ((val & 1) === 0) return;
    const w = this.words;
    let d = val >>> 1;
    while (d !== 0) {
      const more = w[d * PTE_LIST_DESC_WORDS + DESC_MORE]!;
      this.freeDesc(d);
      d = more;
    }
  }

  /**
   * Copy the list's entries (skip markers included) into `out` from index 0;
   * returns how many. For walkers that change the list while iterating and
   * for tests. `out` must hold `count(val)` entries.
   */
  collect(val: number, out: Uint32Array | number[]): number {
    if (val === 0) return 0;
    if ((val & 1) === 0) {
      out[0] = val >>> 1;
      return 1;
    }
    const w = this.words;
    let k = 0;
    for (let d = val >>> 1; d !== 0; d = w[d * PTE_LIST_DESC_WORDS + DESC_MORE]!) {
      const base = d * PTE_LIST_DESC_WORDS;
      const n = w[base + DESC_COUNT]!;
      for (let i = 0; i < n; i++) out[k++] = w[base + DESC_SPTES + i]!;
    }
    return k;
  }

  /**
   * The shape of a list, for tests and invariant checks: the spte_count of
   * each descriptor from head to tail, and the head's tail_count. A single
   * entry is `[1]` with tail 0; empty is `[]`.
   */
  shape(val: number): { counts: number[]; tailCount: number } {
    if (val === 0) return { counts: [], tailCount: 0 };
    if ((val & 1) === 0) return { counts: [1], tailCount: 0 };
    const w = this.words;
    const counts: number[] = [];
    for (let d = val >>> 1; d !== 0; d = w[d * PTE_LIST_DESC_WORDS + DESC_MORE]!) {
      counts.push(w[d * PTE_LIST_DESC_WORDS + DESC_COUNT]!);
    }
    return { counts, tailCount: w[(val >>> 1) * PTE_LIST_DESC_WORDS + DESC_TAIL]! };
  }
}
