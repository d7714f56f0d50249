import fc from 'fast-check';

// PROP_SEED replays a failing property run: fast-check prints the seed (and
// path) of a counterexample; `PROP_SEED=<seed> npx vitest run <file>` runs the
// same cases again.
const seed = process.env['PROP_SEED'];
if (seed !== undefined && seed !== '') {
  const value = Number(seed);
  if (!Number.isInteger(value)) throw new Error(`PROP_SEED must be an integer, got '${seed}'`);
  fc.configureGlobal({ ...fc.readConfigureGlobal(), seed: value });
}
