import type { InjectionToken } from 'tsyringe';
import type { Memslot } from '@hvmmu/core';

/**
 * How memslot DELETE/MOVE tears down every mapping of the slot
 * (kvm_arch_flush_shadow_memslot). Chosen per VM by DI: backendOptions
 * `memslotInvalidation: 'invalid-rmap' | 'fast-zap'` binds one class to
 * `MEMSLOT_FLUSH_STRATEGY`.
 */
export interface MemslotFlushStrategy {
  readonly name: MemslotInvalidationName;
  /**
   * Called with the slot already hidden from lookups and switched to the
   * `invalid` rmap table. On return nothing may map a gfn of the slot and
   * no TLB may hold such a translation.
   */
  flush(slot: Memslot): void;
}

export type MemslotInvalidationName = 'invalid-rmap' | 'fast-zap';

export const MEMSLOT_INVALIDATION_NAMES: readonly MemslotInvalidationName[] = ['invalid-rmap', 'fast-zap'];

export const MEMSLOT_FLUSH_STRATEGY: InjectionToken<MemslotFlushStrategy> = Symbol.for('hvmmu.x86.MemslotFlushStrategy');
