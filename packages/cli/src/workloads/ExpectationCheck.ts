import type { WorkloadRunResult } from './WorkloadRunResult.js';
import type { WorkloadExpectation } from './WorkloadSchema.js';

/** The result's value of each count a workload's `expect` block can name. */
function actual(result: WorkloadRunResult, key: keyof WorkloadExpectation): number {
  switch (key) {
    case 'accesses':
      return result.accesses;
    case 'tlbHits':
      return result.tlbHits;
    case 'tlbMisses':
      return result.tlbMisses;
    case 'guestFaults':
      return result.faults.guest;
    case 'hypervisorFaults':
      return result.faults.hypervisor;
    case 'vmmExits':
      return result.faults.vmm;
  }
}

/** One line per count that differs from what the workload expects (none: as expected). */
export function checkExpectation(result: WorkloadRunResult, expectation: WorkloadExpectation | undefined): string[] {
  if (expectation === undefined) return [];
  const differences: string[] = [];
  for (const key of Object.keys(expectation) as (keyof WorkloadExpectation)[]) {
    const want = expectation[key];
    if (want === undefined) continue;
    const got = actual(result, key);
    if (got !== want) differences.push(`expect.${key}: expected ${want}, got ${got}`);
  }
  return differences;
}
