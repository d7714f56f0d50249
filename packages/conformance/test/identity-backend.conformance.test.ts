import { createIdentityMapHarness, defineMmuConformanceSuite } from '@hvmmu/conformance';
import { createIdentityMapBackend, identityMapBackend } from '@hvmmu/reference';
import { propertyRuns } from '../../../test-support/propertyRuns.js';

// The whole contract, against the reference backend with every feature on
// (both memslot-invalidation strategies) ...
defineMmuConformanceSuite(createIdentityMapHarness(identityMapBackend), { numRuns: propertyRuns(100), hypercallRuns: propertyRuns(100) });

// ... and with every optional feature off, so the suite's "declared absent,
// and refused" branches run against a real backend too.
defineMmuConformanceSuite(
  createIdentityMapHarness(createIdentityMapBackend({ dirtyLogging: false, readOnlyMemslots: false, hostInvalidation: false, hypercalls: false })),
  { numRuns: propertyRuns(30), hypercallRuns: propertyRuns(100) },
);
