import { Readable, Writable } from 'node:stream';
import { HvmmuError } from '@hvmmu/core';
import type { HtabStore } from '../stream/HtabStore.js';
import { KvmHtabReader, type KvmHtabReadOptions, KvmHtabWriter, type KvmHtabWriteOptions } from '../stream/KvmHtabStream.js';

// Node-only: the HTAB stream as Node streams, so a migration can go to a file, a pipe or a
// socket. Kept out of the package's main entry point, which runs in a browser too.

export interface HtabReadStreamOptions extends KvmHtabReadOptions {
  /** Bytes per read (KVM's caller chooses; QEMU reads 2048). Default 65536. */
  readonly readBytes?: number;
}

/**
 * The read side as a Node Readable: reads of `readBytes` until one returns
 * 0 (nothing left to send: converged), honouring backpressure. For a live
 * migration, open a new stream for each later round on the same reader
 * (`new HtabReadStream(reader)` shares its pass state).
 */
export class HtabReadStream extends Readable {
  readonly reader: KvmHtabReader;
  private readonly readBytes: number;

  constructor(source: HtabStore | KvmHtabReader, options: HtabReadStreamOptions = {}) {
    super();
    this.reader = source instanceof KvmHtabReader ? source : new KvmHtabReader(source, options);
    this.readBytes = options.readBytes ?? 65536;
    if (!Number.isSafeInteger(this.readBytes) || this.readBytes < 32)
      throw new HvmmuError('BAD_ARGUMENT', `readBytes must be an integer ≥ 32, got ${String(options.readBytes)}`);
  }

  override _read(): void {
    for (;;) {
      const buf = new Uint8Array(this.readBytes);
      const n = this.reader.read(buf);
      if (n === 0) {
        // The first pass may end exactly at a read boundary; only a 0 after it means converged.
        if (this.reader.inFirstPass) continue;
        this.push(null);
        return;
      }
      if (!this.push(buf.subarray(0, n))) return;
    }
  }
}

/** The write side as a Node Writable: records may be split across chunks; a record cut off at the end is an error. */
export class HtabWriteStream extends Writable {
  readonly writer: KvmHtabWriter;
  private pending: Uint8Array = new Uint8Array(0);

  constructor(store: HtabStore, options: KvmHtabWriteOptions = {}) {
    super();
    this.writer = new KvmHtabWriter(store, options);
  }

  override _write(chunk: Buffer | Uint8Array, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    try {
      const data = new Uint8Array(this.pending.length + chunk.length);
      data.set(this.pending);
      data.set(chunk, this.pending.length);
      const used = this.writer.write(data);
      this.pending = data.slice(used);
      callback();
    } catch (error) {
      callback(error as Error);
    }
  }

  override _final(callback: (error?: Error | null) => void): void {
    if (this.pending.length !== 0) {
      callback(new HvmmuError('STREAM_INVALID', `the HTAB stream ended inside a record (${this.pending.length} bytes left over)`));
      return;
    }
    callback();
  }
}
