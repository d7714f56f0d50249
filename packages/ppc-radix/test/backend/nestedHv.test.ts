import { describe, expect, it } from 'vitest';
import { Access, FaultDestination, Hypervisor, TRANSLATE_FAULT, type Vcpu, type Vm } from '@hvmmu/core';
import {
  Dsisr,
  HvGuestStateField,
  L1NestedHost,
  NestedHcall,
  NestedHcallStatus,
  NestedTrap,
  PATE0_HR_HI,
  PtRegsField,
  RadixTreeBuilder,
  ppcRadixBackend,
  type PpcRadixTypes,
  type RadixTree,
} from '@hvmmu/ppc-radix';

const MiB = 1 << 20;
/** L1 memory layout of these tests: tables from 8 MiB, the L2's memory at 4 MiB, the hv_guest_state and pt_regs at 12 MiB. */
const ARENA = 8 * MiB;
const L2_BASE = 4 * MiB;
const HV_PTR = 12 * MiB;
const REGS_PTR = 12 * MiB + 0x1000;
const L2_LPID = 5;

interface Setup {
  vm: Vm<PpcRadixTypes>;
  vcpu: Vcpu<PpcRadixTypes>;
  l1: L1NestedHost;
  builder: RadixTreeBuilder;
  l2Tree: RadixTree;
}

/** An L1 with nested HV on, its partition table registered, and L2 5's partition-scoped tree (in L1 memory) mapping L2 real [0, 1 MiB) to L1 [4 MiB, 5 MiB). */
function setup(nestedHv = true): Setup {
  const hv = new Hypervisor({ memoryBytes: 64 * MiB });
  const vm = hv.createVm({ backend: ppcRadixBackend, backendOptions: { nestedHv } });
  vm.memslots.create({ id: 0, guestPhysAddr: 0, size: 16 * MiB });
  const vcpu = vm.createVcpu();
  const builder = new RadixTreeBuilder(vm.memslots, ARENA, 4 * MiB);
  const l1 = new L1NestedHost({
    hcall(number, args) {
      for (const [i, a] of args.entries()) vcpu.hcallRegs.setArgHalves(i, Number(a >> 32n), Number(a & 0xffff_ffffn));
      return vcpu.hypercall(number);
    },
    alloc: (bytes) => builder.allocate(bytes),
    write: (gpa, bytes) => vm.memslots.writeBytes(gpa, bytes),
  });
  const l2Tree = builder.createTree('4k');
  for (let p = 0; p < 256; p++) l2Tree.map(p * 4096, L2_BASE + p * 4096, 12, { read: true, write: true, execute: true });
  return { vm, vcpu, l1, builder, l2Tree };
}

function pateDw0(tree: RadixTree): bigint {
  const [hi, lo] = tree.rootEntry();
  return (BigInt((hi | PATE0_HR_HI) >>> 0) << 32n) | BigInt(lo);
}

/** Write an hv_guest_state (version 2) and pt_regs for the L2, little-endian as a ppc64el L1 does. */
function writeL2State(vm: Vm<PpcRadixTypes>, lpid: number, msr: bigint, opts: { version?: bigint; vcpuToken?: number; pidr?: bigint } = {}): void {
  const hv = new Uint8Array(248);
  const v = new DataView(hv.buffer);
  v.setBigUint64(HvGuestStateField.version, opts.version ?? 2n, true);
  v.setUint32(HvGuestStateField.lpid, lpid, true);
  v.setUint32(HvGuestStateField.vcpuToken, opts.vcpuToken ?? 0, true);
  v.setBigUint64(HvGuestStateField.pidr, opts.pidr ?? 0n, true);
  vm.memslots.writeBytes(HV_PTR, hv);
  const regs = new Uint8Array(352);
  new DataView(regs.buffer).setBigUint64(PtRegsField.msr, msr, true);
  vm.memslots.writeBytes(REGS_PTR, regs);
}

function enter(s: Setup): number {
  s.vcpu.hcallRegs.clear();
  s.vcpu.hcallRegs.setArg(0, HV_PTR).setArg(1, REGS_PTR);
  return s.vcpu.hypercall(NestedHcall.H_ENTER_NESTED);
}

function readState64(vm: Vm<PpcRadixTypes>, offset: number): bigint {
  const b = new Uint8Array(8);
  vm.memslots.readBytes(HV_PTR + offset, b);
  return new DataView(b.buffer).getBigUint64(0, true);
}

/** Start L2 5 in real mode (MSR[IR] = MSR[DR] = 0): its accesses are L2 real addresses. */
function startRealModeL2(): Setup {
  const s = setup();
  expect(s.l1.init(8)).toMatchObject({ ok: true });
  expect(s.l1.setEntry(L2_LPID, pateDw0(s.l2Tree), 0n)).toBe(0);
  writeL2State(s.vm, L2_LPID, 0n);
  expect(enter(s)).toBe(NestedHcallStatus.H_SUCCESS);
  return s;
}

describe('nested HV on the radix backend', () => {
  it('without nestedHv every nested hcall is H_FUNCTION and the L1 side reports nesting unsupported', () => {
    const s = setup(false);
    expect(s.l1.init(8)).toEqual({ ok: false, reason: 'not-supported', status: NestedHcallStatus.H_FUNCTION });
    for (const n of Object.values(NestedHcall)) expect(s.vcpu.hypercall(n)).toBe(NestedHcallStatus.H_FUNCTION);
  });

  it('H_ENTER_NESTED before H_SET_PARTITION_TABLE is H_NOT_AVAILABLE', () => {
    const s = setup();
    writeL2State(s.vm, L2_LPID, 0n);
    expect(enter(s)).toBe(NestedHcallStatus.H_NOT_AVAILABLE);
    expect(s.vcpu.arch.inL2).toBe(false);
  });

  it('refuses a bad hv_guest_state: unknown version, too new a version, vcpu_token too big, LPID 0 or past the table', () => {
    const s = setup();
    expect(s.l1.init(8)).toMatchObject({ ok: true });
    writeL2State(s.vm, L2_LPID, 0n, { version: 3n });
    expect(enter(s)).toBe(NestedHcallStatus.H_PARAMETER); // KVM's hv_guest_state_size(3) is -1
    writeL2State(s.vm, L2_LPID, 0n, { vcpuToken: 2048 });
    expect(enter(s)).toBe(NestedHcallStatus.H_PARAMETER);
    writeL2State(s.vm, 0, 0n);
    expect(enter(s)).toBe(NestedHcallStatus.H_PARAMETER);
    writeL2State(s.vm, 256, 0n); // 2^8 entries
    expect(enter(s)).toBe(NestedHcallStatus.H_PARAMETER);
    s.vcpu.hcallRegs.setArg(0, 64 * MiB).setArg(1, REGS_PTR);
    expect(s.vcpu.hypercall(NestedHcall.H_ENTER_NESTED)).toBe(NestedHcallStatus.H_PARAMETER);
    expect(s.vcpu.arch.inL2).toBe(false);
    expect(s.vm.arch.nested.guests.size).toBe(0);
  });

  it('an L2 access faults through L1 tree and L0 tree into a shadow entry, recorded in the nested rmap', () => {
    const s = startRealModeL2();
    expect(s.vcpu.arch.inL2).toBe(true);
    const hpa = s.vcpu.translate(0x3123, Access.WRITE);
    expect(hpa).not.toBe(TRANSLATE_FAULT);
    const slot = s.vm.memslots.get(0);
    expect(Math.floor(hpa / 4096)).toBe(slot.frames[(L2_BASE >> 12) + 3]);
    expect(hpa % 4096).toBe(0x123);
    expect(slot.arch.nested.entries((L2_BASE >> 12) + 3)).toEqual([[L2_LPID, 3]]);
    const st = s.vm.stats();
    expect(st.ppcRadixShadowInserts).toBe(1);
    expect(st.ppcRadixNestedGuests).toBe(1);
    // The same fault again (after the shadow entry went stale by an L1 flush) adds no rmap entry.
    s.vcpu.arch.exitNested(NestedTrap.HDEC);
    expect(s.l1.setEntry(L2_LPID, pateDw0(s.l2Tree), 0n)).toBe(0); // RIC 2: the shadow tree is emptied
    expect(enter(s)).toBe(0);
    for (let i = 0; i < 1000; i++) {
      expect(s.vcpu.translate(0x3000, Access.READ)).not.toBe(TRANSLATE_FAULT);
      s.vcpu.arch.exitNested(NestedTrap.HDEC);
      s.l1.setEntry(L2_LPID, pateDw0(s.l2Tree), 0n);
      enter(s);
    }
    expect(slot.arch.nested.entries((L2_BASE >> 12) + 3)).toEqual([[L2_LPID, 3]]);
  });

  it('a fault L1 must handle ends H_ENTER_NESTED with the HDSI and its registers written back', () => {
    const s = startRealModeL2();
    const r = s.vcpu.translate(0x20_0040, Access.WRITE); // 2 MiB: outside L1's tree for the L2
    expect(r).toBe(TRANSLATE_FAULT);
    const f = s.vcpu.fault;
    expect(f.destination).toBe(FaultDestination.HYPERVISOR);
    expect(f.vector).toBe(0xe00);
    expect(s.vcpu.arch.inL2).toBe(false);
    expect(s.vcpu.arch.lastNestedExit).toEqual({ l1Lpid: L2_LPID, trap: 0xe00, status: 0xe00 });
    expect(s.vcpu.hcallRegs.ret(0)).toBe(0xe00);
    expect(readState64(s.vm, HvGuestStateField.hdar)).toBe(0x20_0040n);
    expect(readState64(s.vm, HvGuestStateField.hdsisr)).toBe(BigInt(Dsisr.NOPTE | Dsisr.STORE));
    expect(readState64(s.vm, HvGuestStateField.asdr)).toBe(0x20_0000n);
  });

  it('host invalidation of the L1 page removes the L2 shadow entry; the next L2 access faults it back', () => {
    const s = startRealModeL2();
    expect(s.vcpu.translate(0x1000, Access.WRITE)).not.toBe(TRANSLATE_FAULT);
    const slot = s.vm.memslots.get(0);
    const hfn = slot.frames[(L2_BASE >> 12) + 1]!;
    s.vm.memslots.invalidateHostRange(hfn, hfn + 1);
    expect(s.vm.stats().ppcRadixShadowLeaves).toBe(0);
    expect(slot.arch.nested.entries((L2_BASE >> 12) + 1)).toEqual([]);
    expect(s.vcpu.translate(0x1000, Access.WRITE)).not.toBe(TRANSLATE_FAULT);
    expect(s.vm.stats().ppcRadixShadowInserts).toBe(2);
  });

  it("an L2 hypercall ends the run with trap 0xc00 and the L2's r3..r12 in the pt_regs", () => {
    const s = startRealModeL2();
    s.vcpu.hcallRegs.clear();
    s.vcpu.hcallRegs.setArg(0, 0x1234);
    expect(s.vcpu.hypercall(0x04)).toBe(NestedTrap.SYSCALL);
    expect(s.vcpu.arch.inL2).toBe(false);
    const b = new Uint8Array(16);
    s.vm.memslots.readBytes(REGS_PTR + PtRegsField.gpr + 3 * 8, b);
    const dv = new DataView(b.buffer);
    expect(dv.getBigUint64(0, true)).toBe(4n);
    expect(dv.getBigUint64(8, true)).toBe(0x1234n);
  });

  it('VM teardown releases every nested guest and shadow LPID, running or not', () => {
    const s = startRealModeL2();
    s.vcpu.translate(0, Access.READ);
    expect(s.vm.arch.nested.lpids.inUse).toBe(2);
    s.vm.destroy();
    expect(s.vm.arch.nested.lpids.inUse).toBe(1);
    expect(s.vm.arch.nested.guests.allLive()).toEqual([]);
  });
});
