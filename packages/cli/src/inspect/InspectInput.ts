// Reading what `hvmmu inspect` and `hvmmu htab` are given: files (gzipped or not), memory images
// in two layouts, and 64-bit register values. Every problem is a BAD_ARGUMENT HvmmuError whose
// message names the file or option and what was expected (the program exits 2 on it).
import { closeSync, fstatSync, openSync, readFileSync, readSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { FlatGuestMemory, type GuestMemory, HvmmuError, SparsePageMemory } from '@hvmmu/core';

const PAGE = 4096;
/** One record of a page-records file: 8 bytes gpa (u64 little-endian) + one 4 KiB page. */
const RECORD = 8 + PAGE;

export function inputError(message: string): HvmmuError {
  return new HvmmuError('BAD_ARGUMENT', message);
}

/** The bytes of `file` (`what` says what it should be), gunzipped when it starts with gzip's magic. */
export function readInputFile(file: string, what: string): Uint8Array {
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(readFileSync(file));
  } catch (error) {
    const code = (error as { code?: string }).code;
    const why =
      code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : code === 'EACCES' ? 'permission denied' : String((error as Error).message);
    throw inputError(`cannot read ${what} '${file}': ${why}`);
  }
  if (bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      bytes = new Uint8Array(gunzipSync(bytes));
    } catch (error) {
      throw inputError(`${what} '${file}' starts as gzip but does not decompress: ${(error as Error).message}`);
    }
  }
  return bytes;
}

export type ImageLayout = 'raw' | 'pages' | 'auto';

/** A guest memory image and how it was read. */
export interface LoadedImage {
  readonly memory: GuestMemory;
  readonly layout: 'raw' | 'pages';
  /** Bytes of guest memory the image holds. */
  readonly bytes: number;
  /** Pages held, for the page-records layout. */
  readonly pages: number;
}

/**
 * A guest memory image: 'raw' is guest-physical memory from address 0 (QEMU's `pmemsave 0 SIZE
 * FILE`); 'pages' is records of (gpa: u64 little-endian, 4096 bytes), the layout of the
 * real-machine fixtures' tables.bin.gz; 'auto' takes 'pages' when the file is whole records with
 * 4 KiB-aligned, ascending addresses and 'raw' otherwise.
 */
export function loadGuestImage(file: string, layout: ImageLayout): LoadedImage {
  if (layout !== 'raw' && layout !== 'pages' && layout !== 'auto') throw inputError(`--layout must be raw, pages or auto, got '${String(layout)}'`);
  // A large raw image (a `pmemsave` of gigabytes) is read a page at a time as the walk needs it.
  const lazy = layout !== 'pages' ? LazyRawImage.open(file, layout === 'auto') : null;
  if (lazy !== null) return { memory: lazy, layout: 'raw', bytes: lazy.fileBytes, pages: Math.ceil(lazy.fileBytes / PAGE) };
  const bytes = readInputFile(file, 'the memory image');
  if (bytes.length === 0) throw inputError(`the memory image '${file}' is empty`);
  const chosen = layout === 'auto' ? (looksLikePageRecords(bytes) ? 'pages' : 'raw') : layout;
  if (chosen === 'raw')
    return { memory: new FlatGuestMemory(bytes, { readOnly: true }), layout: 'raw', bytes: bytes.length, pages: Math.ceil(bytes.length / PAGE) };
  if (bytes.length % RECORD !== 0) {
    throw inputError(
      `the memory image '${file}' is not whole page records (8-byte gpa + 4096 bytes each): ${bytes.length} bytes, ${bytes.length % RECORD} past the last whole record`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const pages = new Map<number, Uint8Array>();
  for (let at = 0; at < bytes.length; at += RECORD) {
    const gpa = view.getUint32(at, true) + view.getUint32(at + 4, true) * 0x1_0000_0000;
    if (!Number.isSafeInteger(gpa) || gpa % PAGE !== 0)
      throw inputError(`the memory image '${file}', record ${at / RECORD} (byte ${at}): gpa 0x${gpa.toString(16)} is not a 4 KiB-aligned address`);
    if (pages.has(gpa)) throw inputError(`the memory image '${file}', record ${at / RECORD} (byte ${at}): page 0x${gpa.toString(16)} appears twice`);
    pages.set(gpa, bytes.subarray(at + 8, at + RECORD));
  }
  return { memory: new SparsePageMemory(pages), layout: 'pages', bytes: pages.size * PAGE, pages: pages.size };
}

/** Raw images above this size are read lazily. */
const LAZY_FROM_BYTES = 64 << 20;
/** Distinct pages a lazy image keeps (256 MiB): a walk of real tables reads a few hundred. */
const LAZY_MAX_PAGES = 1 << 16;

/**
 * A raw memory image too large to read whole (a 5 GiB `pmemsave` of a 64-bit guest): each 4 KiB
 * page is read from the file the first time a walk resolves an address in it and kept, so
 * offsets stay valid for the whole walk. Not for gzipped files (they are read whole).
 */
class LazyRawImage implements GuestMemory {
  readonly view: DataView;
  private readonly bytes: Uint8Array;
  private readonly slotOfPage = new Map<number, number>();

  private constructor(
    private readonly file: string,
    private readonly fd: number,
    readonly fileBytes: number,
  ) {
    this.bytes = new Uint8Array(Math.min(LAZY_MAX_PAGES, Math.ceil(fileBytes / PAGE)) * PAGE);
    this.view = new DataView(this.bytes.buffer);
  }

  /** The image as a lazy one when it is a large plain (not gzipped) file, else null. */
  static open(file: string, maybeRecords: boolean): LazyRawImage | null {
    let fd: number;
    try {
      fd = openSync(file, 'r');
    } catch {
      return null; // readInputFile reports why
    }
    const size = fstatSync(fd).size;
    const magic = new Uint8Array(2);
    readSync(fd, magic, 0, 2, 0);
    // Whole page records may be records ('auto' looks at them read whole).
    if (size < LAZY_FROM_BYTES || (maybeRecords && size % RECORD === 0) || (magic[0] === 0x1f && magic[1] === 0x8b)) {
      closeSync(fd);
      return null;
    }
    return new LazyRawImage(file, fd, size);
  }

  resolve(gpa: number, _write: boolean): number {
    if (!Number.isSafeInteger(gpa) || gpa < 0 || gpa >= this.fileBytes) return -1;
    const inPage = gpa % PAGE;
    const page = gpa - inPage;
    let slot = this.slotOfPage.get(page);
    if (slot === undefined) {
      slot = this.slotOfPage.size;
      if ((slot + 1) * PAGE > this.bytes.length) {
        throw inputError(`the walk of '${this.file}' needs more than ${LAZY_MAX_PAGES} distinct pages of it (a table loop or hostile tables?)`);
      }
      readSync(this.fd, this.bytes, slot * PAGE, Math.min(PAGE, this.fileBytes - page), page);
      this.slotOfPage.set(page, slot);
    }
    return slot * PAGE + inPage;
  }
}

function looksLikePageRecords(bytes: Uint8Array): boolean {
  if (bytes.length % RECORD !== 0) return false;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let last = -1;
  for (let at = 0; at < bytes.length; at += RECORD) {
    const lo = view.getUint32(at, true);
    const hi = view.getUint32(at + 4, true);
    if (hi >= 0x10_0000 || lo % PAGE !== 0) return false;
    const gpa = hi * 0x1_0000_0000 + lo;
    if (gpa <= last) return false;
    last = gpa;
  }
  return true;
}

/** A 64-bit register value: 0x… hex or decimal, underscores allowed. */
export function parseU64(name: string, text: string): bigint {
  const t = text.trim().replace(/_/g, '');
  let v: bigint;
  try {
    if (!/^(0x[0-9a-f]+|[0-9]+)$/i.test(t)) throw new Error('syntax');
    v = BigInt(t);
  } catch {
    throw inputError(`${name} must be a 64-bit value (0x… hex or decimal), got '${text}'`);
  }
  if (v >= 1n << 64n) throw inputError(`${name} must fit in 64 bits, got '${text}'`);
  return v;
}

/** Two 64-bit values `A,B` (or `A:B`). */
export function parseU64Pair(name: string, text: string): [bigint, bigint] {
  const parts = text.split(/[,:]/);
  if (parts.length !== 2) throw inputError(`${name} must be two 64-bit values DW0,DW1, got '${text}'`);
  return [parseU64(name, parts[0]!), parseU64(name, parts[1]!)];
}

export function hex(v: bigint | number): string {
  return `0x${v.toString(16)}`;
}

/** A page size as text: 4K, 64K, 2M, 16M, 1G, 16G. */
export function pageSizeText(shift: number): string {
  if (shift >= 30) return `${2 ** (shift - 30)}G`;
  if (shift >= 20) return `${2 ** (shift - 20)}M`;
  return `${2 ** (shift - 10)}K`;
}

/** A page size in bytes as text. */
export function sizeText(bytes: bigint): string {
  for (const [unit, shift] of [
    ['G', 30n],
    ['M', 20n],
    ['K', 10n],
  ] as const) {
    if (bytes >= 1n << shift && bytes % (1n << shift) === 0n) return `${bytes >> shift}${unit}`;
  }
  return `${bytes}B`;
}
