import { existsSync } from 'node:fs';
import { findBackend } from '../backends/BackendRegistry.js';
import { startProgress, type ProgressStream } from '../progress/ProgressBar.js';
import { withOperationProgress, withTranslationProgress, workloadWeight } from '../progress/RunProgress.js';
import { writeComparisonReport } from '../report/HtmlReport.js';
import { renderRunReport } from '../report/RunReport.js';
import { checkExpectation } from '../workloads/ExpectationCheck.js';
import { checkRunHealth } from '../workloads/RunHealthCheck.js';
import { replayLackeyTrace } from '../workloads/LackeyTraceReplay.js';
import { WorkloadInputError } from '../workloads/WorkloadInputError.js';
import { parseWorkload, readWorkloadFile } from '../workloads/WorkloadParser.js';
import { runWorkload } from '../workloads/WorkloadRunner.js';
import type { WorkloadRunResult } from '../workloads/WorkloadRunResult.js';
import type { Workload } from '../workloads/WorkloadSchema.js';
import { BUILTIN_WORKLOADS, generateBuiltinWorkload } from '../workloads/generators/BuiltinWorkloads.js';

export const RUN_DESCRIPTION = `Run one workload on one backend and print what happened: accesses, TLB hits and
misses, guest-visible faults, hypervisor faults and VMM exits, what the guest and
the host did, and the backend's own statistics.

The workload is a JSON file (docs/workloads.md), a built-in generator
(${BUILTIN_WORKLOADS.map((g) => g.name).join(', ')}; parameters as NAME:key=value,…),
or with --trace a Valgrind Lackey trace of a real program
(valgrind --tool=lackey --trace-mem=yes --log-file=FILE PROGRAM; gzipped is fine).

Exit codes: 0 done; 1 a problem: the workload's "expect" counts differ, or accesses
hit the retry limit or found no host memory; 2 bad usage or input
(the message names the file and the operation index and field, or the line).

With --report FILE.html it also writes a self-contained HTML page charting the
run (docs/cli.md, "The report"). A run that takes more than a second shows a
progress bar on standard error when that is a terminal (never with --json or
when piped).`;

export interface RunCommandOptions {
  readonly backend: string;
  readonly workload?: string;
  readonly trace?: string;
  readonly json?: boolean;
  readonly memslotInvalidation?: string;
  readonly maxPages?: number;
  readonly memoryMib?: number;
  readonly tlbEntries?: number;
  /** Also write the HTML report of the run to this file. */
  readonly report?: string;
}

/** What `hvmmu run --json` prints: the result, and the problems found (the expect block's differences, checkRunHealth's findings). */
export interface RunCommandOutput extends WorkloadRunResult {
  readonly problems: readonly string[];
}

/** A built-in spec or a file: a path with a slash, a .json name, or a file that exists is a file. */
function loadWorkload(spec: string): { workload: Workload; source: string } {
  const name = spec.includes(':') ? spec.slice(0, spec.indexOf(':')) : spec;
  const builtin = BUILTIN_WORKLOADS.some((g) => g.name === name);
  if (!builtin && (spec.includes('/') || spec.endsWith('.json') || existsSync(spec))) return { workload: readWorkloadFile(spec), source: spec };
  return { workload: parseWorkload(generateBuiltinWorkload(spec), `built-in workload ${spec}`), source: spec };
}

/**
 * `hvmmu run`: returns the exit code after writing the report (text or JSON) to `out`. Input the
 * command cannot use is a WorkloadInputError (the caller prints it and exits 2).
 */
export async function runRunCommand(
  o: RunCommandOptions,
  out: (s: string) => void,
  progressStream: ProgressStream | undefined = process.stderr,
): Promise<number> {
  const startedAt = Date.now();
  if ((o.workload === undefined) === (o.trace === undefined)) {
    throw new WorkloadInputError('hvmmu run', ['give exactly one of --workload <name|file> or --trace <file>']);
  }
  const backend = await findBackend(o.backend);
  const machine = {
    ...(o.memslotInvalidation === undefined ? {} : { backendOptions: { memslotInvalidation: o.memslotInvalidation } }),
    ...(o.memoryMib === undefined ? {} : { memoryBytes: o.memoryMib * 1024 * 1024 }),
    ...(o.tlbEntries === undefined ? {} : { tlbEntries: o.tlbEntries }),
  };
  let result: WorkloadRunResult;
  let problems: string[] = [];
  const stream = o.json === true ? undefined : progressStream;
  if (o.trace !== undefined) {
    const trace = o.trace;
    const progress = startProgress(stream, { label: `${backend.id}: ${trace}`, unit: 'translations', startedAt });
    result = await withTranslationProgress(backend, progress, (b) =>
      replayLackeyTrace(b, trace, { ...machine, ...(o.maxPages === undefined ? {} : { maxPages: o.maxPages }) }),
    );
  } else {
    const { workload, source } = loadWorkload(o.workload!);
    const progress = startProgress(stream, { label: `${backend.id}: ${source}`, total: workloadWeight(workload), startedAt });
    try {
      result = runWorkload(backend, withOperationProgress(workload, progress), { ...machine, source });
    } finally {
      progress.stop();
    }
    problems = checkExpectation(result, workload.expect);
  }
  problems.push(...checkRunHealth(result));
  if (o.json === true) {
    const output: RunCommandOutput = { ...result, problems };
    out(`${JSON.stringify(output, null, 2)}\n`);
  } else {
    for (const line of renderRunReport(result)) out(`${line}\n`);
    if (problems.length > 0) out(`\nProblems:\n${problems.map((p) => `  ${p}\n`).join('')}`);
  }
  if (o.report !== undefined) {
    writeComparisonReport([result], o.report);
    if (o.json !== true) out(`\nReport: ${o.report}\n`);
  }
  return problems.length > 0 ? 1 : 0;
}
