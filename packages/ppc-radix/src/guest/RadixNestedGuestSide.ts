import { HvmmuError, hex, type FaultInfo, type GuestAddressSpaces, type GuestSideFactory, type GuestTableArea, type Vcpu, type Vm } from '@hvmmu/core';
import type { PpcRadixTypes } from '../backend/PpcRadixTypes.js';
import { HvGuestStateField, PtRegsField } from '../nested/HvGuestState.js';
import { L1NestedHost, NestedHcall } from '../nested/L1NestedHost.js';
import { RadixGuestAddressSpaces, radixGuestSide, RADIX_GUEST_VPN_LIMIT, type RadixGuestMachine } from './RadixGuestSide.js';
import { RadixTreeBuilder, type RadixTree } from './RadixTreeBuilder.js';

/** The LPID the L1 gives its L2 (an index into its partition table). */
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
/** The partition table L1 registers: 2^8 entries (the architecture's 4 KiB minimum). */
const L1_TABLE_SHIFT = 8;
/** Where, in a vCPU's state page, the pt_regs follow the hv_guest_state (248 bytes). */
const REGS_OFFSET = 0x800;
/** MSR of the L2's kernel: SF, ME, IR, DR, RI, LE (a ppc64el Linux kernel in virtual mode). */
const L2_MSR = 0x8000_0000_0000_1033n;
/** The interrupts H_ENTER_NESTED returns for a partition-scoped fault L1 must handle (HDSI, HISI). */
const TRAP_HDSI = 0xe00;
const TRAP_HISI = 0xe20;

/** What the L1 hypervisor did for its L2 (`RadixNestedGuestAddressSpaces.l1Counters`). */
export interface RadixNestedL1Counters {
  /** H_ENTER_NESTED calls that started the L2 (the first, and each resume after an exit). */
  enters: number;
  /** Exits L1 handled: HDSI/HISI for L2 real addresses its tree for the L2 lacked (the rest are other interrupts). */
  exits: number;
  /** Of those, the ones L1 resolved with a 2 MiB leaf in its tree for the L2 (kvmppc_book3s_radix_page_fault in L1). */
  l1Maps: number;
  /** Exits for L2 real addresses that are no L1 memory, or L1's own window: not mapped (MMIO for L1). */
  unresolved: number;
}

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
  /** L1's side of nested HV (its partition table, H_SET_PARTITION_TABLE, the L2's entry). */
  readonly l1: L1NestedHost;
  /** L1's partition-scoped tree for the L2, in L1 memory. */
  readonly l1Tree: RadixTree;
  readonly l1Counters: RadixNestedL1Counters = { enters: 0, exits: 0, l1Maps: 0, unresolved: 0 };
  /** L1 real address of L1's own window [windowBase, windowBase + 2 MiB). */
  readonly windowBase: number;
  private readonly l1Builder: RadixTreeBuilder;
  private readonly statePages = new Map<number, number>();
  private processTable = 0n;
  /** The L1 vCPU the L1 kernel's hcalls go out on (set just before each). */
  private hcallVcpu: Vcpu<PpcRadixTypes> | null = null;

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
    this.l1Tree = this.l1Builder.createTree('4k');
    this.l1 = new L1NestedHost({
      hcall: (number, args) => {
        const vcpu = this.hcallVcpu!;
        vcpu.hcallRegs.clear();
        for (let i = 0; i < args.length; i++) vcpu.hcallRegs.setArgHalves(i, Number(args[i]! >> 32n), Number(args[i]! & 0xffff_ffffn));
        return vcpu.hypercall(number);
      },
      alloc: (bytes) => this.allocL1(bytes),
      write: (gpa, bytes) => vm.memslots.writeBytes(gpa, bytes),
    });
    const machine: RadixGuestMachine = {
      // H_REGISTER_PROC_TBL to L1: it goes into L1's partition-table entry for the L2 (at the first activate).
      registerProcessTable: (value) => {
        this.processTable = value;
      },
      tlbiePage: (pid, vpn) => {
        for (const g of vm.arch.nested.guests.liveGuests(this.lpid)) vm.arch.contexts.flushPidPage(pid, vpn, g.shadowLpid);
      },
      tlbiePid: (pid, ric) => {
        if (ric === 2) for (const m of vm.arch.vcpuMmuList) m?.invalidateTableCaches();
        for (const g of vm.arch.nested.guests.liveGuests(this.lpid)) vm.arch.contexts.flushPid(pid, g.shadowLpid);
      },
    };
    this.l2 = new RadixGuestAddressSpaces(vm, { baseGfn: l2Base / PAGE, pages: (areaEnd - l2Base) / PAGE }, machine);
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
    this.register(vcpu);
    this.writeState(vcpu, space);
    this.enter(vcpu);
  }

  /**
   * L1's handling of an exit of the L2 on `vcpu` (the access's fault was
   * reflected to the guest's hypervisor): an HDSI/HISI for an L2 real
   * address L1's tree lacks is L1's partition-scoped page fault for its
   * guest — L1 maps the 2 MiB page around it (read, write, execute, R and C
   * set) when it is L1 memory and not L1's own window. Either way L1 then
   * resumes the L2 (H_ENTER_NESTED with the state L0 wrote back). True if
   * the fault was resolved and the access should run again.
   */
  handleHypervisorFault(vcpu: Vcpu<PpcRadixTypes>, _fault: FaultInfo): boolean {
    const state = this.statePages.get(vcpu.id);
    if (vcpu.arch.inL2 || state === undefined) return false;
    this.l1Counters.exits++;
    const exit = vcpu.arch.lastNestedExit;
    let resolved = false;
    if (exit !== null && (exit.trap === TRAP_HDSI || exit.trap === TRAP_HISI)) {
      // The L2 real address: ASDR of the state L0 wrote back (little-endian, as L1 wrote it).
      const asdr = this.read64(state + HvGuestStateField.asdr);
      resolved = this.mapForL2(Number(asdr & 0x0fff_ffff_ffff_f000n));
      if (!resolved) this.l1Counters.unresolved++;
    }
    this.enter(vcpu);
    return resolved;
  }

  /** L1 maps the 2 MiB of L2 real space around `gpa` onto its own memory at the same address; false if it must not or cannot. */
  private mapForL2(gpa: number): boolean {
    const base = gpa - (gpa % L1_PAGE);
    if (base < this.windowBase + L1_WINDOW && base + L1_PAGE > this.windowBase) return false;
    if (this.vm.memslots.findByGfn(gpa / PAGE) === undefined) return false;
    try {
      this.l1Tree.map(base, base, L1_PAGE_SHIFT, { read: true, write: true, execute: true, referenced: true, changed: true });
    } catch (error) {
      // L1's window is full (a tree spread over more than ~400 GiB of L2 real space): the page stays unmapped.
      if (error instanceof HvmmuError) return false;
      throw error;
    }
    this.l1Counters.l1Maps++;
    return true;
  }

  /** kvmhv_nested_init and the L2's partition-table entry, once, from an L1 vCPU. */
  private register(vcpu: Vcpu<PpcRadixTypes>): void {
    if (this.l1.active) return;
    this.hcallVcpu = vcpu;
    const init = this.l1.init(L1_TABLE_SHIFT);
    if (!init.ok)
      throw new HvmmuError(
        'BACKEND_INVALID',
        `the L1 could not register its partition table (${init.reason}${init.status === undefined ? '' : `, status ${init.status}`})`,
      );
    const status = this.l1.setEntry(this.lpid, this.l1Tree.pateDw0(), this.processTable);
    if (status !== 0) throw new HvmmuError('BACKEND_INVALID', `the L2's partition-table entry was refused (H_TLB_INVALIDATE status ${status})`);
  }

  /** The vCPU's hv_guest_state (version 2) and pt_regs in L1's window, little-endian as a ppc64el L1 writes them. */
  private writeState(vcpu: Vcpu<PpcRadixTypes>, pid: number): void {
    let page = this.statePages.get(vcpu.id);
    if (page === undefined) {
      const fresh = this.allocL1(PAGE);
      if (fresh === null) throw new HvmmuError('GUEST_NO_MEMORY', "L1's window has no page left for another vCPU's L2 state");
      this.statePages.set(vcpu.id, fresh);
      page = fresh;
    }
    const hv = new Uint8Array(248);
    const v = new DataView(hv.buffer);
    v.setBigUint64(HvGuestStateField.version, 2n, true);
    v.setUint32(HvGuestStateField.lpid, this.lpid, true);
    v.setUint32(HvGuestStateField.vcpuToken, vcpu.id, true);
    v.setBigUint64(HvGuestStateField.pidr, BigInt(pid), true);
    this.vm.memslots.writeBytes(page, hv);
    const regs = new Uint8Array(352);
    new DataView(regs.buffer).setBigUint64(PtRegsField.msr, L2_MSR, true);
    this.vm.memslots.writeBytes(page + REGS_OFFSET, regs);
  }

  private enter(vcpu: Vcpu<PpcRadixTypes>): void {
    const page = this.statePages.get(vcpu.id)!;
    vcpu.hcallRegs.clear();
    vcpu.hcallRegs.setArg(0, page).setArg(1, page + REGS_OFFSET);
    const status = vcpu.hypercall(NestedHcall.H_ENTER_NESTED);
    if (status !== 0 || !vcpu.arch.inL2) throw new HvmmuError('BACKEND_INVALID', `H_ENTER_NESTED for L2 ${this.lpid} on vCPU ${vcpu.id} returned ${status}`);
    this.l1Counters.enters++;
  }

  private allocL1(bytes: number): number | null {
    try {
      return this.l1Builder.allocate(bytes);
    } catch (error) {
      if (error instanceof HvmmuError) return null;
      throw error;
    }
  }

  private read64(gpa: number): bigint {
    const b = new Uint8Array(8);
    this.vm.memslots.readBytes(gpa, b);
    return new DataView(b.buffer).getBigUint64(0, true);
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
