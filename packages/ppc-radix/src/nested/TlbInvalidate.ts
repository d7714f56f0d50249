/**
 * H_TLB_INVALIDATE as KVM decodes it (book3s_hv_nested.c
 * kvmhv_emulate_priv_tlbie): r4 is a tlbie instruction image (RIC bits
 * 19..18, PRS bit 17, R bit 16), r5 the RS value (the LPID in its low 32
 * bits), r6 the RB value (IS bits 11..10, AP bits 7..5, EPN from bit 12).
 * Linux builds r4 with H_TLBIE_P1_ENC(ric, prs, r).
 */
export const TlbieScope = {
  /** IS = 0: one page of the L2, by its guest real address. */
  PAGE: 0,
  /** IS = 2: everything of one LPID. */
  LPID: 2,
  /** IS = 3: every LPID. */
  ALL: 3,
} as const;

/** RIC: 0 the TLB, 1 the page-walk cache, 2 both and the partition/process-table caches. */
export const TlbieRic = { TLB: 0, PWC: 1, ALL: 2 } as const;

/** A decoded, valid H_TLB_INVALIDATE. */
export interface TlbInvalidateRequest {
  readonly scope: number;
  readonly ric: number;
  /** L1's LPID for the L2 (IS 0 and 2). */
  readonly lpid: number;
  /** IS 0: the page's L2 guest real address (aligned to the page size) as halves, and the page size's log2. */
  readonly addrHi: number;
  readonly addrLo: number;
  readonly pageShift: number;
}

/** AP encodings of the radix page sizes (ibm,processor-radix-AP-encodings): 4K 0, 64K 5, 2M 1, 1G 2. */
export function apPageShift(ap: number): number {
  switch (ap) {
    case 0:
      return 12;
    case 5:
      return 16;
    case 1:
      return 21;
    case 2:
      return 30;
    default:
      return 0;
  }
}

/**
 * The request, or null where KVM answers H_PARAMETER: R = 0 (a hash tlbie),
 * PRS = 1 (process scope is not the hypervisor's business here), RIC = 3,
 * IS = 1, IS = 0 with RIC 1 or 2, or IS = 0 with an AP that is no radix
 * page size.
 */
export function decodeTlbInvalidate(instrLo: number, rsLo: number, rbHi: number, rbLo: number): TlbInvalidateRequest | null {
  const ric = (instrLo >>> 18) & 3;
  const prs = (instrLo >>> 17) & 1;
  const r = (instrLo >>> 16) & 1;
  const is = (rbLo >>> 10) & 3;
  if (r === 0 || prs === 1 || ric === 3 || is === 1 || (is === 0 && ric !== 0)) return null;
  const lpid = rsLo >>> 0;
  if (is !== 0) return { scope: is, ric, lpid, addrHi: 0, addrLo: 0, pageShift: 0 };
  const shift = apPageShift((rbLo >>> 5) & 7);
  if (shift === 0) return null;
  // EPN << 12, aligned down to the page size (the page sizes here are below 2^32).
  const addrLo = (rbLo & ~((1 << shift) - 1)) >>> 0;
  return { scope: is, ric, lpid, addrHi: rbHi >>> 0, addrLo, pageShift: shift };
}

/** r4 as Linux's H_TLBIE_P1_ENC(ric, prs, r) builds it. */
export function tlbieP1(ric: number, prs: number, r: number): number {
  return ((ric << 18) | (prs << 17) | (r << 16)) >>> 0;
}
