import { defineMmuConformanceSuite } from '@hvmmu/conformance';
import { createRadixNestedHarness } from './helpers/radixNestedHarness.js';
import { propertyRuns } from '../../../../test-support/propertyRuns.js';

// The same backend-agnostic MMU contract with the guest one level down: an L2
// run by an L1 through H_ENTER_NESTED, its pages reached through the shadow tree
// and the nested rmap, once per memslot-invalidation strategy.
defineMmuConformanceSuite(createRadixNestedHarness(), { numRuns: propertyRuns(40), hypercallRuns: propertyRuns(60) });
