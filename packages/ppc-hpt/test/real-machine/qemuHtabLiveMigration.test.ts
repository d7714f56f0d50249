import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { HashPageTable, QemuHtabSectionWriter, loadQemuHtabSection } from '@hvmmu/ppc-hpt';

/**
 * A real QEMU 7.2 *live* migration of a hash-MMU pseries guest
 * (fixtures/ppc-hpt-live/, made by fixtures/ppc/capture_live.py): the guest
 * kept entering and removing HPTEs while QEMU migrated it, throttled, so the
 * `spapr/htab` section is QEMU's first pass, 18 later-pass PART records of
 * changed entries and the stop-and-copy END. The reference is the same
 * guest view migrated once more, stopped, as one complete first pass (QEMU
 * refuses to migrate the paused source again, so a destination QEMU loaded
 * the live stream and was migrated: see the fixture's README).
 */
const dir = new URL('../../../../fixtures/ppc-hpt-live/', import.meta.url);
const live = new Uint8Array(gunzipSync(readFileSync(new URL('live-htab-section.bin.gz', dir))));
const stopped = new Uint8Array(gunzipSync(readFileSync(new URL('stopped-htab-section.bin.gz', dir))));
const SECTION_ID = 0x23b;
const ORDER = 22;

interface Chunk {
  readonly index: number;
  readonly nValid: number;
  readonly nInvalid: number;
}
interface SectionRecord {
  readonly type: number;
  readonly at: number;
  readonly bytes: number;
  readonly chunks: Chunk[];
}

/** The section's records, framed by hand (independently of hvmmu's loader). */
function records(section: Uint8Array): SectionRecord[] {
  const v = new DataView(section.buffer, section.byteOffset, section.byteLength);
  const out: SectionRecord[] = [];
  for (let at = 0; at < section.length; ) {
    const start = at;
    const type = v.getUint8(at);
    expect(v.getUint32(at + 1, false)).toBe(SECTION_ID);
    at += 5;
    const chunks: Chunk[] = [];
    if (type === 0x01) {
      at += 1 + v.getUint8(at) + 8; // idstr, instance, version
      expect(v.getUint32(at, false)).toBe(ORDER);
      at += 4;
    } else {
      expect(v.getUint32(at, false)).toBe(0); // iteration header
      at += 4;
      for (;;) {
        const index = v.getUint32(at, false);
        const nValid = v.getUint16(at + 4, false);
        const nInvalid = v.getUint16(at + 6, false);
        at += 8;
        if (index === 0 && nValid === 0 && nInvalid === 0) break;
        chunks.push({ index, nValid, nInvalid });
        at += nValid * 16;
      }
    }
    expect(v.getUint8(at)).toBe(0x7e);
    expect(v.getUint32(at + 1, false)).toBe(SECTION_ID);
    at += 5;
    out.push({ type, at: start, bytes: at - start, chunks });
  }
  return out;
}

const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);
const liveRecords = records(live);
const stoppedRecords = records(stopped);

/** How many HPTEs (16-byte entries) differ between two tables. */
function differing(a: Uint8Array, b: Uint8Array): number {
  let n = 0;
  for (let i = 0; i < a.length; i += 16) if (!Buffer.from(a.subarray(i, i + 16)).equals(Buffer.from(b.subarray(i, i + 16)))) n++;
  return n;
}

describe("QEMU's spapr/htab section of a live migration, real bytes", () => {
  it('has a first pass, then 18 later-pass PART records of changed entries, then the stop-and-copy END', () => {
    expect(liveRecords.map((r) => r.type)).toEqual([0x01, ...Array<number>(19).fill(0x02), 0x03]);
    // PART 1 is QEMU's whole first pass (TCG): runs of valid entries only, in ascending order.
    const first = liveRecords[1]!.chunks;
    expect(first.length).toBe(479);
    expect(sum(first.map((c) => c.nValid))).toBe(492);
    expect(first.every((c) => c.nInvalid === 0)).toBe(true);
    expect(first.every((c, k) => k === 0 || first[k - 1]!.index + first[k - 1]!.nValid < c.index)).toBe(true);
    // Every later record carries removed entries (n_invalid > 0), which a first pass never sends:
    // they are later passes, sending the entries changed since they were last sent.
    const later = liveRecords.slice(2);
    for (const r of later) expect(r.chunks.some((c) => c.nInvalid > 0)).toBe(true);
    // Entries sent more than once (in the first pass or an earlier later pass, then again).
    const sent = new Set<number>();
    const resentBy: number[] = [];
    for (const r of liveRecords.slice(1)) {
      let resent = 0;
      for (const c of r.chunks) for (let i = c.index; i < c.index + c.nValid + c.nInvalid; i++) resent += sent.has(i) ? 1 : 0;
      for (const c of r.chunks) for (let i = c.index; i < c.index + c.nValid + c.nInvalid; i++) sent.add(i);
      resentBy.push(resent);
    }
    expect(resentBy[0]).toBe(0);
    expect(resentBy.filter((n) => n > 0).length).toBe(18); // all but the first pass and PART 3
    expect(sum(resentBy)).toBe(116_090);
    expect(later.filter((r) => r.type === 0x02).length).toBe(18);
    expect(later.filter((r) => r.chunks.some((c) => c.nValid > 0)).length).toBe(18); // 17 PARTs and the END also carry entered HPTEs
    const all = liveRecords.flatMap((r) => r.chunks);
    expect(all.length).toBe(149_233);
    expect(sum(all.map((c) => c.nValid))).toBe(1918);
    expect(sum(all.map((c) => c.nInvalid))).toBe(147_328);
    // The later-pass cursor went round the end of the 262144-entry table 14 times.
    const laterChunks = later.flatMap((r) => r.chunks);
    expect(laterChunks.filter((c, k) => k > 0 && c.index < laterChunks[k - 1]!.index).length).toBe(14);
  });

  it('loads into exactly the table of the stopped-VM section, entry for entry', () => {
    const a = loadQemuHtabSection(live);
    const b = loadQemuHtabSection(stopped);
    expect([a.sectionId, a.records, a.chunks, a.entriesWritten]).toEqual([SECTION_ID, 21, 149_233, 149_246]);
    expect([b.sectionId, b.records, b.chunks, b.entriesWritten]).toEqual([SECTION_ID, 3, 473, 486]);
    const x = a.hpt!;
    const y = b.hpt!;
    expect([x.order, y.order]).toEqual([ORDER, ORDER]);
    let valid = 0;
    const mismatched: number[] = [];
    for (let i = 0; i < x.entries; i++) {
      if (x.isValid(i) !== y.isValid(i)) mismatched.push(i);
      if (!x.isValid(i)) continue;
      valid++;
      if (
        x.view.getBigUint64(i * 16, false) !== y.view.getBigUint64(i * 16, false) ||
        x.view.getBigUint64(i * 16 + 8, false) !== y.view.getBigUint64(i * 16 + 8, false)
      )
        mismatched.push(i);
    }
    expect(mismatched).toEqual([]);
    expect(valid).toBe(486);
    // Invalid entries are zero in both (never sent, or zeroed by n_invalid): the tables are equal byte for byte.
    expect(Buffer.from(x.bytes).equals(Buffer.from(y.bytes))).toBe(true);
  });

  it('needs the later passes: the first pass alone, or everything but the END, gives another table', () => {
    const final = loadQemuHtabSection(stopped).hpt!.bytes;
    const upTo = (n: number): Uint8Array => {
      const r = liveRecords[n]!;
      return loadQemuHtabSection(live.subarray(0, r.at + r.bytes)).hpt!.bytes;
    };
    expect(differing(upTo(1), final)).toBe(200);
    expect(differing(upTo(19), final)).toBe(193);
    expect(differing(upTo(20), final)).toBe(0);
  });

  it("hvmmu's writer, writing the final table as a stopped VM, produces QEMU's stopped-VM section byte for byte", () => {
    const table = loadQemuHtabSection(stopped).hpt!.bytes;
    const [start, part, end] = stoppedRecords;
    // QEMU's rate limit ended the stopped VM's first iteration after 2 chunks, 9 HPTEs.
    expect(part!.chunks.length).toBe(2);
    expect(sum(part!.chunks.map((c) => c.nValid))).toBe(9);
    const writer = new QemuHtabSectionWriter(new HashPageTable(ORDER, table.slice()), { sectionId: SECTION_ID });
    const slice = (r: SectionRecord): Buffer => Buffer.from(stopped.subarray(r.at, r.at + r.bytes));
    expect(Buffer.from(writer.start()).equals(slice(start!))).toBe(true);
    expect(Buffer.from(writer.iterate(9)).equals(slice(part!))).toBe(true);
    expect(Buffer.from(writer.complete()).equals(slice(end!))).toBe(true);
  });
});
