import type { InjectionToken } from 'tsyringe';
import type { X86ShadowOptions } from '../X86ShadowOptions.js';
import type { X86Memslot } from '../X86ShadowTypes.js';

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
  flush(slot: X86Memslot): void;
}

export type MemslotInvalidationName = X86ShadowOptions['memslotInvalidation'];

export const MEMSLOT_INVALIDATION_NAMES: readonly MemslotInvalidationName[] = ['fast-zap', 'invalid-rmap'];

export const MEMSLOT_FLUSH_STRATEGY: InjectionToken<MemslotFlushStrategy> = Symbol.for('hvmmu.x86.MemslotFlushStrategy');
