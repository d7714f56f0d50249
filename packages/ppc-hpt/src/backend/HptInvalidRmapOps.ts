import { RMAP_INVALID, type Memslot } from '@hvmmu/core';
import type { HptRmapContext } from './HptRmapContext.js';
import type { HptRmapOps } from './HptRmapOps.js';
import type { PpcHptTypes } from './PpcHptTypes.js';

/**
 * The `invalid` rmap table: what a slot being deleted or moved points at
 * while its mappings are torn down (the 2013 KVM patch "KVM: MMU: introduce
 * invalid rmap handlers"). No new entry may join a ring of an invalid slot
 * (KVM refuses such a slot in H_ENTER and the page fault: the entry stays
 * ABSENT), so add warns and does nothing; remove and unmap work as usual;
 * aging unmaps what it finds (nothing of an invalid slot may stay young),
 * and a dirty-log harvest of a slot being deleted is a warning.
 */
export class HptInvalidRmapOps implements HptRmapOps {
  readonly name: string = RMAP_INVALID;

  constructor(protected readonly context: HptRmapContext) {}

  add(slot: Memslot<PpcHptTypes>, gfn: number, ptex: number): void {
    this.warn('add', slot, gfn, ptex);
  }

  remove(slot: Memslot<PpcHptTypes>, gfn: number, ptex: number): void {
    this.context.unlink(slot, gfn, ptex);
  }

  unmap(slot: Memslot<PpcHptTypes>, gfn: number): boolean {
    return this.context.unmapAll(slot, gfn);
  }

  age(slot: Memslot<PpcHptTypes>, gfn: number): boolean {
    this.context.unmapAll(slot, gfn);
    return false;
  }

  testAge(slot: Memslot<PpcHptTypes>, gfn: number): boolean {
    this.context.unmapAll(slot, gfn);
    return false;
  }

  harvestDirty(slot: Memslot<PpcHptTypes>, gfn: number): boolean {
    this.warn('harvestDirty', slot, gfn, -1);
    return false;
  }

  private warn(op: string, slot: Memslot<PpcHptTypes>, gfn: number, ptex: number): void {
    this.context.counters.invalidSlotWarnings++;
    const trace = this.context.trace;
    if (trace !== null) trace({ kind: 'rmap-invalid-slot-warning', op, slot: slot.id, gfn, ptex });
  }
}
