import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { HashPageTable, HashPageTableStore, KvmHtabReader, QemuHtabSectionWriter, loadQemuHtabSection } from '@hvmmu/ppc-hpt';

/**
 * QEMU 7.2's own `spapr/htab` section (fixtures/ppc-hpt/htab-section.bin.gz:
 * its START, PART and END records as the migration stream carried them,
 * section id 0x23b) against hvmmu's reader and writer: the section loads to
 * exactly the table QEMU held (htab.bin.gz, rebuilt by the fixture's own
 * extractor), and hvmmu writing that table produces QEMU's bytes exactly,
 * record by record, when it ends its first iteration where QEMU's rate
 * limit did (after 9 HPTEs).
 */
const dir = new URL('../../../../fixtures/ppc-hpt/', import.meta.url);
const section = new Uint8Array(gunzipSync(readFileSync(new URL('htab-section.bin.gz', dir))));
const table = new Uint8Array(gunzipSync(readFileSync(new URL('htab.bin.gz', dir))));
const START_BYTES = 33;
const PART_BYTES = 182;

describe("QEMU's spapr/htab section, real bytes", () => {
  it('loads into exactly the guest view QEMU migrated', () => {
    const loaded = loadQemuHtabSection(section);
    expect(loaded.sectionId).toBe(0x23b);
    expect(loaded.records).toBe(3);
    expect(loaded.hpt!.order).toBe(24);
    expect(loaded.chunks).toBe(2 + 464);
    expect(loaded.entriesWritten).toBe(480);
    expect(Buffer.from(loaded.hpt!.bytes).equals(Buffer.from(table))).toBe(true);
  });

  it("writes QEMU's bytes for the same table: START, a PART of 9 HPTEs, END", () => {
    const writer = new QemuHtabSectionWriter(new HashPageTable(24, table.slice()), { sectionId: 0x23b });
    const start = writer.start();
    const part = writer.iterate(9);
    const end = writer.complete();
    expect(Buffer.from(start).equals(Buffer.from(section.subarray(0, START_BYTES)))).toBe(true);
    expect(Buffer.from(part).equals(Buffer.from(section.subarray(START_BYTES, START_BYTES + PART_BYTES)))).toBe(true);
    expect(Buffer.from(end).equals(Buffer.from(section.subarray(START_BYTES + PART_BYTES)))).toBe(true);
  });

  it("KVM's record format over the same table carries QEMU's 480 HPTEs, byte for byte and in order (with big-endian headers, as QEMU stores them)", () => {
    const reader = new KvmHtabReader(new HashPageTableStore(new HashPageTable(24, table.slice())), { headerByteOrder: 'big' });
    const hptes: Buffer[] = [];
    const buf = new Uint8Array(1 << 16);
    while (reader.inFirstPass) {
      const n = reader.read(buf);
      const v = new DataView(buf.buffer, 0, n);
      for (let at = 0; at < n; ) {
        const nValid = v.getUint16(at + 4, false);
        hptes.push(Buffer.from(buf.subarray(at + 8, at + 8 + nValid * 16)));
        at += 8 + nValid * 16;
      }
    }
    // QEMU's section, chunk by chunk: START (33 bytes), then PART and END payloads.
    const qemu: Buffer[] = [];
    const v = new DataView(section.buffer, section.byteOffset, section.byteLength);
    for (let at = START_BYTES; at < section.length; ) {
      at += 5 + 4; // type + id, iteration header
      for (;;) {
        const nValid = v.getUint16(at + 4, false);
        const nInvalid = v.getUint16(at + 6, false);
        const index = v.getUint32(at, false);
        at += 8;
        if (index === 0 && nValid === 0 && nInvalid === 0) break;
        qemu.push(Buffer.from(section.subarray(at, at + nValid * 16)));
        at += nValid * 16;
      }
      at += 5; // footer
    }
    expect(Buffer.concat(hptes).equals(Buffer.concat(qemu))).toBe(true);
    expect(Buffer.concat(hptes).length).toBe(480 * 16);
  });
});
