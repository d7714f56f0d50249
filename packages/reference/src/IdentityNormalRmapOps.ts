import { DEFAULT_CONTEXT, HvmmuError, RMAP_NORMAL, type Memslot } from '@hvmmu/core';
import type { IdentityRmapOps } from './IdentityRmapOps.js';
import type { IdentityTypes } from './IdentityTypes.js';
import type { IdentityRmapContext } from './IdentityRmapContext.js';
import { IdentitySlotRmap } from './IdentitySlotRmap.js';

/**
 * The `normal` rmap table of the identity backend: the seven operations of
 * the per-slot table (2013 KVM invalid-rmap patch) on a live slot, following
 * KVM's handlers (arch/x86/kvm/mmu/mmu.c): unmap zaps,
 * write-protect clears W, set_pte re-points read-only (or zaps when the new
 * host page is writable), age clears the accessed bit. Every change that could
 * leave a stale translation shoots the page down in all TLBs before returning.
 */
export class IdentityNormalRmapOps implements IdentityRmapOps {
  readonly name: string = RMAP_NORMAL;

  constructor(protected readonly context: IdentityRmapContext) {}

  add(slot: Memslot<IdentityTypes>, gfn: number, level: number, entry: number): void {
    const rmap = IdentitySlotRmap.of(slot);
    const index = gfn - slot.baseGfn;
    const old = rmap.entryAt(index);
    if (level !== 1 || (old >= 0 && old !== entry)) {
      // The identity table maps a gfn once, at 4 KiB: a second entry is an MMU bug, never guest input.
      throw new HvmmuError('BACKEND_INVALID', `identity rmap: gfn ${gfn} of slot ${slot.id} already maps entry ${old} (adding ${entry} at level ${level})`);
    }
    rmap.set(index, entry);
  }

  remove(slot: Memslot<IdentityTypes>, gfn: number, _level: number, entry: number): void {
    const rmap = IdentitySlotRmap.of(slot);
    const index = gfn - slot.baseGfn;
    if (rmap.entryAt(index) === entry) rmap.clear(index);
  }

  writeProtect(slot: Memslot<IdentityTypes>, gfn: number, _level: number): boolean {
    const { table, tlbs, counters } = this.context;
    const entry = IdentitySlotRmap.of(slot).entryAt(gfn - slot.baseGfn);
    if (entry < 0 || !table.isWritable(entry)) return false;
    table.setWritable(entry, false);
    tlbs.flushPage(DEFAULT_CONTEXT, gfn);
    counters.writeProtects++;
    return true;
  }

  setPte(slot: Memslot<IdentityTypes>, gfn: number, _level: number, hfn: number, writable: boolean): boolean {
    const { table, tlbs } = this.context;
    const rmap = IdentitySlotRmap.of(slot);
    const index = gfn - slot.baseGfn;
    const entry = rmap.entryAt(index);
    if (entry < 0) return false;
    // kvm_set_pte_rmap: a writable new host page is zapped (the next fault maps it);
    // otherwise the entry is re-pointed read-only so a write faults again.
    if (writable) return this.context.dropEntry(rmap, index, gfn);
    table.repoint(entry, hfn);
    table.setWritable(entry, false);
    tlbs.flushPage(DEFAULT_CONTEXT, gfn);
    return true;
  }

  age(slot: Memslot<IdentityTypes>, gfn: number, _level: number): boolean {
    const { table } = this.context;
    const entry = IdentitySlotRmap.of(slot).entryAt(gfn - slot.baseGfn);
    if (entry < 0 || !table.isAccessed(entry)) return false;
    // clear_young: no flush. A cached translation may keep serving the page
    // without re-marking it young; page reclaim tolerates that imprecision.
    table.clearAccessed(entry);
    return true;
  }

  testAge(slot: Memslot<IdentityTypes>, gfn: number, _level: number): boolean {
    const entry = IdentitySlotRmap.of(slot).entryAt(gfn - slot.baseGfn);
    return entry >= 0 && this.context.table.isAccessed(entry);
  }

  unmap(slot: Memslot<IdentityTypes>, gfn: number, _level: number): boolean {
    return this.context.dropEntry(IdentitySlotRmap.of(slot), gfn - slot.baseGfn, gfn);
  }
}
