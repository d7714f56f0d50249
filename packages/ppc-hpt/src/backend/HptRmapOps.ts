import type { Memslot, RmapStrategy } from '@hvmmu/core';
import type { PpcHptTypes } from './PpcHptTypes.js';

/**
 * The HPT backend's rmap strategy table: the operations KVM HV performs on
 * a guest page's reverse-map ring (arch/powerpc/kvm/book3s_64_mmu_hv.c),
 * on a memslot's `HptSlotRmap`. A ring holds exactly the valid real
 * entries mapping the page (an ABSENT entry is on no ring). The boolean
 * results follow KVM: "anything unmapped" for unmap, "young" for
 * age/testAge, "dirty" for harvestDirty.
 */
export interface HptRmapOps extends RmapStrategy {
  /** Valid real entry `ptex` now maps gfn (kvmppc_add_revmap_chain). */
  add(slot: Memslot<PpcHptTypes>, gfn: number, ptex: number): void;
  /** Entry `ptex` stops mapping gfn: off the ring, its real R/C kept in the rmap word and the guest view (remove_revmap_chain). */
  remove(slot: Memslot<PpcHptTypes>, gfn: number, ptex: number): void;
  /** Every entry mapping gfn becomes ABSENT (kvm_unmap_rmapp → kvmppc_unmap_hpte). */
  unmap(slot: Memslot<PpcHptTypes>, gfn: number): boolean;
  /** Clear R on every entry mapping gfn and the harvested R (kvm_age_rmapp); true if any was set. */
  age(slot: Memslot<PpcHptTypes>, gfn: number): boolean;
  /** R set on any entry mapping gfn, or harvested (kvm_test_age_rmapp); changes nothing. */
  testAge(slot: Memslot<PpcHptTypes>, gfn: number): boolean;
  /** Clear the host's C on every entry mapping gfn and the harvested C (kvm_test_clear_dirty_npages); true if any was set. */
  harvestDirty(slot: Memslot<PpcHptTypes>, gfn: number): boolean;
}
