import { writeFileSync } from 'node:fs';
import { WorkloadInputError } from '../workloads/WorkloadInputError.js';
import { BACKEND_COST_KEYS } from './BackendCostStats.js';
import { chartLibrarySources, inlineScript } from './ChartLibraries.js';
import { REPORT_CHARTS_SCRIPT, REPORT_ERROR_SCRIPT } from './ReportChartsScript.js';
import { buildReportData, type ReportData, type ReportEntry, type ReportRun } from './ReportData.js';
import { formatNumber, percent } from './TextTable.js';

export type { LabelledRunResult, ReportData, ReportEntry, ReportRun } from './ReportData.js';

export interface HtmlReportOptions {
  /** The page's heading and <title> (default "hvmmu: N backends compared"). */
  readonly title?: string;
  /** The time the page says it was made (default now). */
  readonly now?: Date;
}

/** The charts, in page order: id (the figure's data-chart), heading, what it shows. */
export const REPORT_CHARTS = [
  {
    id: 'tlb-hit-rate',
    heading: 'TLB hit rate',
    about: "The workload's translations that hit the vCPU's TLB (the guest kernel's own accesses are not counted).",
  },
  {
    id: 'faults',
    heading: 'Faults by destination and kind',
    about:
      "Faults the host MMU resolved on its own (x86 shadow faults, radix partition-scoped faults, HPT host faults), faults delivered to the guest (and those its kernel resolved itself: SLB reloads, HPTE re-inserts), reflected to the guest's hypervisor, and exits to the VMM by kind. Categories where every run has 0 are left out.",
  },
  {
    id: 'bytes-per-page',
    heading: 'Host MMU bytes per mapped page',
    about: "The host MMU's tables (shadow tables, partition-scoped tree, HPT) and reverse maps at the end of the run, divided by the pages the guest mapped.",
  },
  { id: 'accesses-per-second', heading: 'Accesses per second', about: 'Translations per second of wall-clock time on this machine (one run each: noisy).' },
  {
    id: 'refs-per-walk',
    heading: 'Memory references per walk',
    about:
      'Table entries read per hardware walk on a TLB miss (radix: the 2-D walk, partition and process scoped); hash: HPTEs read per search of the primary and secondary groups.',
  },
] as const;

const HTML_ESCAPES: Readonly<Record<string, string>> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]!);
}

/** JSON that cannot end the <script> element holding it. */
function scriptJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

function cell(n: number | null): string {
  return n === null ? 'not counted' : formatNumber(n);
}

function numbersTable(runs: readonly ReportRun[]): string {
  const header = [
    'run',
    'backend',
    'paging',
    'workload',
    'accesses',
    'TLB hit rate',
    'accesses/s',
    'mapped pages',
    'table bytes',
    'rmap bytes',
    'bytes/page',
    'refs/walk',
    'host MMU faults',
  ];
  const rows = runs.map((r) =>
    [
      r.label,
      r.backend,
      r.pagingMode,
      r.workload,
      formatNumber(r.accesses),
      percent(r.tlbHits, r.tlbHits + r.tlbMisses),
      formatNumber(r.accessesPerSecond),
      formatNumber(r.mappedPages),
      cell(r.tableBytes),
      cell(r.rmapBytes),
      cell(r.bytesPerMappedPage),
      cell(r.refsPerWalk),
      cell(r.hostMmuFaults),
    ]
      .map((c, i) => (i < 4 ? `<td>${escapeHtml(c)}</td>` : `<td class="num">${escapeHtml(c)}</td>`))
      .join(''),
  );
  return `<table id="numbers"><thead><tr>${header.map((h) => `<th>${escapeHtml(h)}</th>`).join('')}</tr></thead><tbody>${rows.map((r) => `<tr>${r}</tr>`).join('')}</tbody></table>`;
}

function statKeysList(): string {
  return Object.entries(BACKEND_COST_KEYS)
    .map(
      ([id, k]) =>
        `<li><code>${escapeHtml(id)}</code>: tables ${k.tableBytes.map((s) => `<code>${s}</code>`).join(' + ')}, rmap ${k.rmapBytes.map((s) => `<code>${s}</code>`).join(' + ')}, walks <code>${k.walkRefs ?? '-'}</code> / <code>${k.walks ?? '-'}</code>, host MMU faults <code>${k.hostMmuFaults ?? '-'}</code></li>`,
    )
    .join('');
}

const STYLE = `
body { font: 14px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 1060px; padding: 0 1rem; color: #222; }
h1 { font-size: 1.5rem; margin-bottom: 0.2rem; }
figure { margin: 2rem 0; }
figcaption h2 { font-size: 1.1rem; margin: 0 0 0.2rem; }
figcaption p, .chart-note, .meta { color: #555; margin: 0 0 0.5rem; }
#report-error { background: #fde2e1; color: #8a1c13; padding: 0.6rem; border-radius: 4px; }
table { border-collapse: collapse; font-size: 12px; }
th, td { border-bottom: 1px solid #ddd; padding: 3px 8px; text-align: left; white-space: nowrap; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
`;

/**
 * One self-contained HTML page comparing the runs (one per backend configuration): a chart each
 * for the TLB hit rate, faults by destination and kind, host-MMU bytes per mapped page, accesses
 * per second and memory references per walk, then the numbers as a table. d3 and Observable Plot
 * are inlined, so the page needs no network (it works from a file:// URL).
 */
export function renderHtmlReport(entries: readonly ReportEntry[], options: HtmlReportOptions = {}): string {
  if (entries.length === 0) throw new Error('renderHtmlReport: no runs to report');
  const title = options.title ?? `hvmmu: ${entries.length === 1 ? 'one run' : `${entries.length} backends compared`}`;
  const data: ReportData = buildReportData(entries, title, options.now);
  const workloads = [...new Set(data.runs.map((r) => r.workload))];
  const figures = REPORT_CHARTS.map(
    (c) =>
      `<figure data-chart="${c.id}"><figcaption><h2>${escapeHtml(c.heading)}</h2><p>${escapeHtml(c.about)}</p></figcaption><div class="plot"></div><p class="chart-note"></p></figure>`,
  ).join('\n');
  const libraries = chartLibrarySources()
    .map((source) => `<script>${inlineScript(source)}</script>`)
    .join('\n');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:">
<title>${escapeHtml(title)}</title>
<style>${STYLE}</style>
<script>${inlineScript(REPORT_ERROR_SCRIPT)}</script>
</head>
<body>
<h1>${escapeHtml(title)}</h1>
<p class="meta">Workload${workloads.length === 1 ? '' : 's'}: ${workloads.map((w) => `<code>${escapeHtml(w)}</code>`).join(', ')} · made ${escapeHtml(data.generatedAt)} by hvmmu</p>
<p id="report-error" hidden></p>
${figures}
<h2>The numbers</h2>
${numbersTable(data.runs)}
<h2>Where the numbers come from</h2>
<p>Counts are the run result's (<code>hvmmu run --json</code>); bytes, walks and host-MMU faults are the backend's own <code>vm.stats()</code> keys:</p>
<ul>${statKeysList()}</ul>
<script type="application/json" id="hvmmu-report-data">${scriptJson(data)}</script>
${libraries}
<script>${inlineScript(REPORT_CHARTS_SCRIPT)}</script>
</body>
</html>
`;
}

/**
 * Writes the comparison page for `results` (one run result per backend configuration, plain or
 * `{ label, result }` to name it) to `file`: what `hvmmu demo --report FILE.html` and
 * `hvmmu run --report FILE.html` call. A file that cannot be written is a WorkloadInputError
 * naming it (the command exits 2).
 *
 * @example
 * writeComparisonReport([x86Result, { label: 'ppc-radix L2', result: nestedResult }], 'demo.html');
 */
export function writeComparisonReport(results: readonly ReportEntry[], file: string, options: HtmlReportOptions = {}): void {
  const html = renderHtmlReport(results, options);
  try {
    writeFileSync(file, html);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new WorkloadInputError(`--report ${file}`, [`cannot write the report (${code ?? (error instanceof Error ? error.message : String(error))})`]);
  }
}
