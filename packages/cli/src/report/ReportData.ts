import type { WorkloadRunResult } from '../workloads/WorkloadRunResult.js';
import { BACKEND_COST_KEYS, statOrNull, sumStats } from './BackendCostStats.js';

/**
 * A run result with the label the report shows for it (e.g. 'x86-shadow PAE', 'ppc-radix L2'),
 * and optionally figures the caller knows better than the backend's counters read by
 * BACKEND_COST_KEYS: the memory references per walk (x86 counts none: the demo gives the shadow
 * root's level), and the host MMU's table and rmap bytes and the faults it resolved (a nested
 * radix L2: its shadow trees beside L0's tree, the L2 faults L0 resolved). The demo's comparison
 * rows give all four.
 */
export interface LabelledRunResult {
  readonly label: string;
  readonly result: WorkloadRunResult;
  readonly refsPerWalk?: number;
  readonly tableBytes?: number;
  readonly rmapBytes?: number;
  readonly hostMmuFaults?: number;
}

/** The figures a labelled run may give instead of its backend's counters. */
export type ReportRunOverrides = Pick<LabelledRunResult, 'refsPerWalk' | 'tableBytes' | 'rmapBytes' | 'hostMmuFaults'>;

/** What the report is drawn from: plain results (labelled from backend and paging mode) or labelled ones. */
export type ReportEntry = WorkloadRunResult | LabelledRunResult;

/**
 * One run as the report shows it. Every value the charts draw is here, computed in Node; a
 * value the backend does not count is null (the page says "not counted"), never 0.
 */
export interface ReportRun {
  /** Unique within the report. */
  readonly label: string;
  readonly backend: string;
  readonly pagingMode: string;
  readonly workload: string;
  readonly accesses: number;
  readonly tlbHits: number;
  readonly tlbMisses: number;
  /** tlbHits / (tlbHits + tlbMisses), 0..1; null with no translation. */
  readonly tlbHitRate: number | null;
  readonly accessesPerSecond: number;
  readonly elapsedMs: number;
  /** Pages the guest mapped (`guest.maps`): the denominator of the bytes per mapped page. */
  readonly mappedPages: number;
  /** Host MMU bytes (BackendCostStats.ts names the keys per backend). */
  readonly tableBytes: number | null;
  readonly rmapBytes: number | null;
  /** (tableBytes + rmapBytes) / mappedPages; null when neither is counted or nothing was mapped. */
  readonly bytesPerMappedPage: number | null;
  readonly walkRefs: number | null;
  readonly walks: number | null;
  /** walkRefs / walks: table entries (x86, radix) or HPTEs (hash) read per walk; null where not counted. */
  readonly refsPerWalk: number | null;
  /** Faults the host MMU resolved itself (shadow faults, partition-scoped faults, HPT host faults). */
  readonly hostMmuFaults: number | null;
}

/** One bar of the faults chart: a run, where its faults went (and of what kind), how many. */
export interface ReportFault {
  readonly label: string;
  readonly category: FaultCategory;
  readonly count: number;
}

/** The faults chart's categories, in the order it shows them. */
export const FAULT_CATEGORIES = [
  'resolved by the host MMU',
  'to the guest (guest kernel resolved)',
  'to the guest',
  "to the guest's hypervisor",
  'VMM exit: no memory',
  'VMM exit: read-only',
  'VMM exit: emulate',
  'VMM exit: retry limit',
  'VMM exit: host out of memory',
] as const;
export type FaultCategory = (typeof FAULT_CATEGORIES)[number];

/** One segment of the bytes-per-mapped-page chart. */
export interface ReportBytesPart {
  readonly label: string;
  readonly part: 'tables' | 'rmap';
  readonly bytesPerMappedPage: number;
}

/**
 * The data block of the HTML page (`<script type="application/json" id="hvmmu-report-data">`),
 * from which its script draws every chart; docs/cli.md, "The report".
 */
export interface ReportData {
  readonly schema: 'hvmmu-report/1';
  readonly title: string;
  /** ISO 8601. */
  readonly generatedAt: string;
  readonly runs: readonly ReportRun[];
  /** Only the categories some run has a non-zero count in, every run in each. */
  readonly faults: readonly ReportFault[];
  readonly bytes: readonly ReportBytesPart[];
  /** Labels of runs with no references per walk (their backend counts none, or they made no walk): left out of that chart. */
  readonly walkRefsNotCounted: readonly string[];
  /** Labels of runs with no bytes per mapped page (their backend reports no table or rmap bytes, or they mapped nothing): left out of that chart. */
  readonly bytesNotCounted: readonly string[];
}

function isLabelled(entry: ReportEntry): entry is LabelledRunResult {
  return 'result' in entry && 'label' in entry;
}

/** Labels for the results: the given ones, else backend (and paging mode, workload when runs share one), made unique with #n. */
export function reportLabels(entries: readonly ReportEntry[]): string[] {
  const results = entries.map((e) => (isLabelled(e) ? e.result : e));
  const labels = entries.map((e, i) => {
    if (isLabelled(e)) return e.label;
    const r = results[i]!;
    const sameBackend = results.filter((o) => o.backend === r.backend);
    let label = r.backend;
    if (sameBackend.some((o) => o.pagingMode !== r.pagingMode)) label += ` ${r.pagingMode}`;
    if (sameBackend.some((o) => o.pagingMode === r.pagingMode && o.workload !== r.workload)) label += ` (${r.workload})`;
    return label;
  });
  const seen = new Map<string, number>();
  return labels.map((label) => {
    const total = labels.filter((l) => l === label).length;
    if (total === 1) return label;
    const n = (seen.get(label) ?? 0) + 1;
    seen.set(label, n);
    return `${label} #${n}`;
  });
}

function ratio(part: number | null, whole: number | null): number | null {
  return part === null || whole === null || whole === 0 ? null : part / whole;
}

/** A finite number given by the caller, else undefined. */
function given(v: number | undefined): v is number {
  return v !== undefined && Number.isFinite(v);
}

/** A run's report values; figures the caller gives (`overrides`) win over the backend's counters. */
export function reportRun(label: string, r: WorkloadRunResult, o: ReportRunOverrides = {}): ReportRun {
  const keys = BACKEND_COST_KEYS[r.backend];
  const stats = r.backendStats;
  const tableBytes = given(o.tableBytes) ? o.tableBytes : keys === undefined ? null : sumStats(stats, keys.tableBytes);
  const rmapBytes = given(o.rmapBytes) ? o.rmapBytes : keys === undefined ? null : sumStats(stats, keys.rmapBytes);
  const hostBytes = tableBytes === null && rmapBytes === null ? null : (tableBytes ?? 0) + (rmapBytes ?? 0);
  const walkRefs = statOrNull(stats, keys?.walkRefs);
  const walks = statOrNull(stats, keys?.walks);
  return {
    label,
    backend: r.backend,
    pagingMode: r.pagingMode,
    workload: r.workload,
    accesses: r.accesses,
    tlbHits: r.tlbHits,
    tlbMisses: r.tlbMisses,
    tlbHitRate: ratio(r.tlbHits, r.tlbHits + r.tlbMisses),
    accessesPerSecond: r.accessesPerSecond,
    elapsedMs: r.elapsedMs,
    mappedPages: r.guest.maps,
    tableBytes,
    rmapBytes,
    bytesPerMappedPage: ratio(hostBytes, r.guest.maps),
    walkRefs,
    walks,
    refsPerWalk: given(o.refsPerWalk) ? o.refsPerWalk : ratio(walkRefs, walks),
    hostMmuFaults: given(o.hostMmuFaults) ? o.hostMmuFaults : statOrNull(stats, keys?.hostMmuFaults),
  };
}

function faultCounts(run: ReportRun, r: WorkloadRunResult): Record<FaultCategory, number | null> {
  const f = r.faults;
  const k = f.vmmByKind;
  return {
    'resolved by the host MMU': run.hostMmuFaults,
    'to the guest (guest kernel resolved)': f.guestResolved,
    'to the guest': f.guest - f.guestResolved,
    "to the guest's hypervisor": f.hypervisor,
    'VMM exit: no memory': k.noMemory,
    'VMM exit: read-only': k.readOnly,
    'VMM exit: emulate': k.emulate,
    'VMM exit: retry limit': k.retryLimit,
    'VMM exit: host out of memory': k.hostOutOfMemory,
  };
}

/** Everything the page shows, from one result per backend configuration. */
export function buildReportData(entries: readonly ReportEntry[], title: string, now: Date = new Date()): ReportData {
  const labels = reportLabels(entries);
  const results = entries.map((e) => (isLabelled(e) ? e.result : e));
  const runs = results.map((r, i) => {
    const entry = entries[i]!;
    return reportRun(labels[i]!, r, isLabelled(entry) ? entry : {});
  });
  const counts = results.map((r, i) => faultCounts(runs[i]!, r));
  const faults: ReportFault[] = [];
  for (const category of FAULT_CATEGORIES) {
    if (!counts.some((c) => (c[category] ?? 0) > 0)) continue;
    runs.forEach((run, i) => {
      const count = counts[i]![category];
      if (count !== null) faults.push({ label: run.label, category, count });
    });
  }
  const bytes: ReportBytesPart[] = [];
  for (const run of runs) {
    if (run.bytesPerMappedPage === null) continue;
    bytes.push({ label: run.label, part: 'tables', bytesPerMappedPage: (run.tableBytes ?? 0) / run.mappedPages });
    bytes.push({ label: run.label, part: 'rmap', bytesPerMappedPage: (run.rmapBytes ?? 0) / run.mappedPages });
  }
  return {
    schema: 'hvmmu-report/1',
    title,
    generatedAt: now.toISOString(),
    runs,
    faults,
    bytes,
    walkRefsNotCounted: runs.filter((r) => r.refsPerWalk === null).map((r) => r.label),
    bytesNotCounted: runs.filter((r) => r.bytesPerMappedPage === null).map((r) => r.label),
  };
}
