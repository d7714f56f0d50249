import type { WorkloadRunResult } from './WorkloadRunResult.js';

/**
 * What went wrong in a run whatever the workload expected, one line each: accesses that hit the
 * MMU's retry limit (a fault handler that never makes progress: a bug) and accesses the host had
 * no memory for (the run measured an out-of-memory host, not the workload). `hvmmu run` exits 1
 * on any of them.
 */
export function checkRunHealth(result: WorkloadRunResult): string[] {
  const problems: string[] = [];
  const k = result.faults.vmmByKind;
  if (k.retryLimit > 0) problems.push(`${k.retryLimit} access(es) hit the retry limit: the fault handler asked for retries without making progress`);
  if (k.hostOutOfMemory > 0) problems.push(`${k.hostOutOfMemory} access(es) found no free host frame (raise --memory-mib)`);
  return problems;
}
