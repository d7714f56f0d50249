// reflect-metadata must be evaluated before tsyringe is: tsyringe's entry point throws at import time unless Reflect.getMetadata exists.
import 'reflect-metadata';

export { HvmmuError, hex, type HvmmuErrorCode } from './errors/HvmmuError.js';
export * from './di/tokens.js';

export { HostMemory, HOST_PAGE_SHIFT, HOST_PAGE_SIZE, type HostMemoryOptions } from './memory/HostMemory.js';
export type { GuestMemory } from './memory/GuestMemory.js';
export { FlatGuestMemory } from './memory/FlatGuestMemory.js';
export { SparsePageMemory } from './memory/SparsePageMemory.js';
export { GuestPhysMemory } from './memory/GuestPhysMemory.js';

export { Memslot, MemslotFlags, MEMSLOT_VALID_FLAGS, FRAME_NONE, FRAME_ZERO, allocatePerPage, type MemslotChange } from './memslot/Memslot.js';
export {
  MemslotTable,
  MEMSLOT_MAX_ID,
  GFN_NO_MEMORY,
  GFN_HOST_OUT_OF_MEMORY,
  checkValueBits,
  type MemslotRequest,
} from './memslot/MemslotTable.js';
export { MemslotInvalidation, memslotInvalidationOption, type MemslotInvalidationName } from './memslot/MemslotInvalidation.js';
export type { MemslotListener } from './memslot/MemslotListener.js';

export { RMAP_NORMAL, RMAP_INVALID, type RmapStrategy } from './rmap/RmapStrategy.js';
export { RmapOpsRegistry } from './rmap/RmapOpsRegistry.js';

export { Access, ACCESS_KINDS, ACCESS_MASK, PERM_ALL, isValidAccess, describeAccess } from './mmu/Access.js';
export {
  FaultInfo,
  FaultKind,
  FaultDestination,
  FaultOutcome,
  FAULT_WORDS,
  type FaultKindValue,
  type FaultDestinationValue,
  type FaultOutcomeValue,
} from './mmu/FaultInfo.js';
export { TranslationResult, type Translator } from './mmu/Translator.js';
export type { Mmu } from './mmu/Mmu.js';
export type { MappingLeaf, MmuSnapshot, RmapRecord } from './mmu/MmuSnapshot.js';

export { SoftTlb } from './tlb/SoftTlb.js';
export { TlbShootdown, type TlbHolder } from './tlb/TlbShootdown.js';
export { TranslationContexts, DEFAULT_CONTEXT, type TranslationContextOwner } from './tlb/TranslationContexts.js';

export type { HypercallAbi, HypercallHandler } from './hcall/Hypercall.js';
export { HypercallRegisters } from './hcall/HypercallRegisters.js';
export { HypercallDispatcher } from './hcall/HypercallDispatcher.js';

export type { TraceEvent, TraceHook } from './trace/TraceHook.js';

export type { BackendCapabilities, BackendModule, BackendTypesOf } from './vm/BackendModule.js';
export type { BackendTypes } from './vm/BackendTypes.js';
export {
  OptionSpec,
  resolveBackendOptions,
  type BackendOptionSpec,
  type BackendOptionSpecs,
  type BackendOptionsInput,
} from './vm/BackendOptions.js';
export type { VmConfig } from './vm/VmConfig.js';
export { Hypervisor, type HypervisorOptions, type VmOptions } from './vm/Hypervisor.js';
export { Vm, NO_HYPERCALL_ABI, type CoreVmStats, type VmHypercalls } from './vm/Vm.js';
export { Vcpu, MAX_FAULT_RETRIES, TRANSLATE_FAULT } from './vm/Vcpu.js';
export { HitCountingVcpu } from './vm/HitCountingVcpu.js';
export type { VcpuOptions } from './vm/VcpuOptions.js';
export { GuestVirtualAccess } from './vm/GuestVirtualAccess.js';
export {
  GuestRights,
  GUEST_RIGHTS_ALL,
  type GuestAddressSpaces,
  type GuestSideFactory,
  type GuestTableArea,
} from './guest/GuestAddressSpaces.js';
