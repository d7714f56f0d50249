/** Per-VM settings, bound to `VM_CONFIG` in the VM's container. */
export interface VmConfig<O extends object = object> {
  /** Name for traces and stats. */
  readonly name: string;
  /** Guest physical address width in bits (memslots must fit below 2^bits). KVM's limit is 52. */
  readonly guestPhysBits: number;
  /** Entries in each vCPU's software TLB (a power of two); also the number of translation contexts. */
  readonly tlbEntries: number;
  /** The backend's options, validated, every key present. */
  readonly backendOptions: Readonly<O>;
}
