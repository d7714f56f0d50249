import {
  HYPERCALL_ABI,
  HYPERCALL_HANDLER,
  MMU,
  MemslotInvalidation,
  RMAP_OPS,
  TlbShootdown,
  TRACE_HOOK,
  memslotInvalidationOption,
  type BackendModule,
  type VmConfig,
} from '@hvmmu/core';
import { instanceCachingFactory, type DependencyContainer } from 'tsyringe';
import { HostStageTable } from './HostStageTable.js';
import { IDENTITY_HYPERCALL_ABI } from './IdentityHypercallAbi.js';
import { IdentityInvalidRmapOps } from './IdentityInvalidRmapOps.js';
import { IDENTITY_FEATURES, type IdentityMapFeatures } from './IdentityMapFeatures.js';
import type { IdentityTypes } from './IdentityTypes.js';
import { IdentityMmu } from './IdentityMmu.js';
import { IdentityNormalRmapOps } from './IdentityNormalRmapOps.js';
import { IdentityRmapContext, type IdentityRmapOpsClass } from './IdentityRmapContext.js';
import { QueryPageHypercall } from './QueryPageHypercall.js';
import { SetProtectionTableHypercall } from './SetProtectionTableHypercall.js';

/** The paging mode name the identity backend declares: paging off, plus an optional protection table. */
export const IDENTITY_PAGING_MODE = 'identity';

export interface IdentityMapOptions {
  /** Backend id; default 'identity-map', or 'identity-map-<features>' when features are turned off. */
  readonly id?: string;
  /** Default true. */
  readonly dirtyLogging?: boolean;
  /** Default true. */
  readonly readOnlyMemslots?: boolean;
  /** Aging and change_pte re-pointing; default true. */
  readonly hostInvalidation?: boolean;
  /** SET_PROTECTION_TABLE and QUERY_PAGE; default true. */
  readonly hypercalls?: boolean;
  /**
   * Substitute rmap tables (each must keep its registered name, `normal` or
   * `invalid`): for studying other strategies, or for proving that the
   * conformance suite catches a broken one.
   */
  readonly rmapTables?: { readonly normal?: IdentityRmapOpsClass; readonly invalid?: IdentityRmapOpsClass };
}

/**
 * A minimal but real MMU backend: guest virtual = guest physical, the
 * hardware table a `HostStageTable` built on faults, a KVM-style per-slot
 * rmap behind the `normal` / `invalid` strategy tables, and two hypercalls.
 * The conformance suite is proven against it; the CLI uses it as its minimal
 * backend. Capabilities are derived from the options, so a configuration that
 * turns a feature off also declares it absent.
 */
export function createIdentityMapBackend(options: IdentityMapOptions = {}): BackendModule<IdentityTypes> {
  const features: IdentityMapFeatures = {
    id: options.id ?? defaultId(options),
    dirtyLogging: options.dirtyLogging ?? true,
    readOnlyMemslots: options.readOnlyMemslots ?? true,
    hostInvalidation: options.hostInvalidation ?? true,
    hypercalls: options.hypercalls ?? true,
  };
  const NormalTable = options.rmapTables?.normal ?? IdentityNormalRmapOps;
  const InvalidTable = options.rmapTables?.invalid ?? IdentityInvalidRmapOps;
  return {
    id: features.id,
    description: 'Identity-mapped guest (paging off, optional protection table) over a host-stage radix table; reference backend of @hvmmu/conformance',
    capabilities: {
      pagingModes: [IDENTITY_PAGING_MODE],
      dirtyLogging: features.dirtyLogging,
      readOnlyMemslots: features.readOnlyMemslots,
      hostInvalidation: features.hostInvalidation,
      memslotInvalidation: [MemslotInvalidation.INVALID_RMAP, MemslotInvalidation.FAST_ZAP],
      hypercallAbi: features.hypercalls ? IDENTITY_HYPERCALL_ABI.name : 'none',
      translationContexts: 'single',
      features: { identityPaging: true },
    },
    options: {
      memslotInvalidation: memslotInvalidationOption([MemslotInvalidation.INVALID_RMAP, MemslotInvalidation.FAST_ZAP], MemslotInvalidation.INVALID_RMAP),
    },
    register(container: DependencyContainer, config: VmConfig<IdentityTypes['options']>): void {
      container.register(IDENTITY_FEATURES, { useValue: features });
      container.register(HostStageTable, { useFactory: instanceCachingFactory(() => new HostStageTable(config.guestPhysBits)) });
      container.register(IdentityRmapContext, {
        useFactory: instanceCachingFactory((c) => new IdentityRmapContext(c.resolve(HostStageTable), c.resolve(TlbShootdown), c.resolve(TRACE_HOOK))),
      });
      container.register(RMAP_OPS, { useFactory: instanceCachingFactory((c) => new NormalTable(c.resolve(IdentityRmapContext))) });
      container.register(RMAP_OPS, { useFactory: instanceCachingFactory((c) => new InvalidTable(c.resolve(IdentityRmapContext))) });
      container.registerSingleton(IdentityMmu);
      container.register(MMU, { useToken: IdentityMmu });
      if (features.hypercalls) {
        container.register(HYPERCALL_ABI, { useValue: IDENTITY_HYPERCALL_ABI });
        container.register(HYPERCALL_HANDLER, { useClass: SetProtectionTableHypercall });
        container.register(HYPERCALL_HANDLER, { useClass: QueryPageHypercall });
      }
    },
  };
}

function defaultId(options: IdentityMapOptions): string {
  const off = (['dirtyLogging', 'readOnlyMemslots', 'hostInvalidation', 'hypercalls'] as const).filter((k) => options[k] === false);
  return off.length === 0 ? 'identity-map' : `identity-map-without-${off.join('-')}`;
}

/** The identity backend with every feature on. */
export const identityMapBackend: BackendModule<IdentityTypes> = createIdentityMapBackend();
