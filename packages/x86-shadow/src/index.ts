export { CR0, CR4, EFER, PFERR, PagingMode, X86Registers, type PagingModeValue } from './walker/X86Registers.js';
export { GuestWalk } from './walker/GuestWalk.js';
