import { RMAP_INVALID, type Memslot } from '@hvmmu/core';
import type { IdentityRmapOps } from './IdentityRmapOps.js';
import type { IdentityTypes } from './IdentityTypes.js';
import type { IdentityRmapContext } from './IdentityRmapContext.js';
import { IdentitySlotRmap } from './IdentitySlotRmap.js';

/**
 * The `invalid` rmap table (Xiao Guangrong's 2013 KVM patch "KVM: MMU:
 * introduce invalid rmap handlers", never merged): what a slot
 * being deleted or moved points at while the MMU tears down its mappings.
 * No translation can reach an invalid slot, so add and write-protect must
 * never happen: they warn (counted and traced) and do nothing. Remove clears
 * the head in place and keeps the rmap's memory (freed with the slot). Unmap,
 * set_pte, age and test_age all drop what they find: any entry still mapping
 * an invalid slot is stale and cannot be re-pointed or kept young.
 */
export class IdentityInvalidRmapOps implements IdentityRmapOps {
  readonly name: string = RMAP_INVALID;

  constructor(protected readonly context: IdentityRmapContext) {}

  add(slot: Memslot<IdentityTypes>, gfn: number, level: number, entry: number): void {
    this.warn('add', slot, gfn, level, entry);
  }

  remove(slot: Memslot<IdentityTypes>, gfn: number, _level: number, entry: number): void {
    const rmap = IdentitySlotRmap.of(slot);
    const index = gfn - slot.baseGfn;
    if (rmap.entryAt(index) === entry) rmap.clear(index);
  }

  writeProtect(slot: Memslot<IdentityTypes>, gfn: number, level: number): boolean {
    this.warn('writeProtect', slot, gfn, level, -1);
    return false;
  }

  setPte(slot: Memslot<IdentityTypes>, gfn: number, _level: number, _hfn: number, _writable: boolean): boolean {
    return this.drop(slot, gfn);
  }

  age(slot: Memslot<IdentityTypes>, gfn: number, _level: number): boolean {
    return this.drop(slot, gfn);
  }

  testAge(slot: Memslot<IdentityTypes>, gfn: number, _level: number): boolean {
    return this.drop(slot, gfn);
  }

  unmap(slot: Memslot<IdentityTypes>, gfn: number, _level: number): boolean {
    return this.drop(slot, gfn);
  }

  private drop(slot: Memslot<IdentityTypes>, gfn: number): boolean {
    return this.context.dropEntry(IdentitySlotRmap.of(slot), gfn - slot.baseGfn, gfn);
  }

  private warn(op: string, slot: Memslot<IdentityTypes>, gfn: number, level: number, entry: number): void {
    this.context.counters.invalidSlotWarnings++;
    const trace = this.context.trace;
    if (trace !== null) trace({ kind: 'rmap-invalid-slot-warning', op, slot: slot.id, gfn, level, entry });
  }
}
