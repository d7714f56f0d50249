/** One backend configuration the demo runs the workload on. */
export interface DemoConfiguration {
  /** Short label for the table. */
  readonly label: string;
  readonly backendId: string;
  readonly backendOptions: Readonly<Record<string, unknown>>;
  /** What the configuration models, for the explanation. */
  readonly about: string;
  /** Levels of the hardware root (x86), for the walk-cost figure. */
  readonly hostRootLevel: number;
  /**
   * The backend's other guest side to use, instead of its module's: x86 'pae' for a 32-bit PAE
   * guest; radix 'radix-nested' for the guest run as an L2 under an L1 hypervisor.
   */
  readonly guestSide?: 'pae' | 'radix-nested';
  /** How to read its statistics (a key of BACKEND_METRICS), when not as its backend's. */
  readonly metrics?: string;
}

/**
 * The configurations `hvmmu demo` compares: the same guest workload on x86
 * shadow paging (a 4-level guest, and a 4-level NPT shadowed under a 5-level
 * host root: a passthrough pml5 page),
 * on the POWER9 radix host side (an L1 guest: the 2-D walk; and the same
 * guest as an L2 under a radix L1 hypervisor: nested HV), and on the POWER
 * hashed page table (real HPT in POWER8's and POWER9's layouts).
 */
export const DEMO_CONFIGURATIONS: readonly DemoConfiguration[] = [
  {
    label: 'x86 shadow, 4-level',
    backendId: 'x86-shadow',
    backendOptions: {},
    about: 'x86 shadow paging of a 4-level guest (KVM arch/x86/kvm/mmu)',
    hostRootLevel: 4,
  },
  {
    label: 'x86 shadow, 32-bit PAE',
    backendId: 'x86-shadow',
    backendOptions: {},
    about: "a 32-bit PAE guest (PDPTEs loaded at MOV CR3): the shadow MMU's PAE special root, KVM's pae_root",
    hostRootLevel: 3,
    guestSide: 'pae',
  },
  {
    label: 'x86 shadow, 5-level host',
    backendId: 'x86-shadow',
    backendOptions: { hostRootLevel: 5 },
    about:
      "a 4-level table (an L1's NPT) shadowed under a 5-level host root: a passthrough pml5 page, as KVM builds it since role.passthrough replaced the special pml5 root for this case",
    hostRootLevel: 5,
  },
  {
    label: 'ppc radix, L1',
    backendId: 'ppc-radix',
    backendOptions: {},
    about: "POWER9 radix under KVM-HV: the guest's process-scoped tree, every reference through L0's partition-scoped tree",
    hostRootLevel: 0,
  },
  {
    label: 'ppc radix, nested L2',
    backendId: 'ppc-radix',
    backendOptions: { nestedHv: true },
    about:
      "the same guest as an L2 under a radix L1 hypervisor (H_ENTER_NESTED): its process-scoped tree walked under a shadow partition-scoped tree L0 fills from L1's tree for the L2 and its own tree for L1 (kvmhv_nested_page_fault)",
    hostRootLevel: 0,
    guestSide: 'radix-nested',
    metrics: 'ppc-radix-nested',
  },
  {
    label: 'ppc hpt, POWER8',
    backendId: 'ppc-hpt',
    backendOptions: { cpu: 'power8' },
    about: 'the POWER hashed page table under KVM HV: H_ENTER into the guest view, the real HPT filled on host faults',
    hostRootLevel: 0,
  },
  {
    label: 'ppc hpt, POWER9',
    backendId: 'ppc-hpt',
    backendOptions: { cpu: 'power9' },
    about: 'the same, with the real HPT in the ISA v3.0 layout',
    hostRootLevel: 0,
  },
];
