import { HvmmuError, type VmConfig } from '@hvmmu/core';
import type { InjectionToken } from 'tsyringe';

/** Which optional parts an identity backend instance offers (its capabilities are derived from these). */
export interface IdentityMapFeatures {
  /** Backend id (distinct per configuration, so stats and traces tell them apart). */
  readonly id: string;
  /** Memslots may log dirty pages; without it, creating a LOG_DIRTY_PAGES slot is refused. */
  readonly dirtyLogging: boolean;
  /** READONLY memslots; without it, creating one is refused. */
  readonly readOnlyMemslots: boolean;
  /**
   * Aging (clear/test young) and change_pte re-pointing. Without it aging is
   * refused and change_pte drops the mapping instead (what KVM does since the
   * change_pte notifier was removed). Host-range invalidation itself always
   * works: core's copy-on-write of the zero frame relies on it.
   */
  readonly hostInvalidation: boolean;
  /** The SET_PROTECTION_TABLE and QUERY_PAGE hypercalls. */
  readonly hypercalls: boolean;
}

export const IDENTITY_FEATURES: InjectionToken<IdentityMapFeatures> = Symbol.for('hvmmu.conformance.IdentityMapFeatures');

/** How a memslot delete/move tears down mappings, chosen per VM with `backendOptions.memslotInvalidation`. */
export const IdentityMemslotInvalidation = {
  /** Xiao Guangrong's 2013 invalid-rmap design: the slot switches to the `invalid` rmap table, which unmaps each of its pages. */
  INVALID_RMAP: 'invalid-rmap',
  /** Drop every mapping of the VM at once (KVM's default SLOT_ZAP_ALL quirk) instead of walking the slot's rmap. */
  ZAP_ALL: 'zap-all',
} as const;
export type IdentityMemslotInvalidationValue = (typeof IdentityMemslotInvalidation)[keyof typeof IdentityMemslotInvalidation];

/** This VM's strategy (validated from `backendOptions` when the backend registers). */
export const IDENTITY_MEMSLOT_INVALIDATION: InjectionToken<IdentityMemslotInvalidationValue> = Symbol.for('hvmmu.conformance.IdentityMemslotInvalidation');

const STRATEGIES: readonly string[] = Object.values(IdentityMemslotInvalidation);

/** The strategy `config.backendOptions.memslotInvalidation` selects (default invalid-rmap); anything else is host misuse. */
export function identityMemslotInvalidationOf(config: VmConfig): IdentityMemslotInvalidationValue {
  const strategy = config.backendOptions['memslotInvalidation'] ?? IdentityMemslotInvalidation.INVALID_RMAP;
  if (typeof strategy !== 'string' || !STRATEGIES.includes(strategy)) {
    throw new HvmmuError('BAD_ARGUMENT', `identity backend: backendOptions.memslotInvalidation must be one of ${STRATEGIES.join(', ')}, got ${String(strategy)}`);
  }
  return strategy as IdentityMemslotInvalidationValue;
}
