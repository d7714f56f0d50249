import type { WorkloadGenerator } from './WorkloadGenerator.js';
import { DATA_SLOT, USER_VPN } from './WorkloadGenerator.js';

/**
 * `sequential`: map `pages` fresh pages, then sweep them `passes` times front to back with
 * `perPage` reads per page (a stream over an array). The first pass misses the TLB once per page;
 * later passes hit while the pages fit the TLB.
 */
export const sequentialWorkload: WorkloadGenerator = {
  name: 'sequential',
  description: 'sweep fresh pages front to back, several reads per page, several passes',
  parameters: {
    pages: { default: 512, min: 1, max: 1 << 24, description: 'pages mapped and swept' },
    perPage: { default: 8, min: 1, max: 4096, powerOfTwo: true, description: 'reads per page in a pass, evenly spaced (a power of two)' },
    passes: { default: 4, min: 1, max: 1 << 20, description: 'sweeps over all pages' },
  },
  generate({ pages, perPage, passes }) {
    const p = pages!;
    const per = perPage!;
    return {
      version: 1,
      name: `sequential:pages=${p},perPage=${per},passes=${passes}`,
      description: this.description,
      operations: [
        { op: 'createMemslot', slot: DATA_SLOT, gfn: 0, pages: p },
        { op: 'map', vpn: USER_VPN, gfn: 0, count: p, rights: 'rwu' },
        { op: 'access', kind: 'read', va: USER_VPN * 4096, count: p * per, stride: 4096 / per, repeat: passes },
      ],
    };
  },
};
