/**
 * How many runs a property test makes: its own default, or `PROP_RUNS` when
 * that is larger. `npm test` keeps the defaults (fast); `npm run test:deep`
 * sets PROP_RUNS=1000 so every property test runs at least a thousand cases.
 * A bad value is refused rather than silently ignored.
 */
export function propertyRuns(defaultRuns: number): number {
  const raw = process.env['PROP_RUNS'];
  if (raw === undefined || raw === '') return defaultRuns;
  const runs = Number(raw);
  if (!Number.isInteger(runs) || runs < 1) throw new Error(`PROP_RUNS must be a positive integer, got '${raw}'`);
  return Math.max(defaultRuns, runs);
}
