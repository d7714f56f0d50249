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
