import { BACKEND_METRICS } from '../demo/BackendMetrics.js';
import { type Comparison, compareBackends } from '../demo/BackendComparison.js';
import { DEMO_CONFIGURATIONS } from '../demo/DemoConfigurations.js';
import { type HptMigrationFigures, runHptMigrationDemo } from '../demo/HptMigrationDemo.js';
import { writeComparisonReport } from '../report/HtmlReport.js';
import { TextTable, formatNumber } from '../report/TextTable.js';

export const DEMO_DESCRIPTION = `(default) run one guest workload on every backend configuration — x86 shadow
paging (a 4-level guest, a 32-bit PAE guest, a 4-level table under a 5-level host root), the
POWER9 radix host side, the POWER hashed page table (POWER8 and POWER9 real
HPT) — and compare them side by side; then migrate a hash guest's HPT live.`;

/** The default workload: a working set with page-table churn (docs/workloads.md). */
export const DEMO_WORKLOAD = 'working-set';
/** Pages written before the memslot-delete measurement. */
export const DEMO_DELETE_PAGES = 2048;

export interface DemoCommandOptions {
  readonly workload?: string;
  readonly json?: boolean;
  /** Also write the comparison as a self-contained HTML page with charts (writeComparisonReport). */
  readonly report?: string;
}

/** What `hvmmu demo --json` prints. */
export interface DemoOutput {
  readonly schema: 'hvmmu-demo/1';
  readonly comparison: Comparison;
  readonly hptMigration: HptMigrationFigures | null;
}

export async function runDemoCommand(o: DemoCommandOptions, out: (s: string) => void): Promise<DemoOutput> {
  const comparison = await compareBackends(DEMO_CONFIGURATIONS, o.workload ?? DEMO_WORKLOAD, DEMO_DELETE_PAGES);
  const hptMigration = (await runHptMigrationDemo()) ?? null;
  const output: DemoOutput = { schema: 'hvmmu-demo/1', comparison, hptMigration };
  if (o.report !== undefined) {
    // x86 counts no walk references: the demo gives its shadow root's levels.
    writeComparisonReport(
      comparison.rows.map((r) => ({ label: r.label, result: r.result, refsPerWalk: r.refsPerWalk })),
      o.report,
      { title: `hvmmu demo: ${comparison.workload} on every backend` },
    );
  }
  if (o.json === true) {
    out(`${JSON.stringify(output, null, 2)}\n`);
    return output;
  }
  for (const line of renderDemo(output)) out(`${line}\n`);
  if (o.report !== undefined) out(`\nThe report: ${o.report}\n`);
  return output;
}

const kib = (bytes: number): string => `${formatNumber(Math.round(bytes / 1024))} KiB`;

export function renderDemo(d: DemoOutput): string[] {
  const c = d.comparison;
  const lines: string[] = [`hvmmu demo: the workload ${c.workload} on every backend`, ''];
  const table = new TextTable([
    'configuration',
    'accesses',
    'TLB hits',
    'guest faults',
    'hv faults',
    'VMM exits',
    'refs/walk',
    'tables',
    'rmap entries',
    'rmap',
    'B/mapped page',
    'delete invalid-rmap',
    'delete fast-zap',
    'accesses/s',
  ]);
  for (const r of c.rows) {
    const res = r.result;
    table.add([
      r.label,
      res.accesses,
      `${(100 * r.tlbHitRate).toFixed(1)}%`,
      `${formatNumber(res.faults.guest)} (${formatNumber(res.faults.guestResolved)} by the guest)`,
      r.hypervisorFaults,
      res.faults.vmm,
      r.refsPerWalk,
      kib(r.tableBytes),
      r.rmapEntries,
      kib(r.rmapBytes),
      Math.round(r.bytesPerMappedPage),
      micros(r.deleteMicros['invalid-rmap']),
      micros(r.deleteMicros['fast-zap']),
      `${formatNumber(Math.round(res.accessesPerSecond / 1000))} k`,
    ]);
  }
  lines.push(table.render(), '');
  for (const s of c.skipped) lines.push(`(${s.label}: not run — ${s.reason})`);
  lines.push(
    'What the columns say:',
    `- TLB hits: the share of accesses served by the software TLB; the rest walked the hardware tables.`,
    `- guest faults: delivered to the guest (its own tables refused the access, or on POWER hash a segment or hash miss its kernel resolves and retries).`,
    `- hv faults: misses the hypervisor resolved itself (x86 shadow faults, radix partition-scoped faults, HPT host faults on ABSENT entries).`,
    `- refs/walk: memory references per hardware walk after a TLB miss — ${Object.values(BACKEND_METRICS)
      .map((m) => m.refsSource)
      .join('; ')}. The radix 2-D walk pays for every process-scoped reference twice over.`,
    `- tables, rmap, B/mapped page: host memory of the tables the hardware walks and of the reverse maps, per page the guest mapped (the HPT is preallocated whole).`,
    `- delete: deleting a memslot of ${formatNumber(c.deletePages)} written pages under each memslot-invalidation strategy (median of 3), in µs.`,
    `- Shadow paging pays for the guest's page-table churn: every write to a shadowed table is trapped and its shadow zapped (hv faults, low TLB hits); radix and HPT guests change their own tables (or call H_ENTER / H_REMOVE) without the hypervisor rebuilding anything.`,
    `- The PAE guest's shadow root is a special page (KVM's pae_root: four PDPTE shadows under one root); its walks read 3 levels.`,
    `- Not yet in the table: a nested radix L2 (H_ENTER_NESTED is not built yet).`,
  );
  const m = d.hptMigration;
  if (m !== null) {
    lines.push('', 'Live migration of a hash guest’s HPT (KVM_PPC_GET_HTAB_FD format, over Node streams), the guest changing it between passes:');
    for (const p of m.passes) lines.push(`  pass ${p.pass}: ${formatNumber(p.entries)} entries, ${formatNumber(p.bytes)} bytes`);
    lines.push(
      `  converged: the destination's valid entries ${m.identical ? 'equal' : 'DIFFER FROM'} the source's; ${formatNumber(m.reachable)} of ${formatNumber(m.mapped)} mapped pages reachable there`,
    );
  }
  return lines;
}

function micros(v: number | undefined): string {
  return v === undefined ? '-' : `${formatNumber(Math.round(v))} µs`;
}
