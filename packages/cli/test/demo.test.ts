import { describe, expect, it } from 'vitest';
import { run } from '../src/HvmmuProgram.js';
import type { DemoOutput } from '../src/commands/DemoCommand.js';

/** `hvmmu demo --json` (what `npm start` prints as a table), run once for every assertion. */
async function demo(): Promise<DemoOutput> {
  let text = '';
  const code = await run(['demo', '--json'], { out: (s) => (text += s), err: () => {} });
  expect(code).toBe(0);
  return JSON.parse(text) as DemoOutput;
}

describe('hvmmu demo: one workload compared on every backend', async () => {
  const d = await demo();
  const rows = d.comparison.rows;

  it('runs every configuration, none skipped in the repository', () => {
    expect(rows.map((r) => r.label)).toEqual([
      'x86 shadow, 4-level',
      'x86 shadow, 32-bit PAE',
      'x86 shadow, 5-level host',
      'ppc radix, L1',
      'ppc radix, nested L2',
      'ppc hpt, POWER8',
      'ppc hpt, POWER9',
    ]);
    expect(d.comparison.skipped).toEqual([]);
  });

  it('replays the same workload everywhere: the same accesses, maps and guest-visible faults (the hash guest resolves its own SLB misses on top)', () => {
    const first = rows[0]!.result;
    for (const r of rows) {
      expect(r.result.accesses).toBe(first.accesses);
      expect(r.result.guest.maps).toBe(first.guest.maps);
      expect(r.result.faults.vmm).toBe(0);
      // Guest faults the guest cannot resolve are the workload's own (unmapped accesses), the same on every backend.
      expect(r.result.faults.guest - r.result.faults.guestResolved).toBe(first.faults.guest - first.faults.guestResolved);
    }
  });

  it('walk costs as the architectures make them: 4, 3 and 5 shadow levels, a 2-D radix walk of more than 4, an HPT search of 1 to 16 HPTEs', () => {
    expect(rows[0]!.refsPerWalk).toBe(4);
    expect(rows[1]!.refsPerWalk).toBe(3);
    expect(rows[1]!.result.backendStats['specialShadowPages']).toBeGreaterThanOrEqual(1); // the PAE root
    expect(rows[2]!.refsPerWalk).toBe(5);
    // A warm 4-level process-scoped walk through a 4-level partition-scoped tree: at most 24 references (POWER ISA v3.0 6.7.11), more than a 1-D walk.
    expect(rows[3]!.refsPerWalk).toBeGreaterThan(4);
    expect(rows[3]!.refsPerWalk).toBeLessThanOrEqual(31);
    // The nested L2's walks are 2-D walks too, their partition scope the shadow tree.
    expect(rows[4]!.refsPerWalk).toBeGreaterThan(4);
    expect(rows[4]!.refsPerWalk).toBeLessThanOrEqual(31);
    for (const r of rows.slice(5)) {
      expect(r.refsPerWalk).toBeGreaterThanOrEqual(1);
      expect(r.refsPerWalk).toBeLessThanOrEqual(16);
    }
  });

  it('runs the radix guest as a nested L2 too: L0 resolves its first touches into shadow entries, the few L1 must see are reflected to it and resolved', () => {
    const l1 = rows[3]!;
    const l2 = rows[4]!;
    const s = l2.result.backendStats;
    expect(l2.backend).toBe('ppc-radix');
    expect(l2.backendOptions).toEqual({ nestedHv: true });
    // L1 maps its L2's memory 2 MiB at a time: a handful of exits, each resolved.
    expect(l2.hypervisorFaultsReflected).toBe(l2.result.faults.hypervisor);
    expect(l2.result.faults.hypervisor).toBeGreaterThan(0);
    expect(l2.result.faults.hypervisor).toBeLessThan(20);
    expect(l2.result.faults.hypervisorResolved).toBe(l2.result.faults.hypervisor);
    expect(s['ppcRadixL2Reflected']).toBe(l2.result.faults.hypervisor);
    // Every other L2 fault L0 resolved: as many as the L1's partition-scoped faults (the same pages, first touched once each).
    expect(l2.hypervisorFaults).toBe(s['ppcRadixL2Faults']! - s['ppcRadixL2Reflected']! + s['ppcRadixPartitionFaults']!);
    expect(l2.hypervisorFaults).toBe(l1.hypervisorFaults);
    expect(l2.rmapEntries).toBe(s['ppcRadixNestedRmapEntries']);
    expect(l2.rmapEntries).toBeGreaterThan(0);
    expect(l2.tableBytes).toBe(s['ppcRadixTableBytes']! + s['ppcRadixShadowTablePages']! * 4096);
    expect(l1.hypervisorFaultsReflected).toBe(0);
  });

  it('shows a host invalidation under the running L2: the shadow leaf goes through the nested rmap, the L2 stays, L0 alone faults it back', () => {
    const n = d.nestedInvalidation!;
    expect(n.rmapEntriesNamed).toBe(1);
    expect(n.l0MappingsDropped).toBe(1);
    expect(n.shadowLeavesAfter).toBe(n.shadowLeavesBefore - 1);
    expect(n.stillInL2).toBe(true);
    expect(n.shadowLpid).toBeGreaterThan(0);
    expect(n.refault).toEqual({ l2Faults: 1, reflectedToL1: 0, l0Instantiations: 1, shadowInserts: 1, sameFrame: true, bytesKept: true });
  });

  it('measures a memslot delete under every strategy each backend offers', () => {
    for (const r of rows) {
      expect(Object.keys(r.deleteMicros).sort()).toEqual(['fast-zap', 'invalid-rmap']);
      for (const v of Object.values(r.deleteMicros)) expect(v).toBeGreaterThan(0);
    }
  });

  it('migrates the hash guest live: passes shrink and the destination ends exact, every mapped page reachable', () => {
    const m = d.hptMigration!;
    expect(m.passes[0]!.entries).toBe(16384); // the first pass: every entry of the order-18 table
    const later = m.passes.slice(1).map((p) => p.entries);
    for (let k = 1; k < later.length; k++) expect(later[k]!).toBeLessThan(later[k - 1]!);
    expect(m.identical).toBe(true);
    expect(m.reachable).toBe(m.mapped);
  });
});

describe('hvmmu demo (text)', () => {
  it('prints the table, what the columns say, and the live migration', async () => {
    let text = '';
    expect(await run(['demo'], { out: (s) => (text += s), err: () => {} })).toBe(0);
    expect(text).toContain('x86 shadow, 4-level');
    expect(text).toMatch(/ppc radix, nested L2 .* \+ \d+ to L1/);
    expect(text).toContain('What the columns say:');
    expect(text).toMatch(/A host invalidation under the running L2/);
    expect(text).toMatch(/the vCPU stayed in the L2/);
    expect(text).toMatch(/converged: the destination's valid entries equal the source's/);
  });
});

describe('hvmmu demo --report', () => {
  it('writes the comparison as the HTML report: one run per configuration, the walk costs the demo measured (x86 too)', async () => {
    const { mkdtempSync, readFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const file = join(mkdtempSync(join(tmpdir(), 'hvmmu-demo-')), 'report.html');
    let text = '';
    expect(await run(['demo', '--report', file], { out: (s) => (text += s), err: () => {} })).toBe(0);
    expect(text).toContain(`The report: ${file}`);
    const html = readFileSync(file, 'utf8');
    const block = /<script type="application\/json" id="hvmmu-report-data">([\s\S]*?)<\/script>/.exec(html);
    expect(block).not.toBeNull();
    const data = JSON.parse(block![1]!) as {
      schema: string;
      runs: { label: string; refsPerWalk: number | null; tableBytes: number | null; hostMmuFaults: number | null }[];
    };
    expect(data.schema).toBe('hvmmu-report/1');
    expect(data.runs.map((r) => r.label)).toEqual([
      'x86 shadow, 4-level',
      'x86 shadow, 32-bit PAE',
      'x86 shadow, 5-level host',
      'ppc radix, L1',
      'ppc radix, nested L2',
      'ppc hpt, POWER8',
      'ppc hpt, POWER9',
    ]);
    expect(data.runs.slice(0, 3).map((r) => r.refsPerWalk)).toEqual([4, 3, 5]);
    // The nested L2's host-MMU figures are the demo's: its shadow tree beside L0's tree, the L2 faults L0 resolved.
    const l2 = data.runs[4]!;
    expect(l2.tableBytes).toBeGreaterThan(data.runs[3]!.tableBytes!);
    expect(l2.hostMmuFaults).toBeGreaterThan(0);
  });

  it('a report file that cannot be written is bad input (exit 2), named', async () => {
    let err = '';
    expect(await run(['demo', '--report', '/nonexistent-dir/x/report.html'], { out: () => {}, err: (s) => (err += s) })).toBe(2);
    expect(err).toContain('/nonexistent-dir/x/report.html');
  });
});
