import { describe, expect, it } from 'vitest';
import { CR0, CR4, EFER, PFERR } from '@hvmmu/x86-shadow/internal';

/*
 * The exported bit constants: unsigned 32-bit values (bit 31 is 2^31, not
 * the negative `1 << 31`), each at the position the manuals give. Positions
 * written here from Intel SDM Vol. 3A §2.5 (CR0, CR4), §2.2.1 (EFER), §4.7
 * (#PF error code) and AMD APM Vol. 2 §3.1.7 (AMD's EFER bits).
 */

const POSITIONS: Record<string, Record<string, number>> = {
  CR0: { PE: 0, MP: 1, EM: 2, TS: 3, ET: 4, NE: 5, WP: 16, AM: 18, NW: 29, CD: 30, PG: 31 },
  CR4: {
    VME: 0,
    PVI: 1,
    TSD: 2,
    DE: 3,
    PSE: 4,
    PAE: 5,
    MCE: 6,
    PGE: 7,
    PCE: 8,
    OSFXSR: 9,
    OSXMMEXCPT: 10,
    UMIP: 11,
    LA57: 12,
    VMXE: 13,
    SMXE: 14,
    FSGSBASE: 16,
    PCIDE: 17,
    OSXSAVE: 18,
    KL: 19,
    SMEP: 20,
    SMAP: 21,
    PKE: 22,
    CET: 23,
    PKS: 24,
    UINTR: 25,
    LASS: 27,
    LAM_SUP: 28,
  },
  EFER: { SCE: 0, LME: 8, LMA: 10, NXE: 11, SVME: 12, LMSLE: 13, FFXSR: 14, TCE: 15 },
  PFERR: { P: 0, W: 1, U: 2, RSVD: 3, ID: 4, PK: 5 },
};

const EXPORTED: Record<string, Readonly<Record<string, number>>> = { CR0, CR4, EFER, PFERR };

describe('control-register and #PF error-code constants', () => {
  it.each(Object.keys(POSITIONS))('%s: every bit unsigned, at its architectural position', (name) => {
    expect(EXPORTED[name]).toEqual(Object.fromEntries(Object.entries(POSITIONS[name]!).map(([bit, n]) => [bit, 2 ** n])));
    for (const value of Object.values(EXPORTED[name]!)) {
      expect(Number.isInteger(value) && value > 0 && value < 2 ** 32).toBe(true);
    }
  });

  it('CR0.PG is 2^31; OR-ing constants gives the signed pattern of the same bits', () => {
    expect(CR0.PG).toBe(0x8000_0000);
    expect((CR0.PE | CR0.PG) >>> 0).toBe(0x8000_0001);
    expect((CR0.PE | CR0.PG) & CR0.PG).not.toBe(0);
  });
});
