import { describe, expect, it } from 'vitest';
import { TlbieRic, TlbieScope, decodeTlbInvalidate, tlbieP1 } from '@hvmmu/ppc-radix';

/** H_TLB_INVALIDATE's decoding, against the rules of kvmhv_emulate_priv_tlbie, case by case. */
describe('H_TLB_INVALIDATE decoding', () => {
  const RB = (is: number, ap: number, addrLo: number): number => (addrLo | (is << 10) | (ap << 5)) >>> 0;

  it('accepts what KVM handles: one page (IS 0, RIC 0, any radix page size), one LPID or all (IS 2/3, RIC 0..2)', () => {
    expect(decodeTlbInvalidate(tlbieP1(0, 0, 1), 7, 0x1, RB(0, 1, 0x0060_0000))).toEqual({
      scope: TlbieScope.PAGE,
      ric: TlbieRic.TLB,
      lpid: 7,
      addrHi: 1,
      addrLo: 0x0060_0000,
      pageShift: 21,
    });
    // The address is aligned down to the page size: a 64K page (AP 5) named by an address inside it.
    expect(decodeTlbInvalidate(tlbieP1(0, 0, 1), 7, 0, RB(0, 5, 0x1234_5000))!.addrLo).toBe(0x1234_0000);
    for (const ric of [0, 1, 2]) {
      expect(decodeTlbInvalidate(tlbieP1(ric, 0, 1), 3, 0, RB(2, 0, 0x800))).toMatchObject({ scope: TlbieScope.LPID, ric, lpid: 3 });
      expect(decodeTlbInvalidate(tlbieP1(ric, 0, 1), 0, 0, RB(3, 0, 0xc00))).toMatchObject({ scope: TlbieScope.ALL, ric });
    }
  });

  it('refuses (H_PARAMETER) a hash tlbie, process scope, RIC 3, IS 1, RIC 1/2 for one page, and an AP that is no radix page size', () => {
    expect(decodeTlbInvalidate(tlbieP1(0, 0, 0), 1, 0, RB(2, 0, 0))).toBeNull();
    expect(decodeTlbInvalidate(tlbieP1(0, 1, 1), 1, 0, RB(2, 0, 0))).toBeNull();
    expect(decodeTlbInvalidate(tlbieP1(3, 0, 1), 1, 0, RB(2, 0, 0))).toBeNull();
    expect(decodeTlbInvalidate(tlbieP1(0, 0, 1), 1, 0, RB(1, 0, 0))).toBeNull();
    expect(decodeTlbInvalidate(tlbieP1(1, 0, 1), 1, 0, RB(0, 0, 0))).toBeNull();
    expect(decodeTlbInvalidate(tlbieP1(2, 0, 1), 1, 0, RB(0, 0, 0))).toBeNull();
    for (const ap of [3, 4, 6, 7]) expect(decodeTlbInvalidate(tlbieP1(0, 0, 1), 1, 0, RB(0, ap, 0))).toBeNull();
  });
});
