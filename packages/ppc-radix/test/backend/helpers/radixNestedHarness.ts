import { Access, FaultKind, GuestRights, HvmmuError, type Vcpu as CoreVcpu, type Vm as CoreVm } from '@hvmmu/core';
import {
  RmapModel,
  accessAnswer,
  type ConformanceGuest,
  type ConformanceHarness,
  type DataRegion,
  type GuestAnswer,
  type HostileGuestAction,
  type MmuSnapshot,
} from '@hvmmu/conformance';
import {
  Dsisr,
  HvGuestStateField,
  L1NestedHost,
  NestedHcall,
  PpcRadixMmu,
  PtRegsField,
  RadixTreeBuilder,
  ppcRadixBackend,
  type PpcRadixTypes,
  type RadixTable,
  type RadixTree,
} from '@hvmmu/ppc-radix';

import { radixGuestFaultCode } from './radixHarness.js';

type Vm = CoreVm<PpcRadixTypes>;
type Vcpu = CoreVcpu<PpcRadixTypes>;

const PAGE = 4096;
/** The harness's memslot 0 (L1 memory, 2 MiB): the L2's tables in its first MiB, L1's tables and the L2 state blocks in the second. */
const SYSTEM_SLOT_ID = 0;
const SYSTEM_PAGES = 512;
const L2_TABLES = 0;
const L1_TABLES = 256 * PAGE;
const STATE_BASE = 448 * PAGE;
/** The L2 is L1's LPID 3; its process 0 maps vpnOf(gfn) = VPN_BASE + gfn in quadrant 0. */
const L2_LPID = 3;
const VPN_BASE = 0x10_0000;
/** A page of memslot 0 no table uses, mapped to warm the L2's table pages before a hostile walk. */
const WARM_GFN = 447;
const DATA_REGION: DataRegion = { baseGfn: 0x1000, pages: 0x100, slotIds: [1, 2, 3, 4, 5, 6] };

/**
 * The radix backend's conformance harness with the guest one level down: the
 * suite's guest is an L2, run by an L1 hypervisor (this harness, through
 * `L1NestedHost` and H_ENTER_NESTED) whose partition-scoped tree for the L2
 * maps L2 real [0, 1 GiB) onto L1 real [0, 1 GiB) with one 1G leaf — so the
 * suite's gfns are L1 pages, behind L0's tree, reached through the L2's
 * shadow tree and filed in the nested rmap (model `names-every-leaf`). The
 * L2 runs with relocation on in process 0, its process table and 4K-geometry
 * tree in L2 real memory; a guest change is Linux's: write the leaf, then
 * tlbie the page (RIC 0, PRS 1), which the processor applies to the L2's
 * partition (its shadow LPID).
 */
export function createRadixNestedHarness(): ConformanceHarness {
  return {
    name: 'ppc-radix nested L2 (KVM-HV nested guest under an L1)',
    backend: ppcRadixBackend,
    pagingMode: 'radix',
    dataRegion: DATA_REGION,
    rmapModel: RmapModel.NAMES_EVERY_LEAF,
    nestedGuest: true,
    hostMemoryBytes: 8 << 20,
    variants: ppcRadixBackend.capabilities.memslotInvalidation.map((strategy) => ({
      name: strategy,
      memslotInvalidation: strategy,
      backendOptions: { memslotInvalidation: strategy, nestedHv: true },
    })),
    attach: (vm) => new RadixNestedConformanceGuest(vm as unknown as Vm),
  };
}

export class RadixNestedConformanceGuest implements ConformanceGuest {
  readonly mmu: PpcRadixMmu;
  readonly l1: L1NestedHost;
  private readonly l2Builder: RadixTreeBuilder;
  private readonly processTable: RadixTable;
  private readonly tree: RadixTree;
  private readonly l1Tree: RadixTree;
  private readonly vcpus: Vcpu[] = [];

  constructor(private readonly vm: Vm) {
    if (!(vm.mmu instanceof PpcRadixMmu)) throw new HvmmuError('BACKEND_INVALID', 'the nested radix harness needs the ppc-radix backend');
    this.mmu = vm.mmu;
    vm.memslots.create({ id: SYSTEM_SLOT_ID, guestPhysAddr: 0, size: SYSTEM_PAGES * PAGE });
    const l1Builder = new RadixTreeBuilder(vm.memslots, L1_TABLES, STATE_BASE - L1_TABLES);
    // The L1 hypervisor makes its hcalls on whichever vCPU is in L1 (the suite's vCPUs are all in the L2).
    let hcallVcpu: Vcpu | null = null;
    this.l1 = new L1NestedHost({
      hcall: (number, args) => {
        if (hcallVcpu === null) throw new HvmmuError('BAD_ARGUMENT', 'no vCPU for the L1');
        return L1NestedHost.hcallOn(hcallVcpu, number, args);
      },
      alloc: (bytes) => l1Builder.allocate(bytes),
      write: (gpa, bytes) => vm.memslots.writeBytes(gpa, bytes),
    });
    this.setHcallVcpu = (v) => {
      hcallVcpu = v;
    };
    this.l1Tree = l1Builder.createTree('4k');
    this.l1Tree.map(0, 0, 30, { read: true, write: true, execute: true });
    // The L2's own tables, in L2 real memory (= L1 real under the 1G leaf).
    this.l2Builder = new RadixTreeBuilder(vm.memslots, L2_TABLES, L1_TABLES - L2_TABLES);
    this.processTable = this.l2Builder.createProcessTable(0);
    this.tree = this.l2Builder.createTree('4k');
    this.processTable.setProcess(0, this.tree);
  }

  private readonly setHcallVcpu: (v: Vcpu) => void;

  /** The L1 registers its partition table and the L2's entry (first vCPU), then each vCPU enters the L2. */
  initVcpu(vcpu: CoreVcpu): void {
    const v = vcpu as unknown as Vcpu;
    this.setHcallVcpu(v);
    if (!this.l1.active) {
      const init = this.l1.init(8);
      if (!init.ok) throw new HvmmuError('BACKEND_INVALID', `nested HV refused: ${JSON.stringify(init)}`);
      const [pHi, pLo] = this.processTable.pointer();
      const dw1 = (BigInt((pHi | 0x8000_0000) >>> 0) << 32n) | BigInt(pLo);
      if (this.l1.setEntry(L2_LPID, this.l1Tree.pateDw0(), dw1) !== 0) throw new HvmmuError('BACKEND_INVALID', 'setting the L2 entry failed');
    }
    const hvPtr = STATE_BASE + v.id * 2 * PAGE;
    const regsPtr = hvPtr + PAGE;
    const hv = new Uint8Array(248);
    const dv = new DataView(hv.buffer);
    dv.setBigUint64(HvGuestStateField.version, 2n, true);
    dv.setUint32(HvGuestStateField.lpid, L2_LPID, true);
    dv.setUint32(HvGuestStateField.vcpuToken, v.id, true);
    this.vm.memslots.writeBytes(hvPtr, hv);
    const regs = new Uint8Array(352);
    new DataView(regs.buffer).setBigUint64(PtRegsField.msr, 0x30n, true); // MSR[IR|DR]
    this.vm.memslots.writeBytes(regsPtr, regs);
    v.hcallRegs.clear();
    v.hcallRegs.setArg(0, hvPtr).setArg(1, regsPtr);
    const status = v.hypercall(NestedHcall.H_ENTER_NESTED);
    if (status !== 0 || !v.arch.inL2) throw new HvmmuError('BACKEND_INVALID', `H_ENTER_NESTED returned ${status}`);
    this.vcpus.push(v);
  }

  vpnOf(gfn: number): number {
    return VPN_BASE + gfn;
  }

  map(gfn: number, perm: number): void {
    const write = (perm & GuestRights.WRITE) !== 0;
    this.tree.map(this.vpnOf(gfn) * PAGE, gfn * PAGE, 12, {
      read: true,
      write,
      execute: (perm & GuestRights.EXEC) !== 0,
      privileged: (perm & GuestRights.USER) === 0,
      referenced: true,
      changed: write,
    });
    this.tlbie(this.vpnOf(gfn));
  }

  unmap(gfn: number): void {
    if (this.tree.unmap(this.vpnOf(gfn) * PAGE)) this.tlbie(this.vpnOf(gfn));
  }

  /** The L2's tlbie of one page of PID 0, from a vCPU running it (the suite's vCPUs all are, unless a random hcall ended the run). */
  private tlbie(vpn: number): void {
    const v = this.vcpus.find((x) => x.arch.inL2);
    if (v !== undefined) v.arch.tlbiePage(0, vpn);
    else {
      const g = this.mmu.nested.guests.find(L2_LPID);
      if (g !== undefined) this.mmu.contexts.flushPidPage(0, vpn, g.shadowLpid);
    }
  }

  /** The L2's own DSI/ISI, as any radix guest's. */
  guestFaultCode(access: number, present: boolean, _perm?: number): number {
    return radixGuestFaultCode(access, present);
  }

  inspect(): MmuSnapshot {
    return this.mmu.inspect();
  }

  hostileActions(): readonly HostileGuestAction[] {
    const fault = (kind: number, code: number): GuestAnswer => ({
      kind: 'fault',
      fault: kind as GuestAnswer extends { fault: infer F } ? F : never,
      code: code >>> 0,
    });
    return [
      {
        name: 'an L2 access with EA bits 61..52 set (its own data segment interrupt)',
        expected: fault(FaultKind.GUEST, 0),
        perform: (vcpu) => accessAnswer(vcpu, 2 ** 52, Access.READ),
      },
      {
        name: 'an L2 access its own tree does not map (its own DSI, the L2 keeps running)',
        expected: fault(FaultKind.GUEST, Dsisr.NOPTE),
        // Walk a mapped page first, so the process-table, root and PUD pages the refused walk reads are already shadowed.
        prepare: (vcpu) => {
          this.map(WARM_GFN, 0);
          accessAnswer(vcpu, this.vpnOf(WARM_GFN) * PAGE, Access.READ);
        },
        perform: (vcpu) => accessAnswer(vcpu, 0x7_0000_0000, Access.READ),
      },
    ];
  }
}
