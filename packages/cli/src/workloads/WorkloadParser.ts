import { readFileSync } from 'node:fs';
import type { ZodIssue } from 'zod';
import { WorkloadInputError } from './WorkloadInputError.js';
import {
  OPERATION_NAMES,
  checkOperation,
  normaliseOperation,
  operationSchema,
  workloadSchema,
  type Workload,
  type WorkloadOperation,
} from './WorkloadSchema.js';

/** Problems reported at most per file (a generated file with one mistake repeated would flood the terminal). */
const MAX_PROBLEMS = 20;

/** `operations[12].gfn` for the path ['operations', 12, 'gfn']. */
export function formatPath(path: readonly (string | number)[]): string {
  let text = '';
  for (const part of path) text += typeof part === 'number' ? `[${part}]` : text === '' ? part : `.${part}`;
  return text === '' ? '(the workload)' : text;
}

/** One line per zod issue, each naming where it is: `operations[12].gfn: expected a non-negative integer`. */
export function describeIssues(issues: readonly ZodIssue[], prefix: readonly (string | number)[] = []): string[] {
  const lines: string[] = [];
  for (const issue of issues) {
    const path = [...prefix, ...issue.path];
    const at = formatPath(path);
    switch (issue.code) {
      case 'unrecognized_keys':
        for (const key of issue.keys) lines.push(`${formatPath([...path, key])}: unknown field`);
        break;
      case 'invalid_union': {
        // An integer field is a number or a "0x…" string: the number's complaint says what is expected.
        const first = issue.unionErrors[0]?.issues[0];
        lines.push(`${at}: ${first?.message ?? issue.message}`);
        break;
      }
      case 'invalid_union_discriminator':
        lines.push(`${at}: expected one of ${OPERATION_NAMES.join(', ')}`);
        break;
      case 'invalid_type':
        lines.push(
          `${at}: ${issue.message.startsWith('Expected') ? (issue.received === 'undefined' ? `missing (expected ${issue.expected})` : `expected ${issue.expected}, got ${issue.received}`) : issue.message}`,
        );
        break;
      default:
        lines.push(`${at}: ${issue.message}`);
    }
  }
  return lines;
}

/** Validate a parsed JSON value as a workload; `source` names it in errors (a file path or a generator). */
export function parseWorkload(value: unknown, source: string): Workload {
  const result = workloadSchema.safeParse(value);
  if (!result.success) return fail(source, describeIssues(result.error.issues));
  // Each operation on its own: zod field by field, then the checks across fields, then normalised.
  const raw = result.data.operations;
  const operations: WorkloadOperation[] = [];
  const lines: string[] = [];
  for (let i = 0; i < raw.length; i++) {
    const op = operationSchema.safeParse(raw[i]);
    if (!op.success) {
      lines.push(...describeIssues(op.error.issues, ['operations', i]));
      continue;
    }
    const problem = checkOperation(op.data);
    if (problem !== undefined) lines.push(`${formatPath(['operations', i, problem.field])}: ${problem.message}`);
    else operations.push(normaliseOperation(op.data));
  }
  if (lines.length > 0) return fail(source, lines);
  return { ...result.data, operations };
}

function fail(source: string, lines: readonly string[]): never {
  const shown = lines.slice(0, MAX_PROBLEMS);
  if (lines.length > MAX_PROBLEMS) shown.push(`… and ${lines.length - MAX_PROBLEMS} more`);
  throw new WorkloadInputError(source, shown);
}

/** Read and validate a JSON workload file; every problem names the file (and the line for bad JSON). */
export function readWorkloadFile(path: string): Workload {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory, not a workload file' : `cannot read it (${code ?? String(error)})`;
    throw new WorkloadInputError(path, [why]);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new WorkloadInputError(path, [`not valid JSON: ${jsonErrorWithLine(error instanceof Error ? error.message : String(error), text)}`]);
  }
  return parseWorkload(value, path);
}

/**
 * Where JSON.parse gave up, as an offset: from its message ("at position N"), or — for the
 * messages without one ("Unexpected token ']', …") — the shortest prefix that fails for another
 * reason than ending too soon (binary search: a prefix shorter than the error only ends early).
 */
function jsonErrorOffset(message: string, text: string): number {
  const m = /at position (\d+)/.exec(message);
  if (m !== null) return Number(m[1]);
  const endsEarly = (k: number): boolean => {
    try {
      JSON.parse(text.slice(0, k));
      return true;
    } catch (error) {
      const e = error instanceof Error ? error.message : '';
      const at = /at position (\d+)/.exec(e);
      return e.startsWith('Unexpected end') || (at !== null && Number(at[1]) >= k);
    }
  };
  let lo = 0;
  let hi = text.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (endsEarly(mid + 1)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** JSON.parse's complaint, short, with the line and column where it is. */
function jsonErrorWithLine(message: string, text: string): string {
  const at = Math.min(jsonErrorOffset(message, text), text.length);
  const before = text.slice(0, at);
  const line = before.split('\n').length;
  const column = at - before.lastIndexOf('\n');
  // V8 quotes the text around the error ('Unexpected token ',', "…" is not valid JSON'): keep the first clause.
  const short = message.replace(/ in JSON at position \d+.*$/s, '').replace(/, (\.\.\.)?".*" is not valid JSON$/s, '');
  return `${short} (line ${line}, column ${column})`;
}
