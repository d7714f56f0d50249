import { HvmmuError, type Vcpu } from '@hvmmu/core';
import { H_SUCCESS, MAX_NESTED_GUESTS_SHIFT } from './NestedGuests.js';
import { tlbieP1 } from './TlbInvalidate.js';

/** The nested hcall numbers (hvcall.h). */
export const NestedHcall = {
  H_SET_PARTITION_TABLE: 0xf800,
  H_ENTER_NESTED: 0xf804,
  H_TLB_INVALIDATE: 0xf808,
  H_COPY_TOFROM_GUEST: 0xf80c,
} as const;

/** What an L1 hypervisor's kernel needs from its machine: hcalls to its parent and its own memory. */
export interface L1Machine {
  /** Make hcall `number` with r4.. = args (64-bit BigInts); returns the status (r3). */
  hcall(number: number, args: readonly bigint[]): number;
  /** Allocate `bytes` of L1 memory aligned to `align` (zeroed); null if there is none. */
  alloc(bytes: number, align: number): number | null;
  /** Write `bytes` to L1 real address `gpa`. */
  write(gpa: number, bytes: Uint8Array): void;
}

/** How `init` ended. */
export type L1NestedInit =
  | { readonly ok: true; readonly tableBase: number; readonly entries: number }
  | { readonly ok: false; readonly reason: 'no-memory' | 'not-supported'; readonly status?: number };

/**
 * The L1 side of nested HV, what the Linux kernel does when it runs as a
 * pseries guest and hosts guests of its own (book3s_hv_nested.c
 * kvmhv_nested_init, kvmhv_set_ptbl_entry, kvmhv_nested_exit): a partition
 * table in L1 memory registered with H_SET_PARTITION_TABLE, entries set and
 * cleared for its L2s (each change flushed with H_TLB_INVALIDATE, RIC 2 for
 * that LPID), torn down with H_SET_PARTITION_TABLE(0). An embedding program
 * acting as an L1 hypervisor uses it instead of writing the protocol by hand.
 */
export class L1NestedHost {
  private tableBase = -1;
  private entries = 0;

  constructor(private readonly machine: L1Machine) {}

  /**
   * An `L1Machine.hcall` for an L1 that runs as a vCPU of this library's VM:
   * r4.. from `args` (64-bit values as halves), `vcpu.hypercall(number)`,
   * the status.
   */
  static hcallOn(vcpu: Vcpu, number: number, args: readonly bigint[]): number {
    const regs = vcpu.hcallRegs;
    regs.clear();
    for (let i = 0; i < args.length; i++) regs.setArgHalves(i, Number(BigInt.asUintN(64, args[i]!) >> 32n), Number(args[i]! & 0xffff_ffffn));
    return vcpu.hypercall(number);
  }

  get active(): boolean {
    return this.tableBase >= 0;
  }

  /**
   * kvmhv_nested_init: a table of 2^`entriesShift` entries (default
   * KVM_MAX_NESTED_GUESTS_SHIFT = 12: 4096 entries, 64 KiB; at least 2^8,
   * the architecture's 4 KiB minimum), registered with the parent. The
   * parent refusing (H_FUNCTION: no nesting; H_PARAMETER) is a clear
   * result, not an exception; the memory is then not kept.
   */
  init(entriesShift: number = MAX_NESTED_GUESTS_SHIFT): L1NestedInit {
    if (this.active) throw new HvmmuError('BAD_ARGUMENT', 'nested HV is already initialised');
    if (!Number.isInteger(entriesShift) || entriesShift < 8 || entriesShift > MAX_NESTED_GUESTS_SHIFT) {
      throw new HvmmuError('BAD_ARGUMENT', `partition table entries must be 2^8..2^${MAX_NESTED_GUESTS_SHIFT}, got 2^${String(entriesShift)}`);
    }
    const bytes = 2 ** (entriesShift + 4);
    const base = this.machine.alloc(bytes, bytes);
    if (base === null) return { ok: false, reason: 'no-memory' };
    // PTCR format: the base and PATS = log2(bytes) - 12.
    const status = this.machine.hcall(NestedHcall.H_SET_PARTITION_TABLE, [BigInt(base) | BigInt(entriesShift + 4 - 12)]);
    if (status !== H_SUCCESS) return { ok: false, reason: 'not-supported', status };
    this.tableBase = base;
    this.entries = 2 ** entriesShift;
    return { ok: true, tableBase: base, entries: this.entries };
  }

  /**
   * kvmhv_set_ptbl_entry: write L2 `lpid`'s partition-table entry (dw0: the
   * root of L1's partition-scoped tree for it, HR set; dw1: the L2's
   * process table) big-endian, then have the parent flush everything it
   * cached for that LPID (H_TLB_INVALIDATE RIC 2, IS 2). Returns the status.
   */
  setEntry(lpid: number, dw0: bigint, dw1: bigint): number {
    if (!this.active) throw new HvmmuError('BAD_ARGUMENT', 'nested HV is not initialised');
    if (!Number.isInteger(lpid) || lpid < 1 || lpid >= this.entries)
      throw new HvmmuError('BAD_ARGUMENT', `LPID must be 1..${this.entries - 1}, got ${String(lpid)}`);
    const bytes = new Uint8Array(16);
    const v = new DataView(bytes.buffer);
    v.setBigUint64(0, BigInt.asUintN(64, dw0), false);
    v.setBigUint64(8, BigInt.asUintN(64, dw1), false);
    this.machine.write(this.tableBase + lpid * 16, bytes);
    // RB: IS = 2 (this LPID) in bits 11..10.
    return this.machine.hcall(NestedHcall.H_TLB_INVALIDATE, [BigInt(tlbieP1(2, 0, 1)), BigInt(lpid), 2n << 10n]);
  }

  /** Clear L2 `lpid`'s entry (the parent then forgets the nested guest). */
  clearEntry(lpid: number): number {
    return this.setEntry(lpid, 0n, 0n);
  }

  /** kvmhv_nested_exit: H_SET_PARTITION_TABLE(0). */
  exit(): number {
    if (!this.active) return H_SUCCESS;
    const status = this.machine.hcall(NestedHcall.H_SET_PARTITION_TABLE, [0n]);
    this.tableBase = -1;
    this.entries = 0;
    return status;
  }
}
