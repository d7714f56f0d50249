export { CR0, CR4, EFER, PFERR, PagingMode, X86Registers, type PagingModeValue } from './walker/X86Registers.js';
export { GuestWalk } from './walker/GuestWalk.js';
export { GuestWalker, MAX_VPN } from './walker/GuestWalker.js';
export { PagingContext, ACC, PERM_INDEX, MIN_MAXPHYADDR, MAX_MAXPHYADDR } from './walker/PagingContext.js';
export { loadPdptes } from './walker/loadPdptes.js';
export { enumerateMappings, type EnumerateMappingsOptions } from './walker/enumerateMappings.js';
export { MappingList, type MappingRun } from './walker/MappingList.js';
