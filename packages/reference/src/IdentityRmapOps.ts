import type { Memslot, RmapStrategy } from '@hvmmu/core';
import type { IdentityTypes } from './IdentityTypes.js';

/**
 * The identity backend's rmap strategy table: the seven operations of the
 * 2013 KVM patch "KVM: MMU: introduce invalid rmap handlers" (add, remove,
 * write-protect, set_pte, age, test_age, unmap), on the identity MMU's
 * per-slot rmap. An rmap head is
 * (slot, gfn, level); only level 1 exists here. The boolean results follow
 * KVM's handlers: "did anything change / is a flush needed" for
 * writeProtect/setPte/unmap, "young" for age/testAge.
 */
export interface IdentityRmapOps extends RmapStrategy {
  /** Record that `entry` maps gfn at level. */
  add(slot: Memslot<IdentityTypes>, gfn: number, level: number, entry: number): void;
  /** Forget one entry (the mapping itself is being dropped by the caller). */
  remove(slot: Memslot<IdentityTypes>, gfn: number, level: number, entry: number): void;
  /** Remove write access from every entry mapping gfn at level. */
  writeProtect(slot: Memslot<IdentityTypes>, gfn: number, level: number): boolean;
  /** The host page behind gfn changed to `hfn` (change_pte): re-point or drop entries. */
  setPte(slot: Memslot<IdentityTypes>, gfn: number, level: number, hfn: number, writable: boolean): boolean;
  /** Clear accessed state; true if any entry was young. */
  age(slot: Memslot<IdentityTypes>, gfn: number, level: number): boolean;
  /** True if any entry is young; changes nothing. */
  testAge(slot: Memslot<IdentityTypes>, gfn: number, level: number): boolean;
  /** Drop every entry mapping gfn at level. */
  unmap(slot: Memslot<IdentityTypes>, gfn: number, level: number): boolean;
}
