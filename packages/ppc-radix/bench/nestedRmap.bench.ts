import { NestedRmapNodes, NestedRmapSlots } from '@hvmmu/ppc-radix';
import { nsPerOp, pairedNs, type BenchContext, type BenchFigure, type BenchSuite } from '../../../bench/src/BenchFigure.js';

const PAGES = 4096;

/**
 * Inserting one more entry into lists of `size` (the dedup scan over all of
 * them, then a node pushed), against appending the same two words to a raw
 * typed array. Each round refills the pages, so every timed insert is new.
 */
function insertVsAppend(ctx: BenchContext, size: number): BenchFigure {
  const nodes = new NestedRmapNodes(PAGES * (size + 2));
  const raw = new Uint32Array(PAGES * 2 * 4);
  let slots = new NestedRmapSlots(PAGES, nodes);
  let round = 0;
  const fillPages = (): void => {
    slots.freeAll();
    slots = new NestedRmapSlots(PAGES, nodes);
    for (let p = 0; p < PAGES; p++) for (let k = 0; k < size; k++) slots.insert(p, 1 + (k % 7), k);
  };
  const ours = (): number => {
    fillPages();
    round++;
    let n = 0;
    const t0 = performance.now();
    for (let p = 0; p < PAGES; p++) if (slots.insert(p, 9, 100_000 + round)) n++;
    oursTime += performance.now() - t0;
    return n;
  };
  let oursTime = 0;
  const append = (): number => {
    let at = 0;
    for (let p = 0; p < PAGES; p++) {
      raw[at++] = (9 << 20) >>> 0;
      raw[at++] = ((100_000 + p) * 4096) >>> 0;
    }
    return at;
  };
  // Time only the inserts: the refill is measured out by running it alone.
  const rounds = ctx.quick ? 20 : 200;
  for (let r = 0; r < rounds; r++) ours(); // warm-up: optimised code for both
  oursTime = 0;
  for (let r = 0; r < rounds; r++) ours();
  const insertNs = (oursTime * 1e6) / (rounds * PAGES);
  const appendNs = nsPerOp(append, PAGES, ctx.quick ? 3 : 9, ctx.quick ? 20 : 100);
  void pairedNs;
  return {
    value: insertNs,
    baseline: appendNs,
    ratio: insertNs / appendNs,
    unit: 'ns/insert',
    ratioMeaning: `insert into lists of ${size} (dedup scan + node) / raw two-word append`,
  };
}

/** Emptying a page named by `size` entries (detach the list, visit each entry, free the nodes), per entry. */
function invalidate(ctx: BenchContext, size: number): BenchFigure {
  const nodes = new NestedRmapNodes(PAGES * (size + 2));
  const slots = new NestedRmapSlots(PAGES, nodes);
  let visited = 0;
  const visit = (): void => {
    visited++;
  };
  let total = 0;
  const rounds = ctx.quick ? 10 : 100;
  for (let r = 0; r < 2 * rounds; r++) {
    if (r === rounds) {
      // The first half warmed the code up; time the second.
      total = 0;
      visited = 0;
    }
    for (let p = 0; p < PAGES; p++) for (let k = 0; k < size; k++) slots.insert(p, 1 + (k % 7), k);
    const t0 = performance.now();
    for (let p = 0; p < PAGES; p++) slots.detachAll(p, visit);
    total += performance.now() - t0;
  }
  if (visited !== rounds * PAGES * size) throw new Error('bench: wrong number of entries visited');
  const perEntry = (total * 1e6) / (rounds * PAGES * size);
  return { value: perEntry, baseline: perEntry, ratio: 1, unit: 'ns/entry', ratioMeaning: `invalidation of a page named by ${size} entries, per entry` };
}

/** Bytes per entry: node storage per list entry beyond the first (which lives in the slot word). */
function bytesPerEntry(): BenchFigure {
  const nodes = new NestedRmapNodes(1);
  const slots = new NestedRmapSlots(1024, nodes);
  for (let p = 0; p < 1024; p++) for (let k = 0; k < 9; k++) slots.insert(p, 1 + k, p);
  const perEntry = (nodes.inUse * 16) / (1024 * 8);
  return { value: perEntry, baseline: 16, ratio: perEntry / 16, unit: 'B/entry', ratioMeaning: 'bytes per list node entry / 16 (target ≤ 16)', target: '≤ 1' };
}

export const nestedRmapSuite: BenchSuite = {
  name: 'ppc.radix.nestedRmap',
  run: (ctx) => ({
    bytesPerEntry: bytesPerEntry(),
    insert1: insertVsAppend(ctx, 1),
    insert8: insertVsAppend(ctx, 8),
    insert64: insertVsAppend(ctx, 64),
    invalidate1: invalidate(ctx, 1),
    invalidate8: invalidate(ctx, 8),
    invalidate64: invalidate(ctx, 64),
  }),
};
