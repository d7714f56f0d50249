import { Transform, type TransformCallback, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { HtabStore } from '../stream/HtabStore.js';
import { KvmHtabReader, type KvmHtabReadOptions } from '../stream/KvmHtabStream.js';
import { HtabReadStream } from './HtabNodeStreams.js';

/** What one pass of a live migration sent. */
export interface HtabPass {
  /** 0 for the first pass (every entry), then 1, 2, … (the entries changed since the pass before). */
  readonly pass: number;
  readonly bytes: number;
  /** HPTEs the pass's records carry, valid and invalid. */
  readonly entries: number;
  readonly records: number;
}

/**
 * A live migration of a guest's HPT, as QEMU drives KVM_PPC_GET_HTAB_FD: the
 * first pass sends every entry, each later pass the entries changed since
 * the one before (KVM's modified bits), while the guest keeps running in
 * between; when a pass is small enough the guest is stopped and one last
 * pass makes the destination exact. Each pass is piped, with backpressure,
 * to the `Writable` given (an `HtabWriteStream` into the destination VM, a
 * file, a socket), and reports what it sent.
 */
export class HtabLiveMigration {
  readonly reader: KvmHtabReader;
  private passes = 0;

  constructor(
    source: HtabStore,
    private readonly options: KvmHtabReadOptions & { readonly readBytes?: number } = {},
  ) {
    this.reader = new KvmHtabReader(source, options);
  }

  /** Send the next pass to `destination`; resolves when it has been written and `destination` finished. */
  async pass(destination: Writable): Promise<HtabPass> {
    const counter = new HtabRecordCounter(this.options.headerByteOrder !== 'big');
    await pipeline(new HtabReadStream(this.reader, { readBytes: this.options.readBytes ?? 65536 }), counter, destination);
    return { pass: this.passes++, bytes: counter.bytes, entries: counter.entries, records: counter.records };
  }
}

/** Counts the bytes, records and entries flowing through (chunks from an `HtabReadStream` hold whole records). */
class HtabRecordCounter extends Transform {
  bytes = 0;
  entries = 0;
  records = 0;

  constructor(private readonly little: boolean) {
    super();
  }

  override _transform(chunk: Uint8Array, _encoding: BufferEncoding, callback: TransformCallback): void {
    const view = new DataView(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    let at = 0;
    while (at + 8 <= chunk.length) {
      const nValid = view.getUint16(at + 4, this.little);
      const nInvalid = view.getUint16(at + 6, this.little);
      this.entries += nValid + nInvalid;
      this.records++;
      at += 8 + 16 * nValid;
    }
    this.bytes += chunk.length;
    callback(null, chunk);
  }
}
