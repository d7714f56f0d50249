/**
 * POWER ISA v3.0 radix page-directory and page-table entries (Book III
 * 6.7.10.2 "Radix Tree Translation"): 64-bit big-endian doublewords, handled
 * here as their high and low 32-bit halves (no BigInt on walks). Bit names
 * and masks as in QEMU target/ppc/mmu-radix64.c (R_PTE_*, R_PDE_*) and
 * Linux arch/powerpc/include/asm/book3s/64/radix.h, pgtable.h.
 */

/** V (high half, bit 63): the entry is valid. */
export const RADIX_V_HI = 0x8000_0000;
/** L (high half, bit 62): the entry is a leaf (a PTE); else a directory entry. */
export const RADIX_L_HI = 0x4000_0000;
/** SW0 (bit 61): software use (Linux _PAGE_INVALID). */
export const RADIX_SW0_HI = 0x2000_0000;

/** RPN, a leaf's real page number: address bits 56..12 (QEMU R_PTE_RPN 0x01FF_FFFF_FFFF_F000). */
export const RADIX_RPN_HI = 0x01ff_ffff;
export const RADIX_RPN_LO = 0xffff_f000;
/** NLB, a directory's next-level base: bits 59..8 (R_PDE_NLB 0x0FFF_FFFF_FFFF_FF00). */
export const RADIX_NLB_HI = 0x0fff_ffff;
export const RADIX_NLB_LO = 0xffff_ff00;
/** NLS, log2 of the next level's entry count (R_PDE_NLS). */
export const RADIX_NLS_MASK = 0x1f;

/** Low-half leaf bits. */
export const RADIX_PTE = {
  /** R, reference (Linux _PAGE_ACCESSED). */
  R: 0x100,
  /** C, change (Linux _PAGE_DIRTY). */
  C: 0x080,
  /** ATT, storage attributes: 00 normal, 01 SAO, 10 non-idempotent I/O, 11 tolerant I/O. */
  ATT: 0x030,
  ATT_NON_IDEMPOTENT_IO: 0x020,
  /** EAA privilege: a privileged-only page (Linux _PAGE_PRIVILEGED). */
  PRIVILEGED: 0x008,
  /** EAA read (Linux _PAGE_READ). */
  READ: 0x004,
  /** EAA read/write; the ISA's RW implies read (Linux _PAGE_WRITE). */
  READ_WRITE: 0x002,
  /** EAA execute (Linux _PAGE_EXEC). */
  EXECUTE: 0x001,
} as const;

/** Access the EAA grants: what `RadixProt` a leaf allows before privilege and AMR/IAMR. */
export const RadixProt = {
  READ: 1,
  WRITE: 2,
  EXECUTE: 4,
  ALL: 7,
} as const;

/** `RadixProt` bits from a leaf's EAA (QEMU ppc_radix64_get_prot_eaa: RW implies read). */
export function eaaProt(lo: number): number {
  return (
    ((lo & RADIX_PTE.READ) !== 0 ? RadixProt.READ : 0) |
    ((lo & RADIX_PTE.READ_WRITE) !== 0 ? RadixProt.READ | RadixProt.WRITE : 0) |
    ((lo & RADIX_PTE.EXECUTE) !== 0 ? RadixProt.EXECUTE : 0)
  );
}

const TWO_POW_32 = 0x1_0000_0000;
/** High halves below this keep an address under 2^53, exact in a number. */
export const SAFE_HI_LIMIT = 0x20_0000;

/**
 * The real address a directory entry points to (NLB), or -1 when it is at
 * or above 2^53: no memory hvmmu models reaches that far, so such a table is
 * unbacked.
 */
export function nextLevelBase(hi: number, lo: number): number {
  const h = hi & RADIX_NLB_HI;
  return h < SAFE_HI_LIMIT ? h * TWO_POW_32 + ((lo & RADIX_NLB_LO) >>> 0) : -1;
}
