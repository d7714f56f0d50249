import type { WorkloadOperationInput } from '../WorkloadSchema.js';
import { SeededRandom } from './SeededRandom.js';
import type { WorkloadGenerator } from './WorkloadGenerator.js';
import { DATA_SLOT, USER_VPN } from './WorkloadGenerator.js';

/**
 * `random`: map `pages` pages, then touch them in random order — each step a burst of 1 to 8
 * consecutive 64-byte lines in one random page, a write with probability `writePercent`/100
 * (a hash table, a heap). Seeded: the same seed gives the same operations.
 */
export const randomWorkload: WorkloadGenerator = {
  name: 'random',
  description: 'random bursts over a mapped region, some of them writes (seeded)',
  parameters: {
    pages: { default: 4096, min: 1, max: 1 << 24, description: 'pages mapped' },
    accesses: { default: 50_000, min: 1, max: 1 << 26, description: 'accesses in all' },
    writePercent: { default: 25, min: 0, max: 100, description: 'percentage of bursts that write' },
    seed: { default: 1, min: 0, max: 0xffff_ffff, description: 'random seed' },
  },
  generate({ pages, accesses, writePercent, seed }) {
    const rng = new SeededRandom(seed!);
    const operations: WorkloadOperationInput[] = [
      { op: 'createMemslot', slot: DATA_SLOT, gfn: 0, pages: pages! },
      { op: 'map', vpn: USER_VPN, gfn: 0, count: pages!, rights: 'rwu' },
    ];
    for (let done = 0; done < accesses!; ) {
      const burst = Math.min(1 + rng.below(8), accesses! - done);
      const line = rng.below(64 - burst + 1);
      const vpn = USER_VPN + rng.below(pages!);
      const kind = rng.chance(writePercent! / 100) ? 'write' : 'read';
      operations.push({ op: 'access', kind, va: vpn * 4096 + line * 64, count: burst, stride: 64 });
      done += burst;
    }
    return {
      version: 1,
      name: `random:pages=${pages},accesses=${accesses},writePercent=${writePercent},seed=${seed}`,
      description: this.description,
      operations,
    };
  },
};
