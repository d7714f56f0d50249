/**
 * The shadow-PTE format the "hardware" walks: KVM's legacy (non-EPT) SPTE
 * layout (arch/x86/kvm/mmu/spte.h, post-2021 bit positions), as two uint32
 * halves. Bits are those of an x86 PTE so the hardware permission check
 * reads them as it would read a guest PTE.
 *
 * The 40-bit frame field (bits 12..51) holds a host frame number in a leaf
 * and the id of the child shadow page in a non-leaf entry: shadow tables
 * live in typed arrays indexed by shadow-page id, so the id plays the role
 * of the table's host physical address.
 */

/** Low-half bits. */
export const SPTE_P = 1 << 0;
export const SPTE_W = 1 << 1;
export const SPTE_U = 1 << 2;
export const SPTE_A = 1 << 5;
export const SPTE_D = 1 << 6;
/** Set on leaves above level 1 (a large mapping). */
export const SPTE_PS = 1 << 7;
/** KVM DEFAULT_SPTE_HOST_WRITABLE (bit 9): the host page may be written; fixed at creation. */
export const SPTE_HOST_WRITABLE = 1 << 9;
/** KVM DEFAULT_SPTE_MMU_WRITABLE (bit 10): the MMU allows W (not a shadowed guest page table). */
export const SPTE_MMU_WRITABLE = 1 << 10;
/** KVM SPTE_MMU_PRESENT_MASK (bit 11): the entry points at memory or a table. */
export const SPTE_MMU_PRESENT = 1 << 11;

/** High-half bits: NX is bit 63; bits 59..62 carry the leaf's protection key. */
export const SPTE_HI_NX = 0x8000_0000;
export const SPTE_HI_PKEY_SHIFT = 27;
export const SPTE_HI_PKEY_MASK = 0x7800_0000;
/** Frame bits 32..51 live in the high half's bits 0..19. */
export const SPTE_HI_FRAME_MASK = 0x000f_ffff;

/** Entries per shadow table (512 × 8 bytes, one 4 KiB page). */
export const SPTE_ENT_PER_PAGE = 512;

const TWO_POW_20 = 0x10_0000;

/** Frame number (host frame of a leaf, child shadow-page id of a non-leaf). */
export function spteFrame(hi: number, lo: number): number {
  return (hi & SPTE_HI_FRAME_MASK) * TWO_POW_20 + (lo >>> 12);
}

/**
 * Child shadow-page id of a link (non-leaf) spte in int32 arithmetic: ids
 * stay below 2^22 (ShadowPageTable keeps `id × 512 + index` a pte_list
 * handle below 2^31), so the frame's high half contributes at most 11 bits
 * and the result is exact. Lets walks index the tables with `(id << 9) | i`.
 */
export function linkSpteChild(hi: number, lo: number): number {
  return ((hi & 0x7ff) << 20) | (lo >>> 12);
}

/** Low half holding `frame` and the given low flag bits. */
export function spteLo(frame: number, flags: number): number {
  // ToInt32 is exact modulo 2^32 for a safe integer, so `& 0xfffff` is frame mod 2^20 (no float modulo).
  return (((frame & 0xfffff) << 12) | flags) >>> 0;
}

/** High half holding `frame` and the given high flag bits (NX, key). */
export function spteHi(frame: number, flags: number): number {
  return ((Math.floor(frame / TWO_POW_20) & SPTE_HI_FRAME_MASK) | flags) >>> 0;
}

/** KVM is_shadow_present_pte. */
export function isShadowPresent(lo: number): boolean {
  return (lo & SPTE_MMU_PRESENT) !== 0;
}

/** KVM is_last_spte: level 1 entries are leaves, higher ones only with PS. */
export function isLastSpte(lo: number, level: number): boolean {
  return level === 1 || (lo & SPTE_PS) !== 0;
}

/**
 * Low bits of a non-leaf entry (KVM make_nonleaf_spte): present, writable,
 * user and accessed, never NX, so only the leaf restricts access.
 */
export const NONLEAF_SPTE_FLAGS = SPTE_MMU_PRESENT | SPTE_P | SPTE_W | SPTE_U | SPTE_A;

/**
 * A PAE PDPTE under a 3-level hardware root: SDM 4.4.1 reserves bits 1..2
 * and 5..8 of a PDPTE, so the entry is the table address and P only (KVM
 * `pae_root[i] = root | PT_PRESENT_MASK`).
 */
export const PAE_ROOT_SPTE_FLAGS = SPTE_MMU_PRESENT | SPTE_P;
