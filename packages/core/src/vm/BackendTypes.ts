import type { Translator } from '../mmu/Translator.js';
import type { RmapStrategy } from '../rmap/RmapStrategy.js';

/**
 * The types a backend brings, carried from its module object to everything
 * a user touches: `createVm({ backend })` returns a `Vm` whose `arch`,
 * `vcpu.arch`, `stats()`, memslot rmap data and options are the backend's own
 * types, with no cast and no downcast helper.
 *
 * @example
 * interface MyTypes extends BackendTypes {
 *   options: { memslotInvalidation: 'invalid-rmap' };
 *   vm: MyMmu; vcpu: MyVcpuMmu; stats: MyStats;
 *   rmapOps: MyRmapOps; slotData: MySlotRmap; features: { nested: true };
 * }
 */
export interface BackendTypes {
  /** The backend's options with every key present (defaults filled in). */
  readonly options: object;
  /** The VM-level API, reached as `vm.arch`. */
  readonly vm: object;
  /** The per-vCPU MMU object `attachVcpu` returns, reached as `vcpu.arch`; it is also the vCPU's translator. */
  readonly vcpu: Translator;
  /** The backend's counters, merged into `vm.stats()`. */
  readonly stats: { readonly [counter: string]: number };
  /** The backend's rmap strategy table: what every rmap operation on a slot goes through. */
  readonly rmapOps: RmapStrategy;
  /** What the backend keeps per memslot (its rmaps), reached as `slot.arch`. */
  readonly slotData: object;
  /** Capabilities only this backend has (core's own are in `BackendCapabilities`). */
  readonly features: object;
}
