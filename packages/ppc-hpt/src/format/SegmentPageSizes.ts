/**
 * The page sizes a POWER7/POWER8 MMU supports, per segment base page size,
 * with their SLB L||LP encodings and HPTE LP encodings (QEMU
 * target/ppc/mmu-hash64.c ppc_hash64_opts_POWER7; Linux
 * arch/powerpc/mm/book3s64/hash_utils.c; KVM kvmppc_hpte_page_shifts).
 * MPSS: a segment with a 4K or 64K base page may also hold 64K and 16M
 * actual pages.
 */
export interface SegmentPageSize {
  /** log2 of the segment's base page size. */
  readonly baseShift: number;
  /** SLB VSID-word L||LP bits (0x100 L, 0x30 LP). */
  readonly slbEncoding: number;
  /** Actual page sizes in such a segment: log2 and the LP encoding in dword1 bits 12.. (L set). */
  readonly actual: readonly { readonly shift: number; readonly lp: number }[];
}

export const POWER8_PAGE_SIZES: readonly SegmentPageSize[] = [
  {
    baseShift: 12,
    slbEncoding: 0x000,
    actual: [
      { shift: 12, lp: 0 },
      { shift: 16, lp: 0x7 },
      { shift: 24, lp: 0x38 },
    ],
  },
  {
    baseShift: 16,
    slbEncoding: 0x110,
    actual: [
      { shift: 16, lp: 0x1 },
      { shift: 24, lp: 0x8 },
    ],
  },
  { baseShift: 24, slbEncoding: 0x100, actual: [{ shift: 24, lp: 0 }] },
  { baseShift: 34, slbEncoding: 0x120, actual: [{ shift: 34, lp: 0x3 }] },
];

/** SLB VSID-word L||LP mask. */
export const SLB_VSID_LLP_MASK = 0x130;

/** The segment page size for an SLB VSID word's low half, or undefined for an unsupported encoding. */
export function segmentPageSize(vsidLo: number): SegmentPageSize | undefined {
  const llp = vsidLo & SLB_VSID_LLP_MASK;
  for (const s of POWER8_PAGE_SIZES) if (s.slbEncoding === llp) return s;
  return undefined;
}

/**
 * The actual page shift of an HPTE in a segment of base size `segment`, or
 * 0 when the entry's L/LP encoding is not one of that segment's (the entry
 * does not match: QEMU hpte_page_shift; "Linux may leave PTEs for the wrong
 * base page size behind when demoting segments").
 */
export function hptePageShift(segment: SegmentPageSize, v0Lo: number, r1Hi: number, r1Lo: number): number {
  if ((v0Lo & 0x4) === 0) return segment.baseShift === 12 ? 12 : 0;
  // The common encodings first, without a loop: 64K (LP 0x1) and 16M (LP 0x8) in a 64K segment,
  // 16M (LP 0x0) in a 16M segment — Linux's linear map and its user pages.
  if (segment.baseShift === 16) {
    if ((r1Lo & 0xf000) === 0x1000) return 16;
    if ((r1Lo & 0xff_f000) === 0x8000) return 24;
    return 0;
  }
  if (segment.baseShift === 24) return (r1Lo & 0xff_f000) === 0 ? 24 : 0;
  const actual = segment.actual;
  for (let k = 0; k < actual.length; k++) {
    const a = actual[k]!;
    if (a.shift === 12) continue;
    // The LP bits are the RPN bits from 12 up to the page size: they must equal the encoding.
    const ok =
      a.shift < 32
        ? (r1Lo & (((1 << a.shift) - 1) & 0xffff_f000)) >>> 0 === (a.lp << 12) >>> 0
        : (r1Lo & 0xffff_f000) >>> 0 === (a.lp << 12) >>> 0 && (r1Hi & ((1 << (a.shift - 32)) - 1)) === 0;
    if (ok) return a.shift;
  }
  return 0;
}
