import { findBackend } from '../backends/BackendRegistry.js';
import { parseWorkload } from '../workloads/WorkloadParser.js';
import { runWorkload } from '../workloads/WorkloadRunner.js';
import type { WorkloadRunResult } from '../workloads/WorkloadRunResult.js';
import { generateBuiltinWorkload } from '../workloads/generators/BuiltinWorkloads.js';
import { BACKEND_METRICS } from './BackendMetrics.js';
import type { DemoConfiguration } from './DemoConfigurations.js';
import { memslotDeleteMicros } from './MemslotDeleteCost.js';

/** One configuration's row: the run's result and the figures derived from it. */
export interface ComparisonRow {
  readonly label: string;
  readonly backend: string;
  readonly backendOptions: Readonly<Record<string, unknown>>;
  readonly result: WorkloadRunResult;
  readonly tlbHitRate: number;
  /** Faults the host MMU resolved itself (x86 shadow faults; radix partition-scoped faults, and a nested L2's L0 resolved; HPT host faults). */
  readonly hypervisorFaults: number;
  /** Faults reflected to the guest's hypervisor (a nested L2's L1, which mapped the page and resumed it): `result.faults.hypervisor`. */
  readonly hypervisorFaultsReflected: number;
  readonly refsPerWalk: number;
  readonly tableBytes: number;
  readonly rmapEntries: number;
  readonly rmapBytes: number;
  /** Host bytes of tables and rmap per page the guest mapped. */
  readonly bytesPerMappedPage: number;
  /** Memslot delete of `deletePages` written pages, µs, by strategy name. */
  readonly deleteMicros: Readonly<Record<string, number>>;
}

/** A configuration that could not run (its backend package is not installed). */
export interface SkippedConfiguration {
  readonly label: string;
  readonly reason: string;
}

export interface Comparison {
  readonly workload: string;
  readonly deletePages: number;
  readonly rows: readonly ComparisonRow[];
  readonly skipped: readonly SkippedConfiguration[];
}

/**
 * Run one built-in workload on every configuration and measure a memslot delete
 * under each of the backend's invalidation strategies.
 */
export async function compareBackends(configurations: readonly DemoConfiguration[], workloadSpec: string, deletePages: number): Promise<Comparison> {
  const workload = parseWorkload(generateBuiltinWorkload(workloadSpec), `built-in workload ${workloadSpec}`);
  const rows: ComparisonRow[] = [];
  const skipped: SkippedConfiguration[] = [];
  for (const c of configurations) {
    let backend: Awaited<ReturnType<typeof findBackend>>;
    try {
      backend = await findBackend(c.backendId);
      if (c.guestSide === 'pae')
        backend = { ...backend, guestSide: (await import('@hvmmu/x86-shadow')).x86PaeGuestSide as unknown as typeof backend.guestSide };
      else if (c.guestSide === 'radix-nested')
        backend = { ...backend, guestSide: (await import('@hvmmu/ppc-radix')).radixNestedGuestSide as unknown as typeof backend.guestSide };
    } catch (error) {
      skipped.push({ label: c.label, reason: error instanceof Error ? error.message : String(error) });
      continue;
    }
    const metrics = BACKEND_METRICS[c.metrics ?? c.backendId];
    if (metrics === undefined) throw new Error(`demo: no metrics for ${c.metrics ?? c.backendId}`);
    const result = runWorkload(backend, workload, { backendOptions: c.backendOptions, source: workloadSpec });
    const s = result.backendStats;
    const deleteMicros: Record<string, number> = {};
    for (const strategy of backend.capabilities.memslotInvalidation)
      deleteMicros[strategy] = memslotDeleteMicros(backend, c.backendOptions, strategy, deletePages);
    const tableBytes = metrics.tableBytes(s);
    const rmapBytes = metrics.rmapBytes(s);
    rows.push({
      label: c.label,
      backend: c.backendId,
      backendOptions: c.backendOptions,
      result,
      tlbHitRate: result.accesses === 0 ? 0 : result.tlbHits / result.accesses,
      hypervisorFaults: metrics.hypervisorFaults(s),
      hypervisorFaultsReflected: result.faults.hypervisor,
      refsPerWalk: metrics.refsPerWalk(s, c.hostRootLevel),
      tableBytes,
      rmapEntries: metrics.rmapEntries(s),
      rmapBytes,
      bytesPerMappedPage: result.guest.maps === 0 ? 0 : (tableBytes + rmapBytes) / result.guest.maps,
      deleteMicros,
    });
  }
  return { workload: workload.name ?? workloadSpec, deletePages, rows, skipped };
}
