/** What the vCPU's current root is. */
export const ROOT_NONE = 0;
/** An ordinary, hashed root page (4/5-level guests, passthrough, 4/5-level direct roots). */
export const ROOT_NORMAL = 1;
/** A chain of special shadow pages (PAE root, with pml4/pml5 wrappers above it). */
export const ROOT_SPECIAL = 2;
/** KVM's dummy root: no memslot holds the root table, nothing can ever be mapped. */
export const ROOT_DUMMY = 3;

/** Root selectors for `freeRoots` (KVM_MMU_ROOT_CURRENT / KVM_MMU_ROOT_PREVIOUS(i)). */
export const ROOTS_CURRENT = 1;
export const ROOTS_ALL = 0xf;
/** KVM_MMU_NUM_PREV_ROOTS. */
export const NUM_PREV_ROOTS = 3;
