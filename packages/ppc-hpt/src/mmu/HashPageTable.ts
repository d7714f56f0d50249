import { HvmmuError } from '@hvmmu/core';

/** KVM's bounds (PPC_MIN_HPT_ORDER, PPC_MAX_HPT_ORDER in kvm_book3s_64.h): 256 KiB .. 64 TiB. */
export const HPT_MIN_ORDER = 18;
export const HPT_MAX_ORDER = 46;
/**
 * The largest order hvmmu allocates: the HTAB stream formats (KVM's
 * kvm_get_htab_header, QEMU's spapr/htab chunks) carry an HPTE index in 32
 * bits, so a table of more than 2^32 entries (order > 36) cannot be
 * migrated, and a typed array tops out well before that.
 */
export const HPT_MAX_SUPPORTED_ORDER = 31;

/**
 * A hashed page table: 2^order bytes of 16-byte HPTEs (dword0, dword1,
 * big-endian) in groups of 8, as the hardware searches it. The guest view.
 */
export class HashPageTable {
  readonly order: number;
  readonly bytes: Uint8Array;
  readonly view: DataView;
  /** Number of 8-entry groups minus one: the hash mask (kvmppc_hpt_mask). */
  readonly hashMask: number;
  readonly entries: number;

  /**
   * The HPTE layout of this table: 'v2.07' (every guest view, POWER8's real
   * HPT) or 'v3.0' (POWER9's real HPT: the segment size B moves from dword0
   * bits 63:62 to dword1 bits 59:58, dword0 keeps bits 51:0 —
   * hpte_old_to_new_v/_r in arch/powerpc/include/asm/book3s/64/mmu-hash.h).
   * The walker reads a v3.0 entry as the old one (QEMU ppc_hash64_pteg_search
   * converts new to old before matching).
   */
  readonly isaV3: boolean;

  constructor(order: number, bytes?: Uint8Array, format: 'v2.07' | 'v3.0' = 'v2.07') {
    if (format !== 'v2.07' && format !== 'v3.0') throw new HvmmuError('BAD_ARGUMENT', `HPTE format must be 'v2.07' or 'v3.0', got ${String(format)}`);
    this.isaV3 = format === 'v3.0';
    if (!Number.isInteger(order) || order < HPT_MIN_ORDER || order > HPT_MAX_ORDER) {
      throw new HvmmuError('BAD_ARGUMENT', `HPT order must be an integer in ${HPT_MIN_ORDER}..${HPT_MAX_ORDER} (KVM's bounds), got ${String(order)}`);
    }
    if (order > HPT_MAX_SUPPORTED_ORDER) {
      throw new HvmmuError(
        'BAD_ARGUMENT',
        `HPT order ${order} is valid for KVM but not supported here: the migration stream formats index HPTEs in 32 bits (order ≤ 36) and a table above 2^${HPT_MAX_SUPPORTED_ORDER} bytes is not allocated`,
      );
    }
    if (bytes !== undefined && bytes.length !== 2 ** order)
      throw new HvmmuError('BAD_ARGUMENT', `an order-${order} HPT is ${2 ** order} bytes, got ${bytes.length}`);
    this.order = order;
    this.bytes = bytes ?? new Uint8Array(2 ** order);
    this.view = new DataView(this.bytes.buffer, this.bytes.byteOffset, this.bytes.byteLength);
    this.hashMask = 2 ** (order - 7) - 1;
    this.entries = 2 ** (order - 4);
    // A fresh table counts as changed everywhere: a migration's later passes send what a
    // destination could not know (QEMU marks every entry of a new table dirty).
    this.modified = new Uint8Array(this.entries >>> 3).fill(0xff);
    this.modifiedWords = new Uint32Array(this.modified.buffer);
  }

  /** The same bitmap as 32-entry words (entries is a multiple of 2^14). */
  private readonly modifiedWords: Uint32Array;

  /**
   * One bit per HPTE: changed since it was last sent in a migration stream
   * (QEMU's HPTE64_V_HPTE_DIRTY, KVM's HPTE_GR_MODIFIED), kept apart from the
   * entries so the guest view stays exactly what the guest wrote. Set by
   * every change to an entry, cleared by the stream writers as they send it.
   */
  readonly modified: Uint8Array;

  isModified(index: number): boolean {
    return (this.modified[index >>> 3]! & (1 << (index & 7))) !== 0;
  }

  markModified(index: number): void {
    const b = index >>> 3;
    this.modified[b] = this.modified[b]! | (1 << (index & 7));
  }

  /**
   * The first modified entry at or after `from`, or `entries`: 32 entries
   * per step over the bitmap, so a pass with nothing changed reads
   * entries / 8 bytes, not the table (KVM instead reads each HPTE's
   * revmap word; tracked apart, the skip costs 1/128 of the table).
   */
  nextModified(from: number): number {
    const n = this.entries;
    let i = from;
    const bits = this.modified;
    // Up to the next 32-entry boundary bit by bit, then whole words.
    while (i < n && (i & 31) !== 0) {
      if ((bits[i >>> 3]! & (1 << (i & 7))) !== 0) return i;
      i++;
    }
    const words = this.modifiedWords;
    while (i < n && words[i >>> 5] === 0) i += 32;
    while (i < n) {
      if ((bits[i >>> 3]! & (1 << (i & 7))) !== 0) return i;
      i++;
    }
    return n;
  }

  /** Clear the modified bits of entries [from, to): bit by bit to a 32-entry boundary, then whole words. */
  clearModifiedRange(from: number, to: number): void {
    let i = from;
    const bits = this.modified;
    while (i < to && (i & 31) !== 0) {
      bits[i >>> 3] = bits[i >>> 3]! & ~(1 << (i & 7));
      i++;
    }
    const words = this.modifiedWords;
    while (i + 32 <= to) {
      words[i >>> 5] = 0;
      i += 32;
    }
    while (i < to) {
      bits[i >>> 3] = bits[i >>> 3]! & ~(1 << (i & 7));
      i++;
    }
  }

  clearModified(index: number): void {
    const b = index >>> 3;
    this.modified[b] = this.modified[b]! & ~(1 << (index & 7));
  }

  /** V set in the entry's dword0 (bit 0 of its last, big-endian byte). */
  isValid(index: number): boolean {
    return (this.bytes[index * 16 + 7]! & 1) !== 0;
  }
}
