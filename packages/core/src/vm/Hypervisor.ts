import 'reflect-metadata';
import { container as rootContainer, type DependencyContainer } from 'tsyringe';
import { HOST_MEMORY } from '../di/tokens.js';
import { HvmmuError } from '../errors/HvmmuError.js';
import { HostMemory } from '../memory/HostMemory.js';
import type { TraceHook } from '../trace/TraceHook.js';
import type { BackendModule } from './BackendModule.js';
import { resolveBackendOptions, type BackendOptionsInput } from './BackendOptions.js';
import type { BackendTypes } from './BackendTypes.js';
import { Vm, type VmHypercalls } from './Vm.js';
import type { VmConfig } from './VmConfig.js';

export interface HypervisorOptions {
  /** Host memory size in bytes (multiple of 4 KiB). */
  readonly memoryBytes: number;
  /** Back host memory with a SharedArrayBuffer. */
  readonly sharedMemory?: boolean;
  /** Parent container (default: a child of tsyringe's global container). */
  readonly container?: DependencyContainer;
}

export interface VmOptions<T extends BackendTypes = BackendTypes> {
  /** The MMU backend: one module object. */
  readonly backend: BackendModule<T>;
  readonly name?: string;
  /** Guest physical address bits (default 52). */
  readonly guestPhysBits?: number;
  /** TLB entries per vCPU, a power of two (default 1024). */
  readonly tlbEntries?: number;
  /** The backend's options (e.g. `{ memslotInvalidation: 'fast-zap' }`); unknown keys and bad values are refused. */
  readonly backendOptions?: BackendOptionsInput<T['options']>;
  /** Trace hook; omit for zero-cost tracing off. */
  readonly trace?: TraceHook;
  /**
   * The embedding program's own hypercalls, served beside the backend's
   * (a number both serve is refused with HCALL_DUPLICATE). Handlers
   * registered on the hypervisor's container are merged the same way.
   */
  readonly hypercalls?: VmHypercalls;
}

/**
 * The top of the composition: host memory plus the VMs running on it. Each VM
 * gets a child container, so VMs with different backends share nothing but
 * the host frame pool.
 */
export class Hypervisor {
  readonly memory: HostMemory;
  readonly container: DependencyContainer;
  private readonly vmList: Vm<BackendTypes>[] = [];
  private nextVmId = 0;

  constructor(options: HypervisorOptions) {
    this.memory = new HostMemory({ bytes: options.memoryBytes, shared: options.sharedMemory === true });
    this.container = (options.container ?? rootContainer).createChildContainer();
    this.container.register(HOST_MEMORY, { useValue: this.memory });
  }

  createVm<T extends BackendTypes>(options: VmOptions<T>): Vm<T> {
    if (options === null || typeof options !== 'object') throw new HvmmuError('BAD_ARGUMENT', 'createVm takes an options object { backend, … }');
    const backend = options.backend;
    if (
      backend === null ||
      typeof backend !== 'object' ||
      typeof backend.id !== 'string' ||
      typeof backend.register !== 'function' ||
      typeof backend.capabilities !== 'object' ||
      backend.capabilities === null ||
      typeof backend.options !== 'object' ||
      backend.options === null
    ) {
      throw new HvmmuError('BACKEND_INVALID', 'a backend must be an object { id, description, capabilities, options, register(container, config) }');
    }
    const backendOptions = resolveBackendOptions<T['options']>(backend.id, backend.options, options.backendOptions);
    const guestPhysBits = options.guestPhysBits ?? 52;
    if (!Number.isInteger(guestPhysBits) || guestPhysBits < 12 || guestPhysBits > 52) {
      throw new HvmmuError('BAD_ARGUMENT', `guestPhysBits must be an integer in 12..52, got ${guestPhysBits}`);
    }
    const tlbEntries = options.tlbEntries ?? 1024;
    if (!Number.isInteger(tlbEntries) || tlbEntries < 1 || tlbEntries > 1 << 24 || (tlbEntries & (tlbEntries - 1)) !== 0) {
      throw new HvmmuError('TLB_BAD_SIZE', `tlbEntries must be a power of two in 1..2^24, got ${tlbEntries}`);
    }
    // The id is consumed only when the VM is built: a rejected backend changes nothing.
    const id = this.nextVmId;
    const config: VmConfig<T['options']> = {
      name: options.name ?? `vm${id}`,
      guestPhysBits,
      tlbEntries,
      backendOptions,
    };
    const vm = new Vm<T>(id, this.container, backend, config, options.trace ?? null, options.hypercalls);
    this.nextVmId++;
    this.vmList.push(vm as unknown as Vm<BackendTypes>);
    return vm;
  }

  get vms(): readonly Vm<BackendTypes>[] {
    return this.vmList.filter((vm) => !vm.isDestroyed);
  }

  destroyVm<T extends BackendTypes>(vm: Vm<T>): void {
    vm.destroy();
    const i = this.vmList.indexOf(vm as unknown as Vm<BackendTypes>);
    if (i >= 0) this.vmList.splice(i, 1);
  }
}
