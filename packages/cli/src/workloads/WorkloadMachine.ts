import {
  FaultDestination,
  Hypervisor,
  type BackendModule,
  type BackendOptionsInput,
  type BackendTypes,
  type GuestAddressSpaces,
  type Vcpu,
  type Vm,
} from '@hvmmu/core';
import { FaultTally } from './FaultTally.js';
import { hypervisorFaultHandlerOf, type HypervisorFaultHandler } from './NestedGuestControl.js';
import { GuestActivity } from './GuestActivity.js';
import type { WorkloadRunResult } from './WorkloadRunResult.js';
import { WorkloadInputError } from './WorkloadInputError.js';
import { PAGE_SIZE, TABLE_AREA_GFN, TABLE_AREA_SLOT } from './WorkloadSchema.js';

/** Times the guest kernel may resolve a fault of one access on its own before the access counts as failed. */
export const MAX_GUEST_RESOLVES = 4;
/**
 * Times the guest's hypervisor (a nested guest's L1) may resolve a fault of one access: a nested
 * radix access can reflect once for each L2 real page region its walk touches (the process
 * table's, each table level's, the data page's).
 */
export const MAX_HYPERVISOR_RESOLVES = 8;
/** Host memory when none is given: frames are taken on first write, so unused memory costs little. */
export const DEFAULT_MEMORY_BYTES = 512 << 20;
/** The most table pages the area may have: the x86 guest side names gfns below 2^28 (MAXPHYADDR 40). */
export const MAX_TABLE_AREA_PAGES = 2 ** 27;

export interface WorkloadMachineOptions {
  readonly vcpus: number;
  /** Guest-physical pages for the guest side's tables (from `guestSide.tablePagesFor`). */
  readonly tableAreaPages: number;
  /** Host memory in bytes (default 512 MiB). */
  readonly memoryBytes?: number;
  /** TLB entries per vCPU (default: core's, 1024). */
  readonly tlbEntries?: number;
  /** The backend's options (e.g. `{ memslotInvalidation: 'fast-zap' }`), validated by core. */
  readonly backendOptions?: Readonly<Record<string, unknown>>;
}

/**
 * The machine a workload runs on: a hypervisor, one VM of the backend, the memslot holding the
 * guest side's table area (slot TABLE_AREA_SLOT at TABLE_AREA_GFN), the guest side itself, and
 * vCPUs that count TLB hits, each running address space 0. A backend without a guest side is
 * refused here.
 */
export class WorkloadMachine<T extends BackendTypes> {
  readonly hypervisor: Hypervisor;
  readonly vm: Vm<T>;
  readonly guest: GuestAddressSpaces<T>;
  readonly vcpus: readonly Vcpu<T>[];
  readonly pagingMode: string;
  readonly faults = new FaultTally();
  /** The guest side as its guest's hypervisor (a nested guest's L1), if it is one. */
  private readonly hypervisorFaults: HypervisorFaultHandler<T> | undefined;
  readonly activity = new GuestActivity();
  /** TLB hits and misses of the guest kernel's own accesses while it changed its tables (not the workload's). */
  private kernelTlbHits = 0;
  private kernelTlbMisses = 0;

  constructor(
    readonly backend: BackendModule<T>,
    options: WorkloadMachineOptions,
  ) {
    const guestSide = backend.guestSide;
    if (guestSide === undefined) {
      throw new WorkloadInputError(`backend '${backend.id}'`, [
        'it has no guest side (BackendModule.guestSide), so workloads cannot map pages through it; pick a backend that has one',
      ]);
    }
    const areaPages = Math.min(Math.max(1, Math.ceil(options.tableAreaPages)), MAX_TABLE_AREA_PAGES);
    this.hypervisor = new Hypervisor({ memoryBytes: options.memoryBytes ?? DEFAULT_MEMORY_BYTES });
    this.vm = this.hypervisor.createVm<T>({
      backend,
      name: 'workload',
      ...(options.tlbEntries === undefined ? {} : { tlbEntries: options.tlbEntries }),
      // Core checks every key and value against the backend's option specs.
      ...(options.backendOptions === undefined ? {} : { backendOptions: options.backendOptions as BackendOptionsInput<T['options']> }),
    });
    const vcpus: Vcpu<T>[] = [];
    try {
      // At TABLE_AREA_GFN, or just below where the guest side needs its tables to end (a 32-bit kernel's reach).
      const areaGfn = guestSide.tableAreaEndGfn === undefined ? TABLE_AREA_GFN : Math.max(0, guestSide.tableAreaEndGfn - areaPages);
      this.vm.memslots.create({ id: TABLE_AREA_SLOT, guestPhysAddr: areaGfn * PAGE_SIZE, size: areaPages * PAGE_SIZE });
      this.guest = guestSide.create(this.vm, { baseGfn: areaGfn, pages: areaPages });
      for (let i = 0; i < options.vcpus; i++) {
        const vcpu = this.vm.createVcpu({ countTlbHits: true });
        this.guest.activate(vcpu, 0);
        vcpus.push(vcpu);
      }
    } catch (error) {
      // A guest side that refuses its area or a vCPU leaves no VM behind.
      this.hypervisor.destroyVm(this.vm);
      throw error;
    }
    this.pagingMode = guestSide.pagingMode;
    this.vcpus = vcpus;
    this.hypervisorFaults = hypervisorFaultHandlerOf(this.guest);
  }

  /*
   * The guest side's operations, through which the runners drive it. The guest kernel may use
   * the vCPUs' TLBs while it changes its tables (x86: its stores through the direct map); those
   * hits and misses are set apart, so tlbHits and tlbMisses count the workload's accesses only.
   */

  map(space: number, vpn: number, gfn: number, rights: number): void {
    const hits = this.tlbHitsNow();
    const misses = this.tlbMissesNow();
    try {
      this.guest.map(space, vpn, gfn, rights);
    } finally {
      this.setApartKernelTlb(hits, misses);
    }
  }

  unmap(space: number, vpn: number): void {
    const hits = this.tlbHitsNow();
    const misses = this.tlbMissesNow();
    try {
      this.guest.unmap(space, vpn);
    } finally {
      this.setApartKernelTlb(hits, misses);
    }
  }

  createSpace(): number {
    const hits = this.tlbHitsNow();
    const misses = this.tlbMissesNow();
    try {
      return this.guest.createSpace();
    } finally {
      this.setApartKernelTlb(hits, misses);
    }
  }

  activate(vcpu: Vcpu<T>, space: number): void {
    const hits = this.tlbHitsNow();
    const misses = this.tlbMissesNow();
    try {
      this.guest.activate(vcpu, space);
    } finally {
      this.setApartKernelTlb(hits, misses);
    }
  }

  private tlbHitsNow(): number {
    let n = 0;
    for (const v of this.vcpus) n += v.tlb.hits;
    return n;
  }

  private tlbMissesNow(): number {
    let n = 0;
    for (const v of this.vcpus) n += v.tlb.misses;
    return n;
  }

  private setApartKernelTlb(hitsBefore: number, missesBefore: number): void {
    this.kernelTlbHits += this.tlbHitsNow() - hitsBefore;
    this.kernelTlbMisses += this.tlbMissesNow() - missesBefore;
  }

  /**
   * The access at `va` just failed on `vcpu`: count its fault and, while the fault is one the
   * guest kernel resolves on its own (`guest.handleGuestFault`: a POWER hash guest reloading an
   * SLB entry or re-inserting an evicted HPTE) or one reflected to the guest's hypervisor that it
   * resolves (`HypervisorFaultHandler`: a nested guest's L1 mapping the page for it), let it and
   * try the access again, a bounded number of times. A reflected fault is always handed to the
   * hypervisor, which resumes the nested guest even when it cannot resolve it. True if the access
   * finally went through; false with `vcpu.fault` the last fault. Cold: called only after a
   * failed translation.
   */
  accessFailed(vcpu: Vcpu<T>, va: number, access: number): boolean {
    const guest = this.guest;
    const faults = this.faults;
    let guestResolves = 0;
    let hypervisorResolves = 0;
    for (;;) {
      const fault = vcpu.fault;
      faults.record(fault);
      const destination = fault.destination;
      if (destination === FaultDestination.GUEST) {
        if (guest.handleGuestFault === undefined || guestResolves >= MAX_GUEST_RESOLVES) return false;
        if (!guest.handleGuestFault(vcpu, fault)) return false;
        guestResolves++;
        faults.guestResolved++;
      } else if (destination === FaultDestination.HYPERVISOR) {
        const l1 = this.hypervisorFaults;
        if (l1 === undefined || !l1.handleHypervisorFault(vcpu, fault)) return false;
        faults.hypervisorResolved++;
        if (++hypervisorResolves > MAX_HYPERVISOR_RESOLVES) return false;
      } else {
        return false;
      }
      if (vcpu.translate(va, access) >= 0) return true;
    }
  }

  /** The result of what ran on this machine: `operations` replayed in `elapsedMs`. */
  result(workload: string, operations: number, elapsedMs: number): WorkloadRunResult {
    const stats = this.vm.stats() as unknown as Readonly<Record<string, number>>;
    const f = this.faults;
    const a = this.activity;
    return {
      schema: 'hvmmu-run-result/1',
      backend: this.backend.id,
      pagingMode: this.pagingMode,
      workload,
      vcpus: this.vcpus.length,
      operations,
      accesses: a.accesses,
      tlbHits: (stats['tlbHits'] ?? 0) - this.kernelTlbHits,
      tlbMisses: (stats['tlbMisses'] ?? 0) - this.kernelTlbMisses,
      faults: {
        guest: f.guest,
        guestResolved: f.guestResolved,
        hypervisor: f.hypervisor,
        hypervisorResolved: f.hypervisorResolved,
        vmm: f.vmm,
        vmmByKind: { noMemory: f.noMemory, readOnly: f.readOnly, emulate: f.emulate, retryLimit: f.retryLimit, hostOutOfMemory: f.hostOutOfMemory },
      },
      guest: {
        maps: a.maps,
        unmaps: a.unmaps,
        protects: a.protects,
        spacesCreated: a.spacesCreated,
        spaceSwitches: a.spaceSwitches,
        tablePages: this.guest.tablePages,
        kernelTlbHits: this.kernelTlbHits,
        kernelTlbMisses: this.kernelTlbMisses,
      },
      host: {
        memslotChanges: a.memslotChanges,
        pagesInvalidated: a.pagesInvalidated,
        mappingsDropped: a.mappingsDropped,
        dirtyPagesHarvested: a.dirtyPagesHarvested,
      },
      elapsedMs,
      accessesPerSecond: elapsedMs > 0 ? Math.round((a.accesses * 1000) / elapsedMs) : 0,
      backendStats: { ...stats },
    };
  }

  /** Free the VM's memory (its memslots and the backend's tables). */
  destroy(): void {
    this.hypervisor.destroyVm(this.vm);
  }
}
