// The conformance suite for hvmmu MMU backends, and the identity-mapped reference backend it is proven against.
// Core first: it loads reflect-metadata, which tsyringe needs before it is imported (tsyringe throws at import time unless Reflect.getMetadata exists).
import '@hvmmu/core';

export {
  GuestPerm,
  GUEST_PERM_ALL,
  type ConformanceGuest,
  type ConformanceHarness,
  type ConformanceVariant,
  type DataRegion,
  type GuestAnswer,
  type HostileGuestAction,
} from './ConformanceHarness.js';
export type { MappingLeaf, MmuSnapshot, RmapRecord } from '@hvmmu/core';
export { accessAnswer, hypercallAnswer, guestPermAllows, describeAnswer, type HypercallArgument } from './GuestAnswers.js';
export {
  createConformanceFixture,
  captureVmState,
  normalizeSnapshot,
  refusalViolations,
  expectRefused,
  DEFAULT_HOST_MEMORY_BYTES,
  SUITE_TLB_ENTRIES,
  type ConformanceFixture,
} from './ConformanceFixture.js';
export { defineMmuConformanceSuite, type MmuConformanceOptions } from './defineMmuConformanceSuite.js';

export { ConformanceViolation, assertNoViolations } from './invariants/ConformanceViolation.js';
export type { GuestMapping, GuestView } from './invariants/GuestView.js';
export { checkRmapConsistency, RmapModel, type RmapModelName } from './invariants/checkRmapConsistency.js';
export { checkMappingsMatchMemslots, checkDirtyLogArmed, checkFrameAccounting } from './invariants/checkMappingsMatchMemslots.js';
export { checkTlbCoherence, checkHostRangeUnmapped } from './invariants/checkTlbCoherence.js';
export { checkMmuInvariants, type InvariantOptions } from './invariants/checkMmuInvariants.js';
export { GuestModel, type ModelSlot, type ExpectedAccess } from './model/GuestModel.js';
export { checkedAccess, PROBE_OFFSET } from './model/checkedAccess.js';
export { mmuOperationsArbitrary, runMmuOperations, type MmuOperation } from './random/MmuOperations.js';
export { HOST_MISUSE_CASES, type HostMisuseCase, type MisuseScene } from './hostile/hostMisuseCases.js';

export { createIdentityMapHarness } from './IdentityMapHarness.js';
