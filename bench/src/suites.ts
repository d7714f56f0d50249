import type { BenchSuite } from './BenchFigure.js';
import { coreTlbSuites } from './coreTlb.bench.js';
import { x86WalkSuite } from './x86Walk.bench.js';
import { radixWalkSuite } from '../../packages/ppc-radix/bench/radixWalk.bench.js';
import { hptWalkSuite } from '../../packages/ppc-hpt/bench/hptWalk.bench.js';
import { htabStreamSuite } from '../../packages/ppc-hpt/bench/htabStream.bench.js';
import { nestedRmapSuite } from '../../packages/ppc-radix/bench/nestedRmap.bench.js';
import { nestedFaultSuite, nestedInvalidateSuite, nestedMemorySuite } from '../../packages/ppc-radix/bench/nestedHv.bench.js';
import { x86MemslotDeleteSuite, x86ShadowFaultSuite, x86ShadowMemorySuite } from '../../packages/x86-shadow/bench/shadowMmu.bench.js';

/** Every benchmark suite `npm run bench` runs, in order. */
export const suites: readonly BenchSuite[] = [
  ...coreTlbSuites,
  x86WalkSuite,
  x86ShadowFaultSuite,
  x86MemslotDeleteSuite,
  x86ShadowMemorySuite,
  radixWalkSuite,
  nestedRmapSuite,
  nestedFaultSuite,
  nestedMemorySuite,
  nestedInvalidateSuite,
  hptWalkSuite,
  htabStreamSuite,
];
