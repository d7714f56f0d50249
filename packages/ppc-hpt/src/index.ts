export {
  HPTE_V_VALID,
  HPTE_V_SECONDARY,
  HPTE_V_LARGE,
  HPTE_V_BOLTED,
  HPTE_V_1TB_SEG_HI,
  HPTE_V_COMPARE_LO,
  HPTE_R,
  HPTE_R_PP0_HI,
  HPTE_R_KEY_HI_HI,
  HPTE_R_RPN_HI,
  HPTE_R_RPN_LO,
  hpteKey,
  hptePp,
} from './format/Hpte.js';
export { POWER8_PAGE_SIZES, SLB_VSID_LLP_MASK, segmentPageSize, hptePageShift, type SegmentPageSize } from './format/SegmentPageSizes.js';
export { Slb, SLB_ESID_V_LO, SLB_VSID_B_1T_HI, SLB_VSID } from './mmu/Slb.js';
export { HashPageTable, HPT_MIN_ORDER, HPT_MAX_ORDER, HPT_MAX_SUPPORTED_ORDER } from './mmu/HashPageTable.js';
export { HptRegisters } from './mmu/HptRegisters.js';
export { HptAccess, HptVector, HptCause, HptTranslation } from './mmu/HptTranslation.js';
export { HptWalker } from './mmu/HptWalker.js';
export { hptDebugTranslate } from './inspect/hptDebugTranslate.js';
export {
  QemuHtabSectionWriter,
  loadQemuHtabSection,
  SECTION_START,
  SECTION_PART,
  SECTION_END,
  SECTION_FOOTER,
  HTAB_SECTION_NAME,
  HTAB_SECTION_VERSION,
  type HtabSectionIdentity,
  type HtabSectionLoad,
} from './stream/QemuHtabSection.js';
export { hptePageShifts } from './format/HptePageSizes.js';
export { HashPageTableStore, type HtabStore } from './stream/HtabStore.js';
export { KvmHtabReader, KvmHtabWriter, type HeaderByteOrder, type KvmHtabReadOptions, type KvmHtabWriteOptions } from './stream/KvmHtabStream.js';
export { HptHypercalls, HptHcall, PaprStatus } from './hcall/HptHypercalls.js';
export { mapVrma, forEachVrmaEntry, vrmaSegment, VRMA_VSID, VRMA_VSID_WORD_HI, VRMA_VSID_WORD_LO } from './mmu/Vrma.js';
export { HptResize, ResizeStatus, rehashIndex } from './mmu/HptResize.js';
export { HptRevmapEntries, HptSlotRmap, RMAP_TYPE_HPT_HI, RMAP_PRESENT_HI, RMAP_REFERENCED_HI, RMAP_CHANGED_HI } from './rmap/HptRevmap.js';
export type { HptEntryObserver } from './hcall/HptHypercalls.js';
export { ppcHptBackend, HPT_PAGING_MODE } from './backend/PpcHptBackend.js';
export { PpcHptMmu, HptFaultWord, HPT_SLB_SIZE } from './backend/PpcHptMmu.js';
export { HptVcpuMmu, HptMiss } from './backend/HptVcpuMmu.js';
export { HostHpt, HPTE_V_ABSENT_LO } from './backend/HostHpt.js';
export type { HptRmapOps } from './backend/HptRmapOps.js';
export { HptGuestSide, HptGuestSideFactory } from './backend/HptGuestSide.js';
export { PAPR_HYPERCALL_ABI } from './backend/PaprHypercallAbi.js';
export type { PpcHptOptions, PpcHptStats, PpcHptFeatures, PpcHptTypes } from './backend/PpcHptTypes.js';
export { HostHptStore } from './backend/HostHptStore.js';
