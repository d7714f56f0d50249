import type { WorkloadGenerator } from './WorkloadGenerator.js';
import { DATA_SLOT, USER_VPN } from './WorkloadGenerator.js';

/**
 * `strided`: map `pages` pages and walk them `stride` pages apart, `passes` times (a column of a
 * row-major matrix). With a stride that is a multiple of the TLB's size every page lands in the
 * same few TLB sets of a direct-mapped TLB: the passes after the first miss anyway (conflict misses).
 */
export const stridedWorkload: WorkloadGenerator = {
  name: 'strided',
  description: 'walk a mapped region a fixed number of pages apart, several passes (TLB conflicts)',
  parameters: {
    pages: { default: 16384, min: 1, max: 1 << 24, description: 'pages mapped' },
    stride: { default: 512, min: 1, max: 1 << 24, description: 'pages between consecutive accesses' },
    passes: { default: 64, min: 1, max: 1 << 20, description: 'walks over the region' },
  },
  generate({ pages, stride, passes }) {
    const p = pages!;
    const s = stride!;
    const touched = Math.ceil(p / s);
    return {
      version: 1,
      name: `strided:pages=${p},stride=${s},passes=${passes}`,
      description: this.description,
      operations: [
        { op: 'createMemslot', slot: DATA_SLOT, gfn: 0, pages: p },
        { op: 'map', vpn: USER_VPN, gfn: 0, count: p, rights: 'rwu' },
        { op: 'access', kind: 'read', vpn: USER_VPN, count: touched, stride: s, repeat: passes },
      ],
    };
  },
};
