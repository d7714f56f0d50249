import { HvmmuError } from '@hvmmu/core';
import { HPT_MAX_SUPPORTED_ORDER, HPT_MIN_ORDER, HashPageTable } from '../mmu/HashPageTable.js';

/**
 * QEMU's `spapr/htab` migration section (hw/ppc/spapr.c: htab_save_setup,
 * htab_save_first_pass, htab_save_later_pass, htab_save_iterate,
 * htab_save_complete, htab_load; framing from migration/savevm.c).
 *
 * Records: START (type 0x01, be32 section id, u8 length + "spapr/htab", be32
 * instance, be32 version 1) with a be32 payload, the HPT order or
 * 0xFFFFFFFF for "no HPT"; then PART (0x02) and one END (0x03) records (type
 * + be32 section id) whose payload is a be32 iteration header 0, chunks of
 * be32 index, be16 n_valid, be16 n_invalid and n_valid 16-byte HPTEs, and an
 * end marker of 8 zero bytes. Each record ends with the footer 0x7E + be32
 * section id. All big-endian.
 */
export const SECTION_START = 0x01;
export const SECTION_PART = 0x02;
export const SECTION_END = 0x03;
export const SECTION_FOOTER = 0x7e;
export const HTAB_SECTION_NAME = 'spapr/htab';
export const HTAB_SECTION_VERSION = 1;
const NO_HPT = 0xffff_ffff;
/** QEMU's chunk limit: n_valid and n_invalid are u16. */
const MAX_RUN = 0xffff;

export interface HtabSectionIdentity {
  /** The section id the migration stream gave `spapr/htab`. */
  readonly sectionId: number;
  /** The instance id (QEMU registers the section with VMSTATE_INSTANCE_ID_ANY; the first instance is 0). */
  readonly instanceId?: number;
}

/** A growable big-endian byte sink. */
class ByteSink {
  private bytes = new Uint8Array(1024);
  private view = new DataView(this.bytes.buffer);
  length = 0;

  private room(n: number): void {
    if (this.length + n <= this.bytes.length) return;
    let size = this.bytes.length * 2;
    while (size < this.length + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.bytes.subarray(0, this.length));
    this.bytes = next;
    this.view = new DataView(next.buffer);
  }

  u8(v: number): void {
    this.room(1);
    this.view.setUint8(this.length, v);
    this.length += 1;
  }

  u16(v: number): void {
    this.room(2);
    this.view.setUint16(this.length, v, false);
    this.length += 2;
  }

  u32(v: number): void {
    this.room(4);
    this.view.setUint32(this.length, v >>> 0, false);
    this.length += 4;
  }

  copy(src: Uint8Array): void {
    this.room(src.length);
    this.bytes.set(src, this.length);
    this.length += src.length;
  }

  take(): Uint8Array {
    return this.bytes.slice(0, this.length);
  }
}

/**
 * Produces the section as QEMU does when it owns the table (TCG): `start()`,
 * then `iterate(limit)` records while the migration runs, then `complete()`.
 * The first pass sends every run of valid entries from index 0 (invalid
 * entries are never sent: the destination starts zeroed), clearing their
 * modified bits; later passes send runs of modified valid entries followed
 * by runs of modified invalid ones. QEMU ends an iteration on its rate limit
 * or after 5 ms; here the caller says after how many HPTEs (checked after
 * each chunk, as QEMU checks its limit).
 */
export class QemuHtabSectionWriter {
  private index = 0;
  private firstPass = true;
  private started = false;
  private ended = false;
  private readonly sectionId: number;
  private readonly instanceId: number;

  constructor(
    private readonly hpt: HashPageTable | null,
    identity: HtabSectionIdentity,
  ) {
    if (!Number.isInteger(identity.sectionId) || identity.sectionId < 0 || identity.sectionId > 0xffff_ffff)
      throw new HvmmuError('BAD_ARGUMENT', `section id must be a u32, got ${String(identity.sectionId)}`);
    this.sectionId = identity.sectionId;
    this.instanceId = identity.instanceId ?? 0;
  }

  /** The START record: the HPT order, or "no HPT" for a radix guest (null table). */
  start(): Uint8Array {
    if (this.started) throw new HvmmuError('BAD_ARGUMENT', 'the spapr/htab section was already started');
    this.started = true;
    const out = new ByteSink();
    out.u8(SECTION_START);
    out.u32(this.sectionId);
    out.u8(HTAB_SECTION_NAME.length);
    for (let i = 0; i < HTAB_SECTION_NAME.length; i++) out.u8(HTAB_SECTION_NAME.charCodeAt(i));
    out.u32(this.instanceId);
    out.u32(HTAB_SECTION_VERSION);
    out.u32(this.hpt === null ? NO_HPT : this.hpt.order);
    this.footer(out);
    return out.take();
  }

  /** A PART record sending at most about `maxEntries` HPTEs (whole chunks); it may send none. */
  iterate(maxEntries: number): Uint8Array {
    this.checkRunning();
    if (!Number.isSafeInteger(maxEntries) || maxEntries < 1)
      throw new HvmmuError('BAD_ARGUMENT', `maxEntries must be a positive integer, got ${String(maxEntries)}`);
    return this.record(SECTION_PART, maxEntries);
  }

  /** The END record: the rest of the first pass, one complete later pass, the end marker. */
  complete(): Uint8Array {
    this.checkRunning();
    const bytes = this.record(SECTION_END, Number.POSITIVE_INFINITY);
    this.ended = true;
    return bytes;
  }

  private checkRunning(): void {
    if (!this.started || this.ended)
      throw new HvmmuError('BAD_ARGUMENT', this.started ? 'the spapr/htab section has ended' : 'start() the spapr/htab section first');
  }

  private record(type: number, limit: number): Uint8Array {
    const out = new ByteSink();
    out.u8(type);
    out.u32(this.sectionId);
    if (this.hpt === null) {
      out.u32(NO_HPT);
    } else {
      out.u32(0); // iteration header
      // htab_save_iterate: a PART carries first-pass chunks or later-pass chunks, never both (the
      // first pass ending within its budget leaves the rest for the next PART); htab_save_complete:
      // the END finishes the first pass, then sends one whole later pass.
      if (type === SECTION_END) {
        if (this.firstPass) this.firstPassChunks(out, limit);
        this.laterPassChunks(out, Number.POSITIVE_INFINITY);
      } else if (this.firstPass) {
        this.firstPassChunks(out, limit);
      } else {
        this.laterPassChunks(out, limit);
      }
      // End marker.
      out.u32(0);
      out.u32(0);
    }
    this.footer(out);
    return out.take();
  }

  private firstPassChunks(out: ByteSink, limit: number): number {
    const hpt = this.hpt!;
    const n = hpt.entries;
    let sent = 0;
    while (this.index < n && sent < limit) {
      // Invalid entries are skipped (and count as sent: the destination is zeroed).
      while (this.index < n && !hpt.isValid(this.index)) hpt.clearModified(this.index++);
      if (this.index >= n) break;
      const first = this.index;
      while (this.index < n && this.index - first < MAX_RUN && hpt.isValid(this.index)) hpt.clearModified(this.index++);
      this.chunk(out, first, this.index - first, 0);
      sent += this.index - first;
    }
    if (this.index >= n) {
      this.firstPass = false;
      this.index = 0;
    }
    return sent;
  }

  /**
   * One sweep of the table from the saved index, wrapping at the end, as
   * htab_save_later_pass: skip unmodified entries, then a chunk of a run of
   * modified valid entries followed by a run of modified invalid ones (each
   * at most 65535, never across the end of the table), clearing the bits.
   */
  private laterPassChunks(out: ByteSink, limit: number): void {
    const hpt = this.hpt!;
    const n = hpt.entries;
    let examined = 0;
    let sent = 0;
    let index = this.index;
    while (examined < n && sent < limit) {
      // Unmodified entries are skipped a bitmap word at a time; they count as examined (QEMU's budget).
      const next = hpt.nextModified(index);
      examined += next - index;
      index = next;
      const chunkStart = index;
      while (index < n && index - chunkStart < MAX_RUN && hpt.isModified(index) && hpt.isValid(index)) {
        hpt.clearModified(index++);
        examined++;
      }
      const invalidStart = index;
      while (index < n && index - invalidStart < MAX_RUN && hpt.isModified(index) && !hpt.isValid(index)) {
        hpt.clearModified(index++);
        examined++;
      }
      if (index > chunkStart) {
        this.chunk(out, chunkStart, invalidStart - chunkStart, index - invalidStart);
        sent += index - chunkStart;
      }
      if (index >= n) index = 0;
    }
    this.index = index;
  }

  private chunk(out: ByteSink, index: number, nValid: number, nInvalid: number): void {
    out.u32(index);
    out.u16(nValid);
    out.u16(nInvalid);
    out.copy(this.hpt!.bytes.subarray(index * 16, (index + nValid) * 16));
  }

  private footer(out: ByteSink): void {
    out.u8(SECTION_FOOTER);
    out.u32(this.sectionId);
  }
}

/** What loading a section produced. */
export interface HtabSectionLoad {
  /** The table (null when the section said the guest has no HPT). */
  readonly hpt: HashPageTable | null;
  readonly sectionId: number;
  readonly records: number;
  readonly chunks: number;
  readonly entriesWritten: number;
}

/**
 * Loads the records of a `spapr/htab` section (START, then PART/END, as a
 * migration stream carries them, concatenated) as QEMU's htab_load does:
 * START gives the order and a zeroed table; each chunk copies n_valid HPTEs
 * to its index and zeroes the n_invalid after them. Every record is checked
 * whole before any of it is applied — framing, the section id, the name and
 * version, the order (18..31 here; KVM's 18..46), chunk bounds with exact
 * arithmetic (index + n_valid + n_invalid ≤ entries), lengths — and a bad
 * record is refused with `STREAM_INVALID` naming the byte offset, leaving
 * the table as the previous record left it.
 */
export function loadQemuHtabSection(bytes: Uint8Array): HtabSectionLoad {
  if (!(bytes instanceof Uint8Array)) throw new HvmmuError('BAD_ARGUMENT', 'loadQemuHtabSection takes a Uint8Array');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 0;
  let hpt: HashPageTable | null = null;
  let started = false;
  let noHpt = false;
  let sectionId = -1;
  let records = 0;
  let chunks = 0;
  let written = 0;
  const fail = (where: number, what: string): never => {
    throw new HvmmuError('STREAM_INVALID', `spapr/htab section, byte ${where}: ${what}`);
  };
  const need = (n: number): void => {
    if (at + n > bytes.length) fail(at, `truncated: ${n} more bytes needed, ${bytes.length - at} left`);
  };
  while (at < bytes.length) {
    const recordAt = at;
    need(5);
    const type = view.getUint8(at);
    const id = view.getUint32(at + 1, false);
    at += 5;
    if (type === SECTION_START) {
      if (started) fail(recordAt, 'a second START record');
      need(1);
      const len = view.getUint8(at);
      need(1 + len + 12);
      const name = String.fromCharCode(...bytes.subarray(at + 1, at + 1 + len));
      at += 1 + len;
      if (name !== HTAB_SECTION_NAME) fail(recordAt, `section name '${name}', expected '${HTAB_SECTION_NAME}'`);
      at += 4; // instance id
      const version = view.getUint32(at, false);
      if (version !== HTAB_SECTION_VERSION) fail(at, `version ${version}, QEMU's htab_load accepts only ${HTAB_SECTION_VERSION}`);
      const order = view.getUint32(at + 4, false);
      at += 8;
      if (order === NO_HPT) {
        noHpt = true;
      } else if (order < HPT_MIN_ORDER || order > HPT_MAX_SUPPORTED_ORDER) {
        fail(at - 4, `HPT order ${order} outside ${HPT_MIN_ORDER}..${HPT_MAX_SUPPORTED_ORDER}`);
      }
      readFooter(recordAt, id);
      started = true;
      sectionId = id;
      if (!noHpt) hpt = new HashPageTable(order);
    } else if (type === SECTION_PART || type === SECTION_END) {
      if (!started) fail(recordAt, `a ${type === SECTION_PART ? 'PART' : 'END'} record before START`);
      if (id !== sectionId) fail(recordAt + 1, `section id ${id}, the section started as ${sectionId}`);
      need(4);
      const header = view.getUint32(at, false);
      at += 4;
      if (header === NO_HPT) {
        if (!noHpt) fail(at - 4, 'a "no HPT" iteration in a section that has an HPT');
      } else {
        if (header !== 0) fail(at - 4, `iteration header ${header}, expected 0`);
        if (hpt === null) fail(at - 4, 'chunks in a section that said the guest has no HPT');
        // Parse the whole record first; apply only if every chunk is sound.
        const pending: [number, number, number, number][] = [];
        for (;;) {
          need(8);
          const index = view.getUint32(at, false);
          const nValid = view.getUint16(at + 4, false);
          const nInvalid = view.getUint16(at + 6, false);
          at += 8;
          if (index === 0 && nValid === 0 && nInvalid === 0) break;
          if (index + nValid + nInvalid > hpt!.entries)
            fail(at - 8, `chunk at index ${index} with ${nValid} valid and ${nInvalid} invalid entries runs past the ${hpt!.entries}-entry table`);
          need(nValid * 16);
          pending.push([index, nValid, nInvalid, at]);
          at += nValid * 16;
        }
        for (const [index, nValid, nInvalid, data] of pending) {
          hpt!.bytes.set(bytes.subarray(data, data + nValid * 16), index * 16);
          hpt!.bytes.fill(0, (index + nValid) * 16, (index + nValid + nInvalid) * 16);
          chunks++;
          written += nValid + nInvalid;
        }
      }
      readFooter(recordAt, id);
    } else {
      fail(recordAt, `record type 0x${type.toString(16)}, expected START (1), PART (2) or END (3)`);
    }
    records++;
  }
  if (!started) fail(0, 'no START record');
  return { hpt, sectionId, records, chunks, entriesWritten: written };

  function readFooter(recordAt: number, id: number): void {
    need(5);
    if (view.getUint8(at) !== SECTION_FOOTER || view.getUint32(at + 1, false) !== id)
      fail(at, `record at byte ${recordAt} lacks its footer 0x7E + section id ${id}`);
    at += 5;
  }
}
