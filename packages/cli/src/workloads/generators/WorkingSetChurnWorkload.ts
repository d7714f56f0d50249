import type { WorkloadOperationInput } from '../WorkloadSchema.js';
import { SeededRandom } from './SeededRandom.js';
import type { WorkloadGenerator } from './WorkloadGenerator.js';
import { DATA_SLOT, USER_VPN } from './WorkloadGenerator.js';

/**
 * `working-set`: a process with `pages` mapped pages whose accesses go 90% to a hot set of `hot`
 * pages, while its kernel keeps changing the page tables: each round remaps `remaps` random pages
 * to fresh frames (page-table churn: the shadow MMU must see every change), write-protects one hot
 * page and writes to it (a guest #PF, as copy-on-write starts), then restores it. Seeded.
 */
export const workingSetChurnWorkload: WorkloadGenerator = {
  name: 'working-set',
  description: 'a hot working set while the guest kernel remaps and write-protects pages (page-table churn, seeded)',
  parameters: {
    pages: { default: 2048, min: 2, max: 1 << 22, description: 'pages mapped' },
    hot: { default: 128, min: 1, max: 1 << 22, description: 'pages in the hot set (at most pages)' },
    rounds: { default: 40, min: 1, max: 1 << 20, description: 'rounds of accesses and table changes' },
    accessesPerRound: { default: 2000, min: 1, max: 1 << 24, description: 'accesses per round' },
    remaps: { default: 8, min: 0, max: 1 << 16, description: 'pages remapped per round' },
    seed: { default: 7, min: 0, max: 0xffff_ffff, description: 'random seed' },
  },
  generate({ pages, hot, rounds, accessesPerRound, remaps, seed }) {
    const p = pages!;
    const h = Math.min(hot!, p);
    const rng = new SeededRandom(seed!);
    // Twice as many frames as pages: remaps move pages to frames not used before.
    const frames = 2 * p;
    const operations: WorkloadOperationInput[] = [
      { op: 'createMemslot', slot: DATA_SLOT, gfn: 0, pages: frames },
      { op: 'map', vpn: USER_VPN, gfn: 0, count: p, rights: 'rwu' },
    ];
    for (let round = 0; round < rounds!; round++) {
      for (let k = 0; k < accessesPerRound!; k++) {
        const page = rng.below(10) === 0 ? rng.below(p) : rng.below(h);
        const kind = rng.below(4) === 0 ? 'write' : 'read';
        operations.push({ op: 'access', kind, va: (USER_VPN + page) * 4096 + rng.below(512) * 8 });
      }
      for (let r = 0; r < remaps!; r++) {
        operations.push({ op: 'map', vpn: USER_VPN + rng.below(p), gfn: rng.below(frames), rights: 'rwu' });
      }
      const victim = USER_VPN + rng.below(h);
      operations.push(
        { op: 'protect', vpn: victim, rights: 'ru' },
        { op: 'access', kind: 'write', vpn: victim },
        { op: 'protect', vpn: victim, rights: 'rwu' },
      );
    }
    return {
      version: 1,
      name: `working-set:pages=${p},hot=${h},rounds=${rounds},accessesPerRound=${accessesPerRound},remaps=${remaps},seed=${seed}`,
      description: this.description,
      operations,
    };
  },
};
