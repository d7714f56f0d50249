import { OptionSpec, type BackendOptionSpec } from '../vm/BackendOptions.js';

/**
 * How a memslot delete or move tears down the mappings of the slot — one
 * name per concept on every backend (the backend option `memslotInvalidation`
 * takes these values; `capabilities.memslotInvalidation` lists the ones a
 * backend offers).
 */
export const MemslotInvalidation = {
  /**
   * The slot goes to the `invalid` rmap table and each of its pages is
   * unmapped through it (the 2013 KVM patch "KVM: MMU: introduce invalid
   * rmap handlers"; kvmppc_core_flush_memslot_hv on POWER unmaps a slot's
   * pages through its rmaps the same way).
   */
  INVALID_RMAP: 'invalid-rmap',
  /**
   * Every mapping of the VM is made obsolete at once and dropped lazily
   * (arch/x86/kvm/mmu/mmu.c, kvm_mmu_zap_all_fast).
   */
  FAST_ZAP: 'fast-zap',
} as const;
export type MemslotInvalidationName = (typeof MemslotInvalidation)[keyof typeof MemslotInvalidation];

/** The `memslotInvalidation` option spec for a backend offering `supported` (default first). */
export function memslotInvalidationOption<const S extends MemslotInvalidationName>(supported: readonly S[], defaultValue: S): BackendOptionSpec<S> {
  return OptionSpec.oneOf(supported, defaultValue, 'how a memslot delete or move tears down the mappings of the slot');
}
