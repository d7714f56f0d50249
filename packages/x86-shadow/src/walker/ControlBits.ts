/**
 * Architectural bits of CR0, CR4 and IA32_EFER, as unsigned 32-bit values
 * (written in hex so that bit 31 is 0x8000_0000, never the negative
 * `1 << 31`). OR-ing them gives a signed int32 in JavaScript (`CR0.PE |
 * CR0.PG` < 0): the control-register setters accept either form, and a bit
 * is tested with `(value & BIT) !== 0`, never `=== BIT`.
 */

/** CR0 (Intel SDM Vol. 3A §2.5, Figure 2-7): every defined bit; the others are reserved. */
export const CR0 = {
  PE: 0x0000_0001,
  MP: 0x0000_0002,
  EM: 0x0000_0004,
  TS: 0x0000_0008,
  ET: 0x0000_0010,
  NE: 0x0000_0020,
  WP: 0x0001_0000,
  AM: 0x0004_0000,
  NW: 0x2000_0000,
  CD: 0x4000_0000,
  PG: 0x8000_0000,
} as const;

/**
 * CR4 (SDM Vol. 3A §2.5, Figure 2-7): every bit of 31:0 the SDM defines.
 * Bits 15 and 26 are reserved; so are 63:32 here (FRED, bit 32, is not modelled).
 */
export const CR4 = {
  VME: 0x0000_0001,
  PVI: 0x0000_0002,
  TSD: 0x0000_0004,
  DE: 0x0000_0008,
  PSE: 0x0000_0010,
  PAE: 0x0000_0020,
  MCE: 0x0000_0040,
  PGE: 0x0000_0080,
  PCE: 0x0000_0100,
  OSFXSR: 0x0000_0200,
  OSXMMEXCPT: 0x0000_0400,
  UMIP: 0x0000_0800,
  LA57: 0x0000_1000,
  VMXE: 0x0000_2000,
  SMXE: 0x0000_4000,
  FSGSBASE: 0x0001_0000,
  PCIDE: 0x0002_0000,
  OSXSAVE: 0x0004_0000,
  KL: 0x0008_0000,
  SMEP: 0x0010_0000,
  SMAP: 0x0020_0000,
  PKE: 0x0040_0000,
  CET: 0x0080_0000,
  PKS: 0x0100_0000,
  UINTR: 0x0200_0000,
  LASS: 0x0800_0000,
  LAM_SUP: 0x1000_0000,
} as const;

/**
 * IA32_EFER: SCE, LME, LMA (read-only) and NXE are architectural (SDM Vol.
 * 3A §2.2.1, Table 2-1); SVME, LMSLE, FFXSR and TCE exist on AMD processors
 * only (AMD APM Vol. 2 §3.1.7).
 */
export const EFER = {
  SCE: 0x0000_0001,
  LME: 0x0000_0100,
  LMA: 0x0000_0400,
  NXE: 0x0000_0800,
  SVME: 0x0000_1000,
  LMSLE: 0x0000_2000,
  FFXSR: 0x0000_4000,
  TCE: 0x0000_8000,
} as const;
