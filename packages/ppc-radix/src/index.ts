export {
  RADIX_V_HI,
  RADIX_L_HI,
  RADIX_SW0_HI,
  RADIX_RPN_HI,
  RADIX_RPN_LO,
  RADIX_NLB_HI,
  RADIX_NLB_LO,
  RADIX_NLS_MASK,
  RADIX_PTE,
  RadixProt,
  eaaProt,
} from './format/RadixEntry.js';
export { RadixVector, Dsisr, SRR1_NOEXEC_GUARD } from './format/RadixInterrupt.js';
export { PATE0_HR_HI, PATE1_GR_HI, radixTreeBits, rootDirectoryBase, rootDirectorySize, tableBase, tableBytes } from './format/PartitionTable.js';
export { RadixRegisters } from './walk/RadixRegisters.js';
export { RadixAccess, RadixTranslation, type RadixAccessValue } from './walk/RadixTranslation.js';
export { RadixWalker, type RadixRcPolicy, type RadixTableEpoch, type RadixWalkerOptions } from './walk/RadixWalker.js';
export { RadixTreeBuilder, RadixTree, RadixTable, RadixGeometry, type RadixGeometryName, type RadixLeafFlags } from './guest/RadixTreeBuilder.js';
export { radixDebugTranslate } from './inspect/radixDebugTranslate.js';
export { enumerateRadixTree, type RadixLeaf, type RadixTreeListing, type EnumerateRadixOptions } from './inspect/enumerateRadixTree.js';
export { NestedRmapNodes, NestedRmapSlots, nestedRmapEntry, decodeNestedRmapEntry, NESTED_RMAP_MAX_LPID, NESTED_RMAP_MAX_GFN } from './nested/NestedRmap.js';
export { ShadowLpids } from './nested/ShadowLpids.js';
export {
  NestedGuests,
  NestedGuest,
  MAX_NESTED_GUESTS_SHIFT,
  H_SUCCESS,
  H_PARAMETER,
  type NestedGuestHost,
  type PendingNestedGuest,
} from './nested/NestedGuests.js';
export { decodeTlbInvalidate, apPageShift, tlbieP1, TlbieScope, TlbieRic, type TlbInvalidateRequest } from './nested/TlbInvalidate.js';
export { ShadowLeaf, makeShadowLeaf } from './nested/ShadowLeaf.js';
export {
  HvGuestState,
  HvGuestStateField,
  PtRegsField,
  hvGuestStateSize,
  HV_GUEST_STATE_VERSION,
  H_P2,
  PT_REGS_BYTES,
  type L1Reader,
} from './nested/HvGuestState.js';
export { L1PartitionWalk, L1WalkStatus, type L1DoublewordReader, type L1PartitionWalkOptions } from './nested/L1PartitionWalk.js';
export { L1NestedHost, NestedHcall, type L1Machine, type L1NestedInit } from './nested/L1NestedHost.js';
export { ppcRadixBackend, RADIX_PAGING_MODE, RADIX_GUEST_LPID } from './backend/PpcRadixBackend.js';
export { PpcRadixMmu, PPC_RADIX_BACKEND_ID } from './backend/PpcRadixMmu.js';
export type { PpcRadixTypes, PpcRadixOptions, PpcRadixStats, PpcRadixFeatures, RadixReadOnlyStore } from './backend/PpcRadixTypes.js';
export { RadixVcpuMmu, type RadixVcpuRegisters } from './backend/RadixVcpuMmu.js';
export { RadixContexts, RadixMode } from './backend/RadixContexts.js';
export { RadixMissCode } from './backend/RadixMissCode.js';
export { RadixFaultWord, deliverRadixInterrupt } from './backend/RadixFaultWords.js';
export { PartitionScopedTree, PARTITION_GFN_LIMIT } from './backend/PartitionScopedTree.js';
export { HostRealSpace, PARTITION_TABLE_PATS } from './backend/HostRealSpace.js';
export type { RadixRmapOps } from './backend/RadixRmapOps.js';
export { RadixNormalRmapOps } from './backend/RadixNormalRmapOps.js';
export { RadixInvalidRmapOps } from './backend/RadixInvalidRmapOps.js';
export { RadixRmapContext, type RadixRmapCounters } from './backend/RadixRmapContext.js';
export { RadixSlotRmap } from './backend/RadixSlotRmap.js';
export { RadixL1Hypervisor, RADIX_L1_HYPERVISOR_PAGES } from './guest/RadixL1Hypervisor.js';
export { radixGuestSide, RadixGuestAddressSpaces, RADIX_GUEST_VPN_LIMIT, type RadixGuestSideFactory, type RadixGuestMachine } from './guest/RadixGuestSide.js';
export {
  radixNestedGuestSide,
  RadixNestedGuestAddressSpaces,
  RADIX_NESTED_L2_LPID,
  type RadixNestedGuestSideFactory,
  type RadixNestedL1Counters,
} from './guest/RadixNestedGuestSide.js';
export {
  NestedHv,
  NestedRun,
  NestedHcallStatus,
  NestedTrap,
  NESTED_NR_CPUS,
  COPY_TOFROM_GUEST_MAX,
  type NestedExit,
  type NestedHvCounters,
  type L1PageSource,
} from './backend/NestedHv.js';
export { NestedHypercallHandler, NESTED_HCALLS, RADIX_PAPR_ABI } from './backend/NestedHypercallHandler.js';
