import { HvmmuError } from '@hvmmu/core';
import { type SegmentPageSize, segmentPageSize } from '../format/SegmentPageSizes.js';

/** Entries of the lookup cache (a power of two). */
const SLB_CACHE = 64;

/** ESID word V bit (low half) and ESID masks (QEMU SLB_ESID_V, SLB_ESID_ESID). */
export const SLB_ESID_V_LO = 0x0800_0000;
/** VSID word: B (segment size) in the high half; Ks, Kp, N, L, C in the low half (QEMU SLB_VSID_*). */
export const SLB_VSID_B_1T_HI = 0x4000_0000;
export const SLB_VSID = {
  KS: 0x800,
  KP: 0x400,
  N: 0x200,
  L: 0x100,
  C: 0x080,
  LP: 0x030,
} as const;

/**
 * The segment lookaside buffer the guest manages (POWER ISA v2.07 Book III
 * 5.7.6): slots of an ESID word and a VSID word, written by `slbmte`,
 * invalidated by `slbie` / `slbia`, searched in slot order for an
 * effective address (QEMU slb_lookup). POWER8 has 32 slots.
 */
export class Slb {
  readonly size: number;
  // Private so that every write goes through slbmte/slbie/slbia, which keep the lookup cache exact.
  private readonly esidHi: Uint32Array;
  private readonly esidLo: Uint32Array;
  private readonly vsidHi: Uint32Array;
  private readonly vsidLo: Uint32Array;
  /** The segment page size of each slot (undefined for an empty slot). */
  private readonly sizes: (SegmentPageSize | undefined)[];

  constructor(size = 32) {
    if (!Number.isInteger(size) || size < 1 || size > 4096) throw new HvmmuError('BAD_ARGUMENT', `SLB size must be 1..4096, got ${size}`);
    this.size = size;
    this.esidHi = new Uint32Array(size);
    this.esidLo = new Uint32Array(size);
    this.vsidHi = new Uint32Array(size);
    this.vsidLo = new Uint32Array(size);
    this.sizes = new Array<SegmentPageSize | undefined>(size).fill(undefined);
  }

  /**
   * slbmte RS, RB: RB = ESID | V | slot (slot in bits 11..0), RS = the VSID
   * word. False (the processor's illegal-instruction program interrupt,
   * nothing written) for a slot past the SLB, reserved ESID bits, a
   * reserved segment size, or a base page size encoding the MMU does not
   * support (QEMU ppc_store_slb).
   */
  slbmte(rbHi: number, rbLo: number, rsHi: number, rsLo: number): boolean {
    const slot = rbLo & 0xfff;
    const esidLo = (rbLo & ~0xfff) >>> 0;
    if (slot >= this.size) return false;
    if ((esidLo & ~(0xf000_0000 | SLB_ESID_V_LO)) !== 0) return false;
    if ((rsHi & 0x8000_0000) !== 0) return false; // B = 2 or 3: reserved
    const sps = segmentPageSize(rsLo);
    if (sps === undefined) return false;
    this.esidHi[slot] = rbHi >>> 0;
    this.esidLo[slot] = esidLo;
    this.vsidHi[slot] = rsHi >>> 0;
    this.vsidLo[slot] = rsLo >>> 0;
    this.sizes[slot] = sps;
    this.dropCache();
    return true;
  }

  /** slbmte from BigInts (API edge). */
  slbmteBig(rb: bigint, rs: bigint): boolean {
    return this.slbmte(Number((rb >> 32n) & 0xffff_ffffn), Number(rb & 0xffff_ffffn), Number((rs >> 32n) & 0xffff_ffffn), Number(rs & 0xffff_ffffn));
  }

  // A direct-mapped cache of lookups by 256M ESID (EA bits 63..28), each the result of a
  // full in-order scan, dropped by every SLB write: exact (the first matching slot, as
  // QEMU's slb_lookup answers even with duplicate entries) and a hit costs two compares
  // instead of a scan of 32 slots (ppc.hpt.walk: 0.21 → see docs/benchmarks.md).
  private readonly cacheHi = new Uint32Array(SLB_CACHE).fill(0xffff_ffff);
  private readonly cacheEsid = new Int32Array(SLB_CACHE).fill(-1);
  private readonly cacheSlot = new Int32Array(SLB_CACHE);

  /** The slot translating effective address (eaHi, eaLo), or -1 (a segment interrupt). */
  lookup(eaHi: number, eaLo: number): number {
    const esid = eaLo >>> 28;
    // EA bits 37..28 pick the entry: consecutive segments get consecutive entries.
    const i = (esid | (eaHi << 4)) & (SLB_CACHE - 1);
    if (this.cacheEsid[i] === esid && this.cacheHi[i] === eaHi >>> 0) return this.cacheSlot[i]!;
    const slot = this.scan(eaHi, eaLo);
    this.cacheHi[i] = eaHi >>> 0;
    this.cacheEsid[i] = esid;
    this.cacheSlot[i] = slot;
    return slot;
  }

  private dropCache(): void {
    this.cacheEsid.fill(-1);
  }

  private scan(eaHi: number, eaLo: number): number {
    const lo256 = ((eaLo & 0xf000_0000) | SLB_ESID_V_LO) >>> 0;
    const hi1t = (eaHi & 0xffff_ff00) >>> 0;
    for (let n = 0; n < this.size; n++) {
      const b = this.vsidHi[n]! & 0xc000_0000;
      const eh = this.esidHi[n]!;
      const el = this.esidLo[n]!;
      if ((b === 0 && eh === eaHi >>> 0 && el === lo256) || (b === SLB_VSID_B_1T_HI && eh === hi1t && el === SLB_ESID_V_LO)) return n;
    }
    return -1;
  }

  /** A slot holds a valid entry. */
  isValid(slot: number): boolean {
    return (this.esidLo[slot]! & SLB_ESID_V_LO) !== 0;
  }

  /** A slot's ESID word, high and low halves (ESID in bits 63..28, V in bit 27). */
  esidHiOf(slot: number): number {
    return this.esidHi[slot]!;
  }
  esidLoOf(slot: number): number {
    return this.esidLo[slot]!;
  }

  /** A slot's VSID word, high and low halves (for the walker). */
  vsidHiOf(slot: number): number {
    return this.vsidHi[slot]!;
  }
  vsidLoOf(slot: number): number {
    return this.vsidLo[slot]!;
  }

  /** A slot's ESID and VSID words (what slbmfee / slbmfev read), as BigInts. */
  entry(slot: number): { esid: bigint; vsid: bigint } {
    if (!Number.isInteger(slot) || slot < 0 || slot >= this.size)
      throw new HvmmuError('BAD_ARGUMENT', `SLB slot must be 0..${this.size - 1}, got ${String(slot)}`);
    return {
      esid: (BigInt(this.esidHi[slot]!) << 32n) | BigInt(this.esidLo[slot]!),
      vsid: (BigInt(this.vsidHi[slot]!) << 32n) | BigInt(this.vsidLo[slot]!),
    };
  }

  /** The base page size of a slot's segment. */
  pageSize(slot: number): SegmentPageSize | undefined {
    return this.sizes[slot];
  }

  /** slbie: invalidate the entry translating the address, if any. */
  slbie(eaHi: number, eaLo: number): void {
    const n = this.scan(eaHi, eaLo);
    if (n >= 0) this.esidLo[n] = this.esidLo[n]! & ~SLB_ESID_V_LO;
    this.dropCache();
  }

  /** slbia (IH=0): invalidate every entry but slot 0. */
  slbia(): void {
    for (let n = 1; n < this.size; n++) this.esidLo[n] = this.esidLo[n]! & ~SLB_ESID_V_LO;
    this.dropCache();
  }
}
