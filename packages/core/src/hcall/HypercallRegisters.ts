import { HvmmuError } from '../errors/HvmmuError.js';

const TWO_POW_32 = 0x1_0000_0000;

/**
 * 64-bit hypercall argument and return registers as two uint32 lanes each
 * (no BigInt): PAPR hcalls pass values with bit 63 set (HPTE dwords, flags),
 * which a number cannot hold. One instance per vCPU, reused for every call.
 */
export class HypercallRegisters {
  readonly count: number;
  readonly argHi: Uint32Array;
  readonly argLo: Uint32Array;
  readonly retHi: Uint32Array;
  readonly retLo: Uint32Array;

  constructor(count = 9) {
    if (!Number.isInteger(count) || count < 1 || count > 64) {
      throw new HvmmuError('HCALL_BAD_REGISTER', `hypercall register count must be 1..64, got ${count}`);
    }
    this.count = count;
    this.argHi = new Uint32Array(count);
    this.argLo = new Uint32Array(count);
    this.retHi = new Uint32Array(count);
    this.retLo = new Uint32Array(count);
  }

  /** Argument i as a number, or -1 if it does not fit in 53 bits (callers treat that as a bad parameter). */
  arg(i: number): number {
    this.checkIndex(i);
    const hi = this.argHi[i]!;
    return hi > 0x1f_ffff ? -1 : hi * TWO_POW_32 + this.argLo[i]!;
  }

  /** Set argument i from a number in [0, 2^53) (host side: building a call). */
  setArg(i: number, value: number): this {
    this.checkIndex(i);
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new HvmmuError('HCALL_BAD_REGISTER', `hypercall argument ${i} must be an integer in [0, 2^53), got ${value}; use setArgHalves`);
    }
    this.argHi[i] = Math.floor(value / TWO_POW_32);
    this.argLo[i] = value >>> 0;
    return this;
  }

  setArgHalves(i: number, hi: number, lo: number): this {
    this.checkIndex(i);
    this.argHi[i] = hi >>> 0;
    this.argLo[i] = lo >>> 0;
    return this;
  }

  /** Return register i as a number, or -1 if it exceeds 53 bits. */
  ret(i: number): number {
    this.checkIndex(i);
    const hi = this.retHi[i]!;
    return hi > 0x1f_ffff ? -1 : hi * TWO_POW_32 + this.retLo[i]!;
  }

  /**
   * Set return register i from an integer in (-2^53, 2^53); a negative value
   * is stored as its 64-bit two's complement (e.g. a PAPR status in r3).
   */
  setRet(i: number, value: number): void {
    this.checkIndex(i);
    if (!Number.isSafeInteger(value)) {
      throw new HvmmuError('HCALL_BAD_REGISTER', `hypercall return ${i} must be a safe integer, got ${value}; use setRetHalves`);
    }
    this.retHi[i] = Math.floor(value / TWO_POW_32);
    this.retLo[i] = value >>> 0;
  }

  setRetHalves(i: number, hi: number, lo: number): void {
    this.checkIndex(i);
    this.retHi[i] = hi >>> 0;
    this.retLo[i] = lo >>> 0;
  }

  clear(): void {
    this.argHi.fill(0);
    this.argLo.fill(0);
    this.retHi.fill(0);
    this.retLo.fill(0);
  }

  private checkIndex(i: number): void {
    if (!Number.isInteger(i) || i < 0 || i >= this.count) {
      throw new HvmmuError('HCALL_BAD_REGISTER', `hypercall register index ${i} outside 0..${this.count - 1}`);
    }
  }
}
