import { HvmmuError } from '@hvmmu/core';
import { hptePageShifts } from '../format/HptePageSizes.js';
import type { HtabStore } from './HtabStore.js';

/**
 * KVM's HTAB stream (KVM_PPC_GET_HTAB_FD; arch/powerpc/kvm/book3s_64_mmu_hv.c
 * kvm_htab_read / kvm_htab_write; Documentation/virt/kvm/api.rst 4.78):
 * records of an 8-byte header — u32 index, u16 n_valid, u16 n_invalid, in
 * the host's byte order (little-endian on ppc64le) — followed by n_valid
 * guest-view HPTEs of two big-endian doublewords; the n_invalid entries
 * after them are invalid and take no bytes.
 */
export type HeaderByteOrder = 'little' | 'big';

export interface KvmHtabReadOptions {
  /** KVM_GET_HTAB_BOLTED_ONLY: only bolted entries count as valid; other present ones are sent as invalid. */
  readonly boltedOnly?: boolean;
  /** Where the first pass starts (entries below it are sent only in later passes, if modified). */
  readonly startIndex?: number;
  /** Default 'little' (a ppc64le host). */
  readonly headerByteOrder?: HeaderByteOrder;
}

const MAX_RUN = 0xffff;

/**
 * The read side, one `read(buffer)` per read(2) on the fd. The first pass
 * sends every entry from `startIndex` (runs of valid entries, then runs of
 * invalid ones, each run a record); later passes send only the entries
 * modified since they were last sent, tracked by the store's modified bits
 * (never by rescanning or diffing a copy); a read that reaches the end of
 * the table returns what it has and the next starts a later pass at 0, and
 * a read that finds nothing modified from where it is to the end returns 0:
 * the end of a pass as KVM signals it (QEMU takes 0 as "converged").
 */
export class KvmHtabReader {
  private index: number;
  private firstPass = true;
  private readonly boltedOnly: boolean;
  private readonly little: boolean;

  constructor(
    private readonly store: HtabStore,
    options: KvmHtabReadOptions = {},
  ) {
    const start = options.startIndex ?? 0;
    if (!Number.isSafeInteger(start) || start < 0) throw new HvmmuError('BAD_ARGUMENT', `startIndex must be a non-negative integer, got ${String(start)}`);
    this.index = start;
    this.boltedOnly = options.boltedOnly === true;
    this.little = (options.headerByteOrder ?? 'little') === 'little';
  }

  /** True until the first pass has covered the table to its end. */
  get inFirstPass(): boolean {
    return this.firstPass;
  }

  /** Fill `out` with records as kvm_htab_read does; returns the bytes produced (always less than out.length; 0 when out.length ≤ 24). */
  read(out: Uint8Array): number {
    const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
    const count = out.length;
    const store = this.store;
    const n = store.entries;
    let used = 0;
    let i = this.index;
    if (i >= n) {
      // start_index past the table: the first read returns 0 and ends the first pass.
      this.index = 0;
      this.firstPass = false;
      return 0;
    }
    const firstPass = this.firstPass;
    const little = this.little;
    // Every entry from here to where this call stops is covered by a record, or (in a later pass)
    // skipped as unmodified: the modified bits of the range go at once when the call ends
    // (record_hpte clears them one by one; nothing else runs in between).
    const callStart = i;
    // The first pass sends every entry: an invalid run is found by the store's own scan.
    const scanRuns = firstPass && !this.boltedOnly;
    while (used + 8 + 16 < count) {
      const headerAt = used;
      used += 8;
      if (!firstPass) i = store.nextModified(i);
      const first = i;
      let nValid = 0;
      // A run of entries to send as valid, then a run to send as invalid (kvm_htab_read with
      // record_hpte): in a later pass only modified entries, in the first pass all of them.
      while (i < n && nValid < MAX_RUN && used + 16 < count && (firstPass || store.isModified(i)) && this.sendsValid(i)) {
        store.guestView(i, out, used);
        used += 16;
        nValid++;
        i++;
      }
      const invalidStart = i;
      if (scanRuns) {
        i = store.nextPresent(i, Math.min(n, i + MAX_RUN));
      } else {
        while (i < n && i - invalidStart < MAX_RUN && (firstPass || store.isModified(i)) && !this.sendsValid(i)) i++;
      }
      const nInvalid = i - invalidStart;
      if (nValid !== 0 || nInvalid !== 0) {
        // The byte order as a constant at each call: a variable one cost a tenth of the pass.
        if (little) {
          view.setUint32(headerAt, first >>> 0, true);
          view.setUint16(headerAt + 4, nValid, true);
          view.setUint16(headerAt + 6, nInvalid, true);
        } else {
          view.setUint32(headerAt, first >>> 0, false);
          view.setUint16(headerAt + 4, nValid, false);
          view.setUint16(headerAt + 6, nInvalid, false);
        }
      } else {
        used -= 8;
      }
      if (i >= n) {
        store.clearModifiedRange(callStart, n);
        this.index = 0;
        this.firstPass = false;
        return used;
      }
    }
    store.clearModifiedRange(callStart, i);
    this.index = i;
    return used;
  }

  /** Sent as a valid entry: present for the guest (and bolted, with the bolted-only flag). */
  private sendsValid(i: number): boolean {
    const store = this.store;
    return store.present(i) && (!this.boltedOnly || store.bolted(i));
  }
}

export interface KvmHtabWriteOptions {
  /** Default 'little' (a ppc64le host). */
  readonly headerByteOrder?: HeaderByteOrder;
}

/**
 * The write side, as kvm_htab_write applies records: each valid HPTE
 * replaces what is at its index (H_REMOVE then H_ENTER with H_EXACT), each
 * invalid one removes it. Every record is checked whole before any of it is
 * applied — index and counts inside the table, every HPTE valid (V) with a
 * page-size encoding KVM accepts — and a bad one is refused with
 * STREAM_INVALID, changing nothing of that record (KVM itself applies a
 * record's entries up to the bad one). A record cut off at the end of the
 * bytes given is left unconsumed, as KVM stops short there.
 */
export class KvmHtabWriter {
  private readonly little: boolean;

  constructor(
    private readonly store: HtabStore,
    options: KvmHtabWriteOptions = {},
  ) {
    this.little = (options.headerByteOrder ?? 'little') === 'little';
  }

  /** Apply the whole records in `bytes`; returns the bytes consumed. */
  write(bytes: Uint8Array): number {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const count = bytes.length;
    const store = this.store;
    const n = store.entries;
    let used = 0;
    while (used + 8 <= count) {
      const index = view.getUint32(used, this.little);
      const nValid = view.getUint16(used + 4, this.little);
      const nInvalid = view.getUint16(used + 6, this.little);
      if (used + 8 + nValid * 16 > count) break;
      if (index >= n || index + nValid + nInvalid > n) {
        throw new HvmmuError(
          'STREAM_INVALID',
          `HTAB record at byte ${used}: index ${index} with ${nValid} valid and ${nInvalid} invalid entries is outside the ${n}-entry table`,
        );
      }
      const data = used + 8;
      for (let k = 0; k < nValid; k++) {
        const at = data + k * 16;
        const v0Lo = view.getUint32(at + 4, false);
        if ((v0Lo & 1) === 0) throw new HvmmuError('STREAM_INVALID', `HTAB record at byte ${used}: HPTE ${index + k} is sent as valid without V`);
        if (hptePageShifts(v0Lo, view.getUint32(at + 12, false)) === 0)
          throw new HvmmuError('STREAM_INVALID', `HTAB record at byte ${used}: HPTE ${index + k} has a page-size encoding (L/LP) KVM does not accept`);
        const refused = store.refuses?.(view.getUint32(at, false), v0Lo, view.getUint32(at + 8, false), view.getUint32(at + 12, false));
        if (refused !== undefined && refused !== null)
          throw new HvmmuError('STREAM_INVALID', `HTAB record at byte ${used}: HPTE ${index + k} is refused by the host: ${refused}`);
      }
      for (let k = 0; k < nValid; k++) {
        const at = data + k * 16;
        if (store.present(index + k)) store.remove(index + k);
        store.enter(index + k, view.getUint32(at, false), view.getUint32(at + 4, false), view.getUint32(at + 8, false), view.getUint32(at + 12, false));
      }
      for (let k = nValid; k < nValid + nInvalid; k++) if (store.present(index + k)) store.remove(index + k);
      used = data + nValid * 16;
    }
    return used;
  }
}
