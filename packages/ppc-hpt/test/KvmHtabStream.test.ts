import { PassThrough } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { HashPageTable, HashPageTableStore, KvmHtabReader, KvmHtabWriter } from '@hvmmu/ppc-hpt';
import { HtabReadStream, HtabWriteStream } from '@hvmmu/ppc-hpt/node';
import { HvmmuErrorProbe } from './support.js';
import { propertyRuns } from '../../../test-support/propertyRuns.js';

/** A valid 4K HPTE (L = 0) with words derived from i and salt. */
function enter(hpt: HashPageTable, i: number, salt: number, bolted = false): void {
  hpt.view.setUint32(i * 16, (i * 2654435761 + salt) >>> 0, false);
  hpt.view.setUint32(i * 16 + 4, ((((i << 7) ^ (salt << 12)) & ~0x7f) | (bolted ? 0x10 : 0) | 1) >>> 0, false);
  hpt.view.setUint32(i * 16 + 8, salt >>> 0, false);
  hpt.view.setUint32(i * 16 + 12, (i * 4096 + 0x186) >>> 0, false);
  hpt.markModified(i);
}

function remove(hpt: HashPageTable, i: number): void {
  hpt.bytes.fill(0, i * 16, i * 16 + 16);
  hpt.markModified(i);
}

/** The records of a read as [index, nValid, nInvalid] (little-endian headers). */
function records(bytes: Uint8Array): [number, number, number][] {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: [number, number, number][] = [];
  for (let at = 0; at < bytes.length; ) {
    const r: [number, number, number] = [v.getUint32(at, true), v.getUint16(at + 4, true), v.getUint16(at + 6, true)];
    out.push(r);
    at += 8 + r[1] * 16;
  }
  return out;
}

describe("KVM's HTAB stream (KVM_PPC_GET_HTAB_FD format)", () => {
  it('the first pass covers every entry in runs; later reads send only what changed; an unchanged pass returns 0', () => {
    const hpt = new HashPageTable(18);
    for (const i of [3, 4, 5, 10]) enter(hpt, i, 1);
    const reader = new KvmHtabReader(new HashPageTableStore(hpt));
    const buf = new Uint8Array(4096);
    const n = reader.read(buf);
    // Worked out from kvm_htab_read: [0..2] invalid; [3..5] valid then [6..9] invalid; [10] valid then [11..16383] invalid.
    expect(records(buf.subarray(0, n))).toEqual([
      [0, 0, 3],
      [3, 3, 4],
      [10, 1, 16373],
    ]);
    expect(n).toBe(8 + (8 + 48) + (8 + 16));
    // The HPTE bytes are the guest view, big-endian, as written.
    expect(Buffer.from(buf.subarray(16, 16 + 48)).equals(Buffer.from(hpt.bytes.subarray(48, 96)))).toBe(true);
    expect(reader.read(buf)).toBe(0);
    enter(hpt, 4, 2);
    remove(hpt, 10);
    const m = reader.read(buf);
    expect(records(buf.subarray(0, m))).toEqual([
      [4, 1, 0],
      [10, 0, 1],
    ]);
    expect(reader.read(buf)).toBe(0);
  });

  it('a small buffer splits the pass across reads and never returns as much as it was given', () => {
    const hpt = new HashPageTable(18);
    for (let i = 0; i < 40; i++) enter(hpt, i, 3);
    const reader = new KvmHtabReader(new HashPageTableStore(hpt));
    const sizes: number[] = [];
    const buf = new Uint8Array(100); // a header and 5 HPTEs (8 + 80 = 88 < 100; one more would make 104)
    for (let k = 0; k < 20 && reader.inFirstPass; k++) sizes.push(reader.read(buf));
    // Eight reads of 5 HPTEs; the eighth record also carries the invalid tail (16344 entries,
    // no bytes), which kvm_htab_read takes even with the buffer full, and ends the pass.
    expect(sizes).toEqual([88, 88, 88, 88, 88, 88, 88, 88]);
    expect(reader.inFirstPass).toBe(false);
    expect(new KvmHtabReader(new HashPageTableStore(hpt)).read(new Uint8Array(24))).toBe(0);
  });

  it('bolted-only: present entries that are not bolted are sent as invalid', () => {
    const hpt = new HashPageTable(18);
    enter(hpt, 0, 1, true);
    enter(hpt, 1, 1, false);
    enter(hpt, 2, 1, true);
    const buf = new Uint8Array(4096);
    const n = new KvmHtabReader(new HashPageTableStore(hpt), { boltedOnly: true }).read(buf);
    expect(records(buf.subarray(0, n))).toEqual([
      [0, 1, 1],
      [2, 1, 16381],
    ]);
  });

  it('round trip: any table, any buffer size, edits between passes — the copy ends identical', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 16383 }), { maxLength: 200 }),
        fc.integer({ min: 25, max: 3000 }),
        fc.array(
          fc.record({
            enter: fc.array(fc.integer({ min: 0, max: 16383 }), { maxLength: 15 }),
            remove: fc.array(fc.integer({ min: 0, max: 16383 }), { maxLength: 15 }),
          }),
          { maxLength: 5 },
        ),
        (initial, size, rounds) => {
          const a = new HashPageTable(18);
          for (const i of initial) enter(a, i, 7);
          const b = new HashPageTable(18);
          const reader = new KvmHtabReader(new HashPageTableStore(a));
          const writer = new KvmHtabWriter(new HashPageTableStore(b));
          const buf = new Uint8Array(size);
          const drain = (): void => {
            for (;;) {
              const n = reader.read(buf);
              if (n === 0 && !reader.inFirstPass) return;
              expect(writer.write(buf.subarray(0, n))).toBe(n);
            }
          };
          drain();
          rounds.forEach((r, k) => {
            for (const i of r.enter) enter(a, i, 100 + k);
            for (const i of r.remove) remove(a, i);
            drain();
          });
          expect(Buffer.from(b.bytes).equals(Buffer.from(a.bytes))).toBe(true);
        },
      ),
      { numRuns: propertyRuns(60) },
    );
  });

  it('writes refuse lying records whole (STREAM_INVALID) and leave a cut-off record unconsumed', () => {
    const b = new HashPageTable(18);
    const writer = new KvmHtabWriter(new HashPageTableStore(b));
    const record = (index: number, nValid: number, nInvalid: number, v0Lo = 1, r1Lo = 0x186): Uint8Array => {
      const bytes = new Uint8Array(8 + nValid * 16);
      const v = new DataView(bytes.buffer);
      v.setUint32(0, index, true);
      v.setUint16(4, nValid, true);
      v.setUint16(6, nInvalid, true);
      for (let k = 0; k < nValid; k++) {
        v.setUint32(8 + k * 16 + 4, k === nValid - 1 ? v0Lo : 1, false);
        v.setUint32(8 + k * 16 + 12, k === nValid - 1 ? r1Lo : 0x186, false);
      }
      return bytes;
    };
    const before = b.bytes.slice();
    expect(HvmmuErrorProbe(() => writer.write(record(16384, 0, 0)))).toBe('STREAM_INVALID');
    expect(HvmmuErrorProbe(() => writer.write(record(16380, 2, 3)))).toBe('STREAM_INVALID');
    expect(HvmmuErrorProbe(() => writer.write(record(5, 3, 0, 0)))).toBe('STREAM_INVALID'); // the last HPTE lacks V
    expect(HvmmuErrorProbe(() => writer.write(record(5, 3, 0, 0x5, 0x5000)))).toBe('STREAM_INVALID'); // L with LP 5: no such size
    expect(Buffer.from(b.bytes).equals(Buffer.from(before))).toBe(true);
    const whole = record(5, 2, 1);
    expect(writer.write(whole.subarray(0, 8 + 20))).toBe(0); // cut off: nothing consumed, nothing applied
    expect(Buffer.from(b.bytes).equals(Buffer.from(before))).toBe(true);
    expect(writer.write(whole)).toBe(whole.length);
    expect([b.isValid(5), b.isValid(6), b.isValid(7)]).toEqual([true, true, false]);
  });

  it('as Node streams through a narrow pipe (backpressure): a live migration over several rounds ends with identical tables', async () => {
    const a = new HashPageTable(18);
    for (let i = 0; i < 16384; i += 3) enter(a, i, 9);
    const b = new HashPageTable(18);
    const reader = new KvmHtabReader(new HashPageTableStore(a));
    const target = new HashPageTableStore(b);
    for (let round = 0; round < 4; round++) {
      await pipeline(new HtabReadStream(reader, { readBytes: 512 }), new PassThrough({ highWaterMark: 64 }), new HtabWriteStream(target));
      for (let k = 0; k < 50; k++) {
        const i = (round * 977 + k * 131) % 16384;
        if (k % 3 === 0) remove(a, i);
        else enter(a, i, 200 + round);
      }
    }
    await pipeline(new HtabReadStream(reader, { readBytes: 512 }), new HtabWriteStream(target));
    expect(Buffer.from(b.bytes).equals(Buffer.from(a.bytes))).toBe(true);
  });

  it('a stream that ends inside a record is an error', async () => {
    const b = new HashPageTable(18);
    const partial = new Uint8Array([5, 0, 0, 0, 1, 0, 0, 0, 0, 0]);
    await expect(
      pipeline(
        async function* () {
          yield partial;
        },
        new HtabWriteStream(new HashPageTableStore(b)),
      ),
    ).rejects.toThrow(/ended inside a record/);
  });
});

describe('HtabLiveMigration (passes over Node streams)', () => {
  it('reports each pass: the first carries every entry, a later one exactly the entries changed, an unchanged one nothing', async () => {
    const { HtabLiveMigration } = await import('@hvmmu/ppc-hpt/node');
    const { HashPageTable, HashPageTableStore } = await import('@hvmmu/ppc-hpt');
    const { Writable } = await import('node:stream');
    const source = new HashPageTable(18);
    const v = source.view;
    const enter = (i: number): void => {
      v.setUint32(i * 16, 0x1);
      v.setUint32(i * 16 + 4, ((i << 7) | 1) >>> 0);
      v.setUint32(i * 16 + 12, 0x192);
      source.markModified(i);
    };
    for (const i of [3, 4, 100]) enter(i);
    const migration = new HtabLiveMigration(new HashPageTableStore(source));
    const sink = (): InstanceType<typeof Writable> => new Writable({ write: (_c, _e, cb) => cb() });
    const first = await migration.pass(sink());
    // Records: [0: 0 valid, 3 invalid] [3: 2 valid, 95 invalid] [100: 1 valid, 16283 invalid] — 16384 entries, 3 valid.
    expect(first).toEqual({ pass: 0, bytes: 3 * 8 + 3 * 16, entries: 16384, records: 3 });
    enter(7);
    v.setUint32(100 * 16 + 4, 0);
    source.markModified(100);
    const second = await migration.pass(sink());
    // [7: 1 valid] and [100: 0 valid, 1 invalid].
    expect(second).toEqual({ pass: 1, bytes: 2 * 8 + 16, entries: 2, records: 2 });
    expect(await migration.pass(sink())).toEqual({ pass: 2, bytes: 0, entries: 0, records: 0 });
  });
});
