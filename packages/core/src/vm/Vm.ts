import type { DependencyContainer } from 'tsyringe';
import { HvmmuError } from '../errors/HvmmuError.js';
import { HYPERCALL_ABI, HYPERCALL_HANDLER, MMU, TRACE_HOOK, VM_CONFIG } from '../di/tokens.js';
import { MemslotTable } from '../memslot/MemslotTable.js';
import type { Mmu } from '../mmu/Mmu.js';
import { RmapOpsRegistry } from '../rmap/RmapOpsRegistry.js';
import { HypercallDispatcher } from '../hcall/HypercallDispatcher.js';
import type { HypercallAbi, HypercallHandler } from '../hcall/Hypercall.js';
import { TlbShootdown } from '../tlb/TlbShootdown.js';
import type { TraceHook } from '../trace/TraceHook.js';
import type { BackendModule } from './BackendModule.js';
import { Vcpu } from './Vcpu.js';
import type { VmConfig } from './VmConfig.js';

/** ABI used when a backend registers no hypercalls: every call is "unknown function". */
export const NO_HYPERCALL_ABI: HypercallAbi = {
  name: 'none',
  success: 0,
  unknownFunction: -1,
  badParameter: -1,
  hardwareError: -1,
};

/**
 * A virtual machine: its own child container (so two VMs with different
 * backends share no state), its memslots, its backend's MMU, its hypercall
 * dispatcher and its vCPUs. Host-side events (MMU notifier) enter here by
 * host frame number and are turned into gfn ranges per memslot.
 */
export class Vm {
  readonly id: number;
  readonly config: VmConfig;
  readonly container: DependencyContainer;
  readonly backend: BackendModule;
  readonly memslots: MemslotTable;
  readonly mmu: Mmu;
  readonly hypercalls: HypercallDispatcher;
  readonly tlbs: TlbShootdown;
  private readonly vcpuList: Vcpu[] = [];
  private destroyed = false;

  constructor(id: number, parent: DependencyContainer, backend: BackendModule, config: VmConfig, trace: TraceHook | null) {
    if (backend === null || typeof backend !== 'object' || typeof backend.id !== 'string' || typeof backend.register !== 'function' ||
        typeof backend.capabilities !== 'object' || backend.capabilities === null) {
      throw new HvmmuError('BACKEND_INVALID', 'a backend must be an object { id, description, capabilities, register(container, config) }');
    }
    this.id = id;
    this.config = config;
    this.backend = backend;
    const c = parent.createChildContainer();
    this.container = c;
    c.register(VM_CONFIG, { useValue: config });
    // A factory, not `useValue`: tsyringe treats `useValue: null` as no value
    // provider at all, so `@inject(TRACE_HOOK)` would fail whenever tracing is off.
    c.register(TRACE_HOOK, { useFactory: () => trace });
    c.registerSingleton(RmapOpsRegistry);
    c.registerSingleton(MemslotTable);
    c.registerSingleton(TlbShootdown);
    backend.register(c, config);

    if (!c.isRegistered(MMU, true)) {
      throw new HvmmuError('BACKEND_MISSING_BINDING', `backend '${backend.id}' registered no MMU (token MMU)`);
    }
    // Resolve the registry on its own first: resolved as a dependency of
    // MemslotTable, its HvmmuError (missing or duplicate strategy) would reach
    // the caller wrapped in tsyringe's plain "Cannot inject" Error.
    c.resolve(RmapOpsRegistry);
    const handlers: HypercallHandler[] = c.isRegistered(HYPERCALL_HANDLER, true) ? c.resolveAll(HYPERCALL_HANDLER) : [];
    const abi = c.isRegistered(HYPERCALL_ABI, true) ? c.resolve(HYPERCALL_ABI) : NO_HYPERCALL_ABI;
    this.hypercalls = new HypercallDispatcher(handlers, abi, trace);
    c.register(HypercallDispatcher, { useValue: this.hypercalls });

    this.memslots = c.resolve(MemslotTable);
    this.tlbs = c.resolve(TlbShootdown);
    this.mmu = c.resolve(MMU);
    this.memslots.addListener(this.mmu);
  }

  get name(): string {
    return this.config.name;
  }

  get vcpus(): readonly Vcpu[] {
    return this.vcpuList;
  }

  createVcpu(): Vcpu {
    this.checkAlive();
    const vcpu = new Vcpu(this.vcpuList.length, this.config.tlbEntries, this.mmu, this.hypercalls);
    this.vcpuList.push(vcpu);
    this.tlbs.add(vcpu.tlb);
    return vcpu;
  }

  vcpu(id: number): Vcpu {
    const v = this.vcpuList[id];
    if (v === undefined) throw new HvmmuError('VCPU_BAD_ID', `VM '${this.name}' has no vCPU ${id}`);
    return v;
  }

  /** MMU notifier invalidate_range: drop every mapping of host frames [startHfn, endHfn). */
  invalidateHostRange(startHfn: number, endHfn: number): number {
    this.checkAlive();
    return this.memslots.invalidateHostRange(startHfn, endHfn);
  }

  /** clear_young over host frames [startHfn, endHfn): true if any mapping was young. */
  ageHostRange(startHfn: number, endHfn: number): boolean {
    return this.forHostRange(startHfn, endHfn, false);
  }

  /** test_young over host frames [startHfn, endHfn). */
  testAgeHostRange(startHfn: number, endHfn: number): boolean {
    return this.forHostRange(startHfn, endHfn, true);
  }

  /** Migrate the page in host frame hfn to a new frame (change_pte path). Returns the new frame. */
  migrateHostFrame(hfn: number): number {
    this.checkAlive();
    return this.memslots.migrateHostFrame(hfn);
  }

  zapAll(): void {
    this.checkAlive();
    this.mmu.zapAll();
  }

  /** Counters from the TLBs, the hypercall dispatcher, memory and the backend's MMU. */
  stats(): Record<string, number> {
    let hits = 0;
    let misses = 0;
    let faults = 0;
    for (const v of this.vcpuList) {
      hits += v.tlb.hits;
      misses += v.tlb.misses;
      faults += v.faults;
    }
    return {
      vcpus: this.vcpuList.length,
      memslots: this.memslots.count,
      memslotGeneration: this.memslots.generation,
      guestFramesInUse: this.memslots.framesInUse,
      tlbHits: hits,
      tlbMisses: misses,
      accessFaults: faults,
      remoteTlbFlushes: this.tlbs.remoteFlushes,
      hypercalls: this.hypercalls.calls,
      hypercallsUnknown: this.hypercalls.unknown,
      ...this.mmu.stats(),
    };
  }

  /** KVM VM teardown: zap everything, release vCPUs, delete every slot (frees guest memory). */
  destroy(): void {
    if (this.destroyed) return;
    for (const v of this.vcpuList) {
      this.mmu.detachVcpu(v);
      this.tlbs.remove(v.tlb);
      v.release();
    }
    this.mmu.zapAll();
    for (const slot of [...this.memslots.slots()]) this.memslots.delete(slot.id);
    this.destroyed = true;
  }

  get isDestroyed(): boolean {
    return this.destroyed;
  }

  private forHostRange(startHfn: number, endHfn: number, testOnly: boolean): boolean {
    this.checkAlive();
    if (!(startHfn <= endHfn)) {
      throw new HvmmuError('BAD_ARGUMENT', `bad host frame range [${startHfn}, ${endHfn})`);
    }
    let young = false;
    const end = Math.min(endHfn, this.memslots.host.frameCount);
    for (let hfn = Math.max(0, startHfn); hfn < end; hfn++) {
      const slot = this.memslots.slotOfHostFrame(hfn);
      if (slot === undefined) continue;
      const gfn = this.memslots.gfnOfHostFrame(hfn);
      const r = testOnly ? this.mmu.testAgeGfnRange(slot, gfn, gfn + 1) : this.mmu.ageGfnRange(slot, gfn, gfn + 1);
      young ||= r;
    }
    return young;
  }

  private checkAlive(): void {
    if (this.destroyed) throw new HvmmuError('VM_DESTROYED', `VM '${this.name}' has been destroyed`);
  }
}
