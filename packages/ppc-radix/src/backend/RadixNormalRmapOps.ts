import { RMAP_NORMAL, type Memslot } from '@hvmmu/core';
import type { PpcRadixTypes } from './PpcRadixTypes.js';
import type { RadixRmapContext } from './RadixRmapContext.js';
import type { RadixRmapOps } from './RadixRmapOps.js';
import { RadixSlotRmap } from './RadixSlotRmap.js';

/** The `normal` table: KVM-HV's radix handlers on a live slot (see `RadixRmapOps`). */
export class RadixNormalRmapOps implements RadixRmapOps {
  readonly name: string = RMAP_NORMAL;

  constructor(protected readonly context: RadixRmapContext) {}

  unmap(slot: Memslot<PpcRadixTypes>, gfn: number): boolean {
    return this.context.unmapLeaf(slot, gfn);
  }

  age(slot: Memslot<PpcRadixTypes>, gfn: number): boolean {
    return this.context.age(slot, gfn);
  }

  testAge(_slot: Memslot<PpcRadixTypes>, gfn: number): boolean {
    return this.context.testAge(gfn);
  }

  clearDirty(slot: Memslot<PpcRadixTypes>, gfn: number): boolean {
    return this.context.clearDirty(slot, gfn);
  }

  setPte(slot: Memslot<PpcRadixTypes>, gfn: number, _hfn: number): boolean {
    return this.context.unmapLeaf(slot, gfn);
  }

  insertNested(slot: Memslot<PpcRadixTypes>, gfn: number, lpid: number, l2Gfn: number): boolean {
    return RadixSlotRmap.of(slot).nested.insert(gfn - slot.baseGfn, lpid, l2Gfn);
  }
}
