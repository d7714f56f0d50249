/**
 * KVM's ACC bits (mmu.h ACC_*_MASK): the access a shadow page or spte
 * grants. W and U sit at the PTE positions (bits 1, 2); X is bit 0 and means
 * "executable" (the inverse of NX) so every right is ANDed over levels.
 */
export const ACC_EXEC = 1;
export const ACC_WRITE = 2;
export const ACC_USER = 4;
export const ACC_ALL = 7;
