import type { InjectionToken } from 'tsyringe';
import type { HostMemory } from '../memory/HostMemory.js';
import type { RmapStrategy } from '../rmap/RmapStrategy.js';
import type { Mmu } from '../mmu/Mmu.js';
import type { HypercallAbi, HypercallHandler } from '../hcall/Hypercall.js';
import type { VmConfig } from '../vm/VmConfig.js';
import type { TraceHook } from '../trace/TraceHook.js';

/*
 * Dependency-injection tokens: every interface core defines is bound to one of
 * these. Interfaces have no run-time value, so constructors always say
 * `@inject(TOKEN)` / `@injectAll(TOKEN)` explicitly.
 */

/** The host's physical memory pool (shared by the VMs of one Hypervisor). */
export const HOST_MEMORY: InjectionToken<HostMemory> = Symbol.for('hvmmu.HostMemory');
/** This VM's settings. */
export const VM_CONFIG: InjectionToken<VmConfig> = Symbol.for('hvmmu.VmConfig');
/** Multi-registered: every rmap strategy table the backend offers (`normal`, `invalid`, …). */
export const RMAP_OPS: InjectionToken<RmapStrategy> = Symbol.for('hvmmu.RmapOps');
/** The backend's hypervisor-side MMU for this VM. */
export const MMU: InjectionToken<Mmu> = Symbol.for('hvmmu.Mmu');
/** Multi-registered hypercall handlers, collected by the dispatcher. */
export const HYPERCALL_HANDLER: InjectionToken<HypercallHandler> = Symbol.for('hvmmu.HypercallHandler');
/** The architecture's hypercall return convention (status codes). */
export const HYPERCALL_ABI: InjectionToken<HypercallAbi> = Symbol.for('hvmmu.HypercallAbi');
/** Optional trace hook; absent means tracing is off and costs nothing. */
export const TRACE_HOOK: InjectionToken<TraceHook> = Symbol.for('hvmmu.TraceHook');
