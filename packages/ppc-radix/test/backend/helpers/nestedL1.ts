import { Hypervisor, type Vcpu, type Vm } from '@hvmmu/core';
import {
  HvGuestStateField,
  L1NestedHost,
  NestedHcall,
  PtRegsField,
  RADIX_PTE,
  RadixTreeBuilder,
  ppcRadixBackend,
  tlbieP1,
  type PpcRadixOptions,
  type PpcRadixTypes,
} from '@hvmmu/ppc-radix';

/**
 * An L1 hypervisor on the radix backend with nested HV on, for the nested
 * property and hostile tests: slot 0 ([0, 4 MiB) of L1 real memory) holds
 * everything L1 keeps for its L2s — its partition table and the L2s'
 * partition-scoped trees (a table arena from 1 MiB) and each vCPU's
 * hv_guest_state and pt_regs (from 32 KiB) — so the L2s' data is elsewhere.
 */
export const MiB = 1 << 20;
export const ARENA_BASE = 1 * MiB;
export const ARENA_BYTES = 3 * MiB;
/** hv_guest_state of vCPU v at HV_STATE + v * 0x2000, its pt_regs 4 KiB after it. */
export const HV_STATE = 0x8000;

export function hvPtr(v: number): number {
  return HV_STATE + v * 0x2000;
}
export function regsPtr(v: number): number {
  return hvPtr(v) + 0x1000;
}

export interface NestedL1 {
  readonly hv: Hypervisor;
  readonly vm: Vm<PpcRadixTypes>;
  readonly vcpus: readonly Vcpu<PpcRadixTypes>[];
  readonly builder: RadixTreeBuilder;
  /** The L1 side; its hcalls go through `vcpus[caller]`. */
  readonly l1: L1NestedHost;
  /** Which vCPU makes L1's hcalls (`l1`'s and the helpers below). */
  caller: number;
}

export interface NestedL1Options {
  readonly vcpus?: number;
  readonly memoryBytes?: number;
  readonly backendOptions?: Partial<PpcRadixOptions>;
  /** Bytes of the table arena from ARENA_BASE (default ARENA_BYTES: the rest of slot 0). */
  readonly arenaBytes?: number;
}

/** The VM, slot 0, the vCPUs (in real mode: L1 needs no process table of its own here) and the L1 side. */
export function nestedL1(options: NestedL1Options = {}): NestedL1 {
  const hv = new Hypervisor({ memoryBytes: options.memoryBytes ?? 16 * MiB });
  const vm = hv.createVm({ backend: ppcRadixBackend, backendOptions: { nestedHv: true, ...options.backendOptions } });
  vm.memslots.create({ id: 0, guestPhysAddr: 0, size: 4 * MiB });
  const vcpus: Vcpu<PpcRadixTypes>[] = [];
  for (let i = 0; i < (options.vcpus ?? 1); i++) {
    const v = vm.createVcpu();
    v.arch.setRelocation(false, false);
    vcpus.push(v);
  }
  const builder = new RadixTreeBuilder(vm.memslots, ARENA_BASE, options.arenaBytes ?? ARENA_BYTES);
  const t: NestedL1 = {
    hv,
    vm,
    vcpus,
    builder,
    caller: 0,
    l1: new L1NestedHost({
      hcall: (number, args) => L1NestedHost.hcallOn(vcpus[t.caller]!, number, args),
      alloc: (bytes) => builder.allocate(bytes),
      write: (gpa, bytes) => vm.memslots.writeBytes(gpa, bytes),
    }),
  };
  return t;
}

/** An hcall from vCPU v with 64-bit arguments (BigInts, any bit pattern). */
export function hcall(t: NestedL1, v: number, number: number, args: readonly bigint[]): number {
  return L1NestedHost.hcallOn(t.vcpus[v]!, number, args);
}

/**
 * Write vCPU v's hv_guest_state (version 2 unless told) and pt_regs for an
 * L2 run, little-endian as a ppc64el L1 writes them; the exit fields
 * (HDAR, HDSISR, ASDR) start at zero.
 */
export function writeL2State(t: NestedL1, v: number, lpid: number, msr = 0n, pidr = 0n, version = 2n): void {
  const hvs = new Uint8Array(248);
  const d = new DataView(hvs.buffer);
  d.setBigUint64(HvGuestStateField.version, version, true);
  d.setUint32(HvGuestStateField.lpid, lpid, true);
  d.setUint32(HvGuestStateField.vcpuToken, v, true);
  d.setBigUint64(HvGuestStateField.pidr, pidr, true);
  t.vm.memslots.writeBytes(hvPtr(v), hvs);
  const regs = new Uint8Array(352);
  new DataView(regs.buffer).setBigUint64(PtRegsField.msr, msr, true);
  t.vm.memslots.writeBytes(regsPtr(v), regs);
}

/** H_ENTER_NESTED from vCPU v with its own state areas. */
export function enterNested(t: NestedL1, v: number): number {
  return hcall(t, v, NestedHcall.H_ENTER_NESTED, [BigInt(hvPtr(v)), BigInt(regsPtr(v))]);
}

/** A little-endian doubleword of vCPU v's hv_guest_state. */
export function hvState64(t: NestedL1, v: number, field: number): bigint {
  return read64le(t, hvPtr(v) + field);
}

/** A little-endian doubleword of vCPU v's pt_regs. */
export function ptRegs64(t: NestedL1, v: number, field: number): bigint {
  return read64le(t, regsPtr(v) + field);
}

function read64le(t: NestedL1, gpa: number): bigint {
  const b = new Uint8Array(8);
  t.vm.memslots.readBytes(gpa, b);
  return new DataView(b.buffer).getBigUint64(0, true);
}

/** H_TLB_INVALIDATE from vCPU v: r4 = H_TLBIE_P1_ENC(ric, prs, r), r5 = RS (the LPID), r6 = RB (EPN | IS << 10 | AP << 5). */
export function tlbInvalidate(t: NestedL1, v: number, ric: number, is: number, lpid: number, addr = 0, ap = 0, prs = 0, r = 1): number {
  const rb = BigInt(addr) | (BigInt(is) << 10n) | (BigInt(ap) << 5n);
  return hcall(t, v, NestedHcall.H_TLB_INVALIDATE, [BigInt(tlbieP1(ric, prs, r)), BigInt(lpid), rb]);
}

/** Big-endian doubleword of L1 real memory (L1's tables). */
export function l1Read64(t: NestedL1, gpa: bigint): bigint {
  const b = new Uint8Array(8);
  t.vm.memslots.readBytes(Number(gpa), b);
  return new DataView(b.buffer).getBigUint64(0, false);
}

/** A leaf of L1's partition-scoped tree for an L2, as `walkL1Tree` finds it. */
export interface L1Leaf {
  /** The leaf doubleword. */
  readonly pte: bigint;
  /** log2 of its page size. */
  readonly shift: number;
  /** The L1 real address the L2 address maps to. */
  readonly ra: bigint;
}

const V = 1n << 63n;
const L = 1n << 62n;
const NLB = 0x0fff_ffff_ffff_ff00n;
const RPN = 0x01ff_ffff_ffff_f000n;

/**
 * The model's own walk of a well-formed partition-scoped tree in L1 memory
 * (POWER ISA v3.0 Book III 6.7.10.2; the fact sheet's algorithm): RTS 52
 * bits from PATE dw0, index bits per level from the NLS fields, V clear →
 * no translation (null), L set → the leaf. Plain BigInt code, nothing
 * shared with the backend's walkers; it trusts the tree's shape (the
 * property test builds only well-formed trees).
 */
export function walkL1Tree(t: NestedL1, dw0: bigint, addr: bigint): L1Leaf | null {
  if (dw0 === 0n) return null;
  const rts = (((dw0 >> 61n) & 3n) << 3n) | ((dw0 >> 5n) & 7n);
  if (rts + 31n !== 52n) throw new Error(`model: PATE dw0 0x${dw0.toString(16)} is not a 52-bit tree`);
  let base = dw0 & NLB;
  let nls = dw0 & 0x1fn;
  let shift = 52n;
  for (let level = 0; level < 4; level++) {
    shift -= nls;
    const e = l1Read64(t, base + ((addr >> shift) & ((1n << nls) - 1n)) * 8n);
    if ((e & V) === 0n) return null;
    if ((e & L) !== 0n) {
      const mask = (1n << shift) - 1n;
      return { pte: e, shift: Number(shift), ra: (e & RPN & ~mask) | (addr & mask) };
    }
    base = e & NLB;
    nls = e & 0x1fn;
  }
  throw new Error('model: no leaf after four levels');
}

/** EAA and R/C bits of a leaf's low word. */
export const LEAF_BITS = RADIX_PTE.READ | RADIX_PTE.READ_WRITE | RADIX_PTE.EXECUTE | RADIX_PTE.R | RADIX_PTE.C;
