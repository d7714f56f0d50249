/**
 * One benchmark figure: a value and a baseline measured in the same process
 * and run, and their ratio. The machine is shared and noisy, so only the
 * ratio is meaningful; absolute times are printed for context.
 */
export interface BenchFigure {
  readonly value: number;
  readonly baseline: number;
  /** value/baseline or baseline/value, as `ratioMeaning` says. */
  readonly ratio: number;
  readonly unit: string;
  /** How to read the ratio, e.g. "baseline ns / value ns (≥ 0.5 wanted)". */
  readonly ratioMeaning: string;
  /** Target, when the issue sets one, for the report. */
  readonly target?: string;
}

export interface BenchContext {
  /** Seconds instead of minutes: fewer iterations and smaller sizes (CI). */
  readonly quick: boolean;
}

/** A named group of figures, e.g. 'core.tlb' or 'x86.walk'. */
export interface BenchSuite {
  readonly name: string;
  /** Prefix of the figures' keys when it is not `name` (several suites sharing one, e.g. 'core.tlb'). */
  readonly keyPrefix?: string;
  run(ctx: BenchContext): Record<string, BenchFigure>;
}

/**
 * Nanoseconds per call of `fn` (which runs `inner` operations per call),
 * the median of `rounds` timed rounds after a warm-up. `fn` returns a number
 * that is accumulated so the JIT cannot drop the work.
 */
export function nsPerOp(fn: () => number, inner: number, rounds: number, minMs: number): number {
  let sink = 0;
  // Warm-up so both sides run optimised code.
  const warmEnd = performance.now() + Math.max(20, minMs / 2);
  while (performance.now() < warmEnd) sink += fn();
  const samples: number[] = [];
  for (let r = 0; r < rounds; r++) {
    let calls = 0;
    const start = performance.now();
    let now = start;
    do {
      sink += fn();
      calls++;
      now = performance.now();
    } while (now - start < minMs);
    samples.push(((now - start) * 1e6) / (calls * inner));
  }
  samples.sort((a, b) => a - b);
  if (sink === 0.5) console.log('');
  return samples[samples.length >> 1]!;
}

/**
 * Measure `value` and `baseline` interleaved (A B A B …) so drift in machine
 * load hits both sides alike; returns the median of each.
 */
export function pairedNs(value: () => number, baseline: () => number, inner: number, ctx: BenchContext): { value: number; baseline: number } {
  const rounds = ctx.quick ? 3 : 9;
  const minMs = ctx.quick ? 20 : 100;
  const v: number[] = [];
  const b: number[] = [];
  for (let r = 0; r < rounds; r++) {
    b.push(nsPerOp(baseline, inner, 1, minMs));
    v.push(nsPerOp(value, inner, 1, minMs));
  }
  v.sort((x, y) => x - y);
  b.sort((x, y) => x - y);
  return { value: v[v.length >> 1]!, baseline: b[b.length >> 1]! };
}

/**
 * A speed figure from a `pairedNs` timing: ratio = baseline time / value time,
 * so 1 means as fast as the baseline and a target reads "≥ x".
 */
export function speedFigure(t: { value: number; baseline: number }, unit: string, ratioMeaning: string, target: string): BenchFigure {
  return { value: t.value, baseline: t.baseline, ratio: t.baseline / t.value, unit, ratioMeaning, target };
}

/** The median of `xs` (the upper one of an even count). */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
}

/**
 * A fault figure in units of a raw walk: each round `reset` (untimed) puts
 * the pages back to "not mapped yet", `touch` faults `pages` of them in
 * (timed), then `raw` (`rawWalks` walks a call) runs for as long; the
 * medians of the rounds, ns per page and per raw walk. An untimed warm-up
 * of the same comes first: each suite runs in a fresh process, so both
 * sides must reach optimised code before the first timed round (a few
 * thousand faults are not enough for that). Returns the rounds the warm-up
 * took too, so a caller can check its counters.
 */
export function faultRoundsVsRaw(
  ctx: BenchContext,
  pages: number,
  reset: () => void,
  touch: () => number,
  raw: () => number,
  rawWalks: number,
): { value: number; baseline: number; warmRounds: number; rounds: number } {
  const rounds = ctx.quick ? 5 : 15;
  const faultNs: number[] = [];
  const rawNs: number[] = [];
  let sink = 0;
  const warmEnd = performance.now() + (ctx.quick ? 150 : 400);
  let warmRounds = 0;
  while (performance.now() < warmEnd) {
    reset();
    sink += touch() + raw();
    warmRounds++;
  }
  for (let r = 0; r < rounds; r++) {
    reset();
    const t0 = performance.now();
    sink += touch();
    const t1 = performance.now();
    let reps = 0;
    const t2 = performance.now();
    let t3 = t2;
    do {
      sink += raw();
      reps++;
      t3 = performance.now();
    } while (t3 - t2 < t1 - t0);
    faultNs.push(((t1 - t0) * 1e6) / pages);
    rawNs.push(((t3 - t2) * 1e6) / (reps * rawWalks));
  }
  if (sink === 0.5) console.log('');
  return { value: median(faultNs), baseline: median(rawNs), warmRounds, rounds };
}
