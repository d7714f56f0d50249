// The benchmark runner: `npm run bench [-- --json] [-- --quick] [-- --in-process] [-- <name filter>]`.
// Benchmarks are not tests: they assert nothing about time. Every figure is a
// ratio against a baseline measured in the same process and run.
//
// Each suite runs in a process of its own (as JMH forks per benchmark): the
// JIT's type feedback from one suite (another translator, another guest-memory
// class at the same call sites) would otherwise shape the code another suite
// measures, and the figures would depend on the order suites run in.
import 'reflect-metadata';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { BenchFigure, BenchSuite } from './BenchFigure.js';
import { suites } from './suites.js';

const CHILD_FLAG = '--suite-child';

const args = process.argv.slice(2);
const json = args.includes('--json');
const quick = args.includes('--quick');
const inProcess = args.includes('--in-process');
const childAt = args.indexOf(CHILD_FLAG);
const filters = args.filter((a, i) => !a.startsWith('--') && !(childAt >= 0 && i === childAt + 1));

function selected(suite: BenchSuite): boolean {
  return filters.length === 0 || filters.some((f) => suite.name.includes(f));
}

function runHere(suite: BenchSuite): Record<string, BenchFigure> {
  const out: Record<string, BenchFigure> = {};
  for (const [name, f] of Object.entries(suite.run({ quick }))) out[`${suite.keyPrefix ?? suite.name}.${name}`] = f;
  return out;
}

/** Run one suite in a fresh Node process (same flags) and read its figures back as JSON. */
function runForked(suite: BenchSuite): Record<string, BenchFigure> {
  const script = fileURLToPath(import.meta.url);
  const child = spawnSync(process.execPath, [...process.execArgv, script, CHILD_FLAG, suite.name, ...(quick ? ['--quick'] : [])], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 16 << 20,
  });
  if (child.status !== 0) {
    throw new Error(`benchmark suite ${suite.name} failed (exit ${String(child.status)}${child.signal !== null ? `, ${child.signal}` : ''})`);
  }
  return JSON.parse(child.stdout) as Record<string, BenchFigure>;
}

function fmt(n: number): string {
  if (n === 0) return '0';
  const abs = Math.abs(n);
  if (abs >= 1000) return n.toFixed(0);
  if (abs >= 10) return n.toFixed(1);
  return n.toPrecision(3);
}

if (childAt >= 0) {
  const suite = suites.find((s) => s.name === args[childAt + 1]);
  if (suite === undefined) throw new Error(`no benchmark suite named ${String(args[childAt + 1])}`);
  process.stdout.write(JSON.stringify(runHere(suite)));
} else {
  const results: Record<string, BenchFigure> = {};
  for (const suite of suites) {
    if (!selected(suite)) continue;
    Object.assign(results, inProcess ? runHere(suite) : runForked(suite));
  }
  if (json) {
    const plain: Record<string, { value: number; baseline: number; ratio: number; unit: string }> = {};
    for (const [key, f] of Object.entries(results)) plain[key] = { value: f.value, baseline: f.baseline, ratio: f.ratio, unit: f.unit };
    process.stdout.write(JSON.stringify(plain, null, 2) + '\n');
  } else {
    const rows = Object.entries(results).map(([key, f]) => [
      key,
      `${fmt(f.value)} ${f.unit}`,
      `${fmt(f.baseline)} ${f.unit}`,
      fmt(f.ratio),
      f.ratioMeaning,
      f.target ?? '',
    ]);
    const head = ['figure', 'value', 'baseline', 'ratio', 'ratio means', 'target'];
    const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
    const line = (r: string[]): string => r.map((c, i) => c.padEnd(widths[i]!)).join('  ');
    console.log(`hvmmu benchmarks (${quick ? 'quick' : 'full'} run, node ${process.version}, ${inProcess ? 'one process' : 'one process per suite'})`);
    console.log(line(head));
    console.log(widths.map((w) => '-'.repeat(w)).join('  '));
    for (const r of rows) console.log(line(r));
  }
}
