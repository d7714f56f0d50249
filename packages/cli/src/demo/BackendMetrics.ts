/**
 * How to read one backend's own statistics (`vm.stats()`) as the quantities the
 * comparison shows. Each backend names its counters its own way; this is the one
 * place that knows the names (x86: X86ShadowStats; ppc-radix: PpcRadixStats;
 * ppc-hpt: PpcHptStats).
 */
export interface BackendMetrics {
  /** Faults the hypervisor resolved itself (shadow faults, partition-scoped faults, HPT host faults). */
  hypervisorFaults(stats: Readonly<Record<string, number>>): number;
  /** Memory references per hardware walk after a TLB miss. */
  refsPerWalk(stats: Readonly<Record<string, number>>, hostRootLevel: number): number;
  /** How that figure is obtained, for the explanation. */
  readonly refsSource: string;
  /** Host bytes of the translation tables the hardware walks (shadow tables, partition-scoped tree, both HPT views). */
  tableBytes(stats: Readonly<Record<string, number>>): number;
  /** Reverse-map entries and their host bytes. */
  rmapEntries(stats: Readonly<Record<string, number>>): number;
  rmapBytes(stats: Readonly<Record<string, number>>): number;
}

const n = (stats: Readonly<Record<string, number>>, key: string): number => stats[key] ?? 0;

export const BACKEND_METRICS: Readonly<Record<string, BackendMetrics>> = {
  'x86-shadow': {
    hypervisorFaults: (s) => n(s, 'shadowFaults'),
    // The hardware walks the shadow table: one entry per level of the root.
    refsPerWalk: (_s, hostRootLevel) => hostRootLevel,
    refsSource: 'x86: one shadow entry per level of the hardware root',
    tableBytes: (s) => n(s, 'shadowTableBytes'),
    rmapEntries: (s) => n(s, 'rmapEntries'),
    rmapBytes: (s) => n(s, 'rmapBytes'),
  },
  'ppc-radix': {
    hypervisorFaults: (s) => n(s, 'ppcRadixPartitionFaults'),
    refsPerWalk: (s) => (n(s, 'ppcRadixWalks') === 0 ? 0 : n(s, 'ppcRadixWalkRefs') / n(s, 'ppcRadixWalks')),
    refsSource: 'radix: entries the 2-D walks read, the partition-scoped ones through the page walk cache (ppcRadixWalkRefs / ppcRadixWalks)',
    tableBytes: (s) => n(s, 'ppcRadixTableBytes'),
    // KVM keeps no rmap for L1's own leaves (the tree is indexed by gpa): one derived entry per leaf.
    rmapEntries: (s) => n(s, 'ppcRadixLeaves'),
    rmapBytes: (s) => n(s, 'ppcRadixNestedRmapBytes'),
  },
  // A nested L2 (the demo's 'radix-nested' guest side): L0 resolves the L2's partition-scoped faults
  // into shadow entries; the ones L1 must see (its tree for the L2 lacks the page) are reflected to
  // it and counted apart (WorkloadRunResult faults.hypervisor). The tables are L0's tree for L1 (and
  // the windows, the shadow roots' frames among them) plus the shadow trees; the rmap is the nested rmap.
  'ppc-radix-nested': {
    hypervisorFaults: (s) => n(s, 'ppcRadixPartitionFaults') + n(s, 'ppcRadixL2Faults') - n(s, 'ppcRadixL2Reflected'),
    refsPerWalk: (s) => (n(s, 'ppcRadixWalks') === 0 ? 0 : n(s, 'ppcRadixWalkRefs') / n(s, 'ppcRadixWalks')),
    refsSource: 'radix L2: the same 2-D walk, its partition scope the shadow tree',
    tableBytes: (s) => n(s, 'ppcRadixTableBytes') + n(s, 'ppcRadixShadowTablePages') * 4096,
    rmapEntries: (s) => n(s, 'ppcRadixNestedRmapEntries'),
    rmapBytes: (s) => n(s, 'ppcRadixNestedRmapBytes'),
  },
  'ppc-hpt': {
    hypervisorFaults: (s) => n(s, 'hptHostFaults'),
    refsPerWalk: (s) => (n(s, 'hptSearches') === 0 ? 0 : n(s, 'hptSearchRefs') / n(s, 'hptSearches')),
    refsSource: 'hpt: HPTEs the group searches read (hptSearchRefs / hptSearches)',
    tableBytes: (s) => n(s, 'hptTableBytes'),
    rmapEntries: (s) => n(s, 'hptRealValid'),
    rmapBytes: (s) => n(s, 'hptRmapBytes'),
  },
};
