/**
 * What `runWorkload` and `replayLackeyTrace` return, and what `hvmmu run --json` prints
 * (docs/workloads.md, "The result"). Every count is a plain number.
 */
export interface WorkloadRunResult {
  /** Names this shape; bumped if a field changes meaning. */
  readonly schema: 'hvmmu-run-result/1';
  readonly backend: string;
  /** The paging mode the backend's guest side set up (e.g. 'x86-4level'). */
  readonly pagingMode: string;
  /** The workload's name, the built-in spec or the trace file. */
  readonly workload: string;
  readonly vcpus: number;
  /** Operations replayed (JSON workloads) or trace lines read (Lackey traces, banner lines included). */
  readonly operations: number;
  /** Translations made: one per access (a trace access crossing a page boundary makes two). */
  readonly accesses: number;
  /** The workload's accesses only (the guest kernel's are `guest.kernelTlbHits`/`kernelTlbMisses`). */
  readonly tlbHits: number;
  readonly tlbMisses: number;
  readonly faults: {
    /** Delivered to the guest (FaultDestination.GUEST). */
    readonly guest: number;
    /** Of those, resolved by the guest kernel on its own and the access retried (POWER hash: SLB reloads, HPTE re-inserts). */
    readonly guestResolved: number;
    /** Reflected to the guest's hypervisor (FaultDestination.HYPERVISOR: nested guests). */
    readonly hypervisor: number;
    /** Of those, resolved by the guest's hypervisor (a nested guest's L1) and the access retried. */
    readonly hypervisorResolved: number;
    /** Exits to the VMM (FaultDestination.VMM), and the same split by kind. */
    readonly vmm: number;
    readonly vmmByKind: {
      readonly noMemory: number;
      readonly readOnly: number;
      readonly emulate: number;
      readonly retryLimit: number;
      readonly hostOutOfMemory: number;
    };
  };
  /** What the guest operating system did through the backend's guest side. */
  readonly guest: {
    readonly maps: number;
    readonly unmaps: number;
    readonly protects: number;
    readonly spacesCreated: number;
    readonly spaceSwitches: number;
    /** Guest-physical pages the guest's own tables use at the end. */
    readonly tablePages: number;
    /**
     * TLB hits and misses of the guest kernel's own accesses while it changed its tables (x86:
     * its stores through the direct map), kept out of `tlbHits` and `tlbMisses`.
     */
    readonly kernelTlbHits: number;
    readonly kernelTlbMisses: number;
  };
  /** What the host did. */
  readonly host: {
    readonly memslotChanges: number;
    /** Guest pages whose host frame was invalidated (pages with no frame yet are skipped). */
    readonly pagesInvalidated: number;
    /** Mappings the MMU dropped for those invalidations. */
    readonly mappingsDropped: number;
    readonly dirtyPagesHarvested: number;
  };
  readonly elapsedMs: number;
  readonly accessesPerSecond: number;
  /** `vm.stats()` at the end: core's counters and the backend's own, by name. */
  readonly backendStats: Readonly<Record<string, number>>;
}
