import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import type { HtabDiffOutput, HtabLoadOutput } from '../src/commands/HtabCommand.js';
import { EXIT, run } from '../src/HvmmuProgram.js';

/**
 * `hvmmu htab save | load | diff` on the demo guest (a VM on ppcHptBackend) and on the POWER8
 * capture's HPT as QEMU migrated it (fixtures/ppc-hpt: htab-section.bin.gz, and htab.bin.gz,
 * the same table decoded: order 24, 480 valid HPTEs).
 */
const FIXTURES = new URL('../../../fixtures/ppc-hpt/', import.meta.url);
const SECTION = new URL('htab-section.bin.gz', FIXTURES).pathname;
const IMAGE = new URL('htab.bin.gz', FIXTURES).pathname;

async function cli(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await run(argv, {
    out: (s) => {
      out += s;
    },
    err: (s) => {
      err += s;
    },
  });
  return { code, out, err };
}

const dir = mkdtempSync(join(tmpdir(), 'hvmmu-htab-'));
const path = (name: string): string => join(dir, name);

async function ok(argv: string[]): Promise<string> {
  const r = await cli(argv);
  expect(r.err, argv.join(' ')).toBe('');
  expect(r.code, argv.join(' ')).toBe(EXIT.OK);
  return r.out;
}

describe('hvmmu htab save / load round trips', () => {
  it('the demo guest: saved as an image, a KVM stream (both header orders) and a QEMU section, each loads back to the same table byte for byte', async () => {
    await ok(['htab', 'save', path('demo.img'), '--demo', '--format', 'image']);
    const image = readFileSync(path('demo.img'));
    expect(image.length).toBe(2 ** 18);
    const saved = [
      ['demo.kvm', ['--format', 'kvm'], []],
      ['demo-be.kvm', ['--format', 'kvm', '--out-big-endian-headers'], ['--big-endian-headers']],
      ['demo.qemu', ['--format', 'qemu'], []],
      ['demo-iter.qemu', ['--format', 'qemu', '--first-iteration', '9'], []],
    ] as const;
    for (const [name, saveArgs, loadArgs] of saved) {
      await ok(['htab', 'save', path(name), '--demo', ...saveArgs]);
      const load = JSON.parse(await ok(['htab', 'load', path(name), ...loadArgs, '--order', '18', '--out', path(`${name}.img`), '--json'])) as HtabLoadOutput;
      expect(load.order).toBe(18);
      expect(readFileSync(path(`${name}.img`)).equals(image), name).toBe(true);
    }
    const load = JSON.parse(await ok(['htab', 'load', path('demo.img'), '--json'])) as HtabLoadOutput;
    // 300 pages mapped, every tenth unmapped again: 270 valid HPTEs.
    expect(load).toMatchObject({ format: 'image', order: 18, entries: 16384, valid: 270 });
    const kvm = JSON.parse(await ok(['htab', 'load', path('demo.kvm'), '--json'])) as HtabLoadOutput;
    expect(kvm).toMatchObject({ format: 'kvm', order: 18, valid: 270, entriesCarried: 270 });
    const qemu = JSON.parse(await ok(['htab', 'load', path('demo-iter.qemu'), '--json'])) as HtabLoadOutput;
    expect(qemu).toMatchObject({ format: 'qemu', order: 18, valid: 270, records: 3 });
  });

  it("QEMU's own section: loads into the table of htab.bin.gz; saved again as KVM's stream and as QEMU's section it loads back identical", async () => {
    const table = gunzipSync(readFileSync(IMAGE));
    const load = JSON.parse(await ok(['htab', 'load', SECTION, '--out', path('fixture.img'), '--json'])) as HtabLoadOutput;
    expect(load).toMatchObject({ format: 'qemu', order: 24, entries: 1048576, valid: 480, records: 3, entriesCarried: 480 });
    expect(readFileSync(path('fixture.img')).equals(table)).toBe(true);
    await ok(['htab', 'save', path('fixture.kvm'), '--from', SECTION, '--format', 'kvm']);
    const kvm = JSON.parse(await ok(['htab', 'load', path('fixture.kvm'), '--order', '24', '--out', path('fixture-kvm.img'), '--json'])) as HtabLoadOutput;
    expect(kvm.entriesCarried).toBe(480);
    expect(readFileSync(path('fixture-kvm.img')).equals(table)).toBe(true);
    // QEMU's START, PART (its first iteration ended after 9 HPTEs) and END records, byte for byte.
    await ok(['htab', 'save', path('fixture.qemu'), '--from', IMAGE, '--format', 'qemu', '--first-iteration', '9', '--section-id', '571']);
    expect(readFileSync(path('fixture.qemu')).equals(gunzipSync(readFileSync(SECTION)))).toBe(true);
  });
});

describe('hvmmu htab load --into-vm', () => {
  it("loads a table into a VM on ppcHptBackend through its H_ENTER path: the demo guest's entries all go in and the VM's guest view is the table", async () => {
    await ok(['htab', 'save', path('vm.kvm'), '--demo', '--format', 'kvm']);
    const r = JSON.parse(await ok(['htab', 'load', path('vm.kvm'), '--into-vm', '--json'])) as HtabLoadOutput;
    expect(r.vm).toMatchObject({ memslotMib: 64, valid: 270, differing: 0 });
  });

  it("QEMU's capture: its 16M and 64K pages over a memslot are refused as KVM refuses them on a 4 KiB-page host (exit 2, the byte named); with no memslot (MMIO) all 480 go in", async () => {
    const refused = await cli(['htab', 'load', SECTION, '--into-vm']);
    expect(refused.code).toBe(EXIT.USAGE);
    expect(refused.err).toMatch(/cannot be loaded into the VM \(memslot of 64 MiB at 0\): HTAB record at byte \d+: HPTE \d+ is refused by the host/);
    const r = JSON.parse(await ok(['htab', 'load', SECTION, '--into-vm', '--vm-memory-mib', '0', '--json'])) as HtabLoadOutput;
    expect(r.vm).toMatchObject({ memslotMib: 0, valid: 480, differing: 0 });
  });
});

describe('hvmmu htab diff', () => {
  it("QEMU's section against itself and against the decoded image: equal, exit 0", async () => {
    const r = await cli(['htab', 'diff', SECTION, SECTION]);
    expect(r.code).toBe(EXIT.OK);
    expect(r.out).toContain('equal: every entry is the same in the guest view');
    const j = JSON.parse((await cli(['htab', 'diff', SECTION, IMAGE, '--json'])).out) as HtabDiffOutput;
    expect(j).toMatchObject({ equal: true, count: 0, differences: [], a: { format: 'qemu', valid: 480 }, b: { format: 'image', valid: 480 } });
  });

  it('against a modified copy: exactly the changed indexes, by kind, exit 1; a stale invalid entry is no difference', async () => {
    const table = Buffer.from(gunzipSync(readFileSync(IMAGE)));
    const valid: number[] = [];
    for (let i = 0; i < table.length / 16 && valid.length < 3; i++) if ((table[i * 16 + 7]! & 1) !== 0) valid.push(i);
    const [changed, removed, other] = valid as [number, number, number];
    table[changed * 16 + 15] ^= 0x80; // C flipped in dword1
    table[removed * 16 + 7] &= ~1; // V cleared
    const added = 5;
    expect(table[added * 16 + 7]! & 1).toBe(0);
    table.writeBigUInt64BE(0x4000_0000_0000_0005n, added * 16); // a valid entry where there was none
    table.writeBigUInt64BE(0x0000_0000_0100_0196n, added * 16 + 8);
    table[7 * 16 + 12] = 0x55; // junk in an invalid entry: not part of the guest view
    void other;
    writeFileSync(path('modified.img'), table);
    const r = await cli(['htab', 'diff', SECTION, path('modified.img'), '--json']);
    expect(r.code).toBe(EXIT.PROBLEM);
    const j = JSON.parse(r.out) as HtabDiffOutput;
    expect(j.equal).toBe(false);
    expect(j.count).toBe(3);
    expect(j.differences.map((d) => [d.index, d.kind])).toEqual(
      [
        [added, 'added'],
        [changed, 'changed'],
        [removed, 'removed'],
      ].sort((x, y) => (x[0] as number) - (y[0] as number)),
    );
    const text = await cli(['htab', 'diff', SECTION, path('modified.img')]);
    expect(text.code).toBe(EXIT.PROBLEM);
    expect(text.out).toContain('3 entries differ:');
    expect(text.out).toMatch(new RegExp(`0x${changed.toString(16)}\\s+changed`));
  });

  it("QEMU's live migration of a churning guest (fixtures/ppc-hpt-live: a first pass, 18 later-pass PARTs, END) ends in the table the stopped migration sends", async () => {
    const live = new URL('../../../fixtures/ppc-hpt-live/live-htab-section.bin.gz', import.meta.url).pathname;
    const stopped = new URL('../../../fixtures/ppc-hpt-live/stopped-htab-section.bin.gz', import.meta.url).pathname;
    const l = JSON.parse(await ok(['htab', 'load', live, '--json'])) as HtabLoadOutput;
    expect(l).toMatchObject({ format: 'qemu', order: 22, valid: 486, records: 21 });
    const d = JSON.parse((await cli(['htab', 'diff', live, stopped, '--json'])).out) as HtabDiffOutput;
    expect(d).toMatchObject({ equal: true, count: 0, a: { valid: 486 }, b: { valid: 486 } });
  });

  it('tables of different orders differ (exit 1)', async () => {
    await ok(['htab', 'save', path('small.img'), '--demo', '--format', 'image']);
    const r = await cli(['htab', 'diff', path('small.img'), SECTION]);
    expect(r.code).toBe(EXIT.PROBLEM);
    expect(r.out).toContain('the orders differ (18 vs 24)');
  });
});

describe('hvmmu htab: malformed input exits 2 naming the file and the byte', () => {
  const section = gunzipSync(readFileSync(SECTION));
  it.each<[string, () => string[], RegExp]>([
    ['a missing file', () => ['htab', 'load', '/nonexistent/htab.bin'], /cannot read the HTAB file '\/nonexistent\/htab.bin': no such file/],
    [
      'a QEMU section cut short',
      () => {
        writeFileSync(path('cut.qemu'), section.subarray(0, 5000));
        return ['htab', 'load', path('cut.qemu')];
      },
      /'.*cut.qemu' \(qemu\): spapr\/htab section, byte \d+: /,
    ],
    [
      'a QEMU section with a wrong footer',
      () => {
        const bad = Buffer.from(section);
        bad[28] = 0x00; // the START record's footer byte 0x7E (after type, id, name, instance, version, order)
        writeFileSync(path('footer.qemu'), bad);
        return ['htab', 'diff', path('footer.qemu'), SECTION];
      },
      /'.*footer.qemu' \(qemu\): spapr\/htab section, byte 28: /,
    ],
    [
      'a KVM record with an invalid HPTE',
      () => {
        const rec = Buffer.alloc(8 + 16);
        rec.writeUInt32LE(0, 0);
        rec.writeUInt16LE(1, 4); // one valid HPTE, but V clear
        writeFileSync(path('nov.kvm'), rec);
        return ['htab', 'load', path('nov.kvm')];
      },
      /'.*nov.kvm' \(kvm\): /,
    ],
    [
      'a KVM stream cut inside a header',
      () => {
        writeFileSync(path('hdr.kvm'), Buffer.alloc(5));
        return ['htab', 'load', path('hdr.kvm')];
      },
      /ends inside a record header at byte 0 \(5 of 8 bytes\)/,
    ],
    [
      'an image of the wrong size',
      () => {
        writeFileSync(path('odd.img'), Buffer.alloc(4096));
        return ['htab', 'load', path('odd.img'), '--htab-format', 'image'];
      },
      /the HPT image '.*odd.img' is 4096 bytes: an image is 2\^order bytes with order 18..31/,
    ],
    ['an order out of range', () => ['htab', 'load', SECTION, '--order', '40'], /--order must be an integer 18..31/],
    ['save without a source', () => ['htab', 'save', path('x.kvm'), '--format', 'kvm'], /give exactly one of --from FILE or --demo/],
    ['save in an unknown format', () => ['htab', 'save', path('x.kvm'), '--demo', '--format', 'xml'], /Allowed choices are kvm, qemu, image/],
  ])('%s', async (_name, argv, message) => {
    const r = await cli(argv());
    expect(r.code).toBe(EXIT.USAGE);
    expect(r.err).toMatch(message);
    expect(r.err).not.toMatch(/\n\s+at /);
  });

  it('htab --help and each subcommand --help exit 0', async () => {
    for (const argv of [
      ['htab', '--help'],
      ['htab', 'save', '--help'],
      ['htab', 'load', '--help'],
      ['htab', 'diff', '--help'],
    ]) {
      expect((await cli(argv)).code, argv.join(' ')).toBe(EXIT.OK);
    }
  });
});
