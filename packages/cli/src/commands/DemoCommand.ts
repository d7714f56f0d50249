import { BACKEND_METRICS } from '../demo/BackendMetrics.js';
import { type Comparison, compareBackends } from '../demo/BackendComparison.js';
import { DEMO_CONFIGURATIONS } from '../demo/DemoConfigurations.js';
import { type HptMigrationFigures, runHptMigrationDemo } from '../demo/HptMigrationDemo.js';
import { type NestedInvalidationFigures, runNestedInvalidationDemo } from '../demo/NestedInvalidationDemo.js';
import { writeComparisonReport } from '../report/HtmlReport.js';
import { TextTable, formatNumber } from '../report/TextTable.js';

export const DEMO_DESCRIPTION = `(default) run one guest workload on every backend configuration — x86 shadow
paging (a 4-level guest, a 32-bit PAE guest, a 4-level table under a 5-level host root), the
POWER9 radix host side (an L1, and the same guest as a nested L2), the POWER hashed page
table (POWER8 and POWER9 real HPT) — and compare them side by side; then invalidate a
host page under the running L2, and migrate a hash guest's HPT live.`;

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
  /** A host invalidation under a running radix L2 (null without @hvmmu/ppc-radix). */
  readonly nestedInvalidation: NestedInvalidationFigures | null;
  readonly hptMigration: HptMigrationFigures | null;
}

export async function runDemoCommand(o: DemoCommandOptions, out: (s: string) => void): Promise<DemoOutput> {
  const comparison = await compareBackends(DEMO_CONFIGURATIONS, o.workload ?? DEMO_WORKLOAD, DEMO_DELETE_PAGES);
  const nestedInvalidation = await runNestedInvalidationDemo();
  const hptMigration = (await runHptMigrationDemo()) ?? null;
  const output: DemoOutput = { schema: 'hvmmu-demo/1', comparison, nestedInvalidation, hptMigration };
  if (o.report !== undefined) {
    // x86 counts no walk references: the demo gives its shadow root's levels; and the host MMU's
    // bytes and faults as its table has them (a nested L2's shadow trees and L0-resolved faults).
    writeComparisonReport(
      comparison.rows.map((r) => ({
        label: r.label,
        result: r.result,
        refsPerWalk: r.refsPerWalk,
        tableBytes: r.tableBytes,
        rmapBytes: r.rmapBytes,
        hostMmuFaults: r.hypervisorFaults,
      })),
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
      r.hypervisorFaultsReflected === 0 ? r.hypervisorFaults : `${formatNumber(r.hypervisorFaults)} + ${formatNumber(r.hypervisorFaultsReflected)} to L1`,
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
    `- hv faults: misses the hypervisor resolved itself (x86 shadow faults, radix partition-scoped faults, HPT host faults on ABSENT entries); for the nested L2, the L2 faults L0 resolved into shadow entries from L1's tree for the L2 and its own tree for L1, + those reflected to L1 (H_ENTER_NESTED ended with an HDSI: L1's tree lacked the page; L1 mapped 2 MiB around it and entered the L2 again).`,
    `- refs/walk: memory references per hardware walk after a TLB miss — ${Object.values(BACKEND_METRICS)
      .map((m) => m.refsSource)
      .join('; ')}. The radix 2-D walk pays for every process-scoped reference twice over.`,
    `- tables, rmap, B/mapped page: host memory of the tables the hardware walks and of the reverse maps, per page the guest mapped (the HPT is preallocated whole; radix keeps no rmap for L1's own leaves, so its rmap entries are its leaves; for the L2: L0's tree for L1 plus the shadow tree, and the nested rmap — an 8-byte word per page of each L1 memslot the L2 maps, plus 16 bytes per further entry).`,
    `- delete: deleting a memslot of ${formatNumber(c.deletePages)} written pages under each memslot-invalidation strategy (median of 3), in µs.`,
    `- Shadow paging pays for the guest's page-table churn: every write to a shadowed table is trapped and its shadow zapped (hv faults, low TLB hits); radix and HPT guests change their own tables (or call H_ENTER / H_REMOVE) without the hypervisor rebuilding anything.`,
    `- The PAE guest's shadow root is a special page (KVM's pae_root: four PDPTE shadows under one root); its walks read 3 levels.`,
    `- The nested L2 runs the L1's workload one partition level down: its walks read as many entries as the L1's (the shadow tree is a partition-scoped tree like L0's), but each first touch of a page costs an L2 fault in L0 (a software walk of L1's tree in L1 memory), and its guest faults are delivered to the L2 directly.`,
  );
  const n = d.nestedInvalidation;
  if (n !== null) {
    lines.push(
      '',
      `A host invalidation under the running L2 (L1 LPID ${n.l2Lpid}, shadow LPID ${n.shadowLpid}), which had written ${n.pagesTouched} pages:`,
      `  L0's MMU notifier for host frame 0x${n.hfn.toString(16)} (L1 page 0x${n.l1Gfn.toString(16)}, the L2's virtual page 0x${n.l2Vpn.toString(16)}): L0's leaf dropped (${n.l0MappingsDropped}), and through the page's nested rmap list (${plural(n.rmapEntriesNamed, 'entry', 'entries')}) the L2's shadow leaf — shadow leaves ${n.shadowLeavesBefore} → ${n.shadowLeavesAfter}; the vCPU ${n.stillInL2 ? 'stayed in the L2 (no exit to L1)' : 'LEFT the L2'}.`,
      `  The L2's next access to the page: ${plural(n.refault.l2Faults, 'L2 fault', 'L2 faults')}, ${n.refault.reflectedToL1} reflected to L1; L0 rebuilt its leaf (${n.refault.l0Instantiations}) and the shadow leaf (${n.refault.shadowInserts}) on ${n.refault.sameFrame ? 'the same host frame' : 'ANOTHER host frame'}, ${n.refault.bytesKept ? 'the bytes the L2 wrote still there' : 'the bytes the L2 wrote LOST'}.`,
    );
  }
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

function plural(n: number, one: string, many: string): string {
  return `${formatNumber(n)} ${n === 1 ? one : many}`;
}

function micros(v: number | undefined): string {
  return v === undefined ? '-' : `${formatNumber(Math.round(v))} µs`;
}
