/**
 * An rmap strategy table: the set of reverse-map operations a memslot goes
 * through, as Xiao Guangrong's 2013 KVM patch "KVM: MMU: introduce invalid
 * rmap handlers" (kvm@vger; never merged — upstream zaps everything instead,
 * kvm_mmu_zap_all_fast) switched a slot from its normal rmap handlers to
 * invalid-slot handlers (`slot->arch.ops`). Every piece of rmap work on a slot goes through the table
 * `slot.rmapOps` points at. Core owns the switch — a slot starts on
 * `normal`; deleting or moving it puts it on `invalid` first, then the MMU
 * tears down whatever still maps it, then the slot is freed — and never
 * calls an operation itself: what the operations are is the backend's type
 * (x86's pte_list handlers, a nested rmap that never removes single entries,
 * an HPT chain), declared as `BackendTypes['rmapOps']`.
 */
export interface RmapStrategy {
  /** Name the table is registered under (`normal`, `invalid`, …). */
  readonly name: string;
}

/** Names core itself relies on; a backend must register both. */
export const RMAP_NORMAL = 'normal';
export const RMAP_INVALID = 'invalid';
