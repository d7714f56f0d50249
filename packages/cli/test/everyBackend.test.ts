import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { BACKENDS, findBackend } from '../src/backends/BackendRegistry.js';
import { replayLackeyTrace } from '../src/workloads/LackeyTraceReplay.js';
import { parseWorkload } from '../src/workloads/WorkloadParser.js';
import { runWorkload } from '../src/workloads/WorkloadRunner.js';
import type { WorkloadRunResult } from '../src/workloads/WorkloadRunResult.js';
import { generateBuiltinWorkload } from '../src/workloads/generators/BuiltinWorkloads.js';

const IDS = ['x86-shadow', 'ppc-radix', 'ppc-hpt'];
const REAL_TRACE = fileURLToPath(new URL('./fixtures/lackey-true.trace.gz', import.meta.url));
const SMALL = [
  'sequential:pages=64,perPage=4,passes=3',
  'random:pages=256,accesses=2000,seed=3',
  'strided:pages=4096,stride=1024,passes=3',
  'working-set:pages=256,hot=32,rounds=4,accessesPerRound=200,remaps=3',
  'many-spaces:spaces=4,pages=16,rounds=2,sweeps=2',
  'host-events:pages=16,rounds=2',
];

/** What the guest and the host see, whatever the architecture: accesses, real guest faults (not the ones its kernel resolved), exits, host events. */
function guestView(r: WorkloadRunResult) {
  return {
    accesses: r.accesses,
    guestFaults: r.faults.guest - r.faults.guestResolved,
    vmmExits: r.faults.vmm,
    maps: r.guest.maps,
    protects: r.guest.protects,
    host: r.host,
  };
}

describe('the same workload on every backend (each through its own guest side)', () => {
  it('the registry has every backend, each with a guest side', async () => {
    expect(BACKENDS.map((b) => b.id)).toEqual(IDS);
    for (const id of IDS) {
      const backend = await findBackend(id);
      expect(backend.id).toBe(id);
      expect(backend.guestSide, id).toBeDefined();
    }
  });

  for (const spec of SMALL) {
    it(`${spec.slice(0, spec.indexOf(':'))}: the guest sees the same on x86 shadow, radix and hash`, async () => {
      const workload = parseWorkload(generateBuiltinWorkload(spec), spec);
      const backends = await Promise.all(IDS.map(findBackend));
      const results = backends.map((backend) => runWorkload(backend, workload, { memoryBytes: 64 << 20 }));
      for (const r of results) expect(r.faults.vmm + r.faults.hypervisor, r.backend).toBe(0);
      expect(results.map(guestView)).toEqual(results.map(() => guestView(results[0]!)));
      // Only the hash guest resolves faults itself (segment interrupts at least once).
      expect(results.map((r) => r.faults.guestResolved > 0)).toEqual([false, false, true]);
    });
  }

  it('the real trace of /bin/true: the same pages mapped on demand on every backend', async () => {
    const results = await Promise.all(IDS.map(async (id) => replayLackeyTrace(await findBackend(id), REAL_TRACE, { memoryBytes: 64 << 20, maxPages: 4096 })));
    expect(results.map(guestView)).toEqual(results.map(() => guestView(results[0]!)));
    expect(results[0]!.guest.maps).toBeGreaterThan(0);
  });
});
