import { HvmmuError, type Vcpu, type Vm } from '@hvmmu/core';
import type { PpcRadixTypes } from '../backend/PpcRadixTypes.js';
import { HvGuestStateField, PtRegsField } from '../nested/HvGuestState.js';
import { L1NestedHost, NestedHcall } from '../nested/L1NestedHost.js';
import type { RadixTree, RadixTreeBuilder } from './RadixTreeBuilder.js';

const PAGE = 4096;
/** L1's partition table: 2^8 entries (4 KiB), so nested guests 0..254 are LPIDs 1..255. */
const TABLE_SHIFT = 8;
/** Where in a vCPU's state page the pt_regs follow the hv_guest_state (248 bytes). */
const REGS_OFFSET = 0x800;
/** MSR bits of the nested guest's kernel: SF, ME, RI, LE, plus IR/DR as the vCPU has them. */
const MSR_BASE = 0x8000_0000_0000_1003n;
/** PATE dw1 GR: the nested guest is a radix guest (Linux's kvmhv_set_ptbl_entry gets PATB_GR with it). */
const PATE1_GR = 1n << 63n;
const TRAP_HDSI = 0xe00;
const TRAP_HISI = 0xe20;
/** Table-area pages this needs at most with 1 GiB leaves: the partition table, a 64 KiB root and its alignment, a PUD, and state pages for 16 vCPUs. */
export const RADIX_L1_HYPERVISOR_PAGES = 1 + 16 + 15 + 1 + 16;

/** What the L1 hypervisor did for its nested guests (`RadixL1Hypervisor.counters`). */
export interface RadixNestedL1Counters {
  /** H_ENTER_NESTED calls that started a nested guest (the first, and each resume after an exit). */
  enters: number;
  /** Exits L1 handled: HDSI/HISI for L2 real addresses its tree lacked (the rest are other interrupts). */
  exits: number;
  /** Of those, the ones L1 resolved with a leaf in its tree for the guest (kvmppc_book3s_radix_page_fault in L1). */
  l1Maps: number;
  /** Exits for L2 real addresses that are no L1 memory, or kept out: not mapped (MMIO for L1). */
  unresolved: number;
}

/** How an L1 hypervisor lays out its nested guests' memory. */
export interface RadixL1HypervisorLayout {
  /** log2 of the leaves L1 maps a nested guest's memory with: 21 (2 MiB, guest RAM on transparent huge pages) or 30 (1 GiB). */
  readonly leafShift: 21 | 30;
  /** L1 real [base, base + 2^leafShift) L1 must not give a nested guest (its own tables); default none. */
  readonly keptOut?: (base: number) => boolean;
}

/**
 * A radix guest acting as an L1 hypervisor for nested guests — what the
 * Linux kernel's KVM does when it runs as a pseries guest. Its nested
 * guests (L1's LPID `guest + 1`) run the address spaces of a process table
 * it is given, and L1's partition-scoped tree for them maps L2 real
 * addresses onto the same L1 real addresses, one leaf at a time as a guest
 * first touches them: the HDSI comes back to L1 (`handleExit`), which maps
 * the leaf and enters the guest again. Its tables and per-vCPU
 * `hv_guest_state` pages come from `builder`. The protocol is
 * `L1NestedHost`'s: H_SET_PARTITION_TABLE once, the entry per nested guest
 * with H_TLB_INVALIDATE, H_ENTER_NESTED per entry.
 */
export class RadixL1Hypervisor {
  /** L1's side of nested HV (its partition table, H_SET_PARTITION_TABLE, the guests' entries). */
  readonly host: L1NestedHost;
  /** L1's partition-scoped tree for its nested guests, in L1 memory. */
  readonly tree: RadixTree;
  readonly counters: RadixNestedL1Counters = { enters: 0, exits: 0, l1Maps: 0, unresolved: 0 };
  private readonly statePages = new Map<number, number>();
  private readonly entries = new Set<number>();
  private readonly leafBytes: number;
  private hcallVcpu: Vcpu<PpcRadixTypes> | null = null;

  constructor(
    private readonly vm: Vm<PpcRadixTypes>,
    private readonly builder: RadixTreeBuilder,
    /** The process table the nested guests run (PRTB | PRTS, a guest real address). */
    private readonly processTable: () => bigint,
    private readonly layout: RadixL1HypervisorLayout,
  ) {
    this.host = new L1NestedHost({
      hcall: (number, args) => L1NestedHost.hcallOn(this.hcallVcpu!, number, args),
      alloc: (bytes) => this.allocate(bytes),
      write: (gpa, bytes) => vm.memslots.writeBytes(gpa, bytes),
    });
    this.tree = builder.createTree('4k');
    this.leafBytes = 2 ** layout.leafShift;
  }

  /** Run nested guest `guest` (0..254) on `vcpu`, which runs L1, in process `pid` with the vCPU's relocation. */
  enter(vcpu: Vcpu<PpcRadixTypes>, guest: number, pid: number): void {
    if (!Number.isInteger(guest) || guest < 0 || guest >= 2 ** TABLE_SHIFT - 1) {
      throw new HvmmuError('BAD_ARGUMENT', `nested guest must be 0..${2 ** TABLE_SHIFT - 2}, got ${String(guest)}`);
    }
    this.hcallVcpu = vcpu;
    if (!this.host.active) {
      const init = this.host.init(TABLE_SHIFT);
      if (!init.ok) {
        throw new HvmmuError(
          'BAD_ARGUMENT',
          init.reason === 'not-supported'
            ? 'nested HV is off for this VM: create it with backendOptions { nestedHv: true }'
            : "the guest's table area has no room for L1's partition table",
        );
      }
    }
    const lpid = guest + 1;
    if (!this.entries.has(lpid)) {
      const status = this.host.setEntry(lpid, this.tree.pateDw0(), this.processTable() | PATE1_GR);
      if (status !== 0) throw new HvmmuError('BACKEND_INVALID', `the nested guest's partition-table entry was refused (status ${status})`);
      this.entries.add(lpid);
    }
    const page = this.statePage(vcpu);
    const hv = new Uint8Array(248);
    const v = new DataView(hv.buffer);
    v.setBigUint64(HvGuestStateField.version, 2n, true);
    v.setUint32(HvGuestStateField.lpid, lpid, true);
    v.setUint32(HvGuestStateField.vcpuToken, vcpu.id, true);
    v.setBigUint64(HvGuestStateField.pidr, BigInt(pid >>> 0), true);
    this.vm.memslots.writeBytes(page, hv);
    const regs = new Uint8Array(352);
    const r = vcpu.arch.regs;
    new DataView(regs.buffer).setBigUint64(PtRegsField.msr, MSR_BASE | (r.ir ? 0x20n : 0n) | (r.dr ? 0x10n : 0n), true);
    this.vm.memslots.writeBytes(page + REGS_OFFSET, regs);
    this.resume(vcpu);
  }

  /**
   * L1's handling of an exit of its nested guest on `vcpu`: an HDSI/HISI
   * for an L2 real address in L1 memory (and not kept out) is L1's
   * partition-scoped page fault for its guest — it maps the leaf around it
   * (read, write, execute, R and C set) — and either way L1 enters the
   * guest again. True if the access that exited can run again.
   */
  handleExit(vcpu: Vcpu<PpcRadixTypes>): boolean {
    const page = this.statePages.get(vcpu.id);
    const exit = vcpu.arch.lastNestedExit;
    if (vcpu.arch.inL2 || page === undefined || exit === null) return false;
    this.counters.exits++;
    let resolved = false;
    if (exit.trap === TRAP_HDSI || exit.trap === TRAP_HISI) {
      // The L2 real address: ASDR of the state L0 wrote back (little-endian, as L1 wrote it).
      const b = new Uint8Array(8);
      this.vm.memslots.readBytes(page + HvGuestStateField.asdr, b);
      resolved = this.mapLeaf(Number(new DataView(b.buffer).getBigUint64(0, true) & 0x0fff_ffff_ffff_f000n));
      if (!resolved) this.counters.unresolved++;
    }
    this.hcallVcpu = vcpu;
    this.resume(vcpu);
    return resolved;
  }

  /** The guest OS's tlbie of a page (or, with `vpn` -1, a whole PID and its process-table entry): it reaches every nested guest's partition too. */
  tlbie(pid: number, vpn: number): void {
    const nested = this.vm.arch.nested;
    for (const lpid of this.entries) nested.tlbieGuest(lpid, pid, vpn);
    if (vpn < 0) nested.dropTableCaches();
  }

  /** L1 maps the leaf of L2 real space around `gpa` onto its own memory at the same address; false if it must not or cannot. */
  private mapLeaf(gpa: number): boolean {
    const base = gpa - (gpa % this.leafBytes);
    if (this.layout.keptOut?.(base) === true) return false;
    if (this.vm.memslots.findByGfn(gpa / PAGE) === undefined) return false;
    try {
      this.tree.map(base, base, this.layout.leafShift, { read: true, write: true, execute: true, referenced: true, changed: true });
    } catch (error) {
      // L1's table area is full: the page stays unmapped.
      if (error instanceof HvmmuError) return false;
      throw error;
    }
    this.counters.l1Maps++;
    return true;
  }

  /** H_ENTER_NESTED with the state L1 keeps for the vCPU (and L0 wrote back at the last exit). */
  private resume(vcpu: Vcpu<PpcRadixTypes>): void {
    const page = this.statePages.get(vcpu.id)!;
    vcpu.hcallRegs.clear();
    vcpu.hcallRegs.setArg(0, page).setArg(1, page + REGS_OFFSET);
    const status = vcpu.hypercall(NestedHcall.H_ENTER_NESTED);
    if (status !== 0 || !vcpu.arch.inL2) throw new HvmmuError('BACKEND_INVALID', `H_ENTER_NESTED on vCPU ${vcpu.id} returned ${status}`);
    this.counters.enters++;
  }

  private statePage(vcpu: Vcpu<PpcRadixTypes>): number {
    let page = this.statePages.get(vcpu.id);
    if (page === undefined) {
      const fresh = this.allocate(PAGE);
      if (fresh === null) throw new HvmmuError('GUEST_NO_MEMORY', "L1's table area has no page left for another vCPU's nested-guest state");
      this.statePages.set(vcpu.id, fresh);
      page = fresh;
    }
    return page;
  }

  /** A zeroed block of L1 memory from the table area, or null when it is full. */
  private allocate(bytes: number): number | null {
    try {
      return this.builder.allocate(bytes);
    } catch (error) {
      if (error instanceof HvmmuError) return null;
      throw error;
    }
  }
}
