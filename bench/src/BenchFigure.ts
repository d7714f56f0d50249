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
