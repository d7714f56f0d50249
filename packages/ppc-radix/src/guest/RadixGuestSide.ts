import {
  GUEST_RIGHTS_ALL,
  GuestRights,
  HvmmuError,
  hex,
  type GuestAddressSpaces,
  type GuestSideFactory,
  type FaultInfo,
  type GuestTableArea,
  type Vcpu,
  type Vm,
} from '@hvmmu/core';
import type { PpcRadixTypes } from '../backend/PpcRadixTypes.js';
import { RADIX_L_HI, RADIX_V_HI } from '../format/RadixEntry.js';
import { RADIX_L1_HYPERVISOR_PAGES, RadixL1Hypervisor } from './RadixL1Hypervisor.js';
import { RadixTreeBuilder, type RadixTable, type RadixTree } from './RadixTreeBuilder.js';

/** The interrupt that ends a nested guest's run when the workload leaves it: the hypervisor decrementer (HDEC). */
const NESTED_EXIT_TRAP = 0x980;

/** Virtual pages an address space maps: quadrant 0 (EA bits 63..62 = 0b00, the user quadrant), EA < 2^52. */
export const RADIX_GUEST_VPN_LIMIT = 2 ** 40;
/** Guest frames a leaf may name: what the partition-scoped tree covers (52-bit guest real addresses). */
const GFN_LIMIT = 2 ** 40;
const PAGE = 4096;
/** The process table: PRTS 0, 4 KiB, 256 PIDs. */
const PROCESS_TABLE_PRTS = 0;
const MAX_SPACES = 2 ** (PROCESS_TABLE_PRTS + 8);
/** Linux's 4K geometry: a 64 KiB root (aligned to itself), then 4 KiB tables. */
const ROOT_BYTES = 8 << 13;
const TABLE_LEVELS = [13, 9, 9, 9] as const;
const TWO_POW_32 = 0x1_0000_0000;

/**
 * What the guest operating system asks of the machine it runs on: to
 * register its process table (H_REGISTER_PROC_TBL) and to carry out its
 * tlbies. For an L1 that is L0 (the VM: `vm.arch.setProcessTable`,
 * `guestTlbiePage`, `guestTlbiePid`, the default); for an L2 its L1
 * hypervisor puts the process table in its partition-table entry for the
 * L2, and the tlbies apply to the L2's partition (`radixNestedGuestSide`).
 */
export interface RadixGuestMachine {
  registerProcessTable(value: bigint): void;
  tlbiePage(pid: number, vpn: number): void;
  tlbiePid(pid: number, ric: 0 | 2): void;
}

/** The machine an L1 runs on: L0, through `vm.arch`. */
function l0Machine(vm: Vm<PpcRadixTypes>): RadixGuestMachine {
  return {
    registerProcessTable: (value) => vm.arch.setProcessTable(value),
    tlbiePage: (pid, vpn) => vm.arch.guestTlbiePage(pid, vpn),
    tlbiePid: (pid, ric) => vm.arch.guestTlbiePid(pid, ric),
  };
}

/**
 * The guest operating system's side of radix translation, as a workload
 * drives it: what Linux does as a pseries radix guest. A process table
 * (registered with the hypervisor: H_REGISTER_PROC_TBL, here
 * `vm.arch.setProcessTable`) and one 4K-geometry radix tree per address
 * space; address space n is PID n and maps the user quadrant. A leaf gets
 * EAA read, RW for WRITE, X for EXEC and the privilege bit unless USER,
 * with R set and C set for writable pages (Linux pre-sets R/C so the
 * hardware's R/C interrupt does not fire); after each change the guest
 * issues tlbie for the page and PID (RIC 0, PRS 1), and after a new
 * process-table entry tlbie RIC 2 for the PID. Tables are never
 * freed: an unmap clears the leaf only.
 *
 * Host misuse (a vpn at or above 2^40, an unknown space, a full table area,
 * more than 256 address spaces) throws `HvmmuError` and changes nothing.
 */
export class RadixGuestAddressSpaces implements GuestAddressSpaces<PpcRadixTypes> {
  readonly vpnLimit = RADIX_GUEST_VPN_LIMIT;
  readonly processTable: RadixTable;
  private readonly trees: RadixTree[] = [];
  private readonly builder: RadixTreeBuilder;
  /** This guest as the hypervisor of nested guests (made at the first `enterNested`). */
  private l1Hypervisor: RadixL1Hypervisor | null = null;
  private readonly areaBase: number;
  private readonly areaEnd: number;
  private readonly activated = new Set<Vcpu<PpcRadixTypes>>();
  private readonly machine: RadixGuestMachine;

  constructor(
    private readonly vm: Vm<PpcRadixTypes>,
    area: GuestTableArea,
    /** Where the process table is registered and the tlbies go (default: L0, for an L1). */
    machine?: RadixGuestMachine,
  ) {
    this.machine = machine ?? l0Machine(vm);
    if (area === null || typeof area !== 'object' || !Number.isSafeInteger(area.baseGfn) || !Number.isSafeInteger(area.pages)) {
      throw new HvmmuError('BAD_ARGUMENT', 'the table area must be { baseGfn, pages } with integers');
    }
    if (area.baseGfn < 0 || area.pages < 1 || area.baseGfn + area.pages > GFN_LIMIT) {
      throw new HvmmuError('BAD_ARGUMENT', `the table area [${hex(area.baseGfn)}, ${hex(area.baseGfn + area.pages)}) must be non-empty and below gfn 2^40`);
    }
    for (let gfn = area.baseGfn; gfn < area.baseGfn + area.pages; ) {
      const slot = vm.memslots.findByGfn(gfn);
      if (slot === undefined || slot.readOnly) throw new HvmmuError('BAD_ARGUMENT', `the table area's gfn ${hex(gfn)} is not in a writable memslot`);
      gfn = slot.endGfn;
    }
    this.areaBase = area.baseGfn * PAGE;
    this.areaEnd = (area.baseGfn + area.pages) * PAGE;
    this.builder = new RadixTreeBuilder(vm.memslots, this.areaBase, area.pages * PAGE);
    this.reserveRoot(PAGE);
    this.processTable = this.builder.createProcessTable(PROCESS_TABLE_PRTS);
    this.addTree();
    this.machine.registerProcessTable(this.processTableValue());
  }

  /** PRTB | PRTS of the process table, as the guest registers it. */
  processTableValue(): bigint {
    const [hi, lo] = this.processTable.pointer();
    return (BigInt(hi) << 32n) | BigInt(lo);
  }

  get spaceCount(): number {
    return this.trees.length;
  }

  get tablePages(): number {
    return (this.builder.cursor - this.areaBase) / PAGE;
  }

  /** The radix tree of `space` (PID `space`). */
  treeOf(space: number): RadixTree {
    this.checkSpace(space);
    return this.trees[space]!;
  }

  createSpace(): number {
    if (this.trees.length >= MAX_SPACES) {
      throw new HvmmuError('GUEST_NO_MEMORY', `the process table has ${MAX_SPACES} entries: no PID left for another address space`);
    }
    this.reserveRoot(ROOT_BYTES);
    this.addTree();
    const pid = this.trees.length - 1;
    // A new process-table entry: tlbie RIC 2 for the PID, so no processor keeps a stale copy.
    this.machine.tlbiePid(pid, 2);
    this.flushNested(pid, -1);
    return pid;
  }

  map(space: number, vpn: number, gfn: number, rights: number): void {
    this.checkSpace(space);
    this.checkVpn(vpn);
    if (!Number.isSafeInteger(gfn) || gfn < 0 || gfn >= GFN_LIMIT)
      throw new HvmmuError('BAD_ARGUMENT', `gfn must be an integer in [0, 2^40), got ${String(gfn)}`);
    if (!Number.isInteger(rights) || rights < 0 || (rights & ~GUEST_RIGHTS_ALL) !== 0) {
      throw new HvmmuError('BAD_ARGUMENT', `rights must be GuestRights bits (WRITE | EXEC | USER), got ${String(rights)}`);
    }
    const tree = this.trees[space]!;
    const missing = this.missingTables(tree, vpn);
    if (this.builder.cursor + missing * PAGE > this.areaEnd) {
      throw new HvmmuError(
        'GUEST_NO_MEMORY',
        `the guest table area is full: ${missing} more table page(s) needed, ${(this.areaEnd - this.builder.cursor) / PAGE} left`,
      );
    }
    const write = (rights & GuestRights.WRITE) !== 0;
    tree.map(vpn * PAGE, gfn * PAGE, 12, {
      read: true,
      write,
      execute: (rights & GuestRights.EXEC) !== 0,
      privileged: (rights & GuestRights.USER) === 0,
      referenced: true,
      changed: write,
    });
    this.machine.tlbiePage(space, vpn);
    this.flushNested(space, vpn);
  }

  unmap(space: number, vpn: number): void {
    this.checkSpace(space);
    this.checkVpn(vpn);
    if (this.trees[space]!.unmap(vpn * PAGE)) {
      this.machine.tlbiePage(space, vpn);
      this.flushNested(space, vpn);
    }
  }

  /**
   * Run nested guest `guest` (0..254) on `vcpu` (a workload's `enterNested`):
   * this guest, as an L1 hypervisor (`RadixL1Hypervisor`), runs its own
   * address spaces one level down — the nested guest shares its process
   * table, and L1's partition-scoped tree for it maps L2 real onto the same
   * L1 real addresses as it touches them. The vCPU keeps its PID and
   * relocation. Needs the VM's `nestedHv` option; entering the guest the
   * vCPU already runs does nothing.
   */
  enterNested(vcpu: Vcpu<PpcRadixTypes>, guest: number): void {
    if (this.vm.vcpus[vcpu.id] !== vcpu) throw new HvmmuError('BAD_ARGUMENT', `vCPU ${vcpu.id} is not a vCPU of VM '${this.vm.name}'`);
    const run = vcpu.arch.nested;
    if (run !== null) {
      if (run.guest.l1Lpid === guest + 1) return;
      vcpu.arch.exitNested(NESTED_EXIT_TRAP);
    }
    if (this.l1Hypervisor === null) {
      // Nested guests get this guest's own layout, a gigabyte at a time.
      this.l1Hypervisor = new RadixL1Hypervisor(this.vm, this.builder, () => this.processTableValue(), { leafShift: 30 });
    }
    this.l1Hypervisor.enter(vcpu, guest, vcpu.arch.pid);
  }

  /** Return `vcpu` from its nested guest to this guest (the nested guest's time slice ends: an HDEC exit to L1). */
  exitNested(vcpu: Vcpu<PpcRadixTypes>): void {
    if (this.vm.vcpus[vcpu.id] !== vcpu) throw new HvmmuError('BAD_ARGUMENT', `vCPU ${vcpu.id} is not a vCPU of VM '${this.vm.name}'`);
    if (vcpu.arch.inL2) vcpu.arch.exitNested(NESTED_EXIT_TRAP);
  }

  /** A nested guest's fault came back to this guest as its hypervisor: handle it as L1 and resume the nested guest (true: run the access again). */
  handleHypervisorFault(vcpu: Vcpu<PpcRadixTypes>, _fault: FaultInfo): boolean {
    return this.l1Hypervisor !== null && this.l1Hypervisor.handleExit(vcpu);
  }

  /** The guest's tlbie also reaches the nested guests running its address spaces (their own partitions). */
  private flushNested(pid: number, vpn: number): void {
    this.l1Hypervisor?.tlbie(pid, vpn);
  }

  activate(vcpu: Vcpu<PpcRadixTypes>, space: number): void {
    this.checkSpace(space);
    if (this.vm.vcpus[vcpu.id] !== vcpu) throw new HvmmuError('BAD_ARGUMENT', `vCPU ${vcpu.id} is not a vCPU of VM '${this.vm.name}'`);
    if (!this.activated.has(vcpu)) {
      vcpu.arch.setRelocation(true, true);
      this.activated.add(vcpu);
    }
    vcpu.arch.setPid(space);
  }

  private addTree(): void {
    const tree = this.builder.createTree('4k');
    this.processTable.setProcess(this.trees.length, tree);
    this.trees.push(tree);
  }

  /** Refuse, before anything is written, a block of `bytes` (aligned to its size) the area cannot hold. */
  private reserveRoot(bytes: number): void {
    const at = Math.ceil(this.builder.cursor / bytes) * bytes;
    if (at + bytes > this.areaEnd) {
      throw new HvmmuError(
        'GUEST_NO_MEMORY',
        `the guest table area is full: a ${bytes}-byte table does not fit (${(this.areaEnd - this.builder.cursor) / PAGE} page(s) left)`,
      );
    }
  }

  /** Tables the path to vpn's leaf lacks (0..3). */
  private missingTables(tree: RadixTree, vpn: number): number {
    const memslots = this.vm.memslots;
    let table = tree.root;
    let shift = 52;
    const addr = vpn * PAGE;
    for (let level = 0; level < 3; level++) {
      shift -= TABLE_LEVELS[level]!;
      const index = Math.floor(addr / 2 ** shift) % 2 ** TABLE_LEVELS[level]!;
      const at = table + index * 8;
      const hi = memslots.read64Hi(at, false);
      if ((hi & RADIX_V_HI) === 0 || (hi & RADIX_L_HI) !== 0) return 3 - level;
      table = (hi & 0x0fff_ffff) * TWO_POW_32 + ((memslots.read64Lo(at, false) & 0xffff_ff00) >>> 0);
    }
    return 0;
  }

  private checkSpace(space: number): void {
    if (!Number.isInteger(space) || space < 0 || space >= this.trees.length) {
      throw new HvmmuError('BAD_ARGUMENT', `no address space ${String(space)} (there are ${this.trees.length})`);
    }
  }

  private checkVpn(vpn: number): void {
    if (!Number.isSafeInteger(vpn) || vpn < 0 || vpn >= RADIX_GUEST_VPN_LIMIT) {
      throw new HvmmuError('BAD_ARGUMENT', `vpn must be an integer in [0, 2^40) (quadrant 0), got ${String(vpn)}`);
    }
  }
}

/** The radix guest side's factory: `create` gives the radix class. */
export interface RadixGuestSideFactory extends GuestSideFactory<PpcRadixTypes> {
  create(vm: Vm<PpcRadixTypes>, area: GuestTableArea): RadixGuestAddressSpaces;
}

/** The radix backend's guest side (`ppcRadixBackend.guestSide`): 4K-geometry trees, one PID per address space. */
export const radixGuestSide: RadixGuestSideFactory = {
  pagingMode: 'radix',
  tablePagesFor(mappings: number, spaces: number): number {
    if (!Number.isSafeInteger(mappings) || mappings < 0 || !Number.isSafeInteger(spaces) || spaces < 1) {
      throw new HvmmuError('BAD_ARGUMENT', `tablePagesFor takes mappings ≥ 0 and spaces ≥ 1, got ${String(mappings)}, ${String(spaces)}`);
    }
    // The process table; per space a 64 KiB root and up to 15 pages of alignment; per mapping up to 3 tables;
    // and room for this guest's own tables as a hypervisor of nested guests (allocated only if it enters one).
    return 1 + spaces * (ROOT_BYTES / PAGE + 15) + 3 * mappings + RADIX_L1_HYPERVISOR_PAGES;
  },
  create(vm: Vm<PpcRadixTypes>, area: GuestTableArea): RadixGuestAddressSpaces {
    return new RadixGuestAddressSpaces(vm, area);
  },
};
