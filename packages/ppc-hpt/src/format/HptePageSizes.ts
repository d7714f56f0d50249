/**
 * The base and actual page shifts an HPTE's L bit and LP field encode, as
 * KVM decodes them (kvmppc_hpte_page_shifts in
 * arch/powerpc/include/asm/kvm_book3s_64.h), independent of any segment:
 * returns base << 8 | actual, or 0 for an invalid encoding.
 */
export function hptePageShifts(v0Lo: number, r1Lo: number): number {
  if ((v0Lo & 0x4) === 0) return (12 << 8) | 12;
  const lo = (r1Lo >>> 12) & 0xf;
  const hi = (r1Lo >>> 16) & 0xf;
  switch (lo) {
    case 0:
      return hi === 0 ? (24 << 8) | 24 : 0;
    case 1:
      return (16 << 8) | 16;
    case 3:
      return hi === 0 ? (34 << 8) | 34 : 0;
    case 7:
      return (12 << 8) | 16;
    case 8:
      return hi === 0 ? (16 << 8) | 24 : hi === 3 ? (12 << 8) | 24 : 0;
    default:
      return 0;
  }
}
