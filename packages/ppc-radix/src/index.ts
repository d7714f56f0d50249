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
export { RadixWalker, type RadixRcPolicy, type RadixWalkerOptions } from './walk/RadixWalker.js';
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
export { HvGuestState, HvGuestStateField, hvGuestStateSize, HV_GUEST_STATE_VERSION, H_P2, PT_REGS_BYTES, type L1Reader } from './nested/HvGuestState.js';
export { L1NestedHost, NestedHcall, type L1Machine, type L1NestedInit } from './nested/L1NestedHost.js';
