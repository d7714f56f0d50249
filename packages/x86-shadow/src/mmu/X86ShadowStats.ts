/** The x86 shadow MMU's counters and gauges in `vm.stats()` (see `ShadowMmuStats` for the event counters' KVM names). */
export interface X86ShadowStats {
  readonly [counter: string]: number;
  readonly shadowPages: number;
  readonly specialShadowPages: number;
  readonly indirectShadowPages: number;
  readonly unsyncPages: number;
  readonly maxShadowPages: number;
  readonly rmapEntries: number;
  readonly rmapBytes: number;
  readonly shadowTableBytes: number;
  readonly hostBytes: number;
  readonly mmuValidGen: number;
  readonly shadowFaults: number;
  readonly guestFaults: number;
  readonly vmmFaults: number;
  readonly emulatedWrites: number;
  readonly zappedPages: number;
  readonly sptesDropped: number;
  readonly mmuFlooded: number;
  readonly pdeZapped: number;
  readonly unsyncs: number;
  readonly syncs: number;
  readonly mmuCacheMisses: number;
  readonly hashCollisions: number;
  readonly rmapRecycles: number;
  readonly invalidRmapWarnings: number;
  readonly fastZaps: number;
  readonly obsoletePagesZapped: number;
  readonly zapBatches: number;
  readonly memslotFlushes: number;
  readonly rootsLoaded: number;
  readonly rootsFreed: number;
  readonly prevRootHits: number;
  readonly pagesReclaimed: number;
  readonly invalidationRetries: number;
  readonly invlpgs: number;
}
