import type { DependencyContainer } from 'tsyringe';
import type { VmConfig } from './VmConfig.js';

/**
 * What a backend can do, asked before use instead of calling methods that
 * would only throw "unsupported" (crosvm's check_capability, typed).
 */
export interface BackendCapabilities {
  /** Guest paging modes the backend's walker understands (e.g. 'x86-4level', 'radix'). */
  readonly pagingModes: readonly string[];
  /** Nested guests (an L1 hypervisor running L2s). */
  readonly nestedGuests: boolean;
  /** x86 special shadow roots (PAE root, pml4/pml5 wrappers). */
  readonly specialRoots: boolean;
  /** The HPT read/write stream (KVM_PPC_GET_HTAB_FD format). */
  readonly htabStream: boolean;
  /** Memslot dirty logging with get-and-clear and re-arm. */
  readonly dirtyLogging: boolean;
  /** Read-only memslots. */
  readonly readOnlyMemslots: boolean;
  /** MMU-notifier style host-page invalidation, aging and change_pte. */
  readonly hostInvalidation: boolean;
  /** How memslot delete/move tears down mappings ('invalid-rmap', 'fast-zap', 'rmap-unmap'…). */
  readonly memslotInvalidation: readonly string[];
  /** Hypercall ABI name ('papr', 'kvm-x86', 'none'). */
  readonly hypercallAbi: string;
}

/**
 * A backend is one module object: its id, its capabilities and a function
 * that registers its classes in a VM's container (MMU, rmap strategies,
 * hypercall handlers and ABI). Swapping backends is passing another object.
 */
export interface BackendModule {
  readonly id: string;
  readonly description: string;
  readonly capabilities: BackendCapabilities;
  register(container: DependencyContainer, config: VmConfig): void;
}
