import { describe, expect, it, vi } from 'vitest';
import {
  Access,
  ACCESS_KINDS,
  isValidAccess,
  FaultDestination,
  FaultKind,
  Hypervisor,
  MemslotFlags,
  TRANSLATE_FAULT,
  type GuestMemory,
  type Vcpu,
  type Vm,
} from '@hvmmu/core';
import {
  Dsisr,
  HvGuestStateField,
  L1NestedHost,
  NestedHcall,
  NestedHcallStatus,
  NestedTrap,
  PATE0_HR_HI,
  PtRegsField,
  RADIX_PTE,
  RadixTreeBuilder,
  tlbieP1,
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
    hcall: (number, args) => L1NestedHost.hcallOn(vcpu, number, args),
    alloc: (bytes) => builder.allocate(bytes),
    write: (gpa, bytes) => vm.memslots.writeBytes(gpa, bytes),
  });
  const l2Tree = builder.createTree('4k');
  for (let p = 0; p < 256; p++) l2Tree.map(p * 4096, L2_BASE + p * 4096, 12, { read: true, write: true, execute: true });
  return { vm, vcpu, l1, builder, l2Tree };
}

/** PATE dw0 for an L2 whose partition-scoped tree is `tree`, assembled by hand: HR | RTS | RPDB | RPDS. */
function pateDw0(tree: RadixTree): bigint {
  const [hi, lo] = tree.rootEntry();
  const dw0 = (BigInt((hi | PATE0_HR_HI) >>> 0) << 32n) | BigInt(lo);
  expect(tree.pateDw0()).toBe(dw0);
  return dw0;
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

/** H_TLB_INVALIDATE from L1: RIC/PRS/R in r4, the LPID in r5, RB in r6. */
function tlbInvalidate(s: Setup, ric: number, is: number, lpid: number, rb = 0): number {
  s.vcpu.hcallRegs.clear();
  s.vcpu.hcallRegs
    .setArg(0, tlbieP1(ric, 0, 1))
    .setArg(1, lpid)
    .setArg(2, rb | (is << 10));
  return s.vcpu.hypercall(NestedHcall.H_TLB_INVALIDATE);
}

/** L2 real memory as L1's tree for the L2 lays it out (L2 real p → L1 real 4 MiB + p, for the first MiB). */
function l2RealMemory(vm: Vm<PpcRadixTypes>): GuestMemory {
  return {
    view: vm.memslots.view,
    resolve: (gpa: number, write: boolean) => (gpa >= 0 && gpa < MiB ? vm.memslots.resolve(L2_BASE + gpa, write) : -1),
  };
}

function shadowLeafLo(s: Setup, l2Gfn: number): number {
  const g = s.vm.arch.nested.guests.find(L2_LPID)!;
  const tree = s.vm.arch.nested.shadowTree(g.shadowLpid)!;
  const off = tree.pteOffset(l2Gfn);
  return tree.isLeaf(off) ? tree.loAt(off) : -1;
}

/**
 * Start L2 5 with relocation on (MSR[IR] = MSR[DR] = 1) in process 7, whose
 * tree (in L2 real memory [512 KiB, 1 MiB)) maps EA 64K → L2 real 128K
 * (read-write) and EA 128K → L2 real 192K (privileged, read-only).
 */
function startVirtualModeL2(): Setup {
  const s = setup();
  expect(s.l1.init(8)).toMatchObject({ ok: true });
  const l2b = new RadixTreeBuilder(l2RealMemory(s.vm), 512 * 1024, 512 * 1024);
  const prtb = l2b.createProcessTable(0);
  const proc = l2b.createTree('64k');
  proc.map(0x1_0000, 0x2_0000, 16, { read: true, write: true });
  proc.map(0x2_0000, 0x3_0000, 16, { read: true, privileged: true });
  prtb.setProcess(7, proc);
  const [pHi, pLo] = prtb.pointer();
  const dw1 = (BigInt((pHi | 0x8000_0000) >>> 0) << 32n) | BigInt(pLo); // PATE1 GR: a radix guest
  expect(s.l1.setEntry(L2_LPID, pateDw0(s.l2Tree), dw1)).toBe(0);
  writeL2State(s.vm, L2_LPID, 0x30n, { pidr: 7n });
  expect(enter(s)).toBe(0);
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

  it('an L2 with relocation on: its own process-scoped tree in L2 real memory, walked in two dimensions under the shadow tree', () => {
    const s = startVirtualModeL2();
    const slot = s.vm.memslots.get(0);
    const hpa = s.vcpu.translate(0x1_0abc, Access.USER | Access.WRITE);
    expect(hpa).not.toBe(TRANSLATE_FAULT);
    expect(Math.floor(hpa / 4096)).toBe(slot.frames[(L2_BASE + 0x2_0000) >> 12]);
    expect(hpa % 4096).toBe(0xabc);
    // A privileged page refuses a user access: the L2's own DSI, delivered to it — the L2 keeps running.
    expect(s.vcpu.translate(0x2_0000, Access.USER)).toBe(TRANSLATE_FAULT);
    expect(s.vcpu.fault.destination).toBe(FaultDestination.GUEST);
    expect(s.vcpu.fault.vector).toBe(0x300);
    expect(s.vcpu.arch.inL2).toBe(true);
    // The L2's table pages were shadowed too (each 2-D walk reads them through the shadow tree).
    expect(s.vm.stats().ppcRadixShadowLeaves).toBeGreaterThanOrEqual(4);
  });

  it('H_TLB_INVALIDATE of one L2 page removes its shadow entry only; IS 2 RIC 0 empties the tree; RIC 2 with a cleared entry removes the guest', () => {
    const s = startRealModeL2();
    for (const a of [0x1000, 0x2000, 0x3000]) expect(s.vcpu.translate(a, Access.WRITE)).not.toBe(TRANSLATE_FAULT);
    s.vcpu.arch.exitNested(NestedTrap.HDEC);
    expect(s.vm.stats().ppcRadixShadowLeaves).toBe(3);
    // IS 0, AP 0 (4K), EPN of L2 real 0x2000.
    expect(tlbInvalidate(s, 0, 0, L2_LPID, 0x2000)).toBe(0);
    expect(shadowLeafLo(s, 2)).toBe(-1);
    expect(shadowLeafLo(s, 1)).not.toBe(-1);
    expect(tlbInvalidate(s, 0, 2, L2_LPID)).toBe(0);
    expect(s.vm.stats().ppcRadixShadowLeaves).toBe(0);
    expect(s.vm.arch.nested.guests.size).toBe(1);
    // Invalid forms: IS 0 with RIC 2, IS 1, R = 0.
    expect(tlbInvalidate(s, 2, 0, L2_LPID)).toBe(NestedHcallStatus.H_PARAMETER);
    expect(tlbInvalidate(s, 0, 1, L2_LPID)).toBe(NestedHcallStatus.H_PARAMETER);
    expect(s.l1.clearEntry(L2_LPID)).toBe(0);
    expect(s.vm.arch.nested.guests.size).toBe(0);
    expect(s.vm.arch.nested.lpids.inUse).toBe(1);
  });

  it('the retried access of a real-mode L2 is answered from the shadow leaf L0 just wrote (FaultOutcome.FILLED): the same address, TLB rights and lastWalk as a walk of that leaf gives', () => {
    const s = startRealModeL2();
    // The first shadow entry of the tree also makes its directories (no bottom entry to answer from).
    expect(s.vcpu.translate(0x1000, Access.READ)).not.toBe(TRANSLATE_FAULT);
    const fill = vi.spyOn(s.vcpu.arch, 'completeRealModeRetry');
    const seen = (vpn: number) => {
      const t = s.vcpu.arch.lastWalk;
      const kinds: number[] = [];
      for (let k = 0; k < ACCESS_KINDS; k++) if (isValidAccess(k) && s.vcpu.tlb.lookup(s.vcpu.context, vpn, k) >= 0) kinds.push(k);
      return {
        kinds,
        walk: [
          t.ok,
          t.ra,
          t.raHi,
          t.raLo,
          t.pageShift,
          t.prot,
          t.guestRaHi,
          t.guestRaLo,
          t.partitionPteHi,
          t.partitionPteLo,
          t.partitionPteAddr,
          t.processPteAddr,
        ],
        faults: [t.refs, t.vector, t.cause, t.darHi, t.darLo, t.asdrHi, t.asdrLo, t.partitionMissAddr],
      };
    };
    for (const [addr, access] of [
      [0x3123, Access.WRITE],
      [0x4010, Access.READ],
      [0x5008, Access.FETCH],
      [0x6000, Access.READ | Access.USER],
    ] as const) {
      const walks = s.vm.stats().ppcRadixWalks;
      const hpa = s.vcpu.translate(addr, access);
      expect(hpa).not.toBe(TRANSLATE_FAULT);
      expect(fill).toHaveLastReturnedWith(true);
      // Two walks as the processor does them: the HDSI, then the retried access's (answered, not re-read).
      expect(s.vm.stats().ppcRadixWalks - walks).toBe(2);
      const filled = seen(addr >>> 12);
      s.vcpu.tlb.flushAll();
      expect(s.vcpu.translate(addr, access)).toBe(hpa);
      expect(seen(addr >>> 12)).toEqual(filled);
    }
  });

  it("L0's page walk cache of L1's tree: a table L1 replaces is used for new L2 faults once L1 flushes with H_TLB_INVALIDATE (RIC 1 here, which KVM treats as nothing to do)", () => {
    const s = startRealModeL2();
    const slot = s.vm.memslots.get(0);
    const frameOf = (hpa: number): number => Math.floor(hpa / 4096);
    // L2 page 1 faults in through L1's 4K table for L2 real [0, 2 MiB): that table is now cached.
    expect(frameOf(s.vcpu.translate(0x1000, Access.WRITE))).toBe(slot.frames[(L2_BASE >> 12) + 1]);
    s.vcpu.arch.exitNested(NestedTrap.HDEC);
    // L1 puts a 2M leaf (L2 real [0, 2 MiB) → L1 real [6 MiB, 8 MiB)) where the table's directory entry was.
    s.l2Tree.map(0, 6 * MiB, 21, { read: true, write: true, execute: true });
    expect(enter(s)).toBe(0);
    // Not flushed yet: the cached table still answers for a page not yet shadowed (a processor's PWC may too).
    expect(frameOf(s.vcpu.translate(0x5000, Access.WRITE))).toBe(slot.frames[(L2_BASE >> 12) + 5]);
    s.vcpu.arch.exitNested(NestedTrap.HDEC);
    // Linux frees the table and flushes the PWC of the LPID (kvmppc_radix_flush_pwc: H_TLB_INVALIDATE RIC 1, IS 2).
    expect(tlbInvalidate(s, 1, 2, L2_LPID)).toBe(0);
    expect(enter(s)).toBe(0);
    // RIC 1 leaves the shadow entries (KVM: "we don't cache this"); a new page goes through the 2M leaf.
    expect(frameOf(s.vcpu.translate(0x1000, Access.READ))).toBe(slot.frames[(L2_BASE >> 12) + 1]);
    const hpa = s.vcpu.translate(0x6010, Access.WRITE);
    expect(frameOf(hpa)).toBe(slot.frames[((6 * MiB) >> 12) + 6]);
    expect(hpa % 4096).toBe(0x10);
  });

  it('H_COPY_TOFROM_GUEST reads and writes L2 memory through the shadow tree, and refuses what is not there', () => {
    // The L2's EA 64K (process 7) is L2 real 128K, L1 real 4 MiB + 128K; touching it shadows that 4 KiB page.
    const s = startVirtualModeL2();
    expect(s.vcpu.translate(0x1_0000, Access.USER | Access.WRITE)).not.toBe(TRANSLATE_FAULT);
    s.vcpu.arch.exitNested(NestedTrap.HDEC);
    s.vm.memslots.writeBytes(L2_BASE + 0x2_0ff0, new Uint8Array([1, 2, 3, 4]));
    const copy = (to: number, from: number, ea: number, n: number, pid = 7): number => {
      s.vcpu.hcallRegs.clear();
      s.vcpu.hcallRegs.setArg(0, L2_LPID).setArg(1, pid).setArg(2, ea).setArg(3, to).setArg(4, from).setArg(5, n);
      return s.vcpu.hypercall(NestedHcall.H_COPY_TOFROM_GUEST);
    };
    expect(copy(0x10_0000, 0, 0x1_0ff0, 4)).toBe(0);
    const got = new Uint8Array(4);
    s.vm.memslots.readBytes(0x10_0000, got);
    expect([...got]).toEqual([1, 2, 3, 4]);
    s.vm.memslots.writeBytes(0x10_0100, new Uint8Array([9, 8]));
    expect(copy(0, 0x10_0100, 0x1_0000, 2)).toBe(0);
    s.vm.memslots.readBytes(L2_BASE + 0x2_0000, got);
    expect([...got.subarray(0, 2)]).toEqual([9, 8]);
    // Crossing into a page the shadow tree lacks: H_NOT_FOUND, nothing written.
    s.vm.memslots.writeBytes(0x10_0000, new Uint8Array(8));
    expect(copy(0x10_0000, 0, 0x1_0ffc, 8)).toBe(NestedHcallStatus.H_NOT_FOUND);
    s.vm.memslots.readBytes(0x10_0000, got);
    expect([...got]).toEqual([0, 0, 0, 0]);
    // PID 0 has no process-table entry in this L2: nothing translates.
    expect(copy(0x10_0000, 0, 0x1_0ff0, 4, 0)).toBe(NestedHcallStatus.H_NOT_FOUND);
    expect(copy(0x10_0000, 0x10_0100, 0x1_0000, 2)).toBe(NestedHcallStatus.H_PARAMETER);
    expect(copy(0, 0, 0x1_0000, 2)).toBe(NestedHcallStatus.H_PARAMETER);
    expect(copy(0x10_0000, 0, 2 ** 52, 2)).toBe(NestedHcallStatus.H_PARAMETER);
    expect(copy(0x10_0000, 0, 0x1_0000, 8 * MiB)).toBe(NestedHcallStatus.H_NO_MEM);
    expect(copy(0x10_0000, 0, 0x1_0000, 4, 7)).toBe(0);
    s.vcpu.hcallRegs.setArg(0, 6);
    expect(s.vcpu.hypercall(NestedHcall.H_COPY_TOFROM_GUEST)).toBe(NestedHcallStatus.H_PARAMETER); // no L2 6
  });

  it('aging and dirty-log harvests clear R and C in the L2 shadow entries the nested rmap names', () => {
    const s = setup();
    s.vm.memslots.setFlags(0, MemslotFlags.LOG_DIRTY_PAGES);
    expect(s.l1.init(8)).toMatchObject({ ok: true });
    expect(s.l1.setEntry(L2_LPID, pateDw0(s.l2Tree), 0n)).toBe(0);
    writeL2State(s.vm, L2_LPID, 0n);
    expect(enter(s)).toBe(0);
    const page = (L2_BASE >> 12) + 6;
    s.vm.memslots.getDirtyLog(0);
    expect(s.vcpu.translate(0x6000, Access.WRITE)).not.toBe(TRANSLATE_FAULT);
    // Logging: the L2's store went through the R/C fault and set C in L0's leaf: logged.
    expect(s.vm.memslots.getDirtyLog(0)[page >> 5]! & (1 << (page & 31))).not.toBe(0);
    expect(shadowLeafLo(s, 6) & RADIX_PTE.C).toBe(0); // harvested: C cleared in the shadow as well
    expect(s.vcpu.translate(0x6008, Access.WRITE)).not.toBe(TRANSLATE_FAULT);
    expect(s.vm.memslots.getDirtyLog(0)[page >> 5]! & (1 << (page & 31))).not.toBe(0);
    const hfn = s.vm.memslots.get(0).frames[page]!;
    expect(shadowLeafLo(s, 6) & RADIX_PTE.R).not.toBe(0);
    expect(s.vm.ageHostRange(hfn, hfn + 1)).toBe(true);
    expect(shadowLeafLo(s, 6) & RADIX_PTE.R).toBe(0);
    expect(s.vm.testAgeHostRange(hfn, hfn + 1)).toBe(false);
    // The next L2 access sets R again, in L0's leaf and the shadow.
    expect(s.vcpu.translate(0x6000, Access.READ)).not.toBe(TRANSLATE_FAULT);
    expect(s.vm.testAgeHostRange(hfn, hfn + 1)).toBe(true);
  });

  it('deleting the memslot behind an L2 tears down its shadow entries; the L2 then exits to the VMM', () => {
    for (const memslotInvalidation of ['invalid-rmap', 'fast-zap'] as const) {
      const hv = new Hypervisor({ memoryBytes: 64 * MiB });
      const vm = hv.createVm({ backend: ppcRadixBackend, backendOptions: { nestedHv: true, memslotInvalidation } });
      vm.memslots.create({ id: 0, guestPhysAddr: 0, size: 4 * MiB });
      vm.memslots.create({ id: 1, guestPhysAddr: 4 * MiB, size: 12 * MiB });
      const vcpu = vm.createVcpu();
      const builder = new RadixTreeBuilder(vm.memslots, ARENA, 4 * MiB);
      const l1 = new L1NestedHost({
        hcall: (number, args) => L1NestedHost.hcallOn(vcpu, number, args),
        alloc: (bytes) => builder.allocate(bytes),
        write: (gpa, bytes) => vm.memslots.writeBytes(gpa, bytes),
      });
      const tree = builder.createTree('4k');
      tree.map(0, 0x1000, 12, { read: true, write: true }); // L2 real 0 → L1 4 KiB (slot 0)
      tree.map(0x1000, L2_BASE, 12, { read: true, write: true }); // L2 real 4 KiB → L1 4 MiB (slot 1)
      expect(l1.init(8)).toMatchObject({ ok: true });
      expect(l1.setEntry(L2_LPID, pateDw0(tree), 0n)).toBe(0);
      const s: Setup = { vm, vcpu, l1, builder, l2Tree: tree };
      writeL2State(vm, L2_LPID, 0n);
      expect(enter(s)).toBe(0);
      expect(vcpu.translate(0x10, Access.WRITE)).not.toBe(TRANSLATE_FAULT);
      expect(vcpu.translate(0x1010, Access.WRITE)).not.toBe(TRANSLATE_FAULT);
      expect(vm.stats().ppcRadixShadowLeaves).toBe(2);
      vm.memslots.delete(0);
      // Slot 0's page is gone from the shadow (fast-zap empties every shadow tree).
      expect(shadowLeafLo(s, 0)).toBe(-1);
      if (memslotInvalidation === 'invalid-rmap') expect(shadowLeafLo(s, 1)).not.toBe(-1);
      expect(vcpu.translate(0x10, Access.READ)).toBe(TRANSLATE_FAULT);
      expect(vcpu.fault.kind).toBe(FaultKind.NO_MEMORY);
      expect(vcpu.fault.gpa).toBe(0x1010);
      expect(vcpu.arch.inL2).toBe(true);
      expect(vcpu.translate(0x1010, Access.READ)).not.toBe(TRANSLATE_FAULT);
    }
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
