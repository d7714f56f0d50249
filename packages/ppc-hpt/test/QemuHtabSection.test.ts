import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { HashPageTable, HvmmuErrorProbe, QemuHtabSectionWriter, loadQemuHtabSection } from './support.js';
import { propertyRuns } from '../../../test-support/propertyRuns.js';

/** A table whose entry i is valid with words derived from i and `salt`, for the indices in `valid`. */
function fill(hpt: HashPageTable, valid: Iterable<number>, salt: number): void {
  for (const i of valid) {
    hpt.view.setUint32(i * 16, (i * 2654435761 + salt) >>> 0, false);
    hpt.view.setUint32(i * 16 + 4, (((i << 7) ^ salt) | 1) >>> 0, false);
    hpt.view.setUint32(i * 16 + 8, salt >>> 0, false);
    hpt.view.setUint32(i * 16 + 12, (i * 4096 + 0x186) >>> 0, false);
    hpt.markModified(i);
  }
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

describe('spapr/htab section: live migration round trips and hostile records', () => {
  it('a live migration with many passes while the guest keeps entering and removing HPTEs converges to an identical table', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 16383 }), { maxLength: 300 }),
        fc.array(
          fc.record({
            limit: fc.integer({ min: 1, max: 200 }),
            enter: fc.array(fc.integer({ min: 0, max: 16383 }), { maxLength: 20 }),
            remove: fc.array(fc.integer({ min: 0, max: 16383 }), { maxLength: 20 }),
          }),
          { maxLength: 8 },
        ),
        (initial, rounds) => {
          const source = new HashPageTable(18);
          fill(source, initial, 1);
          const writer = new QemuHtabSectionWriter(source, { sectionId: 7 });
          const records = [writer.start()];
          rounds.forEach((r, n) => {
            records.push(writer.iterate(r.limit));
            // The guest runs on: entries entered and removed, each marking its HPTE modified.
            fill(source, r.enter, 100 + n);
            for (const i of r.remove) {
              source.bytes.fill(0, i * 16, i * 16 + 16);
              source.markModified(i);
            }
          });
          records.push(writer.complete());
          const loaded = loadQemuHtabSection(concat(records));
          expect(Buffer.from(loaded.hpt!.bytes).equals(Buffer.from(source.bytes))).toBe(true);
        },
      ),
      { numRuns: propertyRuns(100) },
    );
  });

  it("a PART carries first-pass chunks or later-pass chunks, never both (htab_save_iterate), as QEMU's live sections show", () => {
    const hpt = new HashPageTable(18);
    fill(hpt, [10, 5000], 1);
    const writer = new QemuHtabSectionWriter(hpt, { sectionId: 7 });
    writer.start();
    const chunkIndexes = (record: Uint8Array): number[] => {
      // type, section id, the iteration header, then chunks (be32 index, be16 valid, be16 invalid, HPTEs) up to the 0/0 end marker.
      const v = new DataView(record.buffer, record.byteOffset, record.byteLength);
      const found: number[] = [];
      for (let at = 9; ; ) {
        const index = v.getUint32(at);
        const nValid = v.getUint16(at + 4);
        const nInvalid = v.getUint16(at + 6);
        if (index === 0 && nValid === 0 && nInvalid === 0) return found;
        found.push(index);
        at += 8 + 16 * nValid;
      }
    };
    expect(chunkIndexes(writer.iterate(1))).toEqual([10]);
    fill(hpt, [3], 2);
    // The first pass ends within this PART's budget: entry 3, changed behind it, waits for the next PART.
    expect(chunkIndexes(writer.iterate(1000))).toEqual([5000]);
    expect(chunkIndexes(writer.iterate(1000))).toEqual([3]);
  });

  it('after a complete pass, a later pass with no changes sends nothing: the record is the header and the end marker', () => {
    const hpt = new HashPageTable(18);
    fill(hpt, [0, 1, 2, 500, 16383], 3);
    const writer = new QemuHtabSectionWriter(hpt, { sectionId: 9 });
    writer.start();
    writer.iterate(1_000_000); // the whole first pass
    const later = writer.iterate(1_000_000);
    // type, be32 id, be32 iteration header 0, the 8-byte end marker, footer 0x7E + id
    expect(Array.from(later)).toEqual([2, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x7e, 0, 0, 0, 9]);
    hpt.view.setUint32(500 * 16 + 12, 0x1234, false);
    hpt.markModified(500);
    const one = writer.iterate(1_000_000);
    expect(one.length).toBe(22 + 8 + 16); // one chunk of one HPTE
  });

  it('a guest without an HPT: START says 0xFFFFFFFF and the iterations carry only that', () => {
    const writer = new QemuHtabSectionWriter(null, { sectionId: 1 });
    const bytes = concat([writer.start(), writer.iterate(10), writer.complete()]);
    const loaded = loadQemuHtabSection(bytes);
    expect(loaded.hpt).toBeNull();
    expect(loaded.records).toBe(3);
  });

  it('malformed or lying records are refused (STREAM_INVALID) and the table keeps what earlier records wrote', () => {
    const hpt = new HashPageTable(18);
    fill(hpt, [10, 11, 12], 5);
    const writer = new QemuHtabSectionWriter(hpt, { sectionId: 4 });
    const start = writer.start();
    const end = writer.complete();
    const good = concat([start, end]);
    expect(loadQemuHtabSection(good).entriesWritten).toBe(3);
    const lie = (mutate: (b: Uint8Array, v: DataView) => void): Uint8Array => {
      const b = good.slice();
      mutate(b, new DataView(b.buffer));
      return b;
    };
    const chunkAt = start.length + 5 + 4; // END: type, id, iteration header
    const cases: [string, Uint8Array][] = [
      ['truncated', good.subarray(0, good.length - 3)],
      ['index past the table', lie((_, v) => v.setUint32(chunkAt, 16384 - 2, false))],
      ['n_invalid past the table', lie((_, v) => v.setUint16(chunkAt + 6, 0xffff, false))],
      ['n_valid longer than the data', lie((_, v) => v.setUint16(chunkAt + 4, 200, false))],
      ['bad footer', lie((b) => (b[b.length - 5] = 0x7f))],
      ['wrong section id', lie((_, v) => v.setUint32(start.length + 1, 5, false))],
      ['version 2', lie((_, v) => v.setUint32(start.length - 5 - 8, 2, false))],
      ['order 17', lie((_, v) => v.setUint32(start.length - 5 - 4, 17, false))],
      ['unknown record type', lie((b) => (b[start.length] = 9))],
      ['iteration header 5', lie((_, v) => v.setUint32(start.length + 5, 5, false))],
    ];
    for (const [what, bytes] of cases) {
      expect(
        HvmmuErrorProbe(() => loadQemuHtabSection(bytes)),
        what,
      ).toBe('STREAM_INVALID');
    }
  });

  it('hostile bytes: random record streams never throw anything but STREAM_INVALID and never allocate past the declared order', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), (noise) => {
        const hpt = new HashPageTable(18);
        const writer = new QemuHtabSectionWriter(hpt, { sectionId: 2 });
        const bytes = concat([writer.start(), noise]);
        const code = HvmmuErrorProbe(() => loadQemuHtabSection(bytes));
        expect(['ok', 'STREAM_INVALID']).toContain(code);
      }),
      { numRuns: propertyRuns(500) },
    );
  });
});
