import { Access, Hypervisor, type Vcpu, type Vm } from '@hvmmu/core';
import { GuestPageTables, x86ShadowBackend, type X86GuestPagingMode, type X86ShadowTypes, type X86VcpuMmu } from '@hvmmu/x86-shadow';
import { faultName } from '../report/faultName.js';
import { TextTable, formatNumber, percent } from '../report/TextTable.js';

const MiB = 1 << 20;
const DATA_GPA = 64 * MiB; // slot 1: the data slot deleted at the end
const DATA_BYTES = 16 * MiB;
const USER_VA = 0x4000_0000;
const PT_WINDOW_VA = 0x7000_0000; // where each process maps its own page tables (supervisor)
const PAGES_PER_PROCESS = 2048;

export type MemslotStrategy = 'invalid-rmap' | 'fast-zap';

/** One row of the x86 demo table. */
export interface X86DemoRow {
  readonly mode: X86GuestPagingMode;
  readonly strategy: MemslotStrategy;
  readonly accesses: number;
  readonly tlbHits: number;
  readonly tlbMisses: number;
  readonly guestFaults: number;
  readonly shadowFaults: number;
  readonly emulatedWrites: number;
  /** Leaf page tables let go unsync (guest writes to them not trapped) and synced again at INVLPG/CR3 load. */
  readonly unsyncs: number;
  readonly syncs: number;
  readonly cr3Switches: number;
  readonly shadowPages: number;
  readonly rmapEntries: number;
  readonly rmapBytes: number;
  readonly hostBytes: number;
  readonly deleteMs: number;
  readonly sptesInSlot: number;
  readonly afterDeleteFault: number;
  /** rmap entries left in the remaining slots (the page tables' slot) after the delete. */
  readonly rmapEntriesAfterDelete: number;
}

/** A guest process: its tables and the VA window through which the kernel edits them. */
interface GuestProcess {
  readonly tables: GuestPageTables;
  /** Level-1 table gpa → VA of its mapping in the PT window. */
  readonly ptWindow: Map<number, number>;
}

/** Deterministic pseudo-random numbers (a 32-bit LCG), so every run prints the same table. */
class Lcg {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  next(bound: number): number {
    this.state = (Math.imul(this.state, 1664525) + 1013904223) >>> 0;
    return this.state % bound;
  }
}

function buildProcess(vm: Vm, mode: X86GuestPagingMode, tableBase: number, seed: number): GuestProcess {
  const tables = new GuestPageTables(vm.memslots, mode, tableBase, tableBase + 1 * MiB);
  const rng = new Lcg(seed);
  for (let i = 0; i < PAGES_PER_PROCESS; i++) {
    const frame = rng.next(DATA_BYTES / 4096);
    tables.map(USER_VA + i * 4096, DATA_GPA + frame * 4096, { write: true, user: true, noExec: true });
  }
  // The kernel maps the level-1 tables into its own window to edit them, as
  // an OS does; these guest writes hit shadowed (write-protected) tables.
  const ptWindow = new Map<number, number>();
  for (let i = 0; i < PAGES_PER_PROCESS; i += 512) {
    const ptGpa = tables.entryGpa(USER_VA + i * 4096, 1);
    const ptPage = ptGpa - (ptGpa % 4096);
    if (!ptWindow.has(ptPage)) ptWindow.set(ptPage, PT_WINDOW_VA + ptWindow.size * 4096);
  }
  for (const [ptPage, va] of ptWindow) tables.map(va, ptPage, { write: true, user: false, noExec: true });
  return { tables, ptWindow };
}

/** The kernel rewrites the PTE of user page i through its PT window (an emulated write), then INVLPG. */
function guestRemap(vcpu: Vcpu<X86ShadowTypes>, x: X86VcpuMmu, proc: GuestProcess, i: number, frame: number, writable: boolean): void {
  const va = USER_VA + i * 4096;
  const pteGpa = proc.tables.entryGpa(va, 1);
  const ptPage = pteGpa - (pteGpa % 4096);
  const windowVa = proc.ptWindow.get(ptPage)! + (pteGpa % 4096);
  const gpa = DATA_GPA + frame * 4096;
  const lo = ((gpa & 0xffff_f000) | 0x1 | 0x4 | (writable ? 0x2 : 0)) >>> 0;
  const hi = Math.floor(gpa / 0x1_0000_0000) + 0x8000_0000; // NX
  if (!x.write(windowVa, 8, lo, hi, Access.WRITE)) throw new Error(`demo: kernel PTE write faulted (kind ${vcpu.fault.kind})`);
  x.invlpg(va);
}

export function runX86Guest(mode: X86GuestPagingMode, strategy: MemslotStrategy, rounds = 40): X86DemoRow {
  const hv = new Hypervisor({ memoryBytes: 96 * MiB });
  const vm = hv.createVm({ backend: x86ShadowBackend, name: `${mode}/${strategy}`, tlbEntries: 1024, backendOptions: { memslotInvalidation: strategy } });
  vm.memslots.create({ id: 0, guestPhysAddr: 0, size: 8 * MiB });
  vm.memslots.create({ id: 1, guestPhysAddr: DATA_GPA, size: DATA_BYTES });
  const processes = [buildProcess(vm, mode, 4 * MiB, 1), buildProcess(vm, mode, 5 * MiB, 2)];
  const vcpu = vm.createVcpu({ countTlbHits: true });
  const x = vcpu.arch;
  if (!x.loadControlRegisters(processes[0]!.tables.controlRegisters())) throw new Error('demo: control registers refused');

  const rng = new Lcg(7);
  let accesses = 0;
  let cr3Switches = 0;
  for (let round = 0; round < rounds; round++) {
    for (const proc of processes) {
      if (!x.setCr3(proc.tables.rootGpa)) throw new Error('demo: CR3 load refused');
      cr3Switches++;
      // User accesses: 90% to a hot set of 128 pages, a quarter of them writes.
      for (let k = 0; k < 2000; k++) {
        const i = rng.next(10) === 0 ? rng.next(PAGES_PER_PROCESS) : rng.next(128);
        const write = rng.next(4) === 0;
        vcpu.translate(USER_VA + i * 4096 + (k & 0xff8), Access.USER | (write ? Access.WRITE : Access.READ));
        accesses++;
      }
      // The kernel edits its tables: remap a few pages, and write-protect one
      // that the process then writes to (a #PF for the guest), then restore it.
      for (let e = 0; e < 6; e++) guestRemap(vcpu, x, proc, rng.next(PAGES_PER_PROCESS), rng.next(DATA_BYTES / 4096), true);
      const victim = rng.next(128);
      guestRemap(vcpu, x, proc, victim, rng.next(DATA_BYTES / 4096), false);
      vcpu.translate(USER_VA + victim * 4096, Access.USER | Access.WRITE);
      accesses++;
      guestRemap(vcpu, x, proc, victim, rng.next(DATA_BYTES / 4096), true);
      // A touch of unmapped memory: a not-present #PF.
      vcpu.translate(USER_VA + (PAGES_PER_PROCESS + 16) * 4096, Access.USER | Access.READ);
      accesses++;
    }
  }

  const before = vm.stats();
  const sptesInSlot = before['rmapEntries'] ?? 0;
  const t0 = performance.now();
  vm.memslots.delete(1);
  const deleteMs = performance.now() - t0;
  // The guest touches its data again: the slot is gone, so the VMM sees NO_MEMORY.
  vcpu.translate(USER_VA, Access.USER | Access.READ);
  const afterDeleteFault = vcpu.fault.kind;
  const after = vm.stats();
  const row: X86DemoRow = {
    mode,
    strategy,
    accesses,
    tlbHits: vcpu.tlb.hits,
    tlbMisses: vcpu.tlb.misses,
    guestFaults: before['guestFaults'] ?? 0,
    shadowFaults: before['shadowFaults'] ?? 0,
    emulatedWrites: before['emulatedWrites'] ?? 0,
    unsyncs: before['unsyncs'] ?? 0,
    syncs: before['syncs'] ?? 0,
    cr3Switches,
    shadowPages: before['shadowPages'] ?? 0,
    rmapEntries: before['rmapEntries'] ?? 0,
    rmapBytes: before['rmapBytes'] ?? 0,
    hostBytes: before['hostBytes'] ?? 0,
    deleteMs,
    sptesInSlot,
    afterDeleteFault,
    rmapEntriesAfterDelete: after['rmapEntries'] ?? 0,
  };
  hv.destroyVm(vm);
  return row;
}

/** 4-level and 32-bit PAE guests under shadow paging, a memslot deleted under each strategy. */
export function runX86ShadowDemo(): { lines: string[]; rows: X86DemoRow[] } {
  const rows: X86DemoRow[] = [];
  for (const mode of ['long4', 'pae'] as const) {
    for (const strategy of ['invalid-rmap', 'fast-zap'] as const) rows.push(runX86Guest(mode, strategy));
  }
  const table = new TextTable([
    'guest',
    'memslot delete',
    'accesses',
    'TLB hit',
    'guest #PF',
    'shadow faults',
    'PT writes emulated',
    'unsync/sync',
    'shadow pages',
    'rmap entries',
    'rmap bytes',
    'delete',
    'then',
  ]);
  for (const r of rows) {
    table.add([
      r.mode === 'long4' ? '4-level' : '32-bit PAE',
      r.strategy,
      r.accesses,
      percent(r.tlbHits, r.tlbHits + r.tlbMisses),
      r.guestFaults,
      r.shadowFaults,
      r.emulatedWrites,
      `${formatNumber(r.unsyncs)}/${formatNumber(r.syncs)}`,
      r.shadowPages,
      r.rmapEntries,
      r.rmapBytes,
      `${formatNumber(r.deleteMs)} ms`,
      faultName(r.afterDeleteFault),
    ]);
  }
  return {
    lines: [
      'Two guest processes per VM, 2048 user pages each in a 16 MiB data slot, CR3 switched every 2000 accesses;',
      'the guest kernel edits its own page tables through a mapping of them: a shadowed leaf table goes unsync',
      '(KVM lets those writes through) and is synced at INVLPG / CR3 load; upper-level tables stay write-protected.',
      "Then the data slot is deleted under the VM's memslot-invalidation strategy.",
      table.render(),
    ],
    rows,
  };
}
