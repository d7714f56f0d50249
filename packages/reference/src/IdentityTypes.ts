import type { BackendTypes, MemslotInvalidationName } from '@hvmmu/core';
import type { IdentityMmu } from './IdentityMmu.js';
import type { IdentityRmapOps } from './IdentityRmapOps.js';
import type { IdentitySlotRmap } from './IdentitySlotRmap.js';
import type { IdentityTranslator } from './IdentityTranslator.js';

/** The identity backend's options. */
export interface IdentityOptions {
  /** How a memslot delete or move tears down the slot's mappings (default 'invalid-rmap'). */
  readonly memslotInvalidation: Extract<MemslotInvalidationName, 'invalid-rmap' | 'fast-zap'>;
}

/** The identity backend's counters in `vm.stats()`. */
export interface IdentityStats {
  readonly [counter: string]: number;
  readonly identityMappings: number;
  readonly identityTableNodes: number;
  readonly identityTableBytes: number;
  readonly identityRmapBytes: number;
  readonly identityFaults: number;
  readonly identityGuestFaults: number;
  readonly identityZeroFrameMaps: number;
  readonly identityZapAlls: number;
  readonly identityRmapDrops: number;
  readonly identityWriteProtects: number;
  readonly identityInvalidSlotWarnings: number;
}

/** What only the identity backend offers. */
export interface IdentityFeatures {
  /** Guest virtual = guest physical; the optional protection table is set by hypercall. */
  readonly identityPaging: true;
}

/** The identity backend's types, carried to `vm.arch`, `vcpu.arch`, `vm.stats()` and `slot.arch`. */
export interface IdentityTypes extends BackendTypes {
  readonly options: IdentityOptions;
  readonly vm: IdentityMmu;
  readonly vcpu: IdentityTranslator;
  readonly stats: IdentityStats;
  readonly rmapOps: IdentityRmapOps;
  readonly slotData: IdentitySlotRmap;
  readonly features: IdentityFeatures;
}
