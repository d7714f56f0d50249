import type { WorkloadOperationInput } from '../WorkloadSchema.js';
import type { WorkloadGenerator } from './WorkloadGenerator.js';
import { DATA_SLOT, USER_VPN } from './WorkloadGenerator.js';

/**
 * `host-events`: the host's side while a guest works — each round the guest writes every page of
 * a dirty-logged memslot, the host harvests the dirty log (as live migration does) and invalidates
 * the frames behind a quarter of the pages (as swapping or page migration does), and the guest
 * reads every page again; at the end the host deletes the memslot and creates it anew (the
 * memslot-invalidation strategy at work: compare `--memslot-invalidation invalid-rmap` and
 * `fast-zap`), and the guest reads fresh pages.
 */
export const hostEventsWorkload: WorkloadGenerator = {
  name: 'host-events',
  description: 'dirty-log harvests, host invalidations and a memslot deleted and recreated under a working guest',
  parameters: {
    pages: { default: 1024, min: 4, max: 1 << 20, description: 'pages of the dirty-logged memslot, all mapped' },
    rounds: { default: 8, min: 1, max: 1 << 16, description: 'rounds of write, harvest, invalidate, read' },
  },
  generate({ pages, rounds }) {
    const p = pages!;
    const operations: WorkloadOperationInput[] = [
      { op: 'createMemslot', slot: DATA_SLOT, gfn: 0, pages: p, dirtyLog: true },
      { op: 'map', vpn: USER_VPN, gfn: 0, count: p, rights: 'rwu' },
    ];
    for (let round = 0; round < rounds!; round++) {
      operations.push(
        { op: 'access', kind: 'write', vpn: USER_VPN, count: p },
        { op: 'harvestDirtyLog', slot: DATA_SLOT },
        { op: 'invalidate', gfn: (round * Math.floor(p / 4)) % p, count: Math.floor(p / 4) },
        { op: 'access', kind: 'read', vpn: USER_VPN, count: p },
      );
    }
    operations.push(
      { op: 'deleteMemslot', slot: DATA_SLOT },
      { op: 'createMemslot', slot: DATA_SLOT, gfn: 0, pages: p },
      { op: 'access', kind: 'read', vpn: USER_VPN, count: p },
    );
    return {
      version: 1,
      name: `host-events:pages=${p},rounds=${rounds}`,
      description: this.description,
      operations,
    };
  },
};
