import { Access, HvmmuError, MemslotFlags, type BackendModule, type BackendTypes } from '@hvmmu/core';
import { nestedControlOf, type NestedGuestControl } from './NestedGuestControl.js';
import { WorkloadInputError } from './WorkloadInputError.js';
import { WorkloadMachine, type WorkloadMachineOptions } from './WorkloadMachine.js';
import type { WorkloadRunResult } from './WorkloadRunResult.js';
import { PAGE_SIZE, type AccessOperation, type Workload, type WorkloadOperation } from './WorkloadSchema.js';

export interface RunWorkloadOptions extends Omit<WorkloadMachineOptions, 'vcpus' | 'tableAreaPages'> {
  /** How errors and the result name the workload (a file path, a built-in spec); default its `name`. */
  readonly source?: string;
  /** Guest-physical pages for the guest's tables; default what `guestSide.tablePagesFor` asks for this workload. */
  readonly tableAreaPages?: number;
}

const ACCESS_OF_KIND = { read: Access.READ, write: Access.WRITE, fetch: Access.FETCH } as const;

/** Access bits of an access operation. */
export function accessBits(op: Pick<AccessOperation, 'kind' | 'mode'>): number {
  return ACCESS_OF_KIND[op.kind] | (op.mode === 'user' ? Access.USER : 0);
}

/**
 * Replay a validated workload on `backend`: a fresh Hypervisor and VM, the backend's guest side
 * over a table area sized for the workload, `workload.vcpus` vCPUs in address space 0, then
 * every operation in order. Accesses go through `vcpu.translate`; a faulting access is counted
 * by where its fault went and the replay goes on (the workload says what the guest does next).
 *
 * What the backend cannot do (no guest side, nested operations without nested support, dirty
 * logging, read-only memslots or host invalidation it lacks), vCPUs and address spaces the
 * workload does not have, and addresses beyond the guest side's `vpnLimit` are refused before
 * anything runs; an operation the VM refuses while running (overlapping memslots, an unknown
 * slot, protecting an unmapped page, a full table area) stops the replay. Both are
 * WorkloadInputErrors naming the operation (`operations[12]: …`).
 */
export function runWorkload<T extends BackendTypes>(backend: BackendModule<T>, workload: Workload, options: RunWorkloadOptions = {}): WorkloadRunResult {
  const source = options.source ?? workload.name ?? 'workload';
  const guestSide = backend.guestSide;
  let mappings = 0;
  let spaces = 1;
  for (const op of workload.operations) {
    if (op.op === 'map') mappings += op.count;
    else if (op.op === 'createSpace') spaces += op.count;
  }
  const tableAreaPages = options.tableAreaPages ?? (guestSide === undefined ? 1 : guestSide.tablePagesFor(mappings, spaces));
  const machine = new WorkloadMachine(backend, { ...withNestingOption(backend, workload, options), vcpus: workload.vcpus, tableAreaPages });
  try {
    const problems = checkWorkloadOnBackend(workload, machine);
    if (problems.length > 0) throw new WorkloadInputError(source, problems);
    return new WorkloadReplay(machine, workload, source).run();
  } finally {
    machine.destroy();
  }
}

/**
 * A workload that enters nested guests needs nesting turned on where the
 * backend has it as an option (POWER radix: `nestedHv`, KVM_CAP_PPC_NESTED_HV,
 * off by default): the runner turns it on unless the caller set it.
 */
function withNestingOption<T extends BackendTypes>(backend: BackendModule<T>, workload: Workload, options: RunWorkloadOptions): RunWorkloadOptions {
  const nests = workload.operations.some((op) => op.op === 'enterNested');
  if (!nests || !('nestedHv' in backend.options) || options.backendOptions?.nestedHv !== undefined) return options;
  return { ...options, backendOptions: { ...options.backendOptions, nestedHv: true } };
}

/** What this backend and guest side cannot do of the workload, one line per operation. */
function checkWorkloadOnBackend<T extends BackendTypes>(workload: Workload, machine: WorkloadMachine<T>): string[] {
  const problems: string[] = [];
  const caps = machine.backend.capabilities;
  const id = machine.backend.id;
  const vpnLimit = machine.guest.vpnLimit;
  const nested = nestedControlOf(machine.guest) !== undefined;
  let spaces = machine.guest.spaceCount;
  workload.operations.forEach((op, i) => {
    const at = `operations[${i}]`;
    if ('vcpu' in op && op.vcpu >= workload.vcpus) {
      problems.push(`${at}.vcpu: the workload has ${workload.vcpus} vCPU(s), 0..${workload.vcpus - 1} (set "vcpus")`);
    }
    switch (op.op) {
      case 'createSpace':
        spaces += op.count;
        break;
      case 'map':
      case 'unmap':
      case 'protect':
        if (op.space >= spaces) problems.push(`${at}.space: address space ${op.space} does not exist yet (${spaces} so far; createSpace makes more)`);
        if (op.vpn + op.count > vpnLimit)
          problems.push(`${at}: pages up to vpn 0x${(op.vpn + op.count).toString(16)} are beyond what backend '${id}' maps (vpn < 0x${vpnLimit.toString(16)})`);
        break;
      case 'switchSpace':
        if (op.space >= spaces) problems.push(`${at}.space: address space ${op.space} does not exist yet (${spaces} so far; createSpace makes more)`);
        break;
      case 'access': {
        const last = op.va + (op.count - 1) * op.strideBytes;
        if (!Number.isSafeInteger(last) || last >= vpnLimit * PAGE_SIZE) {
          problems.push(`${at}: addresses up to 0x${last.toString(16)} are beyond what backend '${id}' maps (va < 0x${(vpnLimit * PAGE_SIZE).toString(16)})`);
        }
        break;
      }
      case 'createMemslot':
        if (op.readOnly && !caps.readOnlyMemslots) problems.push(`${at}.readOnly: backend '${id}' has no read-only memslots`);
        if (op.dirtyLog && !caps.dirtyLogging) problems.push(`${at}.dirtyLog: backend '${id}' does not log dirty pages`);
        break;
      case 'setDirtyLogging':
      case 'harvestDirtyLog':
        if (!caps.dirtyLogging) problems.push(`${at}: backend '${id}' does not log dirty pages`);
        break;
      case 'invalidate':
        if (!caps.hostInvalidation) problems.push(`${at}: backend '${id}' has no host invalidation (MMU notifier)`);
        break;
      case 'enterNested':
      case 'exitNested':
        if (!nested) problems.push(`${at}: ${op.op}: backend '${id}' does not run nested guests (its guest side has no enterNested/exitNested)`);
        break;
      default:
        break;
    }
  });
  return problems;
}

/** One replay: the machine (which keeps the counts) and per space the gfn of each mapped page where `protect` needs it. */
class WorkloadReplay<T extends BackendTypes> {
  /** vpn → gfn per space; kept only if the workload protects pages (it must know what is mapped). */
  private readonly mapped: Map<number, number>[] | null;
  private readonly nested: NestedGuestControl<T> | undefined;

  constructor(
    private readonly machine: WorkloadMachine<T>,
    private readonly workload: Workload,
    private readonly source: string,
  ) {
    this.mapped = workload.operations.some((op) => op.op === 'protect') ? [new Map()] : null;
    this.nested = nestedControlOf(machine.guest);
  }

  run(): WorkloadRunResult {
    const ops = this.workload.operations;
    const start = performance.now();
    for (let i = 0; i < ops.length; i++) {
      try {
        this.apply(ops[i]!);
      } catch (error) {
        if (error instanceof HvmmuError) throw new WorkloadInputError(this.source, [`operations[${i}]: ${ops[i]!.op}: ${error.message}`]);
        if (error instanceof OperationRefused) throw new WorkloadInputError(this.source, [`operations[${i}]: ${ops[i]!.op}: ${error.message}`]);
        throw error;
      }
    }
    const elapsedMs = performance.now() - start;
    return this.machine.result(this.source, ops.length, elapsedMs);
  }

  private apply(op: WorkloadOperation): void {
    const m = this.machine;
    switch (op.op) {
      case 'access':
        this.replayAccesses(op);
        return;
      case 'map':
        for (let i = 0; i < op.count; i++) {
          m.map(op.space, op.vpn + i, op.gfn + i, op.rights);
          this.mapped?.[op.space]?.set(op.vpn + i, op.gfn + i);
        }
        m.activity.maps += op.count;
        return;
      case 'unmap':
        for (let i = 0; i < op.count; i++) {
          m.unmap(op.space, op.vpn + i);
          this.mapped?.[op.space]?.delete(op.vpn + i);
        }
        m.activity.unmaps += op.count;
        return;
      case 'protect': {
        const mapped = this.mapped![op.space]!;
        // Check the whole range first, so a refused protect changes nothing.
        for (let i = 0; i < op.count; i++) {
          if (!mapped.has(op.vpn + i)) throw new OperationRefused(`vpn 0x${(op.vpn + i).toString(16)} is not mapped in address space ${op.space}`);
        }
        for (let i = 0; i < op.count; i++) m.map(op.space, op.vpn + i, mapped.get(op.vpn + i)!, op.rights);
        m.activity.protects += op.count;
        return;
      }
      case 'createSpace':
        for (let i = 0; i < op.count; i++) {
          m.createSpace();
          this.mapped?.push(new Map());
        }
        m.activity.spacesCreated += op.count;
        return;
      case 'switchSpace':
        m.activate(m.vcpus[op.vcpu]!, op.space);
        m.activity.spaceSwitches++;
        return;
      case 'createMemslot':
        m.vm.memslots.create({
          id: op.slot,
          guestPhysAddr: op.gfn * PAGE_SIZE,
          size: op.pages * PAGE_SIZE,
          flags: (op.readOnly ? MemslotFlags.READONLY : 0) | (op.dirtyLog ? MemslotFlags.LOG_DIRTY_PAGES : 0),
        });
        m.activity.memslotChanges++;
        return;
      case 'deleteMemslot':
        m.vm.memslots.delete(op.slot);
        m.activity.memslotChanges++;
        return;
      case 'moveMemslot':
        m.vm.memslots.move(op.slot, op.gfn * PAGE_SIZE);
        m.activity.memslotChanges++;
        return;
      case 'setDirtyLogging': {
        const flags = m.vm.memslots.get(op.slot).flags;
        m.vm.memslots.setFlags(op.slot, op.enabled ? flags | MemslotFlags.LOG_DIRTY_PAGES : flags & ~MemslotFlags.LOG_DIRTY_PAGES);
        m.activity.memslotChanges++;
        return;
      }
      case 'harvestDirtyLog':
        m.activity.dirtyPagesHarvested += countBits(m.vm.memslots.getDirtyLog(op.slot));
        return;
      case 'invalidate':
        this.invalidate(op.gfn, op.count);
        return;
      case 'enterNested':
        this.nested!.enterNested(m.vcpus[op.vcpu]!, op.guest);
        return;
      case 'exitNested':
        this.nested!.exitNested(m.vcpus[op.vcpu]!);
        return;
    }
  }

  /** The hot loop: numbers only, nothing allocated per access. */
  private replayAccesses(op: AccessOperation): void {
    const machine = this.machine;
    const vcpu = machine.vcpus[op.vcpu]!;
    const access = accessBits(op);
    const count = op.count;
    const stride = op.strideBytes;
    for (let pass = 0; pass < op.repeat; pass++) {
      let va = op.va;
      for (let i = 0; i < count; i++) {
        if (vcpu.translate(va, access) < 0) machine.accessFailed(vcpu, va, access);
        va += stride;
      }
    }
    this.machine.activity.accesses += count * op.repeat;
  }

  /**
   * Host invalidation of guest pages [gfn, gfn + count): the MMU notifier for each page's host
   * frame, as when the host swaps or migrates it. Pages with no frame of their own (untouched,
   * or still the shared zero frame) have nothing to invalidate.
   */
  private invalidate(gfn: number, count: number): void {
    const vm = this.machine.vm;
    for (let g = gfn; g < gfn + count; ) {
      const slot = vm.memslots.findByGfn(g);
      if (slot === undefined) {
        g++;
        continue;
      }
      const end = Math.min(gfn + count, slot.endGfn);
      for (; g < end; g++) {
        const hfn = slot.frameAt(g - slot.baseGfn);
        if (hfn < 0) continue;
        this.machine.activity.pagesInvalidated++;
        this.machine.activity.mappingsDropped += vm.invalidateHostRange(hfn, hfn + 1);
      }
    }
  }
}

/** An operation the guest cannot do in the state the workload left it in. */
class OperationRefused extends Error {}

function countBits(words: Uint32Array): number {
  let n = 0;
  for (let i = 0; i < words.length; i++) {
    let w = words[i]!;
    w -= (w >>> 1) & 0x5555_5555;
    w = (w & 0x3333_3333) + ((w >>> 2) & 0x3333_3333);
    n += (Math.imul((w + (w >>> 4)) & 0x0f0f_0f0f, 0x0101_0101) >>> 24) & 0xff;
  }
  return n;
}
