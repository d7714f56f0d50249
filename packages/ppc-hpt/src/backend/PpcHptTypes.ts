import type { BackendTypes, MemslotInvalidationName } from '@hvmmu/core';
import type { HptRmapOps } from './HptRmapOps.js';
import type { HptVcpuMmu } from './HptVcpuMmu.js';
import type { PpcHptMmu } from './PpcHptMmu.js';
import type { HptSlotRmap } from '../rmap/HptRevmap.js';

/** The HPT backend's options. */
export interface PpcHptOptions {
  /** How a memslot delete or move tears down the slot's mappings (default 'invalid-rmap'). */
  readonly memslotInvalidation: Extract<MemslotInvalidationName, 'invalid-rmap' | 'fast-zap'>;
  /** log2 of the HPT's size in bytes (KVM_PPC_ALLOCATE_HTAB; KVM's default 24, 16 MiB). */
  readonly hptOrder: number;
  /**
   * The host processor: 'power8' keeps the real HPT in the v2.07 layout the
   * guest sees, 'power9' in the ISA v3.0 layout (KVM converts at every
   * boundary; the guest and the HTAB stream always see v2.07).
   */
  readonly cpu: 'power8' | 'power9';
  /**
   * Real mode (MSR[IR/DR] off): 'vrma', as KVM HV runs a hash guest — through
   * the VRMA's bolted HPTEs over the memslot at guest physical 0, made on the
   * first real-mode access (kvmppc_hv_setup_htab_rma) — or 'guest-physical',
   * as under a virtual hypervisor (QEMU's pseries TCG).
   */
  readonly realMode: 'vrma' | 'guest-physical';
}

/** The HPT backend's counters in `vm.stats()`. */
export interface PpcHptStats {
  readonly [counter: string]: number;
  /** Guest-view entries with V (what the guest believes is mapped). */
  readonly hptGuestEntries: number;
  /** Real entries with V (the hardware can use them). */
  readonly hptRealValid: number;
  /** Real entries the guest believes valid that the hardware cannot use yet (HPTE_V_ABSENT). */
  readonly hptRealAbsent: number;
  /** Bytes of the guest view, the real table, and the reverse map (per-HPTE links and per-page words). */
  readonly hptTableBytes: number;
  readonly hptRmapBytes: number;
  /** Translator misses resolved by the MMU (an ABSENT entry made valid: kvmppc_book3s_hv_page_fault). */
  readonly hptHostFaults: number;
  /** Faults delivered to the guest (DSI, ISI, segment interrupts). */
  readonly hptGuestFaults: number;
  /** HPT resizes committed (H_RESIZE_HPT_COMMIT). */
  readonly hptResizes: number;
  /** VRMA entries made (kvmppc_map_vrma), 0 until the first real-mode access. */
  readonly hptVrmaEntries: number;
  /** Exits to the VMM (MMIO, read-only memory, host out of memory). */
  readonly hptVmmExits: number;
  /** HPTEs read by the hardware searches (primary and secondary groups). */
  readonly hptSearchRefs: number;
  readonly hptSearches: number;
  /** Real entries turned ABSENT by the host (notifier invalidation, memslot teardown, aging). */
  readonly hptHostUnmaps: number;
  /** Rmap operations refused because the slot was being deleted (the invalid table's warnings). */
  readonly hptInvalidSlotWarnings: number;
}

/** What only the HPT backend offers. */
export interface PpcHptFeatures {
  /** The hash-table hcalls (H_ENTER, H_REMOVE, H_READ, H_PROTECT, H_BULK_REMOVE, H_CLEAR_REF, H_CLEAR_MOD). */
  readonly hashPageTable: true;
  /** The guest view as KVM's HTAB stream (KVM_PPC_GET_HTAB_FD) and QEMU's spapr/htab section. */
  readonly htabStream: true;
}

/** The HPT backend's types, carried to `vm.arch`, `vcpu.arch`, `vm.stats()` and `slot.arch`. */
export interface PpcHptTypes extends BackendTypes {
  readonly options: PpcHptOptions;
  readonly vm: PpcHptMmu;
  readonly vcpu: HptVcpuMmu;
  readonly stats: PpcHptStats;
  readonly rmapOps: HptRmapOps;
  readonly slotData: HptSlotRmap;
  readonly features: PpcHptFeatures;
}
