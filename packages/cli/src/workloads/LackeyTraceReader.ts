import { open } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { WorkloadInputError } from './WorkloadInputError.js';

/** What a Lackey line records (`valgrind --tool=lackey --trace-mem=yes`). */
export const LackeyKind = {
  /** `I  addr,size`: an instruction fetch. */
  INSTRUCTION: 0,
  /** ` L addr,size`: a data load. */
  LOAD: 1,
  /** ` S addr,size`: a data store. */
  STORE: 2,
  /** ` M addr,size`: a modify — a load then a store of the same bytes. */
  MODIFY: 3,
} as const;

/** Records per batch: enough to amortise the async iteration, small enough to stay in cache. */
export const LACKEY_BATCH = 4096;
/** Bytes one record may cover (Lackey's largest are vector loads and stores; a page bounds it). */
export const LACKEY_MAX_SIZE = 4096;
/** Characters of a bad line quoted in an error. */
const QUOTE = 60;

/**
 * Records of a Lackey trace, in typed arrays that are reused from one batch to the next: read a
 * batch before asking for the next one. `line[i]` is the 1-based line number of record i, for
 * messages that must point into the file.
 */
export class LackeyBatch {
  readonly kind = new Uint8Array(LACKEY_BATCH);
  readonly address = new Float64Array(LACKEY_BATCH);
  readonly size = new Uint16Array(LACKEY_BATCH);
  readonly line = new Float64Array(LACKEY_BATCH);
  /** Records in this batch. */
  length = 0;
  /** Lines read from the file so far, banner and tool lines included. */
  linesRead = 0;
}

const CODE_0 = 48;
const CODE_9 = 57;
const CODE_A = 97;
const CODE_F = 102;
const CODE_UPPER_A = 65;
const CODE_UPPER_F = 70;
const CODE_SPACE = 32;
const CODE_COMMA = 44;
const CODE_CR = 13;
const CODE_TAB = 9;

/** `==123==`, `--123--` or `**123**`: Valgrind's own lines (banner, warnings, the summary). */
const TOOL_LINE = /^(==|--|\*\*)\d+(==|--|\*\*)/;

/** The record kind of a line's first two characters, or -1. */
function kindOf(line: string): number {
  const c0 = line.charCodeAt(0);
  const c1 = line.charCodeAt(1);
  if (c0 === 73 /* I */ && c1 === CODE_SPACE && line.charCodeAt(2) === CODE_SPACE) return LackeyKind.INSTRUCTION;
  if (c0 !== CODE_SPACE || line.charCodeAt(2) !== CODE_SPACE) return -1;
  if (c1 === 76 /* L */) return LackeyKind.LOAD;
  if (c1 === 83 /* S */) return LackeyKind.STORE;
  if (c1 === 77 /* M */) return LackeyKind.MODIFY;
  return -1;
}

function hexDigit(c: number): number {
  if (c >= CODE_0 && c <= CODE_9) return c - CODE_0;
  if (c >= CODE_A && c <= CODE_F) return c - CODE_A + 10;
  if (c >= CODE_UPPER_A && c <= CODE_UPPER_F) return c - CODE_UPPER_A + 10;
  return -1;
}

/**
 * Parses one record line into `batch` at `batch.length` and returns '' — or returns what is
 * wrong with it. Character by character: no split, no regular expression, no substring.
 */
function parseRecord(line: string, batch: LackeyBatch, lineNo: number): string {
  const kind = kindOf(line);
  if (kind < 0) return 'expected "I  addr,size", " L addr,size", " S addr,size", " M addr,size" or a "==pid==" line';
  let i = 3;
  const n = line.length;
  let address = 0;
  let digits = 0;
  for (; i < n; i++) {
    const d = hexDigit(line.charCodeAt(i));
    if (d < 0) break;
    address = address * 16 + d;
    digits++;
  }
  if (digits === 0) return 'expected a hexadecimal address after the kind';
  if (digits > 16 || address > Number.MAX_SAFE_INTEGER) return 'the address is beyond 2^53';
  if (line.charCodeAt(i) !== CODE_COMMA) return 'expected "," after the address';
  i++;
  let size = 0;
  let sizeDigits = 0;
  for (; i < n; i++) {
    const c = line.charCodeAt(i);
    if (c < CODE_0 || c > CODE_9) break;
    size = size * 10 + (c - CODE_0);
    sizeDigits++;
    if (size > LACKEY_MAX_SIZE) return `the size is above ${LACKEY_MAX_SIZE}`;
  }
  if (sizeDigits === 0) return 'expected a decimal size after ","';
  if (size === 0) return 'the size is 0';
  for (; i < n; i++) {
    const c = line.charCodeAt(i);
    if (c !== CODE_SPACE && c !== CODE_CR && c !== CODE_TAB) return 'unexpected text after the size';
  }
  const at = batch.length;
  batch.kind[at] = kind;
  batch.address[at] = address;
  batch.size[at] = size;
  batch.line[at] = lineNo;
  batch.length = at + 1;
  return '';
}

/** Opens the file (gunzipping it if it starts with gzip's magic bytes) as a stream of bytes. */
async function openTrace(path: string): Promise<Readable> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(path, 'r');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new WorkloadInputError(path, [code === 'ENOENT' ? 'no such file' : `cannot read it (${code ?? String(error)})`]);
  }
  const magic = new Uint8Array(2);
  let bytesRead: number;
  try {
    ({ bytesRead } = await handle.read(magic, 0, 2, 0));
  } catch (error) {
    await handle.close();
    const code = (error as NodeJS.ErrnoException).code;
    throw new WorkloadInputError(path, [code === 'EISDIR' ? 'is a directory, not a trace' : `cannot read it (${code ?? String(error)})`]);
  }
  const stream = handle.createReadStream({ start: 0 });
  if (bytesRead === 2 && magic[0] === 0x1f && magic[1] === 0x8b) {
    const gunzip = createGunzip();
    stream.on('error', (error) => gunzip.destroy(error));
    return stream.pipe(gunzip);
  }
  return stream;
}

/**
 * Streams the records of a Valgrind Lackey trace (`valgrind --tool=lackey --trace-mem=yes
 * PROGRAM`, plain or gzipped) in batches, reading the file through node:readline: memory stays
 * constant whatever the length of the trace. Valgrind's own lines (`==pid==`, `--pid--`) are
 * skipped; any other line that is not a record is a WorkloadInputError naming the file and the
 * line (`trace.txt:41: …`), as is a file that cannot be read or ungzipped.
 *
 * The batch yielded is the same object every time, refilled: use it before the next iteration.
 */
export async function* readLackeyTrace(path: string): AsyncGenerator<LackeyBatch, void, undefined> {
  const input = await openTrace(path);
  const lines = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
  const batch = new LackeyBatch();
  let lineNo = 0;
  try {
    for await (const line of lines) {
      lineNo++;
      const c0 = line.charCodeAt(0);
      if ((c0 === 61 /* = */ || c0 === 45 /* - */ || c0 === 42) /* * */ && TOOL_LINE.test(line)) continue;
      const problem = parseRecord(line, batch, lineNo);
      if (problem !== '') {
        throw new WorkloadInputError(`${path}:${lineNo}`, [`${problem}, got '${line.length > QUOTE ? `${line.slice(0, QUOTE)}…` : line}'`]);
      }
      if (batch.length === LACKEY_BATCH) {
        batch.linesRead = lineNo;
        yield batch;
        batch.length = 0;
      }
    }
  } catch (error) {
    if (error instanceof WorkloadInputError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    throw new WorkloadInputError(`${path}:${lineNo + 1}`, [`cannot read on (${code ?? (error instanceof Error ? error.message : String(error))})`]);
  } finally {
    lines.close();
    input.destroy();
  }
  // The last batch, possibly empty: it carries the final line count.
  batch.linesRead = lineNo;
  yield batch;
}
