import { Access, FaultDestination, GUEST_RIGHTS_ALL, GuestRights, HvmmuError, type BackendModule, type BackendTypes, type Vcpu } from '@hvmmu/core';
import { LackeyKind, readLackeyTrace } from './LackeyTraceReader.js';
import { WorkloadInputError } from './WorkloadInputError.js';
import { WorkloadMachine, type WorkloadMachineOptions } from './WorkloadMachine.js';
import type { WorkloadRunResult } from './WorkloadRunResult.js';
import { PAGE_SIZE } from './WorkloadSchema.js';

/** Distinct pages a trace may touch by default (1 GiB of guest memory). */
export const DEFAULT_TRACE_MAX_PAGES = 1 << 18;
/** The memslot the trace's pages live in: slot 0 from gfn 0. */
const TRACE_SLOT = 0;

export interface ReplayLackeyTraceOptions extends Omit<WorkloadMachineOptions, 'vcpus' | 'tableAreaPages'> {
  /** Distinct virtual pages the program may touch (the data memslot's size); default 2^18. */
  readonly maxPages?: number;
}

/** GuestRights an access needs beyond "present and readable": the program runs in user mode. */
function rightsFor(access: number): number {
  return GuestRights.USER | ((access & Access.WRITE) !== 0 ? GuestRights.WRITE : 0) | ((access & Access.FETCH) !== 0 ? GuestRights.EXEC : 0);
}

/**
 * Replays a real program's memory accesses, from a Valgrind Lackey trace, through any backend
 * with a guest side, streaming the file (constant memory for any number of lines).
 *
 * The guest is a one-process OS that maps on demand, as Linux faults pages in: an access is
 * tried first; when the guest's tables refuse it (a #PF delivered to the guest), the guest maps
 * the page — its first touch takes the next free gfn — with the rights its accesses so far need
 * (user; write for a store or modify; execute for a fetch), and the access is tried again. So
 * `faults.guest` counts the guest's demand faults (first touches and rights upgrades, like a
 * write after reads), and the TLB, the shadow or partition-scoped tables and the rmaps see the
 * program's own access stream. Every access is a user access (`I` a fetch, `L` a read, `S` a
 * write, `M` a read then a write); one that crosses a page boundary translates both pages.
 */
export async function replayLackeyTrace<T extends BackendTypes>(
  backend: BackendModule<T>,
  path: string,
  options: ReplayLackeyTraceOptions = {},
): Promise<WorkloadRunResult> {
  const maxPages = options.maxPages ?? DEFAULT_TRACE_MAX_PAGES;
  if (!Number.isSafeInteger(maxPages) || maxPages < 1 || maxPages > 2 ** 27) {
    throw new WorkloadInputError('--max-pages', [`expected an integer in 1..2^27, got ${String(maxPages)}`]);
  }
  const tableAreaPages = backend.guestSide === undefined ? 1 : backend.guestSide.tablePagesFor(maxPages, 1);
  const machine = new WorkloadMachine(backend, { ...options, vcpus: 1, tableAreaPages });
  try {
    machine.vm.memslots.create({ id: TRACE_SLOT, guestPhysAddr: 0, size: maxPages * PAGE_SIZE });
    const replay = new DemandPagedReplay(machine, path, maxPages);
    const start = performance.now();
    let lines = 0;
    for await (const batch of readLackeyTrace(path)) {
      const { kind, address, size, line } = batch;
      for (let i = 0; i < batch.length; i++) {
        const k = kind[i]!;
        const va = address[i]!;
        const bytes = size[i]!;
        const lineNo = line[i]!;
        if (k === LackeyKind.INSTRUCTION) replay.access(va, bytes, Access.FETCH | Access.USER, lineNo);
        else if (k === LackeyKind.LOAD) replay.access(va, bytes, Access.READ | Access.USER, lineNo);
        else if (k === LackeyKind.STORE) replay.access(va, bytes, Access.WRITE | Access.USER, lineNo);
        else {
          replay.access(va, bytes, Access.READ | Access.USER, lineNo);
          replay.access(va, bytes, Access.WRITE | Access.USER, lineNo);
        }
      }
      lines = batch.linesRead;
    }
    return machine.result(path, lines, performance.now() - start);
  } finally {
    machine.destroy();
  }
}

/** The guest of a trace: its vCPU, and per touched virtual page the rights mapped so far. */
class DemandPagedReplay<T extends BackendTypes> {
  private readonly vcpu: Vcpu<T>;
  /** Per mapped vpn: its gfn × 8 + the GuestRights mapped (rights use 3 bits). */
  private readonly pages = new Map<number, number>();
  private nextGfn = 0;
  private readonly vpnLimit: number;

  constructor(
    private readonly machine: WorkloadMachine<T>,
    private readonly path: string,
    private readonly maxPages: number,
  ) {
    this.vcpu = machine.vcpus[0]!;
    this.vpnLimit = machine.guest.vpnLimit;
  }

  /** One record's access of `bytes` at `va`: its page, and the next one if it crosses into it. */
  access(va: number, bytes: number, access: number, lineNo: number): void {
    this.translate(va, access, lineNo);
    const offset = va % PAGE_SIZE;
    if (offset + bytes > PAGE_SIZE) this.translate(va - offset + PAGE_SIZE, access, lineNo);
  }

  private translate(va: number, access: number, lineNo: number): void {
    const vcpu = this.vcpu;
    const machine = this.machine;
    machine.activity.accesses++;
    if (vcpu.translate(va, access) >= 0 || machine.accessFailed(vcpu, va, access)) return;
    if (vcpu.fault.destination !== FaultDestination.GUEST) return;
    // The guest's page-fault handler: map or widen the page, then the access runs again.
    this.pageIn(Math.floor(va / PAGE_SIZE), access, lineNo);
    if (vcpu.translate(va, access) < 0) machine.accessFailed(vcpu, va, access);
  }

  private pageIn(vpn: number, access: number, lineNo: number): void {
    if (vpn >= this.vpnLimit) {
      throw new WorkloadInputError(`${this.path}:${lineNo}`, [
        `address 0x${(vpn * PAGE_SIZE).toString(16)} is beyond what backend '${this.machine.backend.id}' maps (va < 0x${(this.vpnLimit * PAGE_SIZE).toString(16)})`,
      ]);
    }
    const page = this.pages.get(vpn);
    let gfn: number;
    let rights = rightsFor(access);
    if (page === undefined) {
      if (this.nextGfn >= this.maxPages) {
        throw new WorkloadInputError(`${this.path}:${lineNo}`, [`the program touches more than ${this.maxPages} pages (raise --max-pages)`]);
      }
      gfn = this.nextGfn++;
      this.machine.activity.maps++;
    } else {
      gfn = Math.floor(page / 8);
      rights = (rights | (page % 8)) & GUEST_RIGHTS_ALL;
      this.machine.activity.protects++;
    }
    try {
      this.machine.map(0, vpn, gfn, rights);
    } catch (error) {
      // The guest side refused (its table area is full): the trace cannot go on; say where.
      if (error instanceof HvmmuError) throw new WorkloadInputError(`${this.path}:${lineNo}`, [`mapping vpn 0x${vpn.toString(16)}: ${error.message}`]);
      throw error;
    }
    this.pages.set(vpn, gfn * 8 + rights);
  }
}
