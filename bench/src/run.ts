// The benchmark runner: `npm run bench [-- --json] [-- --quick] [-- <name filter>]`.
// Benchmarks are not tests: they assert nothing about time. Every figure is a
// ratio against a baseline measured in the same process and run.
import 'reflect-metadata';
import type { BenchFigure, BenchSuite } from './BenchFigure.js';
import { suites } from './suites.js';

const args = process.argv.slice(2);
const json = args.includes('--json');
const quick = args.includes('--quick');
const filters = args.filter((a) => !a.startsWith('--'));

function selected(suite: BenchSuite): boolean {
  return filters.length === 0 || filters.some((f) => suite.name.includes(f));
}

function fmt(n: number): string {
  if (n === 0) return '0';
  const abs = Math.abs(n);
  if (abs >= 1000) return n.toFixed(0);
  if (abs >= 10) return n.toFixed(1);
  return n.toPrecision(3);
}

const results: Record<string, { value: number; baseline: number; ratio: number; unit: string }> = {};
const rows: string[][] = [];
for (const suite of suites) {
  if (!selected(suite)) continue;
  const figures: Record<string, BenchFigure> = suite.run({ quick });
  for (const [name, f] of Object.entries(figures)) {
    const key = `${suite.name}.${name}`;
    results[key] = { value: f.value, baseline: f.baseline, ratio: f.ratio, unit: f.unit };
    rows.push([key, `${fmt(f.value)} ${f.unit}`, `${fmt(f.baseline)} ${f.unit}`, fmt(f.ratio), f.ratioMeaning, f.target ?? '']);
  }
}

if (json) {
  process.stdout.write(JSON.stringify(results, null, 2) + '\n');
} else {
  const head = ['figure', 'value', 'baseline', 'ratio', 'ratio means', 'target'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]): string => r.map((c, i) => c.padEnd(widths[i]!)).join('  ');
  console.log(`hvmmu benchmarks (${quick ? 'quick' : 'full'} run, node ${process.version})`);
  console.log(line(head));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of rows) console.log(line(r));
}
