import type { Memslot } from '@hvmmu/core';
import { NestedRmapSlots, type NestedRmapNodes } from '../nested/NestedRmap.js';
import type { PpcRadixTypes } from './PpcRadixTypes.js';

/**
 * What the radix backend keeps per memslot (`slot.arch`): KVM's
 * `memslot->arch.rmap[]`, one word per 4 KiB page. On radix KVM files no
 * rmap entry for L1's own partition-scoped leaves — the tree is indexed by
 * guest real address, so the leaf of (slot, gfn) is found by walking it
 * (find_kvm_secondary_pte) — and the words hold only the nested rmap: the L2
 * shadow entries derived from each L1 page (kvmhv_insert_nest_rmap). The
 * words are allocated on the first nested insert, so a slot no L2 maps costs
 * nothing here.
 */
export class RadixSlotRmap {
  readonly nested: NestedRmapSlots;

  constructor(npages: number, nodes: NestedRmapNodes) {
    this.nested = new NestedRmapSlots(npages, nodes);
  }

  get bytes(): number {
    return this.nested.bytes;
  }

  static of(slot: Memslot<PpcRadixTypes>): RadixSlotRmap {
    return slot.arch;
  }
}
