import { createIdentityMapBackend, createIdentityMapHarness, defineMmuConformanceSuite, identityMapBackend } from '@hvmmu/conformance';

// The whole contract, against the reference backend with every feature on
// (both memslot-invalidation strategies) ...
defineMmuConformanceSuite(createIdentityMapHarness(identityMapBackend));

// ... and with every optional feature off, so the suite's "declared absent,
// and refused" branches run against a real backend too.
defineMmuConformanceSuite(
  createIdentityMapHarness(createIdentityMapBackend({ dirtyLogging: false, readOnlyMemslots: false, hostInvalidation: false, hypercalls: false })),
  { numRuns: 30 },
);
