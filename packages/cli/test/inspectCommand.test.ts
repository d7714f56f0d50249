import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { FlatGuestMemory, type GuestMemory } from '@hvmmu/core';
import { RadixTreeBuilder } from '@hvmmu/ppc-radix';
import type { InspectCommandOutput } from '../src/commands/InspectCommand.js';
import { EXIT, run } from '../src/HvmmuProgram.js';

/**
 * `hvmmu inspect` against the real-machine fixtures (fixtures/x86, fixtures/ppc-radix,
 * fixtures/ppc-hpt: QEMU 7.2 running Debian's kernels; see their READMEs): every mapping listed
 * must be one QEMU lists or answers through gva2gpa, and the counts must be the fixtures'.
 */
const FIXTURES = new URL('../../../fixtures/', import.meta.url);
const fixture = (path: string): string => new URL(path, FIXTURES).pathname;

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

function gzLines(path: string): string[][] {
  return gunzipSync(readFileSync(fixture(path)))
    .toString('utf8')
    .split('\n')
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => l.split(' '));
}

/** The mapping containing `va` in a list sorted by va, or undefined. */
function find(sorted: { lo: bigint; hi: bigint; pa: bigint }[], va: bigint): { lo: bigint; hi: bigint; pa: bigint } | undefined {
  let lo = 0;
  let hi = sorted.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const m = sorted[mid]!;
    if (va < m.lo) hi = mid - 1;
    else if (va >= m.hi) lo = mid + 1;
    else return m;
  }
  return undefined;
}

function ranges(out: InspectCommandOutput, keep: (m: InspectCommandOutput['mappings'][number]) => boolean = () => true) {
  return out.mappings
    .filter(keep)
    .map((m) => ({ lo: BigInt(m.va), hi: BigInt(m.vaEnd), pa: BigInt(m.pa) }))
    .sort((a, b) => (a.lo < b.lo ? -1 : a.lo > b.lo ? 1 : 0));
}

function tmp(name: string, bytes: Uint8Array | string): string {
  const file = join(mkdtempSync(join(tmpdir(), 'hvmmu-inspect-cmd-')), name);
  writeFileSync(file, bytes);
  return file;
}

describe('hvmmu inspect --arch x86 on QEMU captures (fixtures/x86)', () => {
  for (const mode of ['long4', 'long5', 'pae', 'bits32'] as const) {
    it(`${mode}: the leaves are exactly QEMU's info tlb lines, their count the fixture's, and every gva2gpa probe agrees`, async () => {
      const regs = JSON.parse(readFileSync(fixture(`x86/${mode}/registers.json`), 'utf8')) as Record<string, unknown> & { leaves: number };
      const args = ['inspect', fixture(`x86/${mode}/tables.bin.gz`), '--arch', 'x86'];
      for (const r of ['cr0', 'cr3', 'cr4', 'efer']) args.push(`--${r}`, `0x${regs[r] as string}`);
      const r = await cli([...args, '--json']);
      expect(r.err).toBe('');
      expect(r.code).toBe(EXIT.OK);
      const out = JSON.parse(r.out) as InspectCommandOutput;
      expect(out.mappings.length).toBe(regs.leaves);
      expect(out.summary.missingTables).toBe(0);

      // QEMU's info tlb, expanded from the fixture's runs: va, pa (bits 51:12), flags, size, upper-level U/W/X.
      const expected: string[] = [];
      const upperOf = new Map<string, string>();
      for (const [va, pa, flags, size, count, vaStep, paStep, upper] of gzLines(`x86/${mode}/info-tlb.txt.gz`)) {
        const signed = (t: string): bigint => (t!.startsWith('-') ? -BigInt(`0x${t!.slice(1)}`) : BigInt(`0x${t}`));
        for (let k = 0n; k < BigInt(count!); k++) {
          const v = BigInt(`0x${va}`) + k * signed(vaStep!);
          const key = `${v.toString(16)} ${(BigInt(`0x${pa}`) + k * signed(paStep!)).toString(16)} ${flags} ${BigInt(`0x${size}`).toString(16)}`;
          expected.push(key);
          upperOf.set(key, upper!);
        }
      }
      const listed = out.mappings.map(
        (m) => `${BigInt(m.va).toString(16)} ${BigInt(m.pa).toString(16)} ${m.flags} ${(BigInt(m.vaEnd) - BigInt(m.va)).toString(16)}`,
      );
      expect(listed.length).toBe(expected.length);
      expect(listed.sort()).toEqual(expected.sort());

      // Effective rights: U and W ANDed over the levels, XD ORed (with NXE), as the fixture's upper-level column says.
      const nx = mode !== 'bits32' && (BigInt(`0x${regs.efer as string}`) & 0x800n) !== 0n;
      for (const m of out.mappings) {
        const key = `${BigInt(m.va).toString(16)} ${BigInt(m.pa).toString(16)} ${m.flags} ${(BigInt(m.vaEnd) - BigInt(m.va)).toString(16)}`;
        const upper = upperOf.get(key)!;
        const u = m.flags[7] === 'U' && upper[0] === 'U';
        const w = m.flags[8] === 'W' && upper[1] === 'W';
        const x = !(nx && (m.flags[0] === 'X' || upper[2] === 'X'));
        expect(m.detail.access, key).toBe(`${u ? 'U' : 'S'}${w ? 'W' : 'R'}${x ? 'X' : '-'}`);
      }

      // gva2gpa: a mapped answer lies in a listed leaf at the same offset; an unmapped one in none.
      const sorted = ranges(out);
      let mapped = 0;
      const wrong: string[] = [];
      for (const [gva, gpa] of gzLines(`x86/${mode}/gva2gpa.txt.gz`)) {
        const va = BigInt(`0x${gva}`);
        const m = find(sorted, va);
        const mine = m === undefined ? 'unmapped' : (m.pa + (va - m.lo)).toString(16);
        if (gpa !== 'unmapped') mapped++;
        if (mine !== (gpa === 'unmapped' ? 'unmapped' : BigInt(`0x${gpa}`).toString(16))) wrong.push(`${gva}: QEMU ${gpa}, listed ${mine}`);
      }
      expect(wrong.slice(0, 5)).toEqual([]);
      expect(mapped).toBeGreaterThan(1000);

      // --info-tlb prints QEMU's own lines (PAE shows the entry's high bits, XD included, as QEMU does).
      const text = await cli([...args, '--info-tlb']);
      const lines = text.out.trimEnd().split('\n');
      expect(lines.length).toBe(regs.leaves);
      for (const line of lines.slice(0, 200)) expect(line).toMatch(/^[0-9a-f]{16}: [0-9a-f]{16} [X-][G-][P-][D-][A-][C-][T-][U-][W-]$/);
      const normalized = lines.map((l) => {
        const [va, pa, flags] = l.split(/:? /) as [string, string, string];
        return `${BigInt(`0x${va}`).toString(16)} ${(BigInt(`0x${pa}`) & 0xf_ffff_ffff_f000n).toString(16)} ${flags}`;
      });
      expect(normalized.sort()).toEqual(expected.map((e) => e.split(' ').slice(0, 3).join(' ')).sort());
    });
  }

  it("PAE: the PDPTEs' A bit (QEMU's TCG sets it) is reported, and the tree draws PDPTE → PD → PT → leaves", async () => {
    const regs = JSON.parse(readFileSync(fixture('x86/pae/registers.json'), 'utf8')) as Record<string, string>;
    const args = ['inspect', fixture('x86/pae/tables.bin.gz'), '--arch', 'x86'];
    for (const r of ['cr0', 'cr3', 'cr4', 'efer']) args.push(`--${r}`, `0x${regs[r]}`);
    const text = await cli(args);
    expect(text.out).toMatch(/note: 3 PDPTE\(s\) have A \(bit 5\) set/);
    const tree = await cli([...args, '--tree']);
    expect(tree.code).toBe(EXIT.OK);
    expect(tree.out).toMatch(/^ {2}PDPTE\[\d\] [0-9a-f]{16} -> PD 0x/m);
    expect(tree.out).toMatch(/^ {4}PDE\[\d+\] [0-9a-f]{16} -> PT 0x/m);
    expect(tree.out).toMatch(/^ {6}PTE\[\d+\] [0-9a-f]{16} leaf 0x/m);
    expect(tree.out.match(/ leaf 0x/g)?.length).toBe(4461);
  });
});

describe('hvmmu inspect --arch radix on the POWER9 capture (fixtures/ppc-radix)', () => {
  const registers = JSON.parse(readFileSync(fixture('ppc-radix/registers.json'), 'utf8')) as {
    pate: { dw0: string; dw1: string };
    stops: Record<'user' | 'kernel', { msr: string; pidr: number; amr: string; iamr: string }>;
  };
  const base = ['inspect', fixture('ppc-radix/tables.bin.gz'), '--arch', 'radix', '--pate', `0x${registers.pate.dw0},0x${registers.pate.dw1}`];

  it('lists exactly the 1179 leaves of PID 2 (quadrant 0) and PID 0 (quadrant 3) in mappings.txt, with their flags', async () => {
    const r = await cli([...base, '--pid', String(registers.stops.user.pidr), '--json']);
    expect(r.code).toBe(EXIT.OK);
    const out = JSON.parse(r.out) as InspectCommandOutput;
    expect(out.mappings.length).toBe(1179);
    expect(out.summary.badEntries).toBe(0);
    const expected = gzLines('ppc-radix/mappings.txt.gz').map(
      ([, pid, va, pa, shift, , pte, flags]) => `${pid} ${va} ${pa} ${2n ** BigInt(shift!)} ${pte} ${flags}`,
    );
    const listed = out.mappings.map(
      (m) =>
        `${m.detail.pid} ${BigInt(m.va).toString(16)} ${BigInt(m.pa).toString(16)} ${BigInt(m.vaEnd) - BigInt(m.va)} ${BigInt(m.detail.entry as string).toString(16)} ${m.flags}`,
    );
    expect(listed.sort()).toEqual(expected.sort());
  });

  it('agrees with all 8116 gva2gpa probes: user-stop answers in leaves user state may use, kernel-stop ones in leaves the kernel may use (KUAP closes user pages)', async () => {
    const out = JSON.parse((await cli([...base, '--pid', '2', '--json'])).out) as InspectCommandOutput;
    const readable = (rights: string): boolean => rights !== '---';
    const user = ranges(out, (m) => readable(m.user));
    // At the kernel stop AMR/IAMR key 0 closes every non-privileged (user) page: only privileged leaves answer.
    const kernel = ranges(out, (m) => readable(m.supervisor) && m.flags[3] === 'P');
    let mapped = 0;
    const wrong: string[] = [];
    const probes = gzLines('ppc-radix/gva2gpa.txt.gz');
    expect(probes.length).toBe(8116);
    for (const [gva, gpa, stop] of probes) {
      const va = BigInt(`0x${gva}`);
      const m = find(stop === 'user' ? user : kernel, va);
      const mine = m === undefined ? 'unmapped' : (m.pa + (va - m.lo)).toString(16);
      if (gpa !== 'unmapped') mapped++;
      if (mine !== (gpa === 'unmapped' ? 'unmapped' : BigInt(`0x${gpa}`).toString(16))) wrong.push(`${stop} ${gva}: QEMU ${gpa}, listed ${mine}`);
    }
    expect(wrong.slice(0, 5)).toEqual([]);
    expect(mapped).toBeGreaterThan(1000);
  });

  it("--translate answers as QEMU's gva2gpa under the stop's MSR, AMR and IAMR", async () => {
    for (const stop of ['user', 'kernel'] as const) {
      const s = registers.stops[stop];
      const probes = gzLines('ppc-radix/gva2gpa.txt.gz')
        .filter((p) => p[2] === stop)
        .filter((_, i) => i % 40 === 0);
      const args = [...base, '--pid', String(s.pidr), '--msr', `0x${s.msr}`, '--amr', `0x${s.amr}`, '--iamr', `0x${s.iamr}`, '--json', '--quadrants', '0'];
      for (const [gva] of probes) args.push('--translate', `0x${gva}`);
      const out = JSON.parse((await cli(args)).out) as InspectCommandOutput;
      expect(out.translations.length).toBe(probes.length);
      out.translations.forEach((t, i) => {
        const answer = probes[i]![1]!;
        expect(t.ra === null ? 'unmapped' : BigInt(t.ra).toString(16), `${stop} ${t.ea}`).toBe(
          answer === 'unmapped' ? 'unmapped' : BigInt(`0x${answer}`).toString(16),
        );
      });
    }
  });

  it('--tree draws PGD → PUD → PMD → PTE for each quadrant', async () => {
    const r = await cli([...base, '--pid', '2', '--tree']);
    expect(r.code).toBe(EXIT.OK);
    expect(r.out).toContain('quadrant 0 (PID 2): process-table entry 40000000024d00ad');
    expect(r.out).toContain('quadrant 3 (PID 0): process-table entry 40000000027400ad');
    expect(r.out).toMatch(/PMD\[\d+\] [0-9a-f]{16} -> PTE 0x[0-9a-f]+ \(2\^5 entries\)/);
    expect(r.out.match(/ leaf 0x/g)?.length).toBe(1179);
  });
});

describe('hvmmu inspect --arch hpt on the POWER8 capture (fixtures/ppc-hpt)', () => {
  const slb = fixture('ppc-hpt/slb.json');

  it("lists every valid HPTE of QEMU's spapr/htab section through the user stop's SLB: the 480 of hptes.txt, each at its EA with its flags", async () => {
    const r = await cli(['inspect', fixture('ppc-hpt/htab-section.bin.gz'), '--arch', 'hpt', '--slb', slb, '--slb-key', 'user', '--json']);
    expect(r.err).toBe('');
    expect(r.code).toBe(EXIT.OK);
    const out = JSON.parse(r.out) as InspectCommandOutput;
    expect(out.summary).toMatchObject({ format: 'qemu', order: 24, valid: 480, listed: 480, withoutSegment: 0 });
    const expected = gzLines('ppc-hpt/hptes.txt.gz').map(
      ([index, , , base, actual, va, ea, flags, key]) => `${index} ${ea} ${va} ${base} ${actual} ${flags} ${key}`,
    );
    const listed = out.mappings.map(
      (m) =>
        `${(m.detail.index as number).toString(16)} ${BigInt(m.va).toString(16)} ${BigInt(m.detail.virtualAddress as string).toString(16)} ${m.detail.baseShift} ${m.detail.actualShift} ${m.flags} ${m.detail.key}`,
    );
    expect(listed.sort()).toEqual(expected.sort());
  });

  it('agrees with the gva2gpa probes of both stops: every QEMU answer is in a listed range at the same offset', async () => {
    const probes = gzLines('ppc-hpt/gva2gpa.txt.gz');
    expect(probes.length).toBe(5320);
    let checked = 0;
    for (const stop of ['user', 'kernel'] as const) {
      const out = JSON.parse(
        (await cli(['inspect', fixture('ppc-hpt/htab.bin.gz'), '--arch', 'hpt', '--slb', slb, '--slb-key', stop, '--json'])).out,
      ) as InspectCommandOutput;
      expect(out.summary.format).toBe('image');
      // Problem state uses Kp's rights, the kernel Ks's.
      const sorted = ranges(out, (m) => (stop === 'user' ? m.user : m.supervisor) !== '---');
      const wrong: string[] = [];
      for (const [gva, gpa, s] of probes) {
        if (s !== stop) continue;
        const va = BigInt(`0x${gva}`);
        const m = find(sorted, va);
        const mine = m === undefined ? 'unmapped' : (m.pa + (va - m.lo)).toString(16);
        if (mine !== (gpa === 'unmapped' ? 'unmapped' : BigInt(`0x${gpa}`).toString(16))) wrong.push(`${stop} ${gva}: QEMU ${gpa}, listed ${mine}`);
        checked++;
      }
      expect(wrong.slice(0, 5)).toEqual([]);
    }
    expect(checked).toBe(5320);
  });

  it('--sdr1: the same HPT in a memory image at HTABORG (bare metal) lists the same 480 mappings', async () => {
    const table = gunzipSync(readFileSync(fixture('ppc-hpt/htab.bin.gz')));
    const ram = new Uint8Array(32 << 20);
    ram.set(table, 16 << 20);
    const file = tmp('ram-with-hpt.raw', ram);
    const args = ['--arch', 'hpt', '--slb', slb, '--slb-key', 'kernel', '--json'];
    const fromRam = JSON.parse((await cli(['inspect', file, ...args, '--sdr1', '0x1000006'])).out) as InspectCommandOutput;
    const fromImage = JSON.parse((await cli(['inspect', fixture('ppc-hpt/htab.bin.gz'), ...args])).out) as InspectCommandOutput;
    expect(fromRam.summary).toMatchObject({ format: 'memory image, SDR1 0x1000006', order: 24, valid: 480, listed: 480 });
    expect(fromRam.mappings).toEqual(fromImage.mappings);
    const outside = await cli(['inspect', file, ...args, '--sdr1', '0x2000006']);
    expect(outside.code).toBe(EXIT.USAGE);
    expect(outside.err).toMatch(
      /the HPT SDR1 0x2000006 names \(0x2000000, 16777216 bytes\) is not all in the memory image '.*ram-with-hpt.raw': 0x2000000 is missing/,
    );
  });

  it('--slbe entries and --translate; --tree groups HPTEs under their SLB slot and PTEG', async () => {
    const entries = (JSON.parse(readFileSync(slb, 'utf8')) as Record<string, { esidWord: string; vsidWord: string }[]>).user;
    const args = ['inspect', fixture('ppc-hpt/htab-section.bin.gz'), '--arch', 'hpt'];
    for (const e of entries) args.push('--slbe', `${e.esidWord},${e.vsidWord}`);
    const r = await cli([...args, '--msr', '0x800000000000d032', '--translate', '0x10000128', '--translate', '0xd000000000000000', '--json']);
    expect(r.code).toBe(EXIT.OK);
    const out = JSON.parse(r.out) as InspectCommandOutput;
    expect(out.mappings.length).toBe(480);
    expect(out.translations).toEqual([
      { ea: '0x10000128', ra: '0x2ffe0128' },
      { ea: '0xd000000000000000', ra: null },
    ]);
    const tree = await cli([...args, '--tree']);
    expect(tree.out).toMatch(/^ {2}SLB\[0\] ESID 0xc000000000000000 1T VSID 0xea1b217 base 16M Ks=0 Kp=1 N=0$/m);
    expect(tree.out.match(/^ {4}PTEG 0x[0-9a-f]+( \(secondary\))? \[\d\] HPTE/gm)?.length).toBe(480);
    expect(tree.out.match(/\(secondary\)/g)?.length).toBe(1);
  });
});

describe('hvmmu inspect on hand-built raw images', () => {
  it('x86: a 4-level image by hand (SDM 4.5) in raw layout: leaves, rights ANDed over levels, SMAP/SMEP for the kernel, the tree', async () => {
    const image = new Uint8Array(0x10000);
    const v = new DataView(image.buffer);
    v.setUint32(0x1000, 0x2000 | 0x7, true); // PML4[0] P|W|U → PDPT 0x2000
    v.setUint32(0x2000, 0x3000 | 0x7, true); // PDPT[0] → PD 0x3000
    v.setUint32(0x3000, 0x4000 | 0x5, true); // PD[0] → PT 0x4000, read-only
    v.setUint32(0x3008, 0x0020_0000 | 0x80 | 0x3, true); // PD[1]: 2 MiB page at 2 MiB, supervisor RW
    v.setUint32(0x4000 + 16 * 8, 0x8000 | 0x7, true); // PT[16]: va 0x10000 → 0x8000, U W (W masked by the PD)
    v.setUint32(0x4000 + 16 * 8 + 4, 0x8000_0000, true); //   … XD
    const file = tmp('long.raw', image);
    const regs = ['--cr0', '0x80010011', '--cr3', '0x1000', '--cr4', '0x300020', '--efer', '0xd00'];
    const r = await cli(['inspect', file, '--arch', 'x86', ...regs, '--layout', 'raw', '--json']);
    expect(r.code).toBe(EXIT.OK);
    const out = JSON.parse(r.out) as InspectCommandOutput;
    expect(out.summary).toMatchObject({ mode: '4-level', leaves: 2, missingTables: 0 });
    expect(out.mappings.map((m) => [m.va, m.vaEnd, m.pa, m.pageSize, m.user, m.supervisor, m.flags, m.detail.access])).toEqual([
      ['0x10000', '0x11000', '0x8000', '4K', 'r--', '---', 'X------UW', 'UR-'], // SMAP: no kernel data access to a user page; XD: no fetch
      ['0x200000', '0x400000', '0x200000', '2M', '---', 'rwx', '--P-----W', 'SWX'],
    ]);
    const tree = await cli(['inspect', file, '--arch', 'x86', ...regs, '--tree']);
    expect(tree.out).toContain('CR3 0x1000: PML4 0x1000 (4-level paging)');
    expect(tree.out).toContain('    PDPTE[0] 0000000000003007 -> PD 0x3000 UWX');
    expect(tree.out).toContain('      PDE[1] 0000000000200083 leaf 0x200000 -> 0x200000 2M --P-----W');
    expect(tree.out).toContain('        PTE[16] 8000000000008007 leaf 0x10000 -> 0x8000 4K X------UW');
    const info = await cli(['inspect', file, '--arch', 'x86', ...regs, '--info-tlb']);
    expect(info.out).toBe('0000000000010000: 0000000000008000 X------UW\n0000000000200000: 0000000000200000 --P-----W\n');
  });

  it('x86: a large raw image (a 5 GiB pmemsave, here 3 GiB sparse) is read page by page as the walk needs it', async () => {
    const file = tmp('big.raw', '');
    truncateSync(file, 3 * 2 ** 30);
    const fd = openSync(file, 'r+');
    const entry = (value: number): Buffer => {
      const b = Buffer.alloc(8);
      b.writeUInt32LE(value >>> 0, 0);
      return b;
    };
    // CR3 at 2 GiB + 4 KiB; PML4[0] → PDPT at 2.5 GiB; PDPT[1] → 1 GiB page at 1 GiB.
    writeSync(fd, entry(0xa000_0000 | 0x7), 0, 8, 0x8000_1000);
    writeSync(fd, entry(0x4000_0000 | 0x80 | 0x7), 0, 8, 0xa000_0000 + 8);
    closeSync(fd);
    const r = await cli(['inspect', file, '--arch', 'x86', '--cr0', '0x80000011', '--cr3', '0x80001000', '--cr4', '0x20', '--efer', '0x500', '--json']);
    expect(r.err).toBe('');
    const out = JSON.parse(r.out) as InspectCommandOutput;
    expect(out.summary).toMatchObject({ leaves: 1, missingTables: 0, image: `raw, ${(3 * 2 ** 30) / 4096} pages` });
    expect(out.mappings.map((m) => [m.va, m.pa, m.pageSize, m.user])).toEqual([['0x40000000', '0x40000000', '1G', 'rwx']]);
    rmSync(file);
  });

  it('radix: a guest under a radix hypervisor (PTCR, LPID 1): the 2-D walk puts every table and leaf through the partition-scoped tree', async () => {
    const MiB = 1 << 20;
    const GUEST_BASE = 16 * MiB;
    const hostBuffer = new ArrayBuffer(32 * MiB);
    const host = new FlatGuestMemory(hostBuffer);
    const guestView: GuestMemory = {
      get view() {
        return host.view;
      },
      resolve: (gpa: number, write: boolean) => (gpa >= 0 && gpa < 16 * MiB ? host.resolve(gpa + GUEST_BASE, write) : -1),
    };
    const l0 = new RadixTreeBuilder(host, 1 * MiB, 8 * MiB);
    const partitionTable = l0.createProcessTable(0);
    const partitionTree = l0.createTree('64k');
    for (let g = 0; g < 16 * MiB; g += 1 << 16) if (g !== 0x70_0000) partitionTree.map(g, g + GUEST_BASE, 16, { read: true, write: true, execute: true });
    const guest = new RadixTreeBuilder(guestView, 8 * MiB, 4 * MiB);
    const processTable = guest.createProcessTable(0);
    const userTree = guest.createTree('64k');
    processTable.setProcess(3, userTree);
    partitionTable.setPartition(1, partitionTree, processTable.pointer());
    userTree.map(0x1000_0000, 0x40_0000, 16, { read: true, write: true, referenced: true, changed: true });
    userTree.map(0x2000_0000, 0x20_0000, 21, { read: true, execute: true, referenced: true });
    userTree.map(0x3000_0000, 0x70_0000, 16, { read: true, referenced: true }); // guest real the hypervisor does not map
    const file = tmp('host.raw', new Uint8Array(hostBuffer));
    const [hi, lo] = partitionTable.pointer();
    const ptcr = `0x${((BigInt(hi) << 32n) | BigInt(lo >>> 0)).toString(16)}`;
    const args = ['inspect', file, '--arch', 'radix', '--ptcr', ptcr, '--lpid', '1', '--pid', '3', '--quadrants', '0', '--layout', 'raw'];
    const r = await cli([...args, '--json', '--msr', '0x8000000000000030', '--translate', '0x10001234', '--translate', '0x30000010']);
    expect(r.err).toBe('');
    expect(r.code).toBe(EXIT.OK);
    const out = JSON.parse(r.out) as InspectCommandOutput;
    expect(out.summary).toMatchObject({ partitionScopedLeaves: 255, leaves: 3, badEntries: 0 });
    expect(out.mappings.map((m) => [m.va, m.vaEnd, m.pa, m.pageSize, m.user, m.flags, m.detail.hostRa])).toEqual([
      ['0x10000000', '0x10010000', '0x400000', '64K', 'rw-', 'RC0Urw-', `0x${(GUEST_BASE + 0x40_0000).toString(16)}`],
      ['0x20000000', '0x20200000', '0x200000', '2M', 'r-x', 'R-0Ur-x', `0x${(GUEST_BASE + 0x20_0000).toString(16)}`],
      ['0x30000000', '0x30010000', '0x700000', '64K', 'r--', 'R-0Ur--', 'unmapped'],
    ]);
    // gva2gpa's answer is the host real address; the page the hypervisor does not map has none.
    expect(out.translations).toEqual([
      { ea: '0x10001234', ra: `0x${(GUEST_BASE + 0x40_1234).toString(16)}` },
      { ea: '0x30000010', ra: null },
    ]);
    const tree = await cli([...args, '--tree']);
    expect(tree.out).toMatch(/partition-scoped tree 0x[0-9a-f]+/);
    expect(tree.out).toContain('quadrant 0 (PID 3): process-table entry');
    expect(tree.out.match(/ leaf 0x/g)?.length).toBe(3);
  });
});

describe('hvmmu inspect: exit 1 when the listing is complete but the tables have problems, or when it was cut', () => {
  it('HPTEs no SLB entry reaches, a table outside the image, --max-leaves', async () => {
    const slb = JSON.parse(readFileSync(fixture('ppc-hpt/slb.json'), 'utf8')) as Record<string, { esidWord: string; vsidWord: string }[]>;
    const text = slb.user.find((e) => e.esidWord === '18000000')!; // the 256M segment of the program text only
    const hpt = await cli(['inspect', fixture('ppc-hpt/htab-section.bin.gz'), '--arch', 'hpt', '--slbe', `${text.esidWord},${text.vsidWord}`, '--json']);
    expect(hpt.code).toBe(EXIT.PROBLEM);
    const out = JSON.parse(hpt.out) as InspectCommandOutput;
    expect(out.summary.listed as number).toBeGreaterThan(0);
    expect((out.summary.listed as number) + (out.summary.withoutSegment as number)).toBe(480);
    expect(out.notes[0]).toMatch(/valid HPTEs have no SLB entry with their VSID/);

    const image = new Uint8Array(0x4000);
    new DataView(image.buffer).setUint32(0x1000, 0x0800_0000 | 0x7, true); // PML4[0] → a PDPT at 128 MiB, past the image
    const x86 = await cli([
      'inspect',
      tmp('short.raw', image),
      '--arch',
      'x86',
      '--cr0',
      '0x80000011',
      '--cr3',
      '0x1000',
      '--cr4',
      '0x20',
      '--efer',
      '0x500',
      '--json',
    ]);
    expect(x86.code).toBe(EXIT.PROBLEM);
    expect(JSON.parse(x86.out).summary).toMatchObject({ leaves: 0, missingTables: 1 });

    const radix = await cli([
      'inspect',
      fixture('ppc-radix/tables.bin.gz'),
      '--arch',
      'radix',
      '--pate',
      '0x8000000000000000,0x800000007e00000c',
      '--pid',
      '2',
      '--max-leaves',
      '100',
      '--json',
    ]);
    expect(radix.code).toBe(EXIT.PROBLEM);
    expect(JSON.parse(radix.out).summary).toMatchObject({ leaves: 100, truncated: true });
  });
});

describe('hvmmu inspect: bad input exits 2 with a message naming the file and what was expected', () => {
  const x86 = ['--arch', 'x86', '--cr0', '0x80050033', '--cr3', '0x100062000', '--cr4', '0x750ef0', '--efer', '0xd01'];
  const pate = ['--arch', 'radix', '--pate', '0x8000000000000000,0x800000007e00000c', '--pid', '2'];
  const tables = gunzipSync(readFileSync(fixture('x86/long4/tables.bin.gz')));
  const section = gunzipSync(readFileSync(fixture('ppc-hpt/htab-section.bin.gz')));
  const slb = fixture('ppc-hpt/slb.json');

  it.each<[string, () => string[], RegExp]>([
    ['a missing file', () => ['inspect', '/nonexistent/ram.bin', ...x86], /cannot read the memory image '\/nonexistent\/ram.bin': no such file/],
    ['an empty image', () => ['inspect', tmp('empty.bin', new Uint8Array(0)), ...x86], /the memory image '.*empty.bin' is empty/],
    [
      'page records cut short',
      () => ['inspect', tmp('cut.bin', tables.subarray(0, tables.length - 100)), ...x86, '--layout', 'pages'],
      /'.*cut.bin' is not whole page records \(8-byte gpa \+ 4096 bytes each\)/,
    ],
    [
      'a truncated image (CR3 past its end)',
      () => ['inspect', tmp('small.bin', new Uint8Array(8192)), ...x86],
      /CR3 0x100062000 names a PML4 table at 0x100062000, which is not in the image/,
    ],
    [
      'a malformed register value',
      () => ['inspect', fixture('x86/long4/tables.bin.gz'), ...x86, '--cr3', '0x12g'],
      /--cr3 must be a 64-bit value \(0x… hex or decimal\), got '0x12g'/,
    ],
    [
      'a missing register',
      () => ['inspect', fixture('x86/long4/tables.bin.gz'), '--arch', 'x86', '--cr0', '0x80000011'],
      /needs --cr0, --cr3, --cr4 and --efer \(missing: --cr3, --cr4, --efer\)/,
    ],
    ['paging off', () => ['inspect', fixture('x86/long4/tables.bin.gz'), ...x86, '--cr0', '0x11'], /CR0 0x11 has PG \(bit 31\) clear/],
    [
      'an unknown architecture',
      () => ['inspect', fixture('x86/long4/tables.bin.gz'), '--arch', 'arm'],
      /argument 'arm' is invalid. Allowed choices are x86, radix, hpt/,
    ],
    ['radix without a PATE', () => ['inspect', fixture('ppc-radix/tables.bin.gz'), '--arch', 'radix'], /needs the partition-table entry: --pate DW0,DW1/],
    [
      'radix with an HPT PATE',
      () => ['inspect', fixture('ppc-radix/tables.bin.gz'), ...pate, '--pate', '0x0,0x7e00000c'],
      /HR \(bit 63\) clear: that partition uses the hashed page table/,
    ],
    [
      'a PID past the process table',
      () => ['inspect', fixture('ppc-radix/tables.bin.gz'), ...pate, '--pate', '0x8000000000000000,0x7e000000', '--pid', '300'],
      /--pid 300 is outside the process table \(256 entries/,
    ],
    [
      'a process table outside the image',
      () => ['inspect', fixture('ppc-radix/tables.bin.gz'), ...pate, '--pate', '0x8000000000000000,0x1000000c'],
      /PID 2's process-table entry \(guest real 0x10000020\) is not in the memory image/,
    ],
    [
      'a PTCR whose table is not in the image',
      () => ['inspect', fixture('ppc-radix/tables.bin.gz'), '--arch', 'radix', '--ptcr', '0x1000', '--lpid', '1'],
      /LPID 1's partition-table entry at 0x1010 \(PTCR 0x1000\) is not in the memory image/,
    ],
    ['hpt without an SLB', () => ['inspect', fixture('ppc-hpt/htab-section.bin.gz'), '--arch', 'hpt'], /--arch hpt needs the SLB/],
    [
      'an SLB file with several SLBs and no key',
      () => ['inspect', fixture('ppc-hpt/htab-section.bin.gz'), '--arch', 'hpt', '--slb', slb],
      /holds several SLBs \(user, kernel\): pick one with --slb-key NAME/,
    ],
    ['a malformed SLB entry', () => ['inspect', fixture('ppc-hpt/htab-section.bin.gz'), '--arch', 'hpt', '--slbe', '0x8000000'], /--slbe must be ESID,VSID/],
    [
      'a truncated QEMU section',
      () => ['inspect', tmp('cut-section.bin', section.subarray(0, section.length - 30)), '--arch', 'hpt', '--slb', slb, '--slb-key', 'user'],
      /'.*cut-section.bin' \(qemu\): spapr\/htab section, byte \d+: /,
    ],
    [
      'a KVM stream cut inside a record',
      () => ['inspect', tmp('cut.kvm', new Uint8Array([0, 0, 0, 0, 2, 0, 0, 0, 1, 2, 3])), '--arch', 'hpt', '--slb', slb, '--slb-key', 'user'],
      /the KVM HTAB stream '.*cut.kvm': the record at byte 0 \(index 0, 2 valid, 0 invalid\) needs 40 bytes, 11 are left/,
    ],
  ])('%s', async (_name, argv, message) => {
    const r = await cli(argv());
    expect(r.code).toBe(EXIT.USAGE);
    expect(r.err).toMatch(message);
    expect(r.err).not.toMatch(/\n\s+at /);
    expect(r.out).toBe('');
  });

  it('--help lists every architecture and the exit codes', async () => {
    const r = await cli(['inspect', '--help']);
    expect(r.code).toBe(EXIT.OK);
    expect(r.out).toMatch(/--arch x86/);
    expect(r.out).toMatch(/Exit codes: 0 listed; 1/);
  });
});
