import type { BenchSuite } from './BenchFigure.js';
import { coreTlbSuite } from './coreTlb.bench.js';
import { x86WalkSuite } from './x86Walk.bench.js';

/** Every benchmark suite `npm run bench` runs, in order. */
export const suites: readonly BenchSuite[] = [coreTlbSuite, x86WalkSuite];
