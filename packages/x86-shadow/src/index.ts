// @hvmmu/x86-shadow: the x86 backend. What a program composing a hypervisor uses: the backend
// module and its types, the vCPU and VM APIs (`vcpu.arch`, `vm.arch`), the guest walker for
// inspecting real page tables, and a builder for guest page tables. The machinery behind it
// (shadow pages, rmaps, roles) is exported from '@hvmmu/x86-shadow/internal'.
export { x86ShadowBackend } from './backend/X86ShadowBackend.js';
export { X86ShadowMmu, X86_SHADOW_BACKEND_ID } from './backend/X86ShadowMmu.js';
export type { X86ShadowTypes, X86ShadowFeatures, X86Memslot } from './X86ShadowTypes.js';
export { X86_SHADOW_OPTIONS, type X86ShadowOptions } from './X86ShadowOptions.js';
export type { X86ShadowStats } from './mmu/X86ShadowStats.js';
export { X86VcpuMmu, VECTOR_GP, VECTOR_PF } from './mmu/X86VcpuMmu.js';
export {
  CR0,
  CR4,
  EFER,
  PFERR,
  PagingMode,
  X86Registers,
  pagingModeOf,
  type ControlRegisters,
  type PagingModeValue,
  type RegisterValues,
} from './walker/X86Registers.js';
export { GuestWalk } from './walker/GuestWalk.js';
export { GuestWalker, MAX_VPN } from './walker/GuestWalker.js';
export { loadPdptes } from './walker/loadPdptes.js';
export { enumerateMappings, type EnumerateMappingsOptions } from './walker/enumerateMappings.js';
export { MappingList, type MappingRun } from './walker/MappingList.js';
export { GuestPageTables, GuestPte, type GuestMapping, type X86GuestPagingMode } from './guest/GuestPageTables.js';
export {
  x86GuestSide,
  x86PaeGuestSide,
  X86GuestAddressSpaces,
  X86_GUEST_VPN_LIMIT,
  X86_PAE_GUEST_VPN_LIMIT,
  type X86GuestSideFactory,
  type X86GuestSideMode,
} from './guest/X86GuestSide.js';
