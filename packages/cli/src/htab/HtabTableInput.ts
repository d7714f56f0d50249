// A guest's hashed page table from a file in any of the forms hvmmu reads: a raw HPT image
// (2^order bytes of big-endian HPTEs, the guest view), an HTAB stream in KVM's format
// (KVM_PPC_GET_HTAB_FD records) or QEMU's `spapr/htab` migration section. Gzipped files are
// read too. Problems are BAD_ARGUMENT errors naming the file and the byte.
import { HvmmuError } from '@hvmmu/core';
import type { HashPageTable } from '@hvmmu/ppc-hpt';
import { inputError, readInputFile } from '../inspect/InspectInput.js';
import type { PpcHptPackage } from '../inspect/PpcPackages.js';

export type HtabFormat = 'image' | 'kvm' | 'qemu';
export const HTAB_FORMATS: readonly HtabFormat[] = ['image', 'kvm', 'qemu'];

export interface HtabReadOptions {
  /** Default: recognised from the bytes (a QEMU section by its header, an image by its power-of-two size, else a KVM stream). */
  readonly format?: HtabFormat | 'auto';
  /** KVM stream only: the table's order (default: the smallest order from 18 holding every index the stream names). */
  readonly order?: number;
  /** KVM stream only: record headers in big-endian (a big-endian host); default little-endian. */
  readonly bigEndianHeaders?: boolean;
}

export interface LoadedHtab {
  readonly hpt: HashPageTable;
  readonly format: HtabFormat;
  /** What the stream held: records, chunks or HPTEs carried. */
  readonly records: number;
  readonly entriesCarried: number;
}

const KVM_HEADER = 8;
const HPTE = 16;

export function parseHtabFormat(text: string, option: string): HtabFormat | 'auto' {
  if (text === 'auto' || (HTAB_FORMATS as readonly string[]).includes(text)) return text as HtabFormat | 'auto';
  throw inputError(`${option} must be one of auto, ${HTAB_FORMATS.join(', ')}; got '${text}'`);
}

/** What the bytes look like: a QEMU section (START record naming spapr/htab), an image (2^18..2^31 bytes), or a KVM stream. */
export function detectHtabFormat(bytes: Uint8Array): HtabFormat {
  const name = 'spapr/htab';
  if (bytes.length >= 6 + name.length && bytes[0] === 0x01 && bytes[5] === name.length && new TextDecoder().decode(bytes.subarray(6, 6 + name.length)) === name)
    return 'qemu';
  const n = bytes.length;
  if (n >= 2 ** 18 && n <= 2 ** 31 && (n & (n - 1)) === 0) return 'image';
  return 'kvm';
}

export function readHtabFile(ppc: PpcHptPackage, file: string, o: HtabReadOptions = {}): LoadedHtab {
  const bytes = readInputFile(file, 'the HTAB file');
  if (bytes.length === 0) throw inputError(`the HTAB file '${file}' is empty`);
  const format = o.format === undefined || o.format === 'auto' ? detectHtabFormat(bytes) : o.format;
  try {
    if (format === 'image') return readImage(ppc, file, bytes);
    if (format === 'qemu') return readQemuSection(ppc, file, bytes);
    return readKvmStream(ppc, file, bytes, o);
  } catch (error) {
    if (error instanceof HvmmuError && error.code !== 'BAD_ARGUMENT') throw inputError(`'${file}' (${format}): ${error.message.replace(/^[A-Z_]+: /, '')}`);
    throw error;
  }
}

function readImage(ppc: PpcHptPackage, file: string, bytes: Uint8Array): LoadedHtab {
  const n = bytes.length;
  const order = Math.log2(n);
  if (!Number.isInteger(order) || order < ppc.HPT_MIN_ORDER || order > ppc.HPT_MAX_SUPPORTED_ORDER) {
    throw inputError(
      `the HPT image '${file}' is ${n} bytes: an image is 2^order bytes with order ${ppc.HPT_MIN_ORDER}..${ppc.HPT_MAX_SUPPORTED_ORDER} (256 KiB .. 2 GiB)`,
    );
  }
  const hpt = new ppc.HashPageTable(order, bytes);
  return { hpt, format: 'image', records: 0, entriesCarried: hpt.entries };
}

function readQemuSection(ppc: PpcHptPackage, file: string, bytes: Uint8Array): LoadedHtab {
  const load = ppc.loadQemuHtabSection(bytes);
  if (load.hpt === null) throw inputError(`the spapr/htab section in '${file}' says the guest has no HPT (order 0xFFFFFFFF: a radix guest)`);
  return { hpt: load.hpt, format: 'qemu', records: load.records, entriesCarried: load.entriesWritten };
}

function readKvmStream(ppc: PpcHptPackage, file: string, bytes: Uint8Array, o: HtabReadOptions): LoadedHtab {
  const little = o.bigEndianHeaders !== true;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  // The framing first (index, n_valid, n_invalid, n_valid HPTEs): whole records to the end of the file.
  let at = 0;
  let records = 0;
  let carried = 0;
  let end = 0;
  while (at < bytes.length) {
    if (at + KVM_HEADER > bytes.length)
      throw inputError(`the KVM HTAB stream '${file}' ends inside a record header at byte ${at} (${bytes.length - at} of 8 bytes)`);
    const index = view.getUint32(at, little);
    const nValid = view.getUint16(at + 4, little);
    const nInvalid = view.getUint16(at + 6, little);
    const size = KVM_HEADER + nValid * HPTE;
    if (at + size > bytes.length) {
      throw inputError(
        `the KVM HTAB stream '${file}': the record at byte ${at} (index ${index}, ${nValid} valid, ${nInvalid} invalid) needs ${size} bytes, ${bytes.length - at} are left` +
          (little ? ' (headers big-endian? try --big-endian-headers)' : ''),
      );
    }
    end = Math.max(end, index + nValid + nInvalid);
    carried += nValid;
    records++;
    at += size;
  }
  let order = o.order;
  if (order === undefined) {
    order = ppc.HPT_MIN_ORDER;
    while (2 ** (order - 4) < end && order < ppc.HPT_MAX_SUPPORTED_ORDER) order++;
  }
  if (!Number.isInteger(order) || order < ppc.HPT_MIN_ORDER || order > ppc.HPT_MAX_SUPPORTED_ORDER)
    throw inputError(`--order must be an integer in ${ppc.HPT_MIN_ORDER}..${ppc.HPT_MAX_SUPPORTED_ORDER}, got ${String(order)}`);
  if (end > 2 ** (order - 4)) {
    throw inputError(
      `the KVM HTAB stream '${file}' names HPTE indexes up to ${end - 1}, past an order-${order} table (${2 ** (order - 4)} entries)` +
        (little ? ' (headers big-endian? try --big-endian-headers)' : ''),
    );
  }
  const hpt = new ppc.HashPageTable(order);
  const writer = new ppc.KvmHtabWriter(new ppc.HashPageTableStore(hpt), { headerByteOrder: little ? 'little' : 'big' });
  const used = writer.write(bytes);
  if (used !== bytes.length) throw inputError(`the KVM HTAB stream '${file}': a record at byte ${used} was not applied`);
  return { hpt, format: 'kvm', records, entriesCarried: carried };
}
