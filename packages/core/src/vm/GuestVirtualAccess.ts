import { HvmmuError } from '../errors/HvmmuError.js';
import { Access, isValidAccess } from '../mmu/Access.js';
import { FaultKind, type FaultInfo } from '../mmu/FaultInfo.js';
import { checkValueBits, type MemslotTable } from '../memslot/MemslotTable.js';

const TWO_POW_52 = 2 ** 52;

/**
 * Guest-virtual memory access for every backend: reads and writes of 1, 2,
 * 4 or 8 bytes in either byte order at a virtual address, through the TLB
 * and the MMU as the guest's own access would go, crossing a page boundary
 * where the access does (both pages are translated before anything is
 * written, so a fault on the second page leaves memory unchanged). A write
 * the MMU must emulate (EMULATE: a write-protected guest page table) is
 * handed to the MMU's `emulateWrite`.
 *
 * Addresses are numbers below 2^53 or, at this API edge, BigInts up to
 * 2^64 (a POWER kernel address, an x86 upper-half address). A failed access
 * returns -1 (reads of ≤ 4 bytes) or false with `fault` filled in. A value
 * that does not fit the access size is host misuse: a typed error.
 */
export abstract class GuestVirtualAccess {
  /** The last successful read's value: low and high 32 bits (reads of ≤ 4 bytes leave `valueHi` 0). */
  valueLo = 0;
  valueHi = 0;
  private readonly bytes8 = new Uint8Array(8);
  private readonly view8 = new DataView(this.bytes8.buffer);
  /** Where the last `pageOf` put the address: virtual page number and offset. */
  private vpnOut = 0;
  private offsetOut = 0;

  protected constructor(protected readonly memslots: MemslotTable) {}

  abstract readonly fault: FaultInfo;
  abstract translatePage(vpn: number, access: number): number;
  /** Perform a write the MMU answered with EMULATE; false if no writable memory backs gpa. */
  protected abstract emulateWrite(gpa: number, data: Uint8Array, from: number, len: number): boolean;

  /** The byte at va, or -1 on a fault. */
  read8(va: number | bigint, access: number = Access.READ): number {
    return this.read(va, 1, true, access) ? this.valueLo : -1;
  }

  read16(va: number | bigint, littleEndian: boolean, access: number = Access.READ): number {
    return this.read(va, 2, littleEndian, access) ? this.valueLo : -1;
  }

  read32(va: number | bigint, littleEndian: boolean, access: number = Access.READ): number {
    return this.read(va, 4, littleEndian, access) ? this.valueLo : -1;
  }

  /** The 8 bytes at va into `valueHi`/`valueLo`; false on a fault. */
  read64(va: number | bigint, littleEndian: boolean, access: number = Access.READ): boolean {
    return this.read(va, 8, littleEndian, access);
  }

  /** The 8 bytes at va as a BigInt, or undefined on a fault (API edge). */
  read64Big(va: number | bigint, littleEndian: boolean, access: number = Access.READ): bigint | undefined {
    return this.read(va, 8, littleEndian, access) ? (BigInt(this.valueHi) << 32n) | BigInt(this.valueLo) : undefined;
  }

  write8(va: number | bigint, value: number): boolean {
    checkValueBits(value, 8);
    return this.write(va, 1, 0, value, true, Access.WRITE);
  }

  write16(va: number | bigint, value: number, littleEndian: boolean): boolean {
    checkValueBits(value, 16);
    return this.write(va, 2, 0, value, littleEndian, Access.WRITE);
  }

  write32(va: number | bigint, value: number, littleEndian: boolean): boolean {
    checkValueBits(value, 32);
    return this.write(va, 4, 0, value, littleEndian, Access.WRITE);
  }

  /** Write a 64-bit value given as halves. */
  write64(va: number | bigint, hi: number, lo: number, littleEndian: boolean): boolean {
    checkValueBits(hi, 32);
    checkValueBits(lo, 32);
    return this.write(va, 8, hi, lo, littleEndian, Access.WRITE);
  }

  /** Write a 64-bit value given as a BigInt in [-2^63, 2^64) (API edge). */
  write64Big(va: number | bigint, value: bigint, littleEndian: boolean): boolean {
    if (typeof value !== 'bigint' || value < -(1n << 63n) || value >= 1n << 64n) {
      throw new HvmmuError('BAD_ARGUMENT', `value ${String(value)} does not fit in 64 bits`);
    }
    const v = BigInt.asUintN(64, value);
    return this.write(va, 8, Number(v >> 32n), Number(v & 0xffff_ffffn), littleEndian, Access.WRITE);
  }

  /**
   * Read `size` bytes at va as `access` (READ or FETCH, with USER/IMPLICIT
   * as the backend defines): true with the value in `valueLo`/`valueHi`.
   */
  read(va: number | bigint, size: number, littleEndian: boolean, access: number = Access.READ): boolean {
    this.checkArgs(va, size, access, littleEndian);
    if ((access & Access.WRITE) !== 0) throw new HvmmuError('BAD_ARGUMENT', 'read takes a read or fetch access');
    const vpn = this.vpnOut;
    const offset = this.offsetOut;
    const first = Math.min(size, 4096 - offset);
    const hfn1 = this.translatePage(vpn, access);
    if (hfn1 < 0) return this.fixFaultAddress(vpn, offset);
    let hfn2 = -1;
    if (first < size) {
      hfn2 = this.translatePage((vpn + 1) % TWO_POW_52, access);
      if (hfn2 < 0) return false;
    }
    const mem = this.memslots.host.bytes;
    const bytes = this.bytes8;
    const base1 = hfn1 * 4096 + offset;
    for (let k = 0; k < size; k++) bytes[k] = mem[k < first ? base1 + k : hfn2 * 4096 + k - first]!;
    const view = this.view8;
    if (size === 1) this.setValue(0, bytes[0]!);
    else if (size === 2) this.setValue(0, view.getUint16(0, littleEndian));
    else if (size === 4) this.setValue(0, view.getUint32(0, littleEndian));
    else if (littleEndian) this.setValue(view.getUint32(4, true), view.getUint32(0, true));
    else this.setValue(view.getUint32(0, false), view.getUint32(4, false));
    return true;
  }

  /**
   * Write `size` bytes of the value hi:lo (lo alone for ≤ 4 bytes) at va.
   * False with `fault` set for a guest fault, MMIO or a hole (NO_MEMORY) and
   * read-only memory (READ_ONLY); nothing is written then.
   */
  write(va: number | bigint, size: number, hi: number, lo: number, littleEndian: boolean, access: number = Access.WRITE): boolean {
    this.checkArgs(va, size, access | Access.WRITE, littleEndian);
    access |= Access.WRITE;
    const view = this.view8;
    if (size === 1) view.setUint8(0, lo & 0xff);
    else if (size === 2) view.setUint16(0, lo & 0xffff, littleEndian);
    else if (size === 4) view.setUint32(0, lo >>> 0, littleEndian);
    else if (littleEndian) {
      view.setUint32(0, lo >>> 0, true);
      view.setUint32(4, hi >>> 0, true);
    } else {
      view.setUint32(0, hi >>> 0, false);
      view.setUint32(4, lo >>> 0, false);
    }
    const vpn = this.vpnOut;
    const offset = this.offsetOut;
    const fault = this.fault;
    const first = Math.min(size, 4096 - offset);
    const hfn1 = this.translatePage(vpn, access);
    if (hfn1 < 0 && fault.kind !== FaultKind.EMULATE) return this.fixFaultAddress(vpn, offset);
    const gpa1 = hfn1 < 0 ? fault.gpa - (fault.gpa % 4096) + offset : -1;
    let hfn2 = -1;
    let gpa2 = -1;
    if (first < size) {
      hfn2 = this.translatePage((vpn + 1) % TWO_POW_52, access);
      if (hfn2 < 0 && fault.kind !== FaultKind.EMULATE) return false;
      if (hfn2 < 0) gpa2 = fault.gpa - (fault.gpa % 4096);
    }
    if (!this.storePart(hfn1, offset, gpa1, 0, first, vpn)) return false;
    if (first < size && !this.storePart(hfn2, 0, gpa2, first, size - first, (vpn + 1) % TWO_POW_52)) return false;
    fault.clear();
    return true;
  }

  private storePart(hfn: number, offset: number, gpa: number, from: number, len: number, vpn: number): boolean {
    if (hfn >= 0) {
      this.memslots.host.bytes.set(this.bytes8.subarray(from, from + len), hfn * 4096 + offset);
      return true;
    }
    if (this.emulateWrite(gpa, this.bytes8, from, len)) return true;
    const slot = this.memslots.findByGfn(Math.floor(gpa / 4096));
    const fault = this.fault;
    fault.exit(slot !== undefined && slot.readOnly ? FaultKind.READ_ONLY : FaultKind.NO_MEMORY, gpa);
    fault.setAccess(vpn, gpa % 4096, Access.WRITE);
    return false;
  }

  /** `translatePage` records offset 0; the fault is at `offset` in the page. */
  private fixFaultAddress(vpn: number, offset: number): false {
    const fault = this.fault;
    fault.setAccess(vpn, offset, fault.access);
    return false;
  }

  private setValue(hi: number, lo: number): void {
    this.valueHi = hi;
    this.valueLo = lo;
  }

  private checkArgs(va: number | bigint, size: number, access: number, littleEndian: boolean): void {
    if (typeof va === 'bigint') {
      if (va < 0n || va >= 1n << 64n) throw new HvmmuError('BAD_ARGUMENT', `virtual address ${va} is outside 0..2^64-1`);
      this.vpnOut = Number(va >> 12n);
      this.offsetOut = Number(va & 0xfffn);
    } else {
      if (!Number.isSafeInteger(va) || va < 0)
        throw new HvmmuError('BAD_ARGUMENT', `virtual address must be a non-negative safe integer or a BigInt, got ${String(va)}`);
      this.offsetOut = va % 4096;
      this.vpnOut = (va - this.offsetOut) / 4096;
    }
    if (size !== 1 && size !== 2 && size !== 4 && size !== 8) throw new HvmmuError('BAD_ARGUMENT', `access size must be 1, 2, 4 or 8, got ${String(size)}`);
    if (!isValidAccess(access)) throw new HvmmuError('BAD_ARGUMENT', `invalid access ${String(access)}`);
    if (typeof littleEndian !== 'boolean') throw new HvmmuError('BAD_ARGUMENT', `byte order must be a boolean (littleEndian), got ${String(littleEndian)}`);
  }
}
