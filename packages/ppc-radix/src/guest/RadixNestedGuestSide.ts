import { HvmmuError, hex, type FaultInfo, type GuestAddressSpaces, type GuestSideFactory, type GuestTableArea, type Vcpu, type Vm } from '@hvmmu/core';
import type { PpcRadixTypes } from '../backend/PpcRadixTypes.js';
import type { L1NestedHost } from '../nested/L1NestedHost.js';
import { RadixL1Hypervisor, type RadixNestedL1Counters } from './RadixL1Hypervisor.js';
import { RadixGuestAddressSpaces, radixGuestSide, RADIX_GUEST_VPN_LIMIT, type RadixGuestMachine } from './RadixGuestSide.js';
import { RadixTreeBuilder, type RadixTree } from './RadixTreeBuilder.js';

/** The LPID the L1 gives its L2 (an index into its partition table): nested guest 0. */
export const RADIX_NESTED_L2_LPID = 1;
const PAGE = 4096;
/** L1 maps its L2's memory with 2 MiB leaves, as a Linux L1 whose guest RAM is backed by transparent huge pages. */
const L1_PAGE_SHIFT = 21;
const L1_PAGE = 2 ** L1_PAGE_SHIFT;
/**
 * L1's own memory in the table area: its partition table (256 entries, 4
 * KiB), its partition-scoped tree for the L2 (a 64 KiB root, then a 4 KiB
 * directory per 512 GiB and per 1 GiB of L2 real space it maps), and a page
 * per vCPU for the hv_guest_state and pt_regs it hands H_ENTER_NESTED. One
 * 2 MiB-aligned window the L2 is never given, so no L1 leaf for the L2 covers it.
 */
const L1_WINDOW = L1_PAGE;
/** Pages `tablePagesFor` adds to the L2's own: the window, and up to a window's worth of alignment before it. */
const L1_WINDOW_PAGES = (2 * L1_WINDOW) / PAGE;

export type { RadixNestedL1Counters };

/**
 * A radix guest side whose guest is an L2: the workload's guest runs under
 * an L1 hypervisor, which this object plays, on an L1 that L0
 * (`ppcRadixBackend` with `nestedHv: true`) hosts. Its address spaces are
 * the L2 kernel's processes, built exactly as `radixGuestSide` builds an
 * L1's (`RadixGuestAddressSpaces`: a process table and one 4K-geometry tree
 * per PID, in the table area), except that the L2's process table is
 * registered with L1 — which puts it in its partition-table entry for the
 * L2 — and its tlbies act on the L2's partition (the shadow LPID L0 runs
 * it under).
 *
 * The L1 hypervisor (what Linux's KVM does when it runs as a pseries guest):
 * its partition table registered with H_SET_PARTITION_TABLE through
 * `L1NestedHost` at the first `activate`, the L2's entry set (the root of
 * L1's partition-scoped tree for the L2, the L2's process table), then
 * H_ENTER_NESTED with an hv_guest_state and pt_regs per vCPU (relocation
 * on, PIDR the address space). L2 real addresses are L1 real addresses
 * (L1 gives its L2 the guest-physical layout it has itself), mapped in L1's
 * tree for the L2 lazily: an L2 access whose L2 real page L1's tree lacks
 * comes back to L1 as an HDSI/HISI exit of H_ENTER_NESTED (the fault's
 * destination is HYPERVISOR), `handleHypervisorFault` maps the 2 MiB page
 * around it and enters the L2 again, and the access is retried — then L0
 * resolves it into a shadow entry (`ppcRadixL2Faults` without a reflection).
 * L1's own tables and state live in a 2 MiB window of the table area L1
 * never maps for the L2.
 *
 * Every vCPU runs the L2 once activated: after an exit L1 handles, it enters
 * the L2 again before `handleHypervisorFault` returns.
 */
export class RadixNestedGuestAddressSpaces implements GuestAddressSpaces<PpcRadixTypes> {
  readonly vpnLimit = RADIX_GUEST_VPN_LIMIT;
  /** L1's LPID for the L2. */
  readonly lpid = RADIX_NESTED_L2_LPID;
  /** The L2 kernel's side: its process table and trees. */
  readonly l2: RadixGuestAddressSpaces;
  /** The L1 hypervisor this side plays: its partition table, its tree for the L2, the vCPUs' L2 state. */
  readonly hypervisor: RadixL1Hypervisor;
  /** L1 real address of L1's own window [windowBase, windowBase + 2 MiB). */
  readonly windowBase: number;
  private readonly l1Builder: RadixTreeBuilder;
  private processTable = 0n;

  constructor(
    private readonly vm: Vm<PpcRadixTypes>,
    area: GuestTableArea,
  ) {
    if (
      area === null ||
      typeof area !== 'object' ||
      !Number.isSafeInteger(area.baseGfn) ||
      !Number.isSafeInteger(area.pages) ||
      area.pages < 1 ||
      area.baseGfn < 0
    ) {
      throw new HvmmuError('BAD_ARGUMENT', 'the table area must be { baseGfn, pages } with non-negative integers, pages ≥ 1');
    }
    if (vm.arch?.nested?.enabled !== true) {
      throw new HvmmuError('BAD_ARGUMENT', `VM '${vm.name}' has no nested HV: a nested L2 needs ppcRadixBackend with backendOptions { nestedHv: true }`);
    }
    const areaBase = area.baseGfn * PAGE;
    const areaEnd = (area.baseGfn + area.pages) * PAGE;
    this.windowBase = Math.ceil(areaBase / L1_WINDOW) * L1_WINDOW;
    const l2Base = this.windowBase + L1_WINDOW;
    if (l2Base >= areaEnd) {
      throw new HvmmuError(
        'GUEST_NO_MEMORY',
        `the table area [${hex(area.baseGfn)}, ${hex(area.baseGfn + area.pages)}) leaves no room beside L1's 2 MiB window (tablePagesFor adds ${L1_WINDOW_PAGES} pages for it)`,
      );
    }
    for (let gfn = this.windowBase / PAGE; gfn < l2Base / PAGE; ) {
      const slot = vm.memslots.findByGfn(gfn);
      if (slot === undefined || slot.readOnly) throw new HvmmuError('BAD_ARGUMENT', `the table area's gfn ${hex(gfn)} is not in a writable memslot`);
      gfn = slot.endGfn;
    }
    this.l1Builder = new RadixTreeBuilder(vm.memslots, this.windowBase, L1_WINDOW);
    this.hypervisor = new RadixL1Hypervisor(vm, this.l1Builder, () => this.processTable, {
      leafShift: L1_PAGE_SHIFT,
      keptOut: (base) => base === this.windowBase,
    });
    const hypervisor = this.hypervisor;
    const machine: RadixGuestMachine = {
      // H_REGISTER_PROC_TBL to L1: it goes into L1's partition-table entry for the L2 (at the first activate).
      registerProcessTable: (value) => {
        this.processTable = value;
      },
      tlbiePage: (pid, vpn) => hypervisor.tlbie(pid, vpn),
      tlbiePid: (pid, ric) => {
        if (ric === 2) vm.arch.nested.dropTableCaches();
        vm.arch.nested.tlbieGuest(this.lpid, pid, -1);
      },
    };
    this.l2 = new RadixGuestAddressSpaces(vm, { baseGfn: l2Base / PAGE, pages: (areaEnd - l2Base) / PAGE }, machine);
  }

  /** L1's side of nested HV (its partition table, H_SET_PARTITION_TABLE, the L2's entry). */
  get l1(): L1NestedHost {
    return this.hypervisor.host;
  }

  /** L1's partition-scoped tree for the L2, in L1 memory. */
  get l1Tree(): RadixTree {
    return this.hypervisor.tree;
  }

  /** What the L1 hypervisor did for its L2. */
  get l1Counters(): RadixNestedL1Counters {
    return this.hypervisor.counters;
  }

  get spaceCount(): number {
    return this.l2.spaceCount;
  }

  /** The L2's table pages and L1's (its partition table, its tree for the L2, the vCPU state pages). */
  get tablePages(): number {
    return this.l2.tablePages + (this.l1Builder.cursor - this.windowBase) / PAGE;
  }

  createSpace(): number {
    return this.l2.createSpace();
  }

  map(space: number, vpn: number, gfn: number, rights: number): void {
    this.l2.map(space, vpn, gfn, rights);
  }

  unmap(space: number, vpn: number): void {
    this.l2.unmap(space, vpn);
  }

  /**
   * Run address space `space` on the vCPU: in the L2, an mtspr PIDR; the
   * first time (the vCPU runs L1), L1 registers its partition table and the
   * L2's entry if it has not yet, writes the vCPU's L2 state (PIDR `space`,
   * relocation on) and enters the L2.
   */
  activate(vcpu: Vcpu<PpcRadixTypes>, space: number): void {
    this.l2.treeOf(space);
    if (this.vm.vcpus[vcpu.id] !== vcpu) throw new HvmmuError('BAD_ARGUMENT', `vCPU ${vcpu.id} is not a vCPU of VM '${this.vm.name}'`);
    if (vcpu.arch.inL2) {
      vcpu.arch.setPid(space);
      return;
    }
    this.hypervisor.enter(vcpu, this.lpid - 1, space);
  }

  /**
   * L1's handling of an exit of the L2 on `vcpu` (the access's fault was
   * reflected to the guest's hypervisor): an HDSI/HISI for an L2 real
   * address L1's tree lacks is L1's partition-scoped page fault for its
   * guest — L1 maps the 2 MiB page around it when it is L1 memory and not
   * L1's own window. Either way L1 then resumes the L2. True if the fault
   * was resolved and the access should run again.
   */
  handleHypervisorFault(vcpu: Vcpu<PpcRadixTypes>, _fault: FaultInfo): boolean {
    return this.hypervisor.handleExit(vcpu);
  }
}

/** The nested guest side's factory: `create` gives the nested class. */
export interface RadixNestedGuestSideFactory extends GuestSideFactory<PpcRadixTypes> {
  create(vm: Vm<PpcRadixTypes>, area: GuestTableArea): RadixNestedGuestAddressSpaces;
}

/**
 * The radix guest side for an L2 under an L1 (`RadixNestedGuestAddressSpaces`):
 * the same workload as `radixGuestSide` runs, one partition level deeper.
 * Needs a VM of `ppcRadixBackend` with `backendOptions: { nestedHv: true }`.
 */
export const radixNestedGuestSide: RadixNestedGuestSideFactory = {
  pagingMode: 'radix',
  tablePagesFor(mappings: number, spaces: number): number {
    return radixGuestSide.tablePagesFor(mappings, spaces) + L1_WINDOW_PAGES;
  },
  create(vm: Vm<PpcRadixTypes>, area: GuestTableArea): RadixNestedGuestAddressSpaces {
    return new RadixNestedGuestAddressSpaces(vm, area);
  },
};
