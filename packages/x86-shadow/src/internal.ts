// Everything in the package, for its own tests and benchmarks and for readers who want the
// machinery (shadow pages, rmaps, roles). Not a stable API: a program uses the main entry point.
export * from './index.js';
export {
  ControlFault,
  ControlWrite,
  CR0_DEFINED,
  CR4_DEFINED,
  EFER_DEFINED_AMD,
  EFER_DEFINED_INTEL,
  controlRegisterFault,
  effectiveEfer,
  writtenCr0,
  type ControlFaultValue,
  type ControlWriteValue,
} from './walker/ControlRegisterRules.js';
export { PagingContext, ACC, PERM_INDEX, MIN_MAXPHYADDR, MAX_MAXPHYADDR } from './walker/PagingContext.js';
export { shadowIndex } from './shadow/ShadowIndex.js';
export { ROOT_NONE, ROOT_NORMAL, ROOT_SPECIAL, ROOT_DUMMY, ROOTS_CURRENT, ROOTS_ALL, NUM_PREV_ROOTS } from './mmu/RootKind.js';
export { ShadowTranslator } from './mmu/ShadowTranslator.js';
export { VcpuRoots } from './mmu/VcpuRoots.js';
export { ShadowPages } from './mmu/ShadowPages.js';
export {
  SP_PAE_ROOT_TABLE,
  SP_ZAP_QUEUED,
  BATCH_ZAP_PAGES,
  MIN_FREE_MMU_PAGES,
  REFILL_PAGES,
  MIN_ALLOC_MMU_PAGES,
  PERMILLE_MMU_PAGES,
  SET_SPTE_FIXED,
  SET_SPTE_SPURIOUS,
  SET_SPTE_EMULATE,
  level1GpteGpa,
  gpteAccess,
  writeMisaligned,
  lostPermission,
} from './mmu/ShadowPageRules.js';
export { ShadowPageCache } from './mmu/ShadowPageCache.js';
export { SpteInstaller } from './mmu/SpteInstaller.js';
export { UnsyncPages } from './mmu/UnsyncPages.js';
export { WriteTracking } from './mmu/WriteTracking.js';
export { ShadowMmuStats } from './shadow/ShadowMmuStats.js';
export { HardwarePermissions, hardwarePermIndex } from './mmu/HardwarePermissions.js';
export { VcpuMmuList, REQ_FREE_OBSOLETE_ROOTS, REQ_MMU_SYNC, REQ_TLB_FLUSH, type VcpuRequestTarget } from './mmu/VcpuMmuList.js';
export type { GuestPteContext } from './mmu/GuestPteContext.js';
export {
  ShadowPageTable,
  mmuHash,
  MMU_HASH_SHIFT,
  MMU_HASH_BUCKETS,
  SP_IN_USE,
  SP_SPECIAL,
  SP_UNSYNC,
  SP_HASHED,
  SP_ON_ACTIVE_LIST,
  UNSYNC_BITMAP_WORDS,
} from './shadow/ShadowPageTable.js';
export * from './shadow/PageRole.js';
export * from './spte/Spte.js';
export { ACC_EXEC, ACC_WRITE, ACC_USER, ACC_ALL } from './spte/Acc.js';
export {
  PteListPool,
  PTE_LIST_EXT,
  PTE_LIST_DESC_WORDS,
  PTE_LIST_SPTE_SKIP,
  PTE_LIST_MAX_SPTEP,
  isSingle,
  isDescChain,
  singleEntry,
  headDesc,
} from './rmap/PteList.js';
export { SlotRmap, slotRmap, gfnToIndex, pagesPerLevel, RMAP_LEVELS } from './rmap/SlotRmap.js';
export { RMAP_RECYCLE_THRESHOLD, type X86RmapOps } from './rmap/X86RmapOps.js';
export { NormalRmapOps } from './strategy/NormalRmapOps.js';
export { InvalidRmapOps } from './strategy/InvalidRmapOps.js';
export { RmapWalkOp, walkSlotRmaps, type RmapWalkOpValue } from './strategy/walkSlotRmaps.js';
export {
  MEMSLOT_FLUSH_STRATEGY,
  MEMSLOT_INVALIDATION_NAMES,
  type MemslotFlushStrategy,
  type MemslotInvalidationName,
} from './strategy/MemslotFlushStrategy.js';
export { FastZapFlush } from './strategy/FastZapFlush.js';
export { InvalidRmapFlush } from './strategy/InvalidRmapFlush.js';
