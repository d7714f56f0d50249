import { HvmmuError, type Vcpu, type Vm } from '@hvmmu/core';
import type { PpcRadixTypes } from '../backend/PpcRadixTypes.js';
import { HvGuestStateField, PtRegsField } from '../nested/HvGuestState.js';
import { L1NestedHost, NestedHcall } from '../nested/L1NestedHost.js';
import type { RadixTree, RadixTreeBuilder } from './RadixTreeBuilder.js';

const PAGE = 4096;
/** L1 gives its nested guests its own guest-physical layout, mapped with 1 GiB leaves (a Linux L1 backing guest RAM with huge pages). */
const L1_PAGE_SHIFT = 30;
const L1_PAGE = 2 ** L1_PAGE_SHIFT;
/** L1's partition table: 2^8 entries (4 KiB), so nested guests 0..254 are LPIDs 1..255. */
const TABLE_SHIFT = 8;
/** Where in a vCPU's state page the pt_regs follow the hv_guest_state. */
const REGS_OFFSET = 0x800;
/** MSR bits of the nested guest's kernel: SF, ME, RI, LE, plus IR/DR as the vCPU has them. */
const MSR_BASE = 0x8000_0000_0000_1003n;
const TRAP_HDSI = 0xe00;
const TRAP_HISI = 0xe20;
/** Table-area pages this needs at most: the partition table, a 64 KiB root and its alignment, a PUD, and state pages for 16 vCPUs. */
export const RADIX_L1_HYPERVISOR_PAGES = 1 + 16 + 15 + 1 + 16;

/**
 * A radix guest acting as an L1 hypervisor for nested guests that run its
 * own address spaces one level down — what a workload's `enterNested`
 * means on the radix backend. The nested guest (L1's LPID `guest + 1`)
 * shares the guest OS's process table, and L1's partition-scoped tree for
 * it maps L2 real addresses onto the same L1 real addresses, 1 GiB at a
 * time as the nested guest first touches them (the HDSI exit comes back to
 * L1, which maps the gigabyte and enters again: `handleExit`). Its tables
 * and per-vCPU `hv_guest_state` pages come from the guest side's table
 * area. The protocol is `L1NestedHost`'s: H_SET_PARTITION_TABLE once, the
 * entry per nested guest with H_TLB_INVALIDATE, H_ENTER_NESTED per entry.
 */
export class RadixL1Hypervisor {
  private readonly host: L1NestedHost;
  private readonly tree: RadixTree;
  private readonly statePages = new Map<number, number>();
  private readonly entries = new Set<number>();
  private readonly mapped = new Set<number>();
  private hcallVcpu: Vcpu<PpcRadixTypes> | null = null;
  private ready = false;

  constructor(
    private readonly vm: Vm<PpcRadixTypes>,
    private readonly builder: RadixTreeBuilder,
    /** PATE dw1 of the nested guests: the guest OS's process table, GR set. */
    private readonly processTableDw1: () => bigint,
  ) {
    this.host = new L1NestedHost({
      hcall: (number, args) => {
        const v = this.hcallVcpu!;
        v.hcallRegs.clear();
        for (const [i, a] of args.entries()) v.hcallRegs.setArgHalves(i, Number(a >> 32n), Number(a & 0xffff_ffffn));
        return v.hypercall(number);
      },
      alloc: (bytes) => {
        try {
          return this.builder.allocate(bytes);
        } catch (error) {
          if (error instanceof HvmmuError) return null; // the table area is full
          throw error;
        }
      },
      write: (gpa, bytes) => vm.memslots.writeBytes(gpa, bytes),
    });
    this.tree = builder.createTree('4k');
  }

  /** Run nested guest `guest` (0..254) on `vcpu`, which runs L1, in process `pid` with the vCPU's relocation. */
  enter(vcpu: Vcpu<PpcRadixTypes>, guest: number, pid: number): void {
    if (!Number.isInteger(guest) || guest < 0 || guest >= 2 ** TABLE_SHIFT - 1) {
      throw new HvmmuError('BAD_ARGUMENT', `nested guest must be 0..${2 ** TABLE_SHIFT - 2}, got ${String(guest)}`);
    }
    this.hcallVcpu = vcpu;
    if (!this.ready) {
      const init = this.host.init(TABLE_SHIFT);
      if (!init.ok) {
        throw new HvmmuError(
          'BAD_ARGUMENT',
          init.reason === 'not-supported'
            ? 'nested HV is off for this VM: create it with backendOptions { nestedHv: true }'
            : "the guest's table area has no room for L1's partition table",
        );
      }
      this.ready = true;
    }
    const lpid = guest + 1;
    if (!this.entries.has(lpid)) {
      const status = this.host.setEntry(lpid, this.tree.pateDw0(), this.processTableDw1());
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
   * L1's handling of an exit of its nested guest: an HDSI/HISI for an L2
   * real address in L1 memory its tree does not map yet is L1's page fault
   * for the guest — it maps that gigabyte — and L1 enters the guest again.
   * True if the access that exited can run again.
   */
  handleExit(vcpu: Vcpu<PpcRadixTypes>): boolean {
    const page = this.statePages.get(vcpu.id);
    const exit = vcpu.arch.lastNestedExit;
    if (vcpu.arch.inL2 || page === undefined || exit === null) return false;
    let resolved = false;
    if (exit.trap === TRAP_HDSI || exit.trap === TRAP_HISI) {
      const b = new Uint8Array(8);
      this.vm.memslots.readBytes(page + HvGuestStateField.asdr, b);
      const gpa = Number(new DataView(b.buffer).getBigUint64(0, true) & 0x0fff_ffff_ffff_f000n);
      const base = gpa - (gpa % L1_PAGE);
      if (!this.mapped.has(base) && this.vm.memslots.findByGfn(gpa / PAGE) !== undefined) {
        this.tree.map(base, base, L1_PAGE_SHIFT, { read: true, write: true, execute: true, referenced: true, changed: true });
        this.mapped.add(base);
        resolved = true;
      }
    }
    this.hcallVcpu = vcpu;
    this.resume(vcpu);
    return resolved;
  }

  /** H_ENTER_NESTED with the state L1 keeps for the vCPU (and L0 wrote back at the last exit). */
  private resume(vcpu: Vcpu<PpcRadixTypes>): void {
    const page = this.statePages.get(vcpu.id)!;
    vcpu.hcallRegs.clear();
    vcpu.hcallRegs.setArg(0, page).setArg(1, page + REGS_OFFSET);
    const status = vcpu.hypercall(NestedHcall.H_ENTER_NESTED);
    if (status !== 0 || !vcpu.arch.inL2) throw new HvmmuError('BACKEND_INVALID', `H_ENTER_NESTED on vCPU ${vcpu.id} returned ${status}`);
  }

  private statePage(vcpu: Vcpu<PpcRadixTypes>): number {
    let page = this.statePages.get(vcpu.id);
    if (page === undefined) {
      page = this.builder.allocate(PAGE);
      this.statePages.set(vcpu.id, page);
    }
    return page;
  }

  /** The L1 LPIDs of the nested guests entered so far. */
  get lpids(): readonly number[] {
    return [...this.entries];
  }
}
