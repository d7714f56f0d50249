import { defineMmuConformanceSuite } from '@hvmmu/conformance';
import { propertyRuns } from '../../../../test-support/propertyRuns.js';
import { createHptHarness } from './hptHarness.js';

// The backend-agnostic MMU contract, run against KVM HV's hash MMU with a
// pseries guest mapping 4K pages through H_ENTER, once per memslot-invalidation strategy.
defineMmuConformanceSuite(createHptHarness(), { numRuns: propertyRuns(60), hypercallRuns: propertyRuns(100) });
