/** Per-VM settings, bound to `VM_CONFIG` in the VM's container. */
export interface VmConfig {
  /** Name for traces and stats. */
  readonly name: string;
  /** Guest physical address width in bits (memslots must fit below 2^bits). KVM's limit is 52. */
  readonly guestPhysBits: number;
  /** Entries in each vCPU's software TLB (a power of two). */
  readonly tlbEntries: number;
  /** Backend-specific options, read by the backend's own classes. */
  readonly backendOptions: Readonly<Record<string, unknown>>;
}
