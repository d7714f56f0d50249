import { defineMmuConformanceSuite } from '@hvmmu/conformance';
import { createRadixHarness } from './helpers/radixHarness.js';
import { propertyRuns } from '../../../../test-support/propertyRuns.js';

// The backend-agnostic MMU contract, run against KVM-HV's radix host side with
// a radix guest, once per memslot-invalidation strategy (invalid-rmap, fast-zap).
defineMmuConformanceSuite(createRadixHarness(), { numRuns: propertyRuns(60), hypercallRuns: propertyRuns(100) });
