import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { EXIT, run } from '../src/HvmmuProgram.js';
import type { RunCommandOutput } from '../src/commands/RunCommand.js';

const REAL_TRACE = fileURLToPath(new URL('./fixtures/lackey-true.trace.gz', import.meta.url));

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

function file(name: string, contents: string): string {
  const path = join(mkdtempSync(join(tmpdir(), 'hvmmu-run-')), name);
  writeFileSync(path, contents);
  return path;
}

const TINY = {
  version: 1,
  name: 'tiny',
  operations: [
    { op: 'createMemslot', slot: 0, gfn: 0, pages: 4 },
    { op: 'map', vpn: '0x400', gfn: 0, count: 4 },
    { op: 'access', kind: 'read', vpn: '0x400', count: 4, repeat: 2 },
  ],
};

describe('hvmmu run', () => {
  it('runs a built-in workload and prints the counts (exit 0)', async () => {
    const r = await cli(['run', '--backend', 'x86-shadow', '--workload', 'sequential:pages=16,perPage=2,passes=2']);
    expect(r.code).toBe(EXIT.OK);
    expect(r.err).toBe('');
    expect(r.out).toContain('hvmmu run: sequential:pages=16,perPage=2,passes=2 on x86-shadow (guest paging x86-4level, 1 vCPU)');
    expect(r.out).toMatch(/TLB hits \/ misses\s+48 \/ 16 \(hit rate 75\.0%\)/);
    expect(r.out).toMatch(/shadowPages\s+\d/);
  });

  it('--json prints the documented result shape, with the problems the expect block found', async () => {
    const r = await cli(['run', '--backend=x86-shadow', `--workload=${file('tiny.json', JSON.stringify(TINY))}`, '--json']);
    expect(r.code).toBe(EXIT.OK);
    const result = JSON.parse(r.out) as RunCommandOutput;
    expect(result.schema).toBe('hvmmu-run-result/1');
    expect(result.workload).toMatch(/tiny\.json$/);
    expect([result.accesses, result.tlbMisses, result.tlbHits]).toEqual([8, 4, 4]);
    expect(result.faults).toEqual({
      guest: 0,
      guestResolved: 0,
      hypervisor: 0,
      hypervisorResolved: 0,
      vmm: 0,
      vmmByKind: { noMemory: 0, readOnly: 0, emulate: 0, retryLimit: 0, hostOutOfMemory: 0 },
    });
    expect(result.guest).toMatchObject({ maps: 4, unmaps: 0, protects: 0, spacesCreated: 0, spaceSwitches: 0, tablePages: 6 });
    // The guest kernel's stores through its direct map used the TLB too, counted apart from the workload's.
    expect(result.guest.kernelTlbMisses).toBeGreaterThan(0);
    expect(result.backendStats['tlbMisses']).toBe(result.tlbMisses + result.guest.kernelTlbMisses);
    expect(result.host).toEqual({ memslotChanges: 1, pagesInvalidated: 0, mappingsDropped: 0, dirtyPagesHarvested: 0 });
    expect(result.problems).toEqual([]);
    expect(typeof result.backendStats['shadowPages']).toBe('number');
    expect(Object.keys(result)).toEqual([
      'schema',
      'backend',
      'pagingMode',
      'workload',
      'vcpus',
      'operations',
      'accesses',
      'tlbHits',
      'tlbMisses',
      'faults',
      'guest',
      'host',
      'elapsedMs',
      'accessesPerSecond',
      'backendStats',
      'problems',
    ]);
  });

  it('exits 1 when the counts differ from what the workload expects', async () => {
    const path = file('expects.json', JSON.stringify({ ...TINY, expect: { tlbHits: 5, guestFaults: 0 } }));
    const text = await cli(['run', '--backend', 'x86-shadow', '--workload', path]);
    expect(text.code).toBe(EXIT.PROBLEM);
    expect(text.out).toContain('expect.tlbHits: expected 5, got 4');
    const json = await cli(['run', '--backend', 'x86-shadow', '--workload', path, '--json']);
    expect(json.code).toBe(EXIT.PROBLEM);
    expect((JSON.parse(json.out) as RunCommandOutput).problems).toEqual(['expect.tlbHits: expected 5, got 4']);
  });

  it('exits 1 when accesses found no free host frame, saying so', async () => {
    const path = file(
      'big.json',
      JSON.stringify({
        version: 1,
        operations: [
          { op: 'createMemslot', slot: 0, gfn: 0, pages: 4096 },
          { op: 'map', vpn: 1024, gfn: 0, count: 4096 },
          { op: 'access', kind: 'write', vpn: 1024, count: 4096 },
        ],
      }),
    );
    const r = await cli(['run', '--backend', 'x86-shadow', '--workload', path, '--memory-mib', '4', '--json']);
    expect(r.code).toBe(EXIT.PROBLEM);
    const result = JSON.parse(r.out) as RunCommandOutput;
    expect(result.faults.vmmByKind.hostOutOfMemory).toBeGreaterThan(0);
    expect(result.problems).toEqual([`${result.faults.vmmByKind.hostOutOfMemory} access(es) found no free host frame (raise --memory-mib)`]);
  });

  it('replays a Lackey trace with --trace (exit 0), and names the file and line of a bad one (exit 2)', async () => {
    const ok = await cli(['run', '--backend', 'x86-shadow', '--trace', REAL_TRACE, '--max-pages', '4096', '--memory-mib', '64', '--json']);
    expect(ok.code).toBe(EXIT.OK);
    expect((JSON.parse(ok.out) as RunCommandOutput).operations).toBe(20_000);
    const bad = file('bad.trace', 'I  00400000,4\n L 00400000\n');
    const r = await cli(['run', '--backend', 'x86-shadow', '--trace', bad]);
    expect(r.code).toBe(EXIT.USAGE);
    expect(r.err).toContain(`${bad}:2: expected "," after the address, got ' L 00400000'`);
  });

  it('bad usage and bad input exit 2 with a message naming what is wrong', async () => {
    const badJson = file('bad.json', JSON.stringify({ version: 1, operations: [{ op: 'map', vpn: 1, gfn: -1 }] }));
    const nested = file('nested.json', JSON.stringify({ version: 1, operations: [{ op: 'enterNested', guest: 1 }] }));
    const cases: [string[], RegExp | string][] = [
      [['run', '--workload', 'sequential'], /required option '--backend <id>'/],
      [['run', '--backend', 'x86-shadow'], 'give exactly one of --workload <name|file> or --trace <file>'],
      [['run', '--backend', 'x86-shadow', '--workload', 'sequential', '--trace', REAL_TRACE], 'give exactly one of'],
      [['run', '--backend', 'mips', '--workload', 'sequential'], '--backend mips: no such backend (known: x86-shadow, ppc-radix, ppc-hpt)'],
      [['run', '--backend', 'x86-shadow', '--workload', 'nope'], "no built-in workload 'nope'"],
      [['run', '--backend', 'x86-shadow', '--workload', 'random:seed=-1'], "seed: expected an integer in 0..4294967295, got '-1'"],
      [['run', '--backend', 'x86-shadow', '--workload', '/nonexistent/w.json'], '/nonexistent/w.json: no such file'],
      [['run', '--backend', 'x86-shadow', '--workload', badJson], `${badJson}: operations[0].gfn: expected a non-negative integer`],
      [['run', '--backend', 'x86-shadow', '--workload', nested], "operations[0]: enterNested: backend 'x86-shadow' does not run nested guests"],
      [['run', '--backend', 'x86-shadow', '--workload', 'sequential', '--memslot-invalidation', 'lazy'], /memslotInvalidation/],
      [['run', '--backend', 'x86-shadow', '--workload', 'sequential', '--tlb-entries', '1000'], /tlbEntries must be a power of two/],
      [['run', '--backend', 'x86-shadow', '--workload', 'sequential', '--bogus'], /unknown option '--bogus'/],
      [['run', '--backend', 'x86-shadow', '--trace', '/nonexistent/t.trace'], '/nonexistent/t.trace: no such file'],
    ];
    for (const [argv, message] of cases) {
      const r = await cli(argv);
      expect(r.code, argv.join(' ')).toBe(EXIT.USAGE);
      if (typeof message === 'string') expect(r.err, argv.join(' ')).toContain(message);
      else expect(r.err, argv.join(' ')).toMatch(message);
    }
  });

  it('--help describes the workloads, the trace and the exit codes (exit 0)', async () => {
    const r = await cli(['run', '--help']);
    expect(r.code).toBe(EXIT.OK);
    for (const text of ['--backend <id>', '--workload <name|file>', '--trace <file>', '--json', 'working-set', 'valgrind --tool=lackey', 'Exit codes']) {
      expect(r.out).toContain(text);
    }
  });
});
