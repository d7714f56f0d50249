import { execFileSync, spawnSync } from 'node:child_process';
import { createWriteStream, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync, gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { x86ShadowBackend } from '@hvmmu/x86-shadow';
import { LACKEY_BATCH, LackeyKind, readLackeyTrace, type LackeyBatch } from '../src/workloads/LackeyTraceReader.js';
import { replayLackeyTrace } from '../src/workloads/LackeyTraceReplay.js';
import { WorkloadInputError } from '../src/workloads/WorkloadInputError.js';

/** 20,000 lines of `valgrind --tool=lackey --trace-mem=yes /bin/true` (see fixtures/make-lackey-trace.sh). */
const REAL_TRACE = fileURLToPath(new URL('./fixtures/lackey-true.trace.gz', import.meta.url));
const MAKE_TRACE = fileURLToPath(new URL('./fixtures/make-lackey-trace.sh', import.meta.url));
/** Valgrind on this machine (Debian: apt-get install valgrind), for the test that records a trace itself. */
const HAS_VALGRIND = spawnSync('valgrind', ['--version']).status === 0;
const OPTIONS = { memoryBytes: 64 << 20, maxPages: 4096 };

function tempFile(name: string, contents: string | Uint8Array): string {
  const file = join(mkdtempSync(join(tmpdir(), 'hvmmu-lackey-')), name);
  writeFileSync(file, contents);
  return file;
}

/** Every record of a trace, copied out of the reused batches. */
async function records(path: string): Promise<{ kind: number; address: number; size: number; line: number }[] & { linesRead: number }> {
  const out: { kind: number; address: number; size: number; line: number }[] = [];
  let linesRead = 0;
  let previous: LackeyBatch | undefined;
  for await (const batch of readLackeyTrace(path)) {
    if (previous !== undefined) expect(batch).toBe(previous); // one batch object, refilled
    previous = batch;
    for (let i = 0; i < batch.length; i++) out.push({ kind: batch.kind[i]!, address: batch.address[i]!, size: batch.size[i]!, line: batch.line[i]! });
    linesRead = batch.linesRead;
  }
  return Object.assign(out, { linesRead });
}

async function readError(path: string): Promise<string> {
  try {
    await records(path);
  } catch (error) {
    if (error instanceof WorkloadInputError) return error.message;
    throw error;
  }
  return 'no error';
}

/** The same trace read independently (regular expressions over the whole text): the oracle. */
function oracle(text: string) {
  const kinds = { I: 0, L: 0, S: 0, M: 0 };
  const pages = new Set<number>();
  let crossings = 0;
  for (const line of text.split('\n')) {
    const m = /^(?:I | ([LSM])) ([0-9a-f]+),(\d+)$/.exec(line);
    if (m === null) continue;
    const kind = (m[1] ?? 'I') as keyof typeof kinds;
    kinds[kind]++;
    const address = Number.parseInt(m[2]!, 16);
    const size = Number(m[3]);
    pages.add(Math.floor(address / 4096));
    if ((address % 4096) + size > 4096) {
      crossings += kind === 'M' ? 2 : 1;
      pages.add(Math.floor(address / 4096) + 1);
    }
  }
  return { kinds, pages: pages.size, crossings };
}

describe('the Lackey trace reader', () => {
  it('reads the real trace of /bin/true: every record, the ==pid== banner skipped, gzip undone', async () => {
    const text = gunzipSync(readFileSync(REAL_TRACE)).toString('utf8');
    const expected = oracle(text);
    const got = await records(REAL_TRACE);
    expect(got.linesRead).toBe(20_000);
    const count = (k: number) => got.filter((r) => r.kind === k).length;
    expect({ I: count(LackeyKind.INSTRUCTION), L: count(LackeyKind.LOAD), S: count(LackeyKind.STORE), M: count(LackeyKind.MODIFY) }).toEqual(expected.kinds);
    // The banner is 6 lines, all ==pid==; every other line is a record.
    expect(got.length).toBe(20_000 - 6);
    const firstRecord = text.split('\n').findIndex((l) => !l.startsWith('=='));
    const m = /^I {2}([0-9a-f]+),(\d+)$/.exec(text.split('\n')[firstRecord]!)!;
    expect(got[0]).toEqual({ kind: LackeyKind.INSTRUCTION, address: Number.parseInt(m[1]!, 16), size: Number(m[2]), line: firstRecord + 1 });
    // The same file unzipped reads the same.
    const plain = await records(tempFile('true.trace', text));
    expect(plain.length).toBe(got.length);
    expect(plain[12_345]).toEqual(got[12_345]);
  });

  it('accepts what Valgrind writes around the records: tool lines, CRLF, upper-case hex, trailing blanks', async () => {
    const got = await records(
      tempFile(
        'ok.trace',
        '==42== Lackey\r\n--42-- warning: something\r\n**42** internal\r\nI  0040ABCD,3\r\n L 7ff0000000,8 \n S 10,1\t\n M ffffffffffff,4\n',
      ),
    );
    expect(got.map((r) => [r.kind, r.address, r.size, r.line])).toEqual([
      [LackeyKind.INSTRUCTION, 0x40abcd, 3, 4],
      [LackeyKind.LOAD, 0x7f_f000_0000, 8, 5],
      [LackeyKind.STORE, 0x10, 1, 6],
      [LackeyKind.MODIFY, 0xffff_ffff_ffff, 4, 7],
    ]);
    expect(got.linesRead).toBe(7);
  });

  it('a malformed line is an error naming the file and the line number, and what was expected', async () => {
    const cases: [string, string][] = [
      ['X  0401,3', 'expected "I  addr,size", " L addr,size", " S addr,size", " M addr,size" or a "==pid==" line'],
      ['I 0401,3', 'expected "I  addr,size"'],
      [' Q 0401,3', 'expected "I  addr,size"'],
      ['', 'expected "I  addr,size"'],
      ['\u0000\u0000', 'expected "I  addr,size"'],
      ['==pid== not a tool line', 'expected "I  addr,size"'],
      [' L zz,8', 'expected a hexadecimal address after the kind'],
      [' L 0401', 'expected "," after the address'],
      [' L 0401;8', 'expected "," after the address'],
      [' L 0401,', 'expected a decimal size after ","'],
      [' L 0401,x', 'expected a decimal size after ","'],
      [' L 0401,0', 'the size is 0'],
      [' L 0401,99999999999999999999', 'the size is above 4096'],
      [' L 0401,8 junk', 'unexpected text after the size'],
      [' L 0401,8,8', 'unexpected text after the size'],
      [' L 12345678901234567,8', 'the address is beyond 2^53'],
      [' L 20000000000000,8', 'the address is beyond 2^53'],
      [` L ${'f'.repeat(100_000)},8`, 'the address is beyond 2^53'],
    ];
    for (const [bad, expected] of cases) {
      const file = tempFile('bad.trace', `==1== Lackey\nI  00400000,4\n${bad}\n L 00400000,8\n`);
      const message = await readError(file);
      expect(message, JSON.stringify(bad.slice(0, 40))).toContain(`${file}:3: ${expected}`);
      // The line is quoted, cut short if long.
      expect(message.length).toBeLessThan(file.length + 250);
    }
  });

  it('a missing file, and a gzip file cut short, are errors naming the file', async () => {
    expect(await readError('/nonexistent/trace.gz')).toBe('/nonexistent/trace.gz: no such file');
    const dir = mkdtempSync(join(tmpdir(), 'hvmmu-lackey-'));
    expect(await readError(dir)).toBe(`${dir}: is a directory, not a trace`);
    const zipped = gzipSync(Buffer.from('I  00400000,4\n'.repeat(50_000)));
    const cut = tempFile('cut.trace.gz', zipped.subarray(0, zipped.length >> 1));
    expect(await readError(cut)).toMatch(new RegExp(`^${cut}:\\d+: cannot read on \\(`));
  });

  it('streams: 300,000 lines in reused batches, memory not growing with the file', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'hvmmu-lackey-')), 'long.trace');
    const out = createWriteStream(file);
    for (let i = 0; i < 300_000; i++)
      out.write(i % 3 === 0 ? `I  ${(0x40_0000 + (i % 8192) * 4).toString(16)},4\n` : ` L ${(0x60_0000 + ((i * 64) % 65536)).toString(16)},8\n`);
    await new Promise((resolve) => out.end(resolve));
    let records = 0;
    let batches = 0;
    let linesRead = 0;
    const heapBefore = process.memoryUsage().heapUsed;
    for await (const batch of readLackeyTrace(file)) {
      records += batch.length;
      batches++;
      linesRead = batch.linesRead;
    }
    expect(records).toBe(300_000);
    expect(linesRead).toBe(300_000);
    expect(batches).toBe(Math.ceil(300_000 / LACKEY_BATCH) + (300_000 % LACKEY_BATCH === 0 ? 1 : 0));
    // The file is ~4 MB of text and 300,000 records; the reader holds a batch, not the file.
    expect(process.memoryUsage().heapUsed - heapBefore).toBeLessThan(40 << 20);
  });
});

describe('replaying a Lackey trace on x86 shadow paging (pages mapped on first touch)', () => {
  it('a hand-written trace: demand faults map pages with the rights their accesses need', async () => {
    const file = tempFile(
      'tiny.trace',
      [
        '==7== Lackey',
        'I  00400000,4', // fetch: #PF, map 0x400 r-x user (gfn 0), again
        'I  00400004,4', // hit
        ' L 00400100,8', // a read of the code page: allowed
        ' S 00400100,8', // a write: #PF (protection), widen to rwx, again
        ' M 7ff000010,8', // read: #PF, map 0x7ff000 r-- user (gfn 1); write: #PF, widen to rw-
        ' L 00400ffc,8', // crosses into 0x401: #PF, map it (gfn 2)
        ' S 00401000,4', // 0x401 was mapped for a read: #PF, widen
      ].join('\n'),
    );
    const r = await replayLackeyTrace(x86ShadowBackend, file, OPTIONS);
    expect(r.operations).toBe(8); // lines
    expect(r.accesses).toBe(1 + 1 + 1 + 1 + 2 + 2 + 1);
    expect(r.guest.maps).toBe(3);
    expect(r.guest.protects).toBe(3);
    expect(r.faults.guest).toBe(6);
    expect(r.faults.vmm).toBe(0);
    // Each demand fault is a miss, and so is the access tried again; the second fetch hits.
    expect(r.tlbMisses).toBeGreaterThanOrEqual(2 * 6);
    expect(r.tlbHits).toBeGreaterThanOrEqual(1);
    expect(r.tlbHits + r.tlbMisses).toBe(r.accesses + r.faults.guest);
    // PML4; the direct map's PDPT and PD; PDPT, PD, PT for 0x400; PD, PT for 0x7ff000 (PDPT shared).
    expect(r.guest.tablePages).toBe(1 + 2 + 3 + 2);
  });

  it('the real trace of /bin/true: one map per page touched, every demand fault resolved, the same counts every time', async () => {
    const expected = oracle(gunzipSync(readFileSync(REAL_TRACE)).toString('utf8'));
    const r = await replayLackeyTrace(x86ShadowBackend, REAL_TRACE, OPTIONS);
    const k = expected.kinds;
    expect(r.operations).toBe(20_000);
    expect(r.accesses).toBe(k.I + k.L + k.S + 2 * k.M + expected.crossings);
    expect(r.guest.maps).toBe(expected.pages);
    // A demand fault either maps a page or widens its rights; none is left unresolved.
    expect(r.faults.guest).toBe(r.guest.maps + r.guest.protects);
    expect(r.faults.vmm + r.faults.hypervisor).toBe(0);
    // Every access either hit or missed once, plus once more for each access tried again.
    expect(r.tlbHits + r.tlbMisses).toBe(r.accesses + r.faults.guest);
    // A real program's accesses are local: nearly all hit.
    expect(r.tlbHits / r.accesses).toBeGreaterThan(0.95);
    const again = await replayLackeyTrace(x86ShadowBackend, REAL_TRACE, OPTIONS);
    expect({ ...again, elapsedMs: 0, accessesPerSecond: 0 }).toEqual({ ...r, elapsedMs: 0, accessesPerSecond: 0 });
  });

  it.skipIf(!HAS_VALGRIND)('a trace recorded now with valgrind (make-lackey-trace.sh on /bin/ls) replays with every demand fault resolved', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'hvmmu-lackey-')), 'ls.trace.gz');
    execFileSync('sh', [MAKE_TRACE, '/bin/ls', '30000', out], { stdio: 'ignore' });
    const r = await replayLackeyTrace(x86ShadowBackend, out, OPTIONS);
    expect(r.operations).toBe(30_000);
    expect(r.guest.maps).toBeGreaterThan(5);
    expect(r.faults.guest).toBe(r.guest.maps + r.guest.protects);
    expect(r.faults.vmm).toBe(0);
  });

  it('refuses a trace beyond the guest side, or touching more pages than allowed, naming the line', async () => {
    const high = tempFile('high.trace', 'I  00400000,4\n L 800000000000,8\n');
    await expect(replayLackeyTrace(x86ShadowBackend, high, OPTIONS)).rejects.toThrow(
      `${high}:2: address 0x800000000000 is beyond what backend 'x86-shadow' maps (va < 0x800000000000)`,
    );
    const many = tempFile('many.trace', 'I  00400000,4\n L 00500000,8\n L 00600000,8\n');
    await expect(replayLackeyTrace(x86ShadowBackend, many, { ...OPTIONS, maxPages: 2 })).rejects.toThrow(
      `${many}:3: the program touches more than 2 pages (raise --max-pages)`,
    );
  });
});
