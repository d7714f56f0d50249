/**
 * Which of a backend's `vm.stats()` keys (WorkloadRunResult.backendStats) measure the same
 * thing on every backend, so the report can put them side by side. Each backend names its
 * counters its own way (X86ShadowStats, PpcRadixStats, PpcHptStats); this is the one place that
 * knows the mapping. A backend not listed here, or a key its stats lack, gives no value (the
 * report says "not counted"), never a zero that was not measured.
 */
export interface BackendCostKeys {
  /** Bytes of the tables the host MMU keeps for the guest (shadow tables, partition-scoped tree, HPT). */
  readonly tableBytes: readonly string[];
  /** Bytes of its reverse maps (gfn → the entries that map it). */
  readonly rmapBytes: readonly string[];
  /** Table entries the hardware walker read, and the walks (or hash searches) that read them. */
  readonly walkRefs?: string;
  readonly walks?: string;
  /** Faults the host MMU resolved itself, without the guest or the VMM seeing them. */
  readonly hostMmuFaults?: string;
}

/**
 * The keys per backend id:
 * - x86-shadow (X86ShadowStats): tables `shadowTableBytes`, rmap `rmapBytes` (their sum is
 *   `hostBytes`), host-MMU faults `shadowFaults`; walk references `walkRefs`/`walks` only if the
 *   backend counts them (today it does not, so the chart leaves x86 out and says so).
 * - ppc-radix (PpcRadixStats): tables `ppcRadixTableBytes`, rmap `ppcRadixNestedRmapBytes`,
 *   walks `ppcRadixWalkRefs` / `ppcRadixWalks` (partition, process and tree entries of the 2-D
 *   walk), host-MMU faults `ppcRadixPartitionFaults`.
 * - ppc-hpt (PpcHptStats): tables `hptTableBytes` (guest view and real HPT), rmap `hptRmapBytes`,
 *   walks `hptSearchRefs` / `hptSearches` (HPTEs read per hash search, both groups), host-MMU
 *   faults `hptHostFaults`.
 */
export const BACKEND_COST_KEYS: Readonly<Record<string, BackendCostKeys>> = {
  'x86-shadow': { tableBytes: ['shadowTableBytes'], rmapBytes: ['rmapBytes'], walkRefs: 'walkRefs', walks: 'walks', hostMmuFaults: 'shadowFaults' },
  'ppc-radix': {
    tableBytes: ['ppcRadixTableBytes'],
    rmapBytes: ['ppcRadixNestedRmapBytes'],
    walkRefs: 'ppcRadixWalkRefs',
    walks: 'ppcRadixWalks',
    hostMmuFaults: 'ppcRadixPartitionFaults',
  },
  'ppc-hpt': { tableBytes: ['hptTableBytes'], rmapBytes: ['hptRmapBytes'], walkRefs: 'hptSearchRefs', walks: 'hptSearches', hostMmuFaults: 'hptHostFaults' },
};

/** The sum of those keys that `stats` has; null if it has none of them. */
export function sumStats(stats: Readonly<Record<string, number>>, keys: readonly string[]): number | null {
  let sum: number | null = null;
  for (const key of keys) {
    const value = stats[key];
    if (typeof value === 'number' && Number.isFinite(value)) sum = (sum ?? 0) + value;
  }
  return sum;
}

/** One stat by key, or null when the key is absent. */
export function statOrNull(stats: Readonly<Record<string, number>>, key: string | undefined): number | null {
  if (key === undefined) return null;
  const value = stats[key];
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
}
