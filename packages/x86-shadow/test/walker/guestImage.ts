import { FlatGuestMemory, type GuestMemory } from '@hvmmu/core';
import { CR0, CR4, EFER, X86Registers } from '@hvmmu/x86-shadow/internal';

/**
 * A guest-physical memory image for hand-built page tables. Entries are
 * written as bigints (tests only; the walker reads two uint32 halves),
 * little-endian as on x86.
 */
export class GuestImage {
  readonly bytes: Uint8Array;
  readonly view: DataView;
  readonly mem: FlatGuestMemory;

  constructor(size = 4 << 20) {
    this.bytes = new Uint8Array(size);
    this.view = new DataView(this.bytes.buffer);
    this.mem = new FlatGuestMemory(this.bytes);
  }

  set64(gpa: number, value: bigint): void {
    this.view.setBigUint64(gpa, BigInt.asUintN(64, value), true);
  }

  get64(gpa: number): bigint {
    return this.view.getBigUint64(gpa, true);
  }

  set32(gpa: number, value: number): void {
    this.view.setUint32(gpa, value >>> 0, true);
  }

  get32(gpa: number): number {
    return this.view.getUint32(gpa, true);
  }

  /** Entry `index` of the 8-byte table at `table`. */
  entry64(table: number, index: number, value: bigint): number {
    const gpa = table + index * 8;
    this.set64(gpa, value);
    return gpa;
  }

  entry32(table: number, index: number, value: number): number {
    const gpa = table + index * 4;
    this.set32(gpa, value);
    return gpa;
  }

  snapshot(): Uint8Array {
    return this.bytes.slice();
  }
}

// Entry bits (SDM tables 4-4..4-20).
export const P = 1n;
export const RW = 2n;
export const US = 4n;
export const PWT = 8n;
export const A = 0x20n;
export const D = 0x40n;
export const PS = 0x80n;
export const G = 0x100n;
export const XD = 1n << 63n;
export const key = (k: number): bigint => BigInt(k) << 59n;

/** Indices of a 48/57-bit virtual address, level 1..5. */
export function indices(va: bigint): number[] {
  const v = BigInt.asUintN(64, va);
  return [0, ...[0, 1, 2, 3, 4].map((l) => Number((v >> BigInt(12 + 9 * l)) & 511n))];
}

/** Page number of a 64-bit virtual address (what `walk` takes). */
export function vpnOf(va: bigint): number {
  return Number(BigInt.asUintN(64, va) >> 12n);
}

export type ModeName = 'off' | 'bits32' | 'pae' | 'long4' | 'long5';

export function registers(mode: ModeName, cr3: number, extra: { cr0?: number; cr4?: number; efer?: number } = {}): X86Registers {
  const r = new X86Registers();
  r.cr3 = cr3;
  r.cr0 = (mode === 'off' ? CR0.PE : CR0.PG | CR0.PE) | (extra.cr0 ?? 0);
  r.cr4 = (mode === 'pae' || mode === 'long4' || mode === 'long5' ? CR4.PAE : 0) | (mode === 'long5' ? CR4.LA57 : 0) | (extra.cr4 ?? 0);
  r.efer = (mode === 'long4' || mode === 'long5' ? EFER.LME | EFER.LMA : 0) | (extra.efer ?? 0);
  return r;
}

/** Guest memory wrapper that refuses writes to chosen pages (a read-only slot) and counts resolves. */
export class CountingMemory implements GuestMemory {
  readonly view: DataView;
  reads = 0;
  writes = 0;
  readonly readOnlyGfns = new Set<number>();

  constructor(private readonly inner: GuestMemory) {
    this.view = inner.view;
  }

  resolve(gpa: number, write: boolean): number {
    if (write) this.writes++;
    else this.reads++;
    if (write && this.readOnlyGfns.has(Math.floor(gpa / 4096))) return -1;
    return this.inner.resolve(gpa, write);
  }
}

/** Offset of the first byte where `a` and `b` differ, or -1 (a fast stand-in for deep equality on images). */
export function firstDifference(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  const i = Buffer.compare(a, b) === 0 ? -1 : a.findIndex((v, k) => v !== b[k]);
  return i;
}
