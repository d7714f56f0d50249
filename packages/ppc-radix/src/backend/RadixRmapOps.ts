import type { Memslot, RmapStrategy } from '@hvmmu/core';
import type { PpcRadixTypes } from './PpcRadixTypes.js';

/**
 * The radix backend's rmap strategy table: the per-gfn handlers KVM-HV runs
 * for a radix guest (arch/powerpc/kvm/book3s_64_mmu_radix.c), each taking
 * (memslot, gfn) and finding L1's leaf through the partition-scoped tree,
 * plus the nested rmap insert. A slot goes through `normal` while live and
 * through `invalid` while it is deleted or moved (core's switch). Boolean
 * results: "something was dropped or changed" (unmap, setPte, clearDirty,
 * insertNested), "young" (age, testAge).
 */
export interface RadixRmapOps extends RmapStrategy {
  /** kvm_unmap_radix: kvmppc_unmap_pte on gfn's leaf (clear, tlbie, remove the nested rmap range). */
  unmap(slot: Memslot<PpcRadixTypes>, gfn: number): boolean;
  /**
   * kvm_age_radix: clear R of gfn's leaf, and in the L2 shadow entries
   * gfn's nested rmap names (kvmhv_update_nest_rmap_rc_list); true if it
   * was set.
   */
  age(slot: Memslot<PpcRadixTypes>, gfn: number): boolean;
  /** kvm_test_age_radix: R of gfn's leaf, changing nothing. */
  testAge(slot: Memslot<PpcRadixTypes>, gfn: number): boolean;
  /** kvm_radix_test_clear_dirty for one page: clear C (and tlbie) so the next store faults and is logged (KVM clears C in the nested rmap's L2 entries too). */
  clearDirty(slot: Memslot<PpcRadixTypes>, gfn: number): boolean;
  /** change_pte (kvm_set_spte_gfn_hv): radix KVM unmaps; the next fault maps the new frame. */
  setPte(slot: Memslot<PpcRadixTypes>, gfn: number, hfn: number): boolean;
  /** kvmhv_insert_nest_rmap: record that an L2 (L1's LPID `lpid`) maps its frame `l2Gfn` from gfn. */
  insertNested(slot: Memslot<PpcRadixTypes>, gfn: number, lpid: number, l2Gfn: number): boolean;
}
