/**
 * Hashed page table entries (HPTEs), POWER ISA v2.07 Book III 5.7.7.1 — the
 * "old" format every guest-visible and migrated HPTE uses: two big-endian
 * doublewords, handled as 32-bit halves. Names as Linux
 * arch/powerpc/include/asm/book3s/64/mmu-hash.h and QEMU
 * target/ppc/mmu-hash64.h.
 */

/** dword0: V (valid), H (secondary hash), L (large page); low half. */
export const HPTE_V_VALID = 0x1;
export const HPTE_V_SECONDARY = 0x2;
export const HPTE_V_LARGE = 0x4;
/** dword0 software bits: Linux BOLTED (0x10); 0x40/0x20 are the hypervisor's (KVM HVLOCK/ABSENT, QEMU's dirty flag). */
export const HPTE_V_BOLTED = 0x10;
/** dword0 B (segment size), high half: 0 = 256M, 0x4000_0000 = 1T. */
export const HPTE_V_1TB_SEG_HI = 0x4000_0000;
/** dword0 bits compared by a lookup (QEMU HPTE64_V_COMPARE): B, AVPN, H, V — not L nor the software bits. */
export const HPTE_V_COMPARE_LO = 0xffff_ff83;

/** dword1 low-half bits. */
export const HPTE_R = {
  /** Storage key bits 2..0 (KEY_LO). */
  KEY_LO: 0x0e00,
  /** R, reference. */
  R: 0x0100,
  /** C, change. */
  C: 0x0080,
  W: 0x0040,
  I: 0x0020,
  M: 0x0010,
  /** G, guarded: no instruction fetch. */
  G: 0x0008,
  /** N, no-execute. */
  N: 0x0004,
  /** PP, page protection (with PP0 in the high half). */
  PP: 0x0003,
} as const;
/** dword1 high half: PP0 (bit 63) and KEY_HI (key bits 4..3, bits 61..60). */
export const HPTE_R_PP0_HI = 0x8000_0000;
export const HPTE_R_KEY_HI_HI = 0x3000_0000;
/** RPN (ARPN), bits 59..12. */
export const HPTE_R_RPN_HI = 0x0fff_ffff;
export const HPTE_R_RPN_LO = 0xffff_f000;

/** The 5-bit storage key of dword1 (QEMU HPTE64_R_KEY). */
export function hpteKey(r1Hi: number, r1Lo: number): number {
  return ((r1Hi & HPTE_R_KEY_HI_HI) >>> 25) | ((r1Lo & HPTE_R.KEY_LO) >>> 9);
}

/** PP0 << 2 | PP (0..7), as QEMU ppc_hash64_pte_prot combines them. */
export function hptePp(r1Hi: number, r1Lo: number): number {
  return (r1Lo & HPTE_R.PP) | ((r1Hi & HPTE_R_PP0_HI) >>> 29);
}
