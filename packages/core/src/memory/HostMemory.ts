import { HvmmuError, hex } from '../errors/HvmmuError.js';

/** Host pages are 4 KiB, like the host pages KVM maps guests onto. */
export const HOST_PAGE_SHIFT = 12;
export const HOST_PAGE_SIZE = 1 << HOST_PAGE_SHIFT;

const TWO_POW_32 = 0x1_0000_0000;

export interface HostMemoryOptions {
  /** Size in bytes; a multiple of 4 KiB. */
  readonly bytes: number;
  /** Back the pool with a SharedArrayBuffer (for workers). Default false. */
  readonly shared?: boolean;
}

/**
 * Host physical memory: a pool of 4 KiB frames over one (Shared)ArrayBuffer.
 *
 * Host physical address (hpa) = byte offset in the buffer; host frame number
 * (hfn) = hpa >> 12. Allocation and free are O(1) (a stack of free frames in
 * an Int32Array plus an in-use byte per frame so a double free is caught).
 * Accessors are bounds-checked and typed-array backed; 64-bit values are
 * carried as two 32-bit halves, or as a number when ≤ 2^53.
 */
export class HostMemory {
  readonly buffer: ArrayBuffer | SharedArrayBuffer;
  /** The whole pool as bytes; backends may read it directly on hot paths. */
  readonly view: DataView;
  readonly bytes: Uint8Array;
  readonly byteLength: number;
  readonly frameCount: number;

  private readonly freeStack: Int32Array;
  private freeTop: number;
  private readonly inUse: Uint8Array;
  private zeroHfn = -1;

  constructor(options: HostMemoryOptions) {
    const size = options.bytes;
    if (!Number.isSafeInteger(size) || size <= 0 || size % HOST_PAGE_SIZE !== 0) {
      throw new HvmmuError('HOST_BAD_SIZE', `host memory size must be a positive multiple of 4 KiB, got ${size}`);
    }
    try {
      this.buffer = options.shared === true ? new SharedArrayBuffer(size) : new ArrayBuffer(size);
    } catch (error) {
      // The engine refuses the allocation (RangeError): report it as the host
      // being out of memory rather than leaking an engine error.
      throw new HvmmuError('HOST_OUT_OF_MEMORY', `cannot allocate ${size} bytes of host memory (${(error as Error).message})`, { bytes: size });
    }
    this.view = new DataView(this.buffer);
    this.bytes = new Uint8Array(this.buffer);
    this.byteLength = size;
    this.frameCount = size / HOST_PAGE_SIZE;
    this.freeStack = new Int32Array(this.frameCount);
    this.inUse = new Uint8Array(this.frameCount);
    // Hand out low frames first: push in reverse so frame 0 is on top.
    for (let i = 0; i < this.frameCount; i++) this.freeStack[i] = this.frameCount - 1 - i;
    this.freeTop = this.frameCount;
  }

  /**
   * The shared zero frame: what a guest read of a never-written page maps,
   * read-only, as anonymous memory on a Linux host maps the zero page.
   * Allocated on first use and never freed; nothing may write to it.
   */
  get zeroFrame(): number {
    if (this.zeroHfn < 0) this.zeroHfn = this.allocFrame();
    return this.zeroHfn;
  }

  /** Whether the zero frame has been allocated (reading `zeroFrame` then never allocates). */
  get hasZeroFrame(): boolean {
    return this.zeroHfn >= 0;
  }

  /** Frames currently allocated (including the zero frame once used). */
  get framesInUse(): number {
    return this.frameCount - this.freeTop;
  }

  get framesFree(): number {
    return this.freeTop;
  }

  /** Allocate one zeroed frame; returns its frame number. O(1) plus the zeroing. */
  allocFrame(): number {
    if (this.freeTop === 0) {
      throw new HvmmuError('HOST_OUT_OF_MEMORY', `no free host frames (pool of ${this.frameCount} frames is exhausted)`);
    }
    const hfn = this.freeStack[--this.freeTop]!;
    this.inUse[hfn] = 1;
    this.bytes.fill(0, hfn * HOST_PAGE_SIZE, (hfn + 1) * HOST_PAGE_SIZE);
    return hfn;
  }

  /**
   * Return a frame to the pool. Freeing a frame that is not allocated throws,
   * and so does freeing the zero frame: guests may still map it, and handing
   * it out again would show one guest's data where others expect zeros.
   */
  freeFrame(hfn: number): void {
    if (!Number.isInteger(hfn) || hfn < 0 || hfn >= this.frameCount || this.inUse[hfn] === 0) {
      throw new HvmmuError('HOST_BAD_FRAME', `frame ${hfn} is not an allocated host frame`);
    }
    if (hfn === this.zeroHfn) {
      throw new HvmmuError('HOST_BAD_FRAME', `frame ${hfn} is the shared zero frame and is never freed`);
    }
    this.inUse[hfn] = 0;
    this.freeStack[this.freeTop++] = hfn;
  }

  isAllocated(hfn: number): boolean {
    return Number.isInteger(hfn) && hfn >= 0 && hfn < this.frameCount && this.inUse[hfn] === 1;
  }

  private check(hpa: number, size: number): void {
    if (!(hpa >= 0 && hpa + size <= this.byteLength) || hpa % 1 !== 0) {
      throw new HvmmuError('HOST_OUT_OF_BOUNDS', `host access of ${size} bytes at ${hex(hpa)} is outside host memory (${hex(this.byteLength)} bytes)`, {
        hpa,
        size,
      });
    }
  }

  read8(hpa: number): number {
    this.check(hpa, 1);
    return this.bytes[hpa]!;
  }

  write8(hpa: number, value: number): void {
    checkBits(value, 8);
    this.check(hpa, 1);
    this.bytes[hpa] = value;
  }

  read16(hpa: number, littleEndian: boolean): number {
    this.check(hpa, 2);
    return this.view.getUint16(hpa, littleEndian);
  }

  write16(hpa: number, value: number, littleEndian: boolean): void {
    checkBits(value, 16);
    this.check(hpa, 2);
    this.view.setUint16(hpa, value, littleEndian);
  }

  read32(hpa: number, littleEndian: boolean): number {
    this.check(hpa, 4);
    return this.view.getUint32(hpa, littleEndian);
  }

  write32(hpa: number, value: number, littleEndian: boolean): void {
    checkBits(value, 32);
    this.check(hpa, 4);
    this.view.setUint32(hpa, value >>> 0, littleEndian);
  }

  /** High 32 bits of the 64-bit value at hpa. */
  read64Hi(hpa: number, littleEndian: boolean): number {
    this.check(hpa, 8);
    return this.view.getUint32(littleEndian ? hpa + 4 : hpa, littleEndian);
  }

  /** Low 32 bits of the 64-bit value at hpa. */
  read64Lo(hpa: number, littleEndian: boolean): number {
    this.check(hpa, 8);
    return this.view.getUint32(littleEndian ? hpa : hpa + 4, littleEndian);
  }

  /** The 64-bit value at hpa as a number; throws if it exceeds 2^53 - 1. */
  read64(hpa: number, littleEndian: boolean): number {
    const hi = this.read64Hi(hpa, littleEndian);
    if (hi > 0x1f_ffff) {
      throw new HvmmuError('BAD_ARGUMENT', `64-bit value at ${hex(hpa)} exceeds 2^53; read it as two halves`);
    }
    return hi * TWO_POW_32 + this.read64Lo(hpa, littleEndian);
  }

  write64Halves(hpa: number, hi: number, lo: number, littleEndian: boolean): void {
    checkBits(hi, 32);
    checkBits(lo, 32);
    this.check(hpa, 8);
    this.view.setUint32(littleEndian ? hpa + 4 : hpa, hi >>> 0, littleEndian);
    this.view.setUint32(littleEndian ? hpa : hpa + 4, lo >>> 0, littleEndian);
  }

  /** Write a number in [0, 2^53) as a 64-bit value. */
  write64(hpa: number, value: number, littleEndian: boolean): void {
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new HvmmuError('BAD_ARGUMENT', `write64 takes an integer in [0, 2^53), got ${value}`);
    }
    this.write64Halves(hpa, Math.floor(value / TWO_POW_32), value >>> 0, littleEndian);
  }

  /** Copy bytes out of host memory. */
  readBytes(hpa: number, out: Uint8Array): void {
    this.check(hpa, out.length);
    out.set(this.bytes.subarray(hpa, hpa + out.length));
  }

  writeBytes(hpa: number, data: Uint8Array): void {
    this.check(hpa, data.length);
    this.bytes.set(data, hpa);
  }
}

/** A value stored in `bits` bits must fit them, unsigned or two's-complement signed; never silently truncated. */
function checkBits(value: number, bits: number): void {
  if (!Number.isInteger(value) || value < -(2 ** (bits - 1)) || value >= 2 ** bits) {
    throw new HvmmuError('BAD_ARGUMENT', `value ${String(value)} does not fit in ${bits} bits`);
  }
}
