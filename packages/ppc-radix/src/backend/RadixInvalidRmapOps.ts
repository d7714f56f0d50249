import { RMAP_INVALID, type Memslot } from '@hvmmu/core';
import type { PpcRadixTypes } from './PpcRadixTypes.js';
import type { RadixRmapContext } from './RadixRmapContext.js';
import type { RadixRmapOps } from './RadixRmapOps.js';

/**
 * The `invalid` table: what a slot being deleted or moved goes through while
 * the MMU tears down its mappings (the 2013 KVM patch "KVM: MMU: introduce
 * invalid rmap handlers"; on POWER, kvmppc_radix_flush_memslot unmaps every
 * page of the slot). No translation reaches an invalid slot, so nothing may
 * be added or re-armed: insertNested and clearDirty warn and do nothing.
 * Every other operation drops what it finds — a leaf of an invalid slot is
 * stale and may be neither kept young nor re-pointed.
 */
export class RadixInvalidRmapOps implements RadixRmapOps {
  readonly name: string = RMAP_INVALID;

  constructor(protected readonly context: RadixRmapContext) {}

  unmap(slot: Memslot<PpcRadixTypes>, gfn: number): boolean {
    return this.context.unmapLeaf(slot, gfn);
  }

  age(slot: Memslot<PpcRadixTypes>, gfn: number): boolean {
    return this.context.unmapLeaf(slot, gfn);
  }

  testAge(slot: Memslot<PpcRadixTypes>, gfn: number): boolean {
    return this.context.unmapLeaf(slot, gfn);
  }

  clearDirty(slot: Memslot<PpcRadixTypes>, gfn: number): boolean {
    this.context.warn('clearDirty', slot, gfn);
    return false;
  }

  setPte(slot: Memslot<PpcRadixTypes>, gfn: number, _hfn: number): boolean {
    return this.context.unmapLeaf(slot, gfn);
  }

  insertNested(slot: Memslot<PpcRadixTypes>, gfn: number, _lpid: number, _l2Gfn: number): boolean {
    this.context.warn('insertNested', slot, gfn);
    return false;
  }
}
