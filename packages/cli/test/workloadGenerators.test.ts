import { describe, expect, it } from 'vitest';
import { x86ShadowBackend } from '@hvmmu/x86-shadow';
import { WorkloadInputError } from '../src/workloads/WorkloadInputError.js';
import { parseWorkload } from '../src/workloads/WorkloadParser.js';
import { runWorkload } from '../src/workloads/WorkloadRunner.js';
import { BUILTIN_WORKLOADS, generateBuiltinWorkload } from '../src/workloads/generators/BuiltinWorkloads.js';
import { SeededRandom } from '../src/workloads/generators/SeededRandom.js';

/** Small parameters for each built-in, so the whole set runs in well under a second. */
const SMALL: Record<string, string> = {
  sequential: 'sequential:pages=64,perPage=4,passes=3',
  random: 'random:pages=256,accesses=2000,seed=3',
  strided: 'strided:pages=4096,stride=1024,passes=3',
  'working-set': 'working-set:pages=256,hot=32,rounds=4,accessesPerRound=200,remaps=3',
  'many-spaces': 'many-spaces:spaces=4,pages=16,rounds=2,sweeps=2',
  'host-events': 'host-events:pages=16,rounds=2',
};

describe('built-in workload generators', () => {
  it('every built-in, with its defaults and small parameters, is a valid workload', () => {
    expect(BUILTIN_WORKLOADS.map((g) => g.name)).toEqual(Object.keys(SMALL));
    for (const g of BUILTIN_WORKLOADS) {
      expect(() => parseWorkload(generateBuiltinWorkload(g.name), g.name), g.name).not.toThrow();
      expect(() => parseWorkload(generateBuiltinWorkload(SMALL[g.name]!), g.name), g.name).not.toThrow();
      for (const [key, p] of Object.entries(g.parameters)) {
        expect(p.default, `${g.name}.${key}`).toBeGreaterThanOrEqual(p.min);
        expect(p.default, `${g.name}.${key}`).toBeLessThanOrEqual(p.max);
      }
    }
  });

  it('is deterministic: the same parameters give the same operations, another seed others', () => {
    for (const spec of Object.values(SMALL)) expect(generateBuiltinWorkload(spec), spec).toEqual(generateBuiltinWorkload(spec));
    expect(generateBuiltinWorkload('random:pages=256,accesses=2000,seed=4')).not.toEqual(generateBuiltinWorkload(SMALL['random']!));
    // The seeded generator itself: fixed values for seed 1 (mulberry32), on every machine.
    const rng = new SeededRandom(1);
    expect([rng.nextUint32(), rng.nextUint32(), rng.nextUint32()]).toEqual([2693262067, 11749833, 2265367787]);
  });

  it('each built-in runs on x86 shadow paging with the counts its shape implies', () => {
    const result = (spec: string) => runWorkload(x86ShadowBackend, parseWorkload(generateBuiltinWorkload(spec), spec), { memoryBytes: 64 << 20 });
    const seq = result(SMALL['sequential']!);
    expect([seq.accesses, seq.tlbMisses, seq.tlbHits]).toEqual([64 * 4 * 3, 64, 64 * 4 * 3 - 64]);
    const strided = result(SMALL['strided']!);
    // 4 pages 1024 apart share one TLB entry: every access misses.
    expect([strided.accesses, strided.tlbMisses, strided.tlbHits]).toEqual([12, 12, 0]);
    const random = result(SMALL['random']!);
    expect(random.accesses).toBe(2000);
    expect(random.faults.guest).toBe(0);
    const churn = result(SMALL['working-set']!);
    // Per round: 200 accesses + one write to the write-protected page, a guest #PF.
    expect(churn.accesses).toBe(4 * 201);
    expect(churn.faults.guest).toBe(4);
    expect(churn.guest.protects).toBe(8);
    const spaces = result(SMALL['many-spaces']!);
    // Round 1 reads: each time slice starts with a CR3 load (TLB flushed): 16 misses, then 16 hits.
    // Round 2 writes: each page's first write copies it off the zero frame, and dropping the
    // zero-frame mapping flushes every TLB (kvm_flush_remote_tlbs): 16 misses, then only the
    // last page written is still cached: 15 misses and 1 hit.
    expect([spaces.tlbMisses, spaces.tlbHits]).toEqual([4 * 16 + 4 * (16 + 15), 4 * 16 + 4 * 1]);
    expect([spaces.guest.spaceSwitches, spaces.guest.spacesCreated]).toEqual([8, 3]);
    // One remote flush per copy-on-write at least (the guest kernel's table stores add their own).
    expect(spaces.backendStats['remoteTlbFlushes']).toBeGreaterThanOrEqual(4 * 16);
    const host = result(SMALL['host-events']!);
    // Per round: 16 writes (all logged, then harvested), a quarter of the pages invalidated, 16 reads; then 16 reads of the new slot.
    expect(host.accesses).toBe(2 * 32 + 16);
    expect(host.host).toEqual({ memslotChanges: 3, pagesInvalidated: 2 * 4, mappingsDropped: 2 * 4, dirtyPagesHarvested: 2 * 16 });
    expect(host.faults.vmm + host.faults.guest).toBe(0);
  });

  it('refuses unknown workloads and parameters, and values out of bounds, by name', () => {
    const problems = (spec: string) => {
      try {
        generateBuiltinWorkload(spec);
      } catch (error) {
        if (error instanceof WorkloadInputError) return error.message;
        throw error;
      }
      return 'accepted';
    };
    expect(problems('nope')).toBe(
      "--workload nope: no built-in workload 'nope' (built-in: sequential, random, strided, working-set, many-spaces, host-events) and no such file",
    );
    expect(problems('random:colour=3')).toBe("--workload random:colour=3: random has no parameter 'colour' (it has pages, accesses, writePercent, seed)");
    expect(problems('random:pages=0')).toBe("--workload random:pages=0: pages: expected an integer in 1..16777216, got '0'");
    expect(problems('random:pages=')).toBe("--workload random:pages=: pages: expected an integer in 1..16777216, got ''");
    expect(problems('sequential:perPage=3')).toMatch(/perPage: expected an integer in 1..4096, a power of two, got '3'/);
    expect(problems('random:pages=0x100,seed=1_000')).toBe('accepted');
  });
});
