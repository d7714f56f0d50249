import type { DependencyContainer } from 'tsyringe';
import { HvmmuError } from '../errors/HvmmuError.js';
import { HYPERCALL_ABI, HYPERCALL_HANDLER, MMU, TRACE_HOOK, VM_CONFIG } from '../di/tokens.js';
import { MemslotTable, checkHostFrameRange } from '../memslot/MemslotTable.js';
import type { Mmu } from '../mmu/Mmu.js';
import { RmapOpsRegistry } from '../rmap/RmapOpsRegistry.js';
import { HypercallDispatcher } from '../hcall/HypercallDispatcher.js';
import type { HypercallAbi, HypercallHandler } from '../hcall/Hypercall.js';
import { TlbShootdown } from '../tlb/TlbShootdown.js';
import { TranslationContexts } from '../tlb/TranslationContexts.js';
import type { TraceHook } from '../trace/TraceHook.js';
import type { BackendModule } from './BackendModule.js';
import type { BackendTypes } from './BackendTypes.js';
import { HitCountingVcpu } from './HitCountingVcpu.js';
import { checkVcpuOptions, type VcpuOptions } from './VcpuOptions.js';
import { Vcpu } from './Vcpu.js';
import type { VmConfig } from './VmConfig.js';

/** Core's own counters in `vm.stats()`, beside the backend's. */
export interface CoreVmStats {
  readonly vcpus: number;
  readonly memslots: number;
  readonly memslotGeneration: number;
  readonly guestFramesInUse: number;
  readonly tlbHits: number;
  readonly tlbMisses: number;
  readonly accessFaults: number;
  readonly remoteTlbFlushes: number;
  readonly translationContexts: number;
  readonly hypercalls: number;
  readonly hypercallsUnknown: number;
}

/** The embedding program's own hypercalls, merged with the backend's (see `VmOptions.hypercalls`). */
export interface VmHypercalls {
  readonly handlers: readonly HypercallHandler[];
  /** The ABI, when the backend registers none (a backend's ABI wins; giving a different one is refused). */
  readonly abi?: HypercallAbi;
}

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
export class Vm<T extends BackendTypes = BackendTypes> {
  readonly id: number;
  readonly config: VmConfig<T['options']>;
  readonly container: DependencyContainer;
  readonly backend: BackendModule<T>;
  readonly memslots: MemslotTable<T>;
  readonly mmu: Mmu<T>;
  /** The backend's VM-level API (x86: the shadow MMU; POWER: nested guests, the HTAB stream). */
  readonly arch: T['vm'];
  readonly hypercalls: HypercallDispatcher;
  readonly tlbs: TlbShootdown;
  /** The VM's translation-context ids (see `SoftTlb`). */
  readonly contexts: TranslationContexts;
  private readonly vcpuList: Vcpu<T>[] = [];
  private destroyed = false;

  constructor(
    id: number,
    parent: DependencyContainer,
    backend: BackendModule<T>,
    config: VmConfig<T['options']>,
    trace: TraceHook | null,
    extraHypercalls?: VmHypercalls,
  ) {
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
    c.registerSingleton(TranslationContexts);
    backend.register(c, config);

    if (!c.isRegistered(MMU, true)) {
      throw new HvmmuError('BACKEND_MISSING_BINDING', `backend '${backend.id}' registered no MMU (token MMU)`);
    }
    // Resolve the registry on its own first: resolved as a dependency of
    // MemslotTable, its HvmmuError (missing or duplicate strategy) would reach
    // the caller wrapped in tsyringe's plain "Cannot inject" Error.
    c.resolve(RmapOpsRegistry);
    // The backend's handlers, those registered on the hypervisor's container (a child
    // container's resolveAll would hide these once the backend registers its own), and
    // the embedding program's: one dispatcher, duplicates refused.
    const handlers: HypercallHandler[] = [
      ...(c.isRegistered(HYPERCALL_HANDLER, false) ? c.resolveAll(HYPERCALL_HANDLER) : []),
      ...(parent.isRegistered(HYPERCALL_HANDLER, true) ? parent.resolveAll(HYPERCALL_HANDLER) : []),
      ...(extraHypercalls?.handlers ?? []),
    ];
    const backendAbi = c.isRegistered(HYPERCALL_ABI, true) ? c.resolve(HYPERCALL_ABI) : undefined;
    const givenAbi = extraHypercalls?.abi;
    if (backendAbi !== undefined && givenAbi !== undefined && givenAbi.name !== backendAbi.name) {
      throw new HvmmuError('HCALL_ABI_MISMATCH', `backend '${backend.id}' uses the '${backendAbi.name}' hypercall ABI; the VM options give '${givenAbi.name}'`);
    }
    const abi = backendAbi ?? givenAbi;
    if (abi === undefined && handlers.length > 0) {
      throw new HvmmuError(
        'HCALL_NO_ABI',
        `hypercall handlers (${handlers.map((h) => h.name).join(', ')}) need an ABI: backend '${backend.id}' registers none, so pass hypercalls.abi`,
      );
    }
    this.hypercalls = new HypercallDispatcher(handlers, abi ?? NO_HYPERCALL_ABI, trace);
    c.register(HypercallDispatcher, { useValue: this.hypercalls });
    if (abi !== undefined && backendAbi === undefined) c.register(HYPERCALL_ABI, { useValue: abi });

    this.memslots = c.resolve(MemslotTable) as MemslotTable<T>;
    this.tlbs = c.resolve(TlbShootdown);
    this.contexts = c.resolve(TranslationContexts);
    this.mmu = c.resolve(MMU) as Mmu<T>;
    this.arch = this.mmu.arch;
    this.memslots.addListener(this.mmu);
  }

  get name(): string {
    return this.config.name;
  }

  get vcpus(): readonly Vcpu<T>[] {
    return this.vcpuList;
  }

  /** A new vCPU (ids from 0 in creation order); see `VcpuOptions`. */
  createVcpu(options?: VcpuOptions): Vcpu<T> {
    this.checkAlive();
    const countTlbHits = checkVcpuOptions(options).countTlbHits === true;
    const args = [this.vcpuList.length, this.config.tlbEntries, this.mmu, this.hypercalls, this.memslots] as const;
    const vcpu = countTlbHits ? new HitCountingVcpu<T>(...args) : new Vcpu<T>(...args);
    this.vcpuList.push(vcpu);
    this.tlbs.add(vcpu);
    return vcpu;
  }

  vcpu(id: number): Vcpu<T> {
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
  stats(): CoreVmStats & T['stats'] {
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
      translationContexts: this.contexts.allocated + 1,
      hypercalls: this.hypercalls.calls,
      hypercallsUnknown: this.hypercalls.unknown,
      ...this.mmu.stats(),
    };
  }

  /**
   * KVM VM teardown: zap everything, release vCPUs, delete every slot (frees
   * guest memory). Afterwards every use of the VM, its memslots and its vCPUs
   * is refused (VM_DESTROYED), so nothing can take host frames again; a
   * second call does nothing.
   */
  destroy(): void {
    if (this.destroyed) return;
    for (const v of this.vcpuList) {
      this.mmu.detachVcpu(v);
      this.tlbs.remove(v);
      v.release();
    }
    this.mmu.zapAll();
    this.mmu.teardown?.();
    for (const slot of [...this.memslots.slots()]) this.memslots.delete(slot.id);
    this.memslots.close();
    this.destroyed = true;
  }

  get isDestroyed(): boolean {
    return this.destroyed;
  }

  private forHostRange(startHfn: number, endHfn: number, testOnly: boolean): boolean {
    this.checkAlive();
    checkHostFrameRange(startHfn, endHfn);
    let young = false;
    const end = Math.min(endHfn, this.memslots.host.frameCount);
    for (let hfn = startHfn; hfn < end; hfn++) {
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
