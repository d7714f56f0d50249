// The identity-mapped reference backend: the smallest complete backend, for examples,
// tests and programs (the CLI, benchmarks). No test runner is imported.
// Core first: it loads reflect-metadata (tsyringe throws at import time unless Reflect.getMetadata exists).
import '@hvmmu/core';

export { createIdentityMapBackend, identityMapBackend, IDENTITY_PAGING_MODE, type IdentityMapOptions } from './IdentityMapBackend.js';
export { IdentityMmu, IdentityPageState } from './IdentityMmu.js';
export { IdentityTranslator, IDENTITY_MISS_HOST } from './IdentityTranslator.js';
export { HostStageTable, HostStageFlags } from './HostStageTable.js';
export { IdentitySlotRmap, RMAP_EMPTY } from './IdentitySlotRmap.js';
export { IdentityNormalRmapOps } from './IdentityNormalRmapOps.js';
export { IdentityInvalidRmapOps } from './IdentityInvalidRmapOps.js';
export { IdentityRmapContext, type IdentityRmapCounters, type IdentityRmapOpsClass } from './IdentityRmapContext.js';
export { IdentityFaultCode } from './IdentityFaultCode.js';
export { ProtectionBits, PROTECTION_ALL, PROTECTION_RESERVED, PERM_BY_PROTECTION, protectionAllows, accessFaultBits } from './IdentityProtection.js';
export { IDENTITY_HYPERCALL_ABI, IdentityHypercall } from './IdentityHypercallAbi.js';
export { SetProtectionTableHypercall } from './SetProtectionTableHypercall.js';
export { QueryPageHypercall } from './QueryPageHypercall.js';
export { IDENTITY_FEATURES, type IdentityMapFeatures } from './IdentityMapFeatures.js';
export { IdentityFaultVector } from './IdentityFaultCode.js';
export type { IdentityRmapOps } from './IdentityRmapOps.js';
export type { IdentityTypes, IdentityOptions, IdentityStats, IdentityFeatures } from './IdentityTypes.js';
