import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { findBackend } from '../src/backends/BackendRegistry.js';
import { EXIT, run } from '../src/HvmmuProgram.js';
import { REPORT_CHARTS, renderHtmlReport, writeComparisonReport } from '../src/report/HtmlReport.js';
import { FAULT_CATEGORIES, buildReportData, reportLabels, type ReportEntry } from '../src/report/ReportData.js';
import { parseWorkload } from '../src/workloads/WorkloadParser.js';
import { runWorkload } from '../src/workloads/WorkloadRunner.js';
import type { WorkloadRunResult } from '../src/workloads/WorkloadRunResult.js';
import { generateBuiltinWorkload } from '../src/workloads/generators/BuiltinWorkloads.js';

/**
 * The HTML report: its data (computed in Node), the page being self-contained, and the page
 * drawn by headless Chromium (Debian's `chromium`, driven by playwright-core): every chart has
 * one bar per run with the run's label and value, bar lengths follow the values, the console
 * has no error and the page makes no request.
 */

const CHROMIUM = process.env.HVMMU_CHROMIUM ?? '/usr/bin/chromium';
const HAS_CHROMIUM = existsSync(CHROMIUM);
const NO_CHROMIUM = `no Chromium at ${CHROMIUM}: install Debian's package (apt-get install -y chromium) or set HVMMU_CHROMIUM to a Chromium binary`;

const WORKLOAD = 'random:pages=256,accesses=6000';

async function runOn(backendId: string, backendOptions?: Record<string, unknown>): Promise<WorkloadRunResult> {
  const backend = await findBackend(backendId);
  const workload = parseWorkload(generateBuiltinWorkload(WORKLOAD), WORKLOAD);
  return runWorkload(backend, workload, { source: WORKLOAD, ...(backendOptions === undefined ? {} : { backendOptions }) });
}

function tempFile(name: string): string {
  return join(mkdtempSync(join(tmpdir(), 'hvmmu-report-')), name);
}

let x86: WorkloadRunResult;
let radix: WorkloadRunResult;
let hpt: WorkloadRunResult;
let hpt9: WorkloadRunResult;

beforeAll(async () => {
  [x86, radix, hpt, hpt9] = await Promise.all([runOn('x86-shadow'), runOn('ppc-radix'), runOn('ppc-hpt'), runOn('ppc-hpt', { cpu: 'power9' })]);
});

describe('report data', () => {
  it('labels runs by backend, adds the paging mode or workload only where runs of one backend differ, and keeps given labels', () => {
    expect(reportLabels([x86, radix, hpt])).toEqual(['x86-shadow', 'ppc-radix', 'ppc-hpt']);
    expect(reportLabels([x86, { ...x86, pagingMode: 'x86-pae' }])).toEqual(['x86-shadow x86-4level', 'x86-shadow x86-pae']);
    expect(reportLabels([x86, { ...x86, workload: 'other' }])).toEqual([`x86-shadow (${WORKLOAD})`, 'x86-shadow (other)']);
    expect(reportLabels([hpt, hpt9])).toEqual(['ppc-hpt #1', 'ppc-hpt #2']);
    expect(reportLabels([hpt, { label: 'ppc-hpt POWER9', result: hpt9 }])).toEqual(['ppc-hpt', 'ppc-hpt POWER9']);
  });

  it("takes each backend's own stat keys: bytes per mapped page, walk references, host-MMU faults; null where a backend counts none", () => {
    const data = buildReportData([x86, radix, hpt], 't');
    const [rx, rr, rh] = data.runs;
    const sx = x86.backendStats;
    expect(rx!.bytesPerMappedPage).toBeCloseTo((sx['shadowTableBytes']! + sx['rmapBytes']!) / x86.guest.maps, 9);
    expect(rx!.refsPerWalk).toBeNull();
    expect(rx!.hostMmuFaults).toBe(sx['shadowFaults']);
    const sr = radix.backendStats;
    expect(rr!.bytesPerMappedPage).toBeCloseTo((sr['ppcRadixTableBytes']! + sr['ppcRadixNestedRmapBytes']!) / radix.guest.maps, 9);
    expect(rr!.refsPerWalk).toBeCloseTo(sr['ppcRadixWalkRefs']! / sr['ppcRadixWalks']!, 9);
    const sh = hpt.backendStats;
    expect(rh!.bytesPerMappedPage).toBeCloseTo((sh['hptTableBytes']! + sh['hptRmapBytes']!) / hpt.guest.maps, 9);
    expect(rh!.refsPerWalk).toBeCloseTo(sh['hptSearchRefs']! / sh['hptSearches']!, 9);
    expect(rh!.hostMmuFaults).toBe(sh['hptHostFaults']);
    expect(data.walkRefsNotCounted).toEqual(['x86-shadow']);
    for (const run of data.runs) expect(run.tlbHitRate).toBeCloseTo(run.tlbHits / (run.tlbHits + run.tlbMisses), 12);
    // Every category shown has one bar per run, and only categories some run has are shown.
    const categories = [...new Set(data.faults.map((f) => f.category))];
    expect(categories[0]).toBe('resolved by the host MMU');
    for (const c of categories) expect(data.faults.filter((f) => f.category === c).map((f) => f.label)).toEqual(['x86-shadow', 'ppc-radix', 'ppc-hpt']);
    expect(categories.every((c) => FAULT_CATEGORIES.includes(c))).toBe(true);
  });

  it('memory references per walk given with a labelled run (the demo knows x86 walks its shadow root) are taken', () => {
    const data = buildReportData([{ label: 'x86-shadow 4-level', result: x86, refsPerWalk: 4 }, radix], 't');
    expect(data.runs.map((r) => r.refsPerWalk)).toEqual([4, radix.backendStats['ppcRadixWalkRefs']! / radix.backendStats['ppcRadixWalks']!]);
    expect(data.runs[0]!.walkRefs).toBeNull();
    expect(data.walkRefsNotCounted).toEqual([]);
  });

  it('a backend the report does not know gets "not counted", never a made-up 0', () => {
    const data = buildReportData([{ ...x86, backend: 'other-backend' }], 't');
    expect(data.runs[0]!.bytesPerMappedPage).toBeNull();
    expect(data.runs[0]!.refsPerWalk).toBeNull();
    expect(data.bytes).toEqual([]);
    expect(data.bytesNotCounted).toEqual(['other-backend']);
  });
});

describe('the page', () => {
  it('is self-contained: scripts and styles inline, nothing loaded from anywhere, a CSP that forbids it', () => {
    const html = renderHtmlReport([x86, radix, hpt]);
    expect(html).not.toMatch(/<script[^>]+\bsrc=/i);
    expect(html).not.toMatch(/<link\b/i);
    expect(html).not.toMatch(/\b(src|href)=["']?(https?:)?\/\//i);
    expect(html).toContain("default-src 'none'");
    expect(html).toContain('@observablehq/plot v0.6');
    // The data block is the documented shape.
    const json = /<script type="application\/json" id="hvmmu-report-data">(.*?)<\/script>/s.exec(html)![1]!;
    const data = JSON.parse(json) as { schema: string; runs: { label: string }[] };
    expect(data.schema).toBe('hvmmu-report/1');
    expect(data.runs.map((r) => r.label)).toEqual(['x86-shadow', 'ppc-radix', 'ppc-hpt']);
  });

  it("is the package's @hvmmu/cli/report entry point", async () => {
    const entry = await import('@hvmmu/cli/report');
    expect(entry.writeComparisonReport).toBe(writeComparisonReport);
    expect(entry.renderHtmlReport).toBe(renderHtmlReport);
  });

  it('escapes labels: a label cannot end the data block or inject markup', () => {
    const html = renderHtmlReport([{ label: '</script><b>x</b>', result: x86 }]);
    expect(html).not.toContain('</script><b>');
    expect(html).toContain('&lt;/script&gt;&lt;b&gt;x&lt;/b&gt;');
  });

  it('hvmmu run --report writes the page (and says so); an unwritable file is bad usage (exit 2)', async () => {
    const file = tempFile('run.html');
    let out = '';
    let err = '';
    const io = {
      out: (s: string): void => {
        out += s;
      },
      err: (s: string): void => {
        err += s;
      },
    };
    expect(await run(['run', '--backend', 'x86-shadow', '--workload', 'sequential:pages=16,perPage=2,passes=2', '--report', file], io)).toBe(EXIT.OK);
    expect(out).toContain(`Report: ${file}`);
    const html = readFileSync(file, 'utf8');
    expect(html).toContain('<title>hvmmu: one run</title>');
    expect(html).toContain('"backend":"x86-shadow"');
    out = '';
    expect(await run(['run', '--backend', 'x86-shadow', '--workload', 'sequential:pages=16', '--json', '--report', file], io)).toBe(EXIT.OK);
    expect(() => JSON.parse(out) as unknown).not.toThrow();
    expect(await run(['run', '--backend', 'x86-shadow', '--workload', 'sequential:pages=16', '--report', '/nonexistent-dir/r.html'], io)).toBe(EXIT.USAGE);
    expect(err).toContain('--report /nonexistent-dir/r.html: cannot write the report (ENOENT)');
  });
});

/** The little of the DOM the page check uses (the tests compile without lib.dom). */
interface PageElement {
  querySelector(selector: string): PageElement | null;
  querySelectorAll(selector: string): Iterable<PageElement> & { readonly length: number };
  getAttribute(name: string): string | null;
  readonly textContent: string | null;
}

interface Bar {
  title: string;
  width: number;
}

interface Rendered {
  rendered: boolean;
  charts: Record<string, { bars: Bar[]; svgs: number; note: string }>;
  consoleErrors: string[];
  requests: string[];
}

/** Opens the page from a file:// URL in headless Chromium and reads back every chart's bars. */
async function renderInChromium(browser: Browser, file: string): Promise<Rendered> {
  const page = await browser.newPage();
  const consoleErrors: string[] = [];
  const requests: string[] = [];
  const url = pathToFileURL(file).href;
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') consoleErrors.push(m.text());
  });
  page.on('pageerror', (e) => consoleErrors.push(e.message));
  page.on('request', (r) => {
    if (r.url() !== url) requests.push(r.url());
  });
  await page.goto(url);
  const rendered = await page
    .waitForSelector('body[data-rendered="true"]', { timeout: 20_000 })
    .then(() => true)
    .catch(() => false);
  const charts = await page.evaluate(
    (ids: string[]) => {
      const document = (globalThis as unknown as { document: PageElement }).document;
      const out: Record<string, { bars: { title: string; width: number }[]; svgs: number; note: string }> = {};
      for (const id of ids) {
        const figure = document.querySelector(`figure[data-chart="${id}"]`)!;
        const rects = [...figure.querySelectorAll('svg g[aria-label="bar"] rect')];
        out[id] = {
          svgs: figure.querySelectorAll('svg').length,
          note: figure.querySelector('.chart-note')?.textContent ?? '',
          bars: rects.map((r) => ({ title: r.querySelector('title')?.textContent ?? '', width: Number(r.getAttribute('width')) })),
        };
      }
      return out;
    },
    REPORT_CHARTS.map((c) => c.id),
  );
  await page.close();
  return { rendered, charts, consoleErrors, requests };
}

describe('the page in headless Chromium', () => {
  let browser: Browser | undefined;

  beforeAll(async () => {
    if (!HAS_CHROMIUM) {
      console.warn(`htmlReport.test.ts: the Chromium tests are skipped: ${NO_CHROMIUM}`);
      return;
    }
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu'] });
  });

  afterAll(async () => {
    await browser?.close();
  });

  it('draws every chart with one bar per run, labelled with the run and its value, lengths in proportion, no console error, no request', async (ctx) => {
    if (!HAS_CHROMIUM) ctx.skip(NO_CHROMIUM);
    const entries: ReportEntry[] = [x86, radix, hpt, { label: 'ppc-hpt POWER9', result: hpt9 }];
    const file = tempFile('compare.html');
    writeComparisonReport(entries, file);
    const data = buildReportData(entries, 't');
    const labels = ['x86-shadow', 'ppc-radix', 'ppc-hpt', 'ppc-hpt POWER9'];
    const page = await renderInChromium(browser!, file);

    expect(page.consoleErrors).toEqual([]);
    expect(page.requests).toEqual([]);
    expect(page.rendered).toBe(true);
    for (const id of REPORT_CHARTS.map((c) => c.id)) expect(page.charts[id]!.svgs, id).toBeGreaterThan(0);

    const fmt = (n: number): string =>
      Number.isInteger(n) ? n.toLocaleString('en-US') : n.toLocaleString('en-US', { maximumFractionDigits: Math.abs(n) >= 100 ? 0 : 2 });
    const titles = (id: string): string[] => page.charts[id]!.bars.map((b) => b.title);
    const widths = (id: string): number[] => page.charts[id]!.bars.map((b) => b.width);
    /** Bar lengths in proportion to the values (the scale starts at 0): within a pixel of it. */
    const proportional = (id: string, values: number[]): void => {
      const w = widths(id);
      const max = Math.max(...values);
      const maxWidth = w[values.indexOf(max)]!;
      for (const [i, v] of values.entries()) expect(Math.abs(w[i]! - (maxWidth * v) / max), `${id} bar ${i}`).toBeLessThan(1.5);
    };

    expect(titles('tlb-hit-rate')).toEqual(
      data.runs.map((r) => `${r.label}: ${(100 * r.tlbHitRate!).toFixed(1)}% TLB hit rate (${fmt(r.tlbHits)} hits, ${fmt(r.tlbMisses)} misses)`),
    );
    expect(titles('tlb-hit-rate').map((t) => t.slice(0, t.indexOf(':')))).toEqual(labels);
    proportional(
      'tlb-hit-rate',
      data.runs.map((r) => r.tlbHitRate!),
    );

    expect(titles('accesses-per-second')).toEqual(
      data.runs.map((r) => `${r.label}: ${fmt(r.accessesPerSecond)} accesses per second (${fmt(r.accesses)} in ${fmt(r.elapsedMs)} ms)`),
    );
    proportional(
      'accesses-per-second',
      data.runs.map((r) => r.accessesPerSecond),
    );

    // Two stacked segments per run (tables, rmap); the whole bar is the bytes per mapped page.
    expect(titles('bytes-per-page')).toEqual(data.bytes.map((b) => `${b.label}: ${fmt(b.bytesPerMappedPage)} ${b.part} bytes per mapped page`));
    expect(page.charts['bytes-per-page']!.bars).toHaveLength(2 * labels.length);
    const totals = labels.map((_, i) => widths('bytes-per-page')[2 * i]! + widths('bytes-per-page')[2 * i + 1]!);
    const perPage = data.runs.map((r) => r.bytesPerMappedPage!);
    for (const [i, t] of totals.entries()) expect(Math.abs(t - (totals[3]! * perPage[i]!) / perPage[3]!), `bytes bar ${i}`).toBeLessThan(2);

    // x86 counts no walk references: left out, and the note says so.
    expect(titles('refs-per-walk')).toEqual(
      data.runs
        .filter((r) => r.refsPerWalk !== null)
        .map((r) => `${r.label}: ${fmt(r.refsPerWalk!)} memory references per walk (${fmt(r.walkRefs!)} in ${fmt(r.walks!)} walks)`),
    );
    expect(titles('refs-per-walk').map((t) => t.slice(0, t.indexOf(':')))).toEqual(['ppc-radix', 'ppc-hpt', 'ppc-hpt POWER9']);
    expect(page.charts['refs-per-walk']!.note).toBe('Left out (its backend counts no walk references, or it made no walk): x86-shadow.');

    // Faults: one bar per run in every category shown, host-MMU faults first.
    expect(titles('faults')).toEqual(data.faults.map((f) => `${f.label}: ${fmt(f.count)} ${f.category}`));
    expect(titles('faults').slice(0, 4)).toEqual(data.runs.map((r) => `${r.label}: ${fmt(r.hostMmuFaults!)} resolved by the host MMU`));
    expect(data.runs.every((r) => r.hostMmuFaults! > 0)).toBe(true);
  });

  it('a run given with its references per walk shows them, saying so', async (ctx) => {
    if (!HAS_CHROMIUM) ctx.skip(NO_CHROMIUM);
    const file = tempFile('given.html');
    writeComparisonReport([{ label: 'x86-shadow 4-level', result: x86, refsPerWalk: 4 }], file);
    const page = await renderInChromium(browser!, file);
    expect(page.consoleErrors).toEqual([]);
    expect(page.rendered).toBe(true);
    expect(page.charts['refs-per-walk']!.bars.map((b) => b.title)).toEqual(['x86-shadow 4-level: 4 memory references per walk (given with the run)']);
    expect(page.charts['refs-per-walk']!.note).toBe('');
  });

  it('a run with nothing to chart (no access, no page mapped) renders with its notes and no error', async (ctx) => {
    if (!HAS_CHROMIUM) ctx.skip(NO_CHROMIUM);
    const backend = await findBackend('ppc-hpt');
    const empty = runWorkload(backend, parseWorkload({ version: 1, name: 'empty', operations: [{ op: 'createMemslot', slot: 0, gfn: 0, pages: 4 }] }, 'empty'));
    const file = tempFile('empty.html');
    writeComparisonReport([empty], file);
    const page = await renderInChromium(browser!, file);
    expect(page.consoleErrors).toEqual([]);
    expect(page.rendered).toBe(true);
    expect(page.charts['tlb-hit-rate']!.bars).toEqual([]);
    expect(page.charts['faults']!.note).toBe('No faults in any run.');
    expect(page.charts['bytes-per-page']!.note).toBe('Left out (its backend counts no table bytes, or it mapped no page): ppc-hpt.');
    expect(page.charts['refs-per-walk']!.note).toBe('No run here has memory references per walk (its backend counts none, or it made no walk).');
  });

  it('a one-run page (hvmmu run --report) renders too', async (ctx) => {
    if (!HAS_CHROMIUM) ctx.skip(NO_CHROMIUM);
    const file = tempFile('one.html');
    writeComparisonReport([radix], file);
    const page = await renderInChromium(browser!, file);
    expect(page.consoleErrors).toEqual([]);
    expect(page.requests).toEqual([]);
    expect(page.rendered).toBe(true);
    expect(page.charts['tlb-hit-rate']!.bars.map((b) => b.title.split(':')[0])).toEqual(['ppc-radix']);
    expect(page.charts['refs-per-walk']!.bars).toHaveLength(1);
  });
});
