import type { BackendTypes, MemslotInvalidationName } from '@hvmmu/core';
import type { PpcRadixMmu } from './PpcRadixMmu.js';
import type { RadixRmapOps } from './RadixRmapOps.js';
import type { RadixSlotRmap } from './RadixSlotRmap.js';
import type { RadixVcpuMmu } from './RadixVcpuMmu.js';

/** What a guest store to a READONLY memslot becomes. */
export type RadixReadOnlyStore = 'vmm-exit' | 'guest-dsi';

/** The radix backend's options (every key present once resolved). */
export interface PpcRadixOptions {
  /** How a memslot delete or move tears down the slot's mappings (default 'invalid-rmap'). */
  readonly memslotInvalidation: Extract<MemslotInvalidationName, 'invalid-rmap' | 'fast-zap'>;
  /**
   * A store to a READONLY memslot: 'vmm-exit' (default) ends the access with
   * FaultKind.READ_ONLY for the VMM to emulate, as hvmmu's other backends
   * do; 'guest-dsi' queues a DSI with DSISR[ISSTORE | PROTFAULT] to the
   * guest, as kvmppc_book3s_radix_page_fault does.
   */
  readonly readOnlyStore: RadixReadOnlyStore;
  /**
   * Nested HV for the guest (KVM_CAP_PPC_NESTED_HV, QEMU's cap-nested-hv):
   * with it off (the default, as in KVM and QEMU) H_SET_PARTITION_TABLE,
   * H_ENTER_NESTED, H_TLB_INVALIDATE and H_COPY_TOFROM_GUEST return
   * H_FUNCTION.
   */
  readonly nestedHv: boolean;
}

/** The radix backend's counters in `vm.stats()`. */
export interface PpcRadixStats {
  readonly [counter: string]: number;
  /** Directory and table pages of L0's partition-scoped tree, plus the window frames (root, partition table). */
  readonly ppcRadixTablePages: number;
  readonly ppcRadixTableBytes: number;
  /** Present partition-scoped leaves (4 KiB each). */
  readonly ppcRadixLeaves: number;
  /** Bytes of the nested rmap (slot words and list nodes). */
  readonly ppcRadixNestedRmapBytes: number;
  /** Walks the vCPUs made on TLB misses, and the table entries they read (partition, process and tree entries). */
  readonly ppcRadixWalks: number;
  readonly ppcRadixWalkRefs: number;
  /** Process-scoped faults delivered to the guest, by kind. */
  readonly ppcRadixGuestDsi: number;
  readonly ppcRadixGuestIsi: number;
  readonly ppcRadixGuestSegment: number;
  /** Partition-scoped faults (HDSI/HISI) L0 handled, and what became of them. */
  readonly ppcRadixPartitionFaults: number;
  readonly ppcRadixInstantiations: number;
  readonly ppcRadixSetRc: number;
  readonly ppcRadixTableFaultsReflected: number;
  readonly ppcRadixNoMemoryExits: number;
  readonly ppcRadixReadOnlyExits: number;
  readonly ppcRadixHostOutOfMemory: number;
  /** Faults retried because an MMU-notifier invalidation ran while they resolved the host frame. */
  readonly ppcRadixInvalidationRetries: number;
  /** Partition-table entries (re)built after a zap or at start. */
  readonly ppcRadixTableInits: number;
  readonly ppcRadixUnmaps: number;
  readonly ppcRadixAged: number;
  readonly ppcRadixDirtyReprotects: number;
  readonly ppcRadixZapAlls: number;
  readonly ppcRadixInvalidSlotWarnings: number;
  /** Translation contexts (PID, mode) in use besides the default one. */
  readonly ppcRadixContexts: number;
  /** Nested guests not yet released, and the shadow LPIDs in use for them. */
  readonly ppcRadixNestedGuests: number;
  /** L2 shadow trees: table pages below their roots, and present leaves (4 KiB each). */
  readonly ppcRadixShadowTablePages: number;
  readonly ppcRadixShadowLeaves: number;
  /** H_ENTER_NESTED calls that started an L2, and the exits that completed them. */
  readonly ppcRadixNestedEnters: number;
  readonly ppcRadixNestedExits: number;
  /** L2 partition-scoped faults, those reflected to L1 (HDSI/HISI exits), shadow entries made, and R/C set in them. */
  readonly ppcRadixL2Faults: number;
  readonly ppcRadixL2Reflected: number;
  readonly ppcRadixShadowInserts: number;
  readonly ppcRadixShadowRcUpdates: number;
  /** Shadow entries removed one by one (host invalidation through the nested rmap, tlbie of a page), and whole shadow trees emptied. */
  readonly ppcRadixShadowUnmaps: number;
  readonly ppcRadixShadowFlushes: number;
  /** Nested rmap entries (live list entries; stale ones included). */
  readonly ppcRadixNestedRmapEntries: number;
}

/** What only the radix backend offers. */
export interface PpcRadixFeatures {
  /** The guest translates with its own process-scoped radix tree under L0's partition-scoped tree (2-D). */
  readonly radixGuest: true;
  /** log2 of the partition-scoped leaf sizes L0 builds (4 KiB: core's host frames). */
  readonly partitionPageShifts: readonly number[];
  /** Nested HV: L2 guests under L1 through H_ENTER_NESTED (with the `nestedHv` option). */
  readonly nestedGuests: true;
}

/** The radix backend's types, carried to `vm.arch`, `vcpu.arch`, `vm.stats()` and `slot.arch`. */
export interface PpcRadixTypes extends BackendTypes {
  readonly options: PpcRadixOptions;
  readonly vm: PpcRadixMmu;
  readonly vcpu: RadixVcpuMmu;
  readonly stats: PpcRadixStats;
  readonly rmapOps: RadixRmapOps;
  readonly slotData: RadixSlotRmap;
  readonly features: PpcRadixFeatures;
}
