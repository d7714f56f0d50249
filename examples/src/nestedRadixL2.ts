// An L1 hypervisor runs an L2 on POWER9 radix under L0 (KVM's nested HV),
// and L0 takes a host page away from under the running L2.
//
// L0 is the VM (`ppcRadixBackend` with `nestedHv: true`); this program plays
// the L1 hypervisor: it registers its partition table with
// H_SET_PARTITION_TABLE through `L1NestedHost`, builds the L2's
// partition-scoped tree in its own memory (L2 real → L1 real), writes the
// L2's hv_guest_state and pt_regs and enters the L2 with H_ENTER_NESTED.
// The L2's kernel has its own process table and tree (in L2 memory). The
// L2 touches pages; each first touch is an L2 fault L0 resolves into a
// shadow entry (kvmhv_nested_page_fault) and records in the nested rmap.
// Then L0's MMU notifier invalidates the host frame behind one L1 page: the
// nested rmap names the L2's shadow entry and it goes too, and the L2's
// next access faults it back in — without L1 ever seeing it.
//
//   npm run build && node examples/dist/nestedRadixL2.js
import { Access, FaultDestination, Hypervisor, type GuestMemory, type Vcpu, type Vm } from '@hvmmu/core';
import { HvGuestStateField, L1NestedHost, NestedHcall, PtRegsField, RadixTreeBuilder, ppcRadixBackend, type PpcRadixTypes } from '@hvmmu/ppc-radix';
import { fileURLToPath } from 'node:url';

const MiB = 1 << 20;
/** L1 memory: 64 MiB at L1 real 0. L1's own tables from 8 MiB, the L2's state at 12 MiB, the L2's memory at 32 MiB. */
const L1_TABLES = 8 * MiB;
const HV_STATE = 12 * MiB;
const PT_REGS = 12 * MiB + 0x1000;
const L2_MEMORY = 32 * MiB;
const L2_BYTES = 16 * MiB;
/** L1's LPID for its L2. */
const L2_LPID = 3;
/** In L2 real memory: the L2 kernel's tables at 0, its data pages from 4 MiB; the data mapped at EA 0x1000_0000 for PID 1. */
const L2_DATA = 4 * MiB;
const L2_EA = 0x1000_0000;
const PID = 1;
const PAGES = 8;
/** The page L0 invalidates. */
const VICTIM = 3;

export interface NestedRadixL2Result {
  readonly lines: readonly string[];
  /** Every L2 first touch was an L2 fault L0 resolved: one shadow entry each, nothing reflected to L1. */
  readonly firstTouchFaults: number;
  readonly shadowInserts: number;
  readonly reflectedToL1: number;
  /** The victim page's nested rmap entry: [L1's LPID for the L2, L2 real frame]. */
  readonly rmapEntry: readonly [number, number] | null;
  readonly shadowLeavesBefore: number;
  readonly shadowLeavesAfter: number;
  readonly stillInL2: boolean;
  /** The L2's next access: one more L2 fault, L0's leaf and the shadow entry rebuilt, same host frame, bytes kept. */
  readonly refaults: number;
  readonly l0Instantiations: number;
  readonly reinserts: number;
  readonly sameFrame: boolean;
  readonly bytesKept: boolean;
}

/** L2 real address → where it lives: L1 real address + L2_MEMORY (the L2 kernel writes its tables through this). */
class L2Memory implements GuestMemory {
  constructor(private readonly l1: GuestMemory) {}
  get view(): DataView {
    return this.l1.view;
  }
  resolve(gpa: number, write: boolean): number {
    return gpa >= 0 && gpa < L2_BYTES ? this.l1.resolve(L2_MEMORY + gpa, write) : -1;
  }
}

export function runNestedRadixL2(): NestedRadixL2Result {
  const lines: string[] = [];
  const hv = new Hypervisor({ memoryBytes: 128 * MiB });
  const vm: Vm<PpcRadixTypes> = hv.createVm({ backend: ppcRadixBackend, backendOptions: { nestedHv: true } });
  vm.memslots.create({ id: 0, guestPhysAddr: 0, size: 64 * MiB });
  const vcpu = vm.createVcpu();

  // --- L1: register the partition table (kvmhv_nested_init).
  const l1Tables = new RadixTreeBuilder(vm.memslots, L1_TABLES, 4 * MiB);
  const l1 = new L1NestedHost({
    hcall: (number, args) => L1NestedHost.hcallOn(vcpu, number, args),
    alloc: (bytes) => l1Tables.allocate(bytes),
    write: (gpa, bytes) => vm.memslots.writeBytes(gpa, bytes),
  });
  const init = l1.init(8);
  if (!init.ok) throw new Error(`L0 refused nesting: ${init.reason}`);
  lines.push(`L1: partition table of ${init.entries} entries at L1 real 0x${init.tableBase.toString(16)}, registered with H_SET_PARTITION_TABLE`);

  // --- The L2 kernel's own tables, in L2 memory: a process table and PID 1's tree mapping 8 pages.
  const l2Kernel = new RadixTreeBuilder(new L2Memory(vm.memslots), 0, 4 * MiB);
  const processTable = l2Kernel.createProcessTable(0);
  const l2Tree = l2Kernel.createTree('4k');
  processTable.setProcess(PID, l2Tree);
  for (let p = 0; p < PAGES; p++) l2Tree.map(L2_EA + p * 4096, L2_DATA + p * 4096, 12, { read: true, write: true, referenced: true, changed: true });

  // --- L1: its partition-scoped tree for the L2 (L2 real [0, 16 MiB) → L1 real 32 MiB + …), and the L2's entry.
  const forL2 = l1Tables.createTree('4k');
  for (let a = 0; a < L2_BYTES; a += 2 * MiB) forL2.map(a, L2_MEMORY + a, 21, { read: true, write: true, execute: true, referenced: true, changed: true });
  const [ptHi, ptLo] = processTable.pointer();
  if (l1.setEntry(L2_LPID, forL2.pateDw0(), (BigInt(ptHi) << 32n) | BigInt(ptLo)) !== 0) throw new Error("L0 refused the L2's partition-table entry");
  lines.push(
    `L1: L2 ${L2_LPID}'s entry set — L2 real memory mapped with 2 MiB leaves at L1 real 0x${L2_MEMORY.toString(16)}, its process table at L2 real 0x${processTable.base.toString(16)}`,
  );

  // --- L1: the L2's state (little-endian, as a ppc64el L1 writes it) and H_ENTER_NESTED.
  const state = new DataView(new ArrayBuffer(248));
  state.setBigUint64(HvGuestStateField.version, 2n, true);
  state.setUint32(HvGuestStateField.lpid, L2_LPID, true);
  state.setBigUint64(HvGuestStateField.pidr, BigInt(PID), true);
  vm.memslots.writeBytes(HV_STATE, new Uint8Array(state.buffer));
  const regs = new DataView(new ArrayBuffer(352));
  regs.setBigUint64(PtRegsField.msr, 0x8000_0000_0000_1033n, true); // SF ME IR DR RI LE: the L2 kernel in virtual mode
  vm.memslots.writeBytes(PT_REGS, new Uint8Array(regs.buffer));
  vcpu.hcallRegs.clear();
  vcpu.hcallRegs.setArg(0, HV_STATE).setArg(1, PT_REGS);
  if (vcpu.hypercall(NestedHcall.H_ENTER_NESTED) !== 0 || !vcpu.arch.inL2) throw new Error('H_ENTER_NESTED failed');
  lines.push(`L1: H_ENTER_NESTED — the vCPU now runs L2 ${L2_LPID} under shadow LPID ${vcpu.arch.nested!.guest.shadowLpid}`);

  // --- The L2 writes its 8 pages (its own accesses, through its tree and the shadow tree).
  const s0 = vm.stats();
  for (let p = 0; p < PAGES; p++) hv.memory.view.setUint32(l2Access(vcpu, L2_EA + p * 4096, Access.WRITE), 0x4c32_0000 + p, true);
  const s1 = vm.stats();
  lines.push(
    `L2: wrote ${PAGES} pages: ${s1.ppcRadixL2Faults - s0.ppcRadixL2Faults} L2 faults resolved by L0 (${s1.ppcRadixShadowInserts - s0.ppcRadixShadowInserts} shadow entries, for its tables and its pages; ${s1.ppcRadixL2Reflected - s0.ppcRadixL2Reflected} reflected to L1)`,
  );

  // --- L0: the MMU notifier takes the host frame behind the victim's L1 page.
  const slot = vm.memslots.get(0);
  const l1Gfn = (L2_MEMORY + L2_DATA) / 4096 + VICTIM;
  const hfn = slot.frames[l1Gfn]!;
  const entries = slot.arch.nested.entries(l1Gfn);
  const rmapEntry = entries.length === 1 ? ([entries[0]![0], entries[0]![1]] as const) : null;
  const dropped = vm.memslots.invalidateHostRange(hfn, hfn + 1);
  const s2 = vm.stats();
  lines.push(
    `L0: invalidated host frame 0x${hfn.toString(16)} (L1 page 0x${l1Gfn.toString(16)}): its own leaf dropped (${dropped}); the nested rmap named (LPID ${rmapEntry?.[0]}, L2 frame 0x${rmapEntry?.[1].toString(16)}), so the L2's shadow entry went too (shadow leaves ${s1.ppcRadixShadowLeaves} → ${s2.ppcRadixShadowLeaves}); the vCPU ${vcpu.arch.inL2 ? 'is still in the L2' : 'left the L2'}`,
  );
  const stillInL2 = vcpu.arch.inL2;

  // --- The L2 reads the page again: it faults back in, L0 alone.
  const hpa = l2Access(vcpu, L2_EA + VICTIM * 4096, Access.READ);
  const s3 = vm.stats();
  const bytesKept = hv.memory.view.getUint32(hpa, true) === 0x4c32_0000 + VICTIM;
  lines.push(
    `L2: read the page again: ${s3.ppcRadixL2Faults - s2.ppcRadixL2Faults} L2 fault, L0 rebuilt its own leaf (${s3.ppcRadixInstantiations - s2.ppcRadixInstantiations}) and the shadow entry (${s3.ppcRadixShadowInserts - s2.ppcRadixShadowInserts}), ${s3.ppcRadixL2Reflected - s2.ppcRadixL2Reflected} exits to L1; ${Math.floor(hpa / 4096) === hfn ? 'same host frame' : 'another host frame'}, ${bytesKept ? 'the bytes it wrote are there' : 'its bytes are LOST'}`,
  );

  // --- L1 takes the vCPU back (an HDEC exit) and tears nesting down.
  const exit = vcpu.arch.exitNested(0x980);
  l1.clearEntry(L2_LPID);
  l1.exit();
  lines.push(
    `L1: the L2 exited (trap 0x${exit.trap.toString(16)}), L1 cleared its entry and H_SET_PARTITION_TABLE(0): nested guests left ${vm.stats().ppcRadixNestedGuests}`,
  );
  hv.destroyVm(vm);
  return {
    lines,
    firstTouchFaults: s1.ppcRadixL2Faults - s0.ppcRadixL2Faults,
    shadowInserts: s1.ppcRadixShadowInserts - s0.ppcRadixShadowInserts,
    reflectedToL1: s3.ppcRadixL2Reflected - s0.ppcRadixL2Reflected,
    rmapEntry,
    shadowLeavesBefore: s1.ppcRadixShadowLeaves,
    shadowLeavesAfter: s2.ppcRadixShadowLeaves,
    stillInL2,
    refaults: s3.ppcRadixL2Faults - s2.ppcRadixL2Faults,
    l0Instantiations: s3.ppcRadixInstantiations - s2.ppcRadixInstantiations,
    reinserts: s3.ppcRadixShadowInserts - s2.ppcRadixShadowInserts,
    sameFrame: Math.floor(hpa / 4096) === hfn,
    bytesKept,
  };
}

/** An L2 access; nothing here is for L1 to handle (its tree maps all L2 memory), so any fault is an error. */
function l2Access(vcpu: Vcpu<PpcRadixTypes>, ea: number, access: number): number {
  const hpa = vcpu.translate(ea, access);
  if (hpa < 0) {
    const f = vcpu.fault;
    throw new Error(
      `the L2's access to 0x${ea.toString(16)} faulted: vector 0x${f.vector.toString(16)}${f.destination === FaultDestination.HYPERVISOR ? ' (to L1)' : ''}`,
    );
  }
  return hpa;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  for (const line of runNestedRadixL2().lines) console.log(line);
}
