import type { BackendModule, BackendTypes, GuestSideFactory, Vm } from '@hvmmu/core';
import type { Workload, WorkloadOperation } from '../workloads/WorkloadSchema.js';
import { NO_PROGRESS, type Progress } from './ProgressBar.js';

/**
 * How `hvmmu run` learns how far a run has got without a hook inside the runners (which are
 * timed: nothing is added to the per-access path).
 *
 * A JSON or built-in workload runs synchronously, operation by operation: the replay reads
 * `workload.operations[i]` just before it applies operation i, so a workload whose operations
 * array reports those reads tells how much work is behind it (the runner's checks before the
 * replay iterate with for-of and array methods, which the array serves untracked). Each operation weighs what it
 * does (an access operation count × repeat translations, a map `count` pages, others 1); a
 * workload that is one huge operation moves the bar only when that operation ends.
 *
 * A trace replay is asynchronous (it streams the file), so a timer samples the VM's own
 * counters (translations: TLB hits plus misses) between batches; the VM is the one the
 * backend's guest side is created for.
 */

/** The work an operation stands for, in translations (access operations) or pages. */
export function operationWeight(op: WorkloadOperation): number {
  switch (op.op) {
    case 'access':
      return op.count * op.repeat;
    case 'map':
    case 'unmap':
    case 'protect':
    case 'createSpace':
      return op.count;
    default:
      return 1;
  }
}

/** The total weight of the workload's operations (the bar's total). */
export function workloadWeight(workload: Workload): number {
  let total = 0;
  for (const op of workload.operations) total += operationWeight(op);
  return total;
}

/**
 * The same workload, whose `operations` reports each direct index read (`operations[i]`): the
 * work before operation i goes to `progress`, never backwards. Iteration and array methods
 * (for-of, forEach, some, spreading) run on the plain array and report nothing.
 */
export function withOperationProgress(workload: Workload, progress: Progress): Workload {
  // Nothing to show (not a terminal, --json): the plain workload, so no run pays for the proxy.
  if (progress === NO_PROGRESS) return workload;
  const ops = workload.operations;
  // before[i]: the weight of operations 0..i-1.
  const before = new Float64Array(ops.length + 1);
  for (let i = 0; i < ops.length; i++) before[i + 1] = before[i]! + operationWeight(ops[i]!);
  let reported = 0;
  const tracked = new Proxy(ops as WorkloadOperation[], {
    get(target, key) {
      if (typeof key === 'string') {
        const c = key.charCodeAt(0);
        if (c >= 48 && c <= 57) {
          const i = Number(key);
          if (Number.isInteger(i) && i < before.length && before[i]! > reported) {
            reported = before[i]!;
            progress.update(reported);
          }
          return target[i];
        }
      }
      const value: unknown = Reflect.get(target, key, target);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
  return { ...workload, operations: tracked };
}

/**
 * Runs `run` on a backend module that reports the VM its guest side is created for, sampling
 * that VM's translations (TLB hits + misses, the guest kernel's included) into `progress`
 * every `intervalMs` while `run` is pending. The progress is stopped when `run` settles.
 */
export async function withTranslationProgress<R>(
  backend: BackendModule<BackendTypes>,
  progress: Progress,
  run: (backend: BackendModule<BackendTypes>) => Promise<R>,
  intervalMs = 200,
): Promise<R> {
  const guestSide = backend.guestSide;
  if (guestSide === undefined) return run(backend);
  let vm: Vm<BackendTypes> | undefined;
  const observed: GuestSideFactory<BackendTypes> = {
    pagingMode: guestSide.pagingMode,
    tablePagesFor: (mappings, spaces) => guestSide.tablePagesFor(mappings, spaces),
    create: (created, area) => {
      vm = created;
      return guestSide.create(created, area);
    },
  };
  const timer = setInterval(() => {
    if (vm === undefined) return;
    try {
      const stats = vm.stats();
      progress.update(stats.tlbHits + stats.tlbMisses);
    } catch {
      // The VM is gone (the run has ended): nothing more to show.
      vm = undefined;
    }
  }, intervalMs);
  timer.unref();
  try {
    return await run({ ...backend, guestSide: observed });
  } finally {
    clearInterval(timer);
    progress.stop();
  }
}
