import type { DependencyContainer } from 'tsyringe';
import type { GuestSideFactory } from '../guest/GuestAddressSpaces.js';
import type { MemslotInvalidationName } from '../memslot/MemslotInvalidation.js';
import type { BackendOptionSpecs } from './BackendOptions.js';
import type { BackendTypes } from './BackendTypes.js';
import type { VmConfig } from './VmConfig.js';

/**
 * What any backend may or may not do, asked before use instead of calling
 * methods that would only throw "unsupported" (crosvm's check_capability,
 * typed). Names no architecture's feature: those are the backend's
 * `features`.
 */
export interface BackendCapabilities<F extends object = object> {
  /** Guest paging modes the backend's walker understands (e.g. 'x86-4level', 'radix'). */
  readonly pagingModes: readonly string[];
  /** Memslot dirty logging with get-and-clear and re-arm. */
  readonly dirtyLogging: boolean;
  /** Read-only memslots. */
  readonly readOnlyMemslots: boolean;
  /** MMU-notifier style host-page invalidation, aging and change_pte. */
  readonly hostInvalidation: boolean;
  /** How memslot delete/move can tear down mappings (the values of the `memslotInvalidation` option). */
  readonly memslotInvalidation: readonly MemslotInvalidationName[];
  /** Hypercall ABI name ('papr', 'kvm-x86', 'none'). */
  readonly hypercallAbi: string;
  /** Translation contexts the backend switches between without a TLB flush (1: a single address space). */
  readonly translationContexts: 'single' | 'many';
  /** Capabilities of this backend alone (x86: special roots; POWER: nested guests, the HTAB stream). */
  readonly features: F;
}

/**
 * A backend is one module object: its id, its capabilities, its options and
 * a function that registers its classes in a VM's container (MMU, rmap
 * strategies, hypercall handlers and ABI). Swapping backends is passing
 * another object. `T` carries the backend's types to the VM a user creates.
 */
export interface BackendModule<T extends BackendTypes = BackendTypes> {
  readonly id: string;
  readonly description: string;
  readonly capabilities: BackendCapabilities<T['features']>;
  /** Every option the backend reads: unknown keys and bad values are refused at VM creation. */
  readonly options: BackendOptionSpecs<T['options']>;
  /** Bind the backend's classes in the VM's child container; `config.backendOptions` is resolved and validated. */
  register(container: DependencyContainer, config: VmConfig<T['options']>): void;
  /**
   * The guest operating system's side for this backend: how a workload's
   * "map this page" becomes the architecture's own tables. What makes one
   * workload run on every backend; absent for a backend no workload drives.
   */
  readonly guestSide?: GuestSideFactory<T>;
}

/** The types of a backend module (for code generic over backends). */
export type BackendTypesOf<B> = B extends BackendModule<infer T> ? T : never;
