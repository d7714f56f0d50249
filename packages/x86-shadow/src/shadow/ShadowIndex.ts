/**
 * Index of a virtual page's entry in a shadow table at `level` (1 = PTE …
 * 5 = PML5E): 9 bits per level above the 4 KiB offset, as in the x86 tables
 * the shadow tables mirror. The vpn is split into int32 halves (lo32 = bits
 * 31:0, hi20 = bits 51:32) so the hot paths stay in integer arithmetic.
 */
export function shadowIndex32(lo32: number, hi20: number, level: number): number {
  switch (level) {
    case 1:
      return lo32 & 511;
    case 2:
      return (lo32 >>> 9) & 511;
    case 3:
      return (lo32 >>> 18) & 511;
    case 4:
      return ((lo32 >>> 27) | (hi20 << 5)) & 511;
    default:
      return (hi20 >>> 4) & 511;
  }
}

/** `shadowIndex32` of a whole vpn (< 2^52). */
export function shadowIndex(vpn: number, level: number): number {
  const lo32 = vpn >>> 0;
  return shadowIndex32(lo32, (vpn - lo32) / 0x1_0000_0000, level);
}
