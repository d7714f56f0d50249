import type { BackendTypes } from '../vm/BackendTypes.js';
import type { Memslot, MemslotChange } from './Memslot.js';

/**
 * How the memslot table tells the MMU about changes, in KVM's order:
 *
 * - create:  prepareMemslot (returns the slot's backend data) → slot becomes
 *            visible → commitMemslot
 * - delete:  slot switched to the `invalid` rmap table and hidden from
 *            lookups → flushMemslot (tear down everything mapping it) →
 *            frames freed → commitMemslot (free per-slot backend data)
 * - move:    as delete up to flushMemslot, then the new base →
 *            prepareMemslot (fresh per-slot data) → visible → commitMemslot
 * - flags:   flags changed → commitMemslot (dirty logging on: write-protect;
 *            off: allow large mappings again)
 */
export interface MemslotListener<T extends BackendTypes = BackendTypes> {
  /** Make the slot's backend data (KVM kvm_arch_prepare_memory_region); core stores it as `slot.arch`. */
  prepareMemslot(slot: Memslot<T>, change: MemslotChange): T['slotData'];
  /** Remove every mapping of the (already invalid) slot (kvm_arch_flush_shadow_memslot). */
  flushMemslot(slot: Memslot<T>, change: MemslotChange): void;
  /** The change is complete (kvm_arch_commit_memory_region). */
  commitMemslot(slot: Memslot<T>, change: MemslotChange, oldFlags: number): void;
  /**
   * The host pages behind [startGfn, endGfn) of `slot` changed or are about
   * to (MMU-notifier invalidate: copy-on-write of the zero frame, eviction).
   * Drop every mapping of them and flush TLBs. Returns mappings dropped.
   */
  invalidateGfnRange(slot: Memslot<T>, startGfn: number, endGfn: number): number;
  /**
   * The host frame behind gfn was replaced by `hfn` with the same contents
   * (page migration, KSM; KVM's change_pte): re-point mappings read-only or
   * drop them.
   */
  changeGfnPte(slot: Memslot<T>, gfn: number, hfn: number): void;
  /** Dirty bits were harvested: re-arm logging for the pages in `harvested` (write-protect them). */
  dirtyLogHarvested(slot: Memslot<T>, harvested: Uint32Array): void;
}
