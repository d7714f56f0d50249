import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { x86ShadowBackend } from '@hvmmu/x86-shadow';
import { runRunCommand } from '../src/commands/RunCommand.js';
import { NO_PROGRESS, startProgress, type Progress, type ProgressStream } from '../src/progress/ProgressBar.js';
import { withOperationProgress, withTranslationProgress, workloadWeight } from '../src/progress/RunProgress.js';
import { replayLackeyTrace } from '../src/workloads/LackeyTraceReplay.js';
import { parseWorkload } from '../src/workloads/WorkloadParser.js';
import { runWorkload } from '../src/workloads/WorkloadRunner.js';
import { generateBuiltinWorkload } from '../src/workloads/generators/BuiltinWorkloads.js';

/**
 * The progress bar: on standard error only when it is a terminal, only after a second, cleared
 * when done, never with --json; and what feeds it (the workload's operations as the replay
 * reaches them, a trace replay's translations).
 */

/** What a bar draws that plain output never has: escape sequences, carriage returns, the bar's shades. */
function hasBarBytes(text: string): boolean {
  return text.includes('\u001b') || text.includes('\r') || text.includes('░') || text.includes('█');
}

class FakeTerminal implements ProgressStream {
  readonly isTTY: boolean;
  readonly columns = 120;
  written = '';
  constructor(isTTY: boolean) {
    this.isTTY = isTTY;
  }
  write(chunk: string): boolean {
    this.written += chunk;
    return true;
  }
}

class RecordingProgress implements Progress {
  readonly values: number[] = [];
  stopped = false;
  update(done: number): void {
    this.values.push(done);
  }
  stop(): void {
    this.stopped = true;
  }
}

describe('startProgress', () => {
  it('draws nothing on a stream that is not a terminal, or on none', () => {
    const piped = new FakeTerminal(false);
    expect(startProgress(piped, { label: 'x', total: 10 })).toBe(NO_PROGRESS);
    expect(startProgress(undefined, { label: 'x', total: 10 })).toBe(NO_PROGRESS);
    expect(piped.written).toBe('');
  });

  it('on a terminal: nothing before the delay, then the bar with its label and percentage, cleared on stop', () => {
    let now = 1000;
    const tty = new FakeTerminal(true);
    const progress = startProgress(tty, { label: 'x86-shadow: random', total: 200, clock: () => now });
    progress.update(10);
    now += 999;
    progress.update(20);
    expect(tty.written).toBe('');
    now += 1;
    progress.update(100);
    expect(tty.written).toContain('x86-shadow: random [');
    expect(tty.written).toContain('50%');
    progress.stop();
    // clearOnComplete: the line is erased (ESC [2K) and the cursor shown again (ESC [?25h).
    expect(tty.written).toContain('\u001b[?25h');
    expect(tty.written.endsWith('\u001b[2K')).toBe(true);
    const length = tty.written.length;
    progress.update(150);
    expect(tty.written.length).toBe(length);
  });

  it('without a total: a running count and rate in the unit', () => {
    let now = 0;
    const tty = new FakeTerminal(true);
    const progress = startProgress(tty, { label: 'trace', unit: 'translations', clock: () => now, startedAt: -2000 });
    now = 2000;
    progress.update(123_456);
    expect(tty.written).toContain('trace | 123,456 translations | 30,864 translations/s');
    progress.stop();
  });
});

describe('what feeds the bar', () => {
  const workload = parseWorkload(generateBuiltinWorkload('random:pages=64,accesses=2000'), 'random');

  it("a workload's operations report the work before each operation the replay reaches, only forwards; the run's counts are unchanged", () => {
    const progress = new RecordingProgress();
    const tracked = withOperationProgress(workload, progress);
    // The runner's checks iterate (for-of, forEach, some): they report nothing.
    for (const _ of tracked.operations);
    tracked.operations.forEach(() => {});
    expect(tracked.operations.some((op) => op.op === 'protect')).toBe(false);
    expect(progress.values).toEqual([]);
    const plain = runWorkload(x86ShadowBackend, workload);
    const result = runWorkload(x86ShadowBackend, tracked);
    expect({ ...result, elapsedMs: 0, accessesPerSecond: 0 }).toEqual({ ...plain, elapsedMs: 0, accessesPerSecond: 0 });
    const values = progress.values;
    expect(values.length).toBeGreaterThan(workload.operations.length / 2);
    for (let i = 1; i < values.length; i++) expect(values[i]!).toBeGreaterThan(values[i - 1]!);
    const last = workload.operations.at(-1)!;
    expect(values.at(-1)).toBe(workloadWeight(workload) - (last.op === 'access' ? last.count * last.repeat : 1));
  });

  it('with nothing to show, the workload is passed through as it is', () => {
    expect(withOperationProgress(workload, NO_PROGRESS)).toBe(workload);
  });

  it("a trace replay's translations are sampled from its VM while it runs, and the progress is stopped at the end", async () => {
    const progress = new RecordingProgress();
    const trace = fileURLToPath(new URL('./fixtures/lackey-true.trace.gz', import.meta.url));
    const plain = await replayLackeyTrace(x86ShadowBackend, trace);
    const result = await withTranslationProgress(x86ShadowBackend, progress, (b) => replayLackeyTrace(b, trace), 1);
    expect(result.accesses).toBe(plain.accesses);
    expect(result.backend).toBe('x86-shadow');
    expect(progress.stopped).toBe(true);
    for (let i = 1; i < progress.values.length; i++) expect(progress.values[i]!).toBeGreaterThanOrEqual(progress.values[i - 1]!);
  });
});

describe('hvmmu run and its progress stream', () => {
  it('a stream that is not a terminal gets no byte; --json gets none even on a terminal', async () => {
    const piped = new FakeTerminal(false);
    const tty = new FakeTerminal(true);
    let out = '';
    const collect = (s: string): void => {
      out += s;
    };
    expect(await runRunCommand({ backend: 'x86-shadow', workload: 'random:pages=64,accesses=2000' }, collect, piped)).toBe(0);
    expect(await runRunCommand({ backend: 'x86-shadow', workload: 'random:pages=64,accesses=2000', json: true }, collect, tty)).toBe(0);
    expect(piped.written).toBe('');
    expect(tty.written).toBe('');
    expect(hasBarBytes(out)).toBe(false);
  });
});

// End to end: the built command in a child process, its output piped, and in a terminal.
const MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const HAS_MAIN = existsSync(MAIN);
const NO_MAIN = `${MAIN} is missing: npm run build first (npm test does)`;
const HAS_SCRIPT = spawnSync('script', ['--version']).status === 0;
// A run of about three seconds: long enough for the bar (which waits one).
const LONG_RUN = ['run', '--backend', 'x86-shadow', '--workload', 'random:accesses=1500000'];

describe('hvmmu run, built, in a child process', () => {
  it('piped: standard output and standard error have no progress-bar bytes', (ctx) => {
    if (!HAS_MAIN) ctx.skip(NO_MAIN);
    const r = spawnSync(process.execPath, [MAIN, ...LONG_RUN], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('hvmmu run: random:accesses=1500000 on x86-shadow');
    expect(hasBarBytes(r.stdout)).toBe(false);
    expect(r.stderr).toBe('');
  });

  it('in a terminal (util-linux script): the bar is drawn and erased; with --json it is not drawn', (ctx) => {
    if (!HAS_MAIN) ctx.skip(NO_MAIN);
    if (!HAS_SCRIPT) ctx.skip("util-linux's script (a pseudo-terminal for the child) is not installed");
    const inTerminal = (args: string[]): string => {
      const command = [process.execPath, MAIN, ...args].map((a) => `'${a}'`).join(' ');
      const r = spawnSync('script', ['-qec', command, '/dev/null'], { encoding: 'utf8' });
      expect(r.status).toBe(0);
      return r.stdout;
    };
    const text = inTerminal(LONG_RUN);
    expect(text).toMatch(/x86-shadow: random:accesses=1500000 \[[░█]+\] \d+%/u);
    expect(text).toContain('\u001b[2K');
    const json = inTerminal([...LONG_RUN, '--json']);
    // A terminal turns \n into \r\n; nothing else may be there.
    expect(hasBarBytes(json.replaceAll('\r\n', '\n'))).toBe(false);
    expect((JSON.parse(json) as { accesses: number }).accesses).toBe(1_500_000);
  });
});
