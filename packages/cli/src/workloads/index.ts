// @hvmmu/cli/workloads: workloads as data, for programs and benchmarks — the JSON format and its
// validation, the built-in generators, the runner over any backend's guest side, and the Lackey
// trace reader and replay (docs/workloads.md). The `hvmmu` command is the package's main entry.
export {
  WORKLOAD_FORMAT,
  WORKLOAD_VERSION,
  TABLE_AREA_GFN,
  TABLE_AREA_SLOT,
  OPERATION_NAMES,
  rightsBits,
  rightsText,
  type Workload,
  type WorkloadInput,
  type WorkloadOperation,
  type WorkloadOperationInput,
  type WorkloadExpectation,
  type AccessOperation,
  type MapOperation,
  type UnmapOperation,
  type ProtectOperation,
} from './WorkloadSchema.js';
export { parseWorkload, readWorkloadFile, describeIssues, formatPath } from './WorkloadParser.js';
export { WorkloadInputError } from './WorkloadInputError.js';
export { runWorkload, accessBits, type RunWorkloadOptions } from './WorkloadRunner.js';
export type { WorkloadRunResult } from './WorkloadRunResult.js';
export { WorkloadMachine, DEFAULT_MEMORY_BYTES, type WorkloadMachineOptions } from './WorkloadMachine.js';
export { FaultTally } from './FaultTally.js';
export { GuestActivity } from './GuestActivity.js';
export { checkExpectation } from './ExpectationCheck.js';
export { checkRunHealth } from './RunHealthCheck.js';
export { nestedControlOf, hypervisorFaultHandlerOf, type NestedGuestControl, type HypervisorFaultHandler } from './NestedGuestControl.js';
export { readLackeyTrace, LackeyBatch, LackeyKind, LACKEY_BATCH, LACKEY_MAX_SIZE } from './LackeyTraceReader.js';
export { replayLackeyTrace, DEFAULT_TRACE_MAX_PAGES, type ReplayLackeyTraceOptions } from './LackeyTraceReplay.js';
export { BUILTIN_WORKLOADS, findBuiltinWorkload, generateBuiltinWorkload } from './generators/BuiltinWorkloads.js';
export type { WorkloadGenerator, GeneratorParameter } from './generators/WorkloadGenerator.js';
export { SeededRandom } from './generators/SeededRandom.js';
