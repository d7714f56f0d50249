import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { HashPageTable, QemuHtabSectionWriter, loadQemuHtabSection } from '@hvmmu/ppc-hpt';

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
});
