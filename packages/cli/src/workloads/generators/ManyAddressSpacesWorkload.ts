import type { WorkloadOperationInput } from '../WorkloadSchema.js';
import type { WorkloadGenerator } from './WorkloadGenerator.js';
import { DATA_SLOT, USER_VPN } from './WorkloadGenerator.js';

/**
 * `many-spaces`: `spaces` processes, each with `pages` pages of its own at the same virtual
 * addresses, scheduled round-robin: every switch activates the next address space (x86: a CR3
 * load; radix: a PID; HPT: its segments) and sweeps its pages `sweeps` times. On x86 without
 * PCIDs a CR3 load flushes the TLB, so each time slice starts cold; where the context is part of
 * the TLB tag instead (radix), the spaces' identical pages still compete for the same entries of
 * the direct-mapped TLB.
 */
export const manyAddressSpacesWorkload: WorkloadGenerator = {
  name: 'many-spaces',
  description: 'processes at the same virtual addresses, switched round-robin, each sweeping its pages',
  parameters: {
    spaces: { default: 16, min: 1, max: 4096, description: 'address spaces (processes)' },
    pages: { default: 64, min: 1, max: 1 << 20, description: 'pages per address space' },
    rounds: { default: 20, min: 1, max: 1 << 20, description: 'times every space runs' },
    sweeps: { default: 4, min: 1, max: 1 << 20, description: "sweeps over the space's pages each time it runs" },
  },
  generate({ spaces, pages, rounds, sweeps }) {
    const n = spaces!;
    const p = pages!;
    const operations: WorkloadOperationInput[] = [{ op: 'createMemslot', slot: DATA_SLOT, gfn: 0, pages: n * p }];
    if (n > 1) operations.push({ op: 'createSpace', count: n - 1 });
    for (let s = 0; s < n; s++) operations.push({ op: 'map', space: s, vpn: USER_VPN, gfn: s * p, count: p, rights: 'rwu' });
    for (let round = 0; round < rounds!; round++) {
      for (let s = 0; s < n; s++) {
        operations.push({ op: 'switchSpace', space: s }, { op: 'access', kind: round % 2 === 0 ? 'read' : 'write', vpn: USER_VPN, count: p, repeat: sweeps });
      }
    }
    return {
      version: 1,
      name: `many-spaces:spaces=${n},pages=${p},rounds=${rounds},sweeps=${sweeps}`,
      description: this.description,
      operations,
    };
  },
};
