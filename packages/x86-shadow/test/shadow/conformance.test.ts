import { defineMmuConformanceSuite } from '@hvmmu/conformance';
import { createX86Harness } from './helpers/x86Harness.js';
import { propertyRuns } from '../../../../test-support/propertyRuns.js';

// The backend-agnostic MMU contract, run against the x86 shadow MMU with a
// 4-level guest, once per memslot-invalidation strategy (fast-zap, invalid-rmap).
defineMmuConformanceSuite(createX86Harness(), { numRuns: propertyRuns(60), hypercallRuns: propertyRuns(100) });
