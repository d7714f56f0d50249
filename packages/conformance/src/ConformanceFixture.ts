import { FRAME_NONE, FRAME_ZERO, Hypervisor, HvmmuError, type HvmmuErrorCode, type Vcpu, type Vm } from '@hvmmu/core';
import type { ConformanceGuest, ConformanceHarness, ConformanceVariant } from './ConformanceHarness.js';
import type { MmuSnapshot } from '@hvmmu/core';
import { ConformanceViolation } from './invariants/ConformanceViolation.js';

/** Default host memory of a suite hypervisor: 1024 frames. */
export const DEFAULT_HOST_MEMORY_BYTES = 4 * 1024 * 1024;
/** TLB entries per suite vCPU: small, so direct-mapped conflicts happen too. */
export const SUITE_TLB_ENTRIES = 64;

/** One hypervisor with one VM of the backend under test, attached to its harness. */
export interface ConformanceFixture {
  readonly harness: ConformanceHarness;
  readonly variant: ConformanceVariant;
  readonly hypervisor: Hypervisor;
  readonly vm: Vm;
  readonly guest: ConformanceGuest;
  readonly vcpus: readonly Vcpu[];
  /** Host frames in use before the VM existed (the shared zero frame included). */
  readonly baselineFrames: number;
}

export function createConformanceFixture(harness: ConformanceHarness, variant: ConformanceVariant, vcpuCount = 2): ConformanceFixture {
  const hypervisor = new Hypervisor({ memoryBytes: harness.hostMemoryBytes ?? DEFAULT_HOST_MEMORY_BYTES });
  // Allocate the shared zero frame now, so frame counts before and after compare exactly.
  void hypervisor.memory.zeroFrame;
  const baselineFrames = hypervisor.memory.framesInUse;
  const vm = hypervisor.createVm({
    backend: harness.backend,
    name: `${harness.name}/${variant.name}`,
    tlbEntries: SUITE_TLB_ENTRIES,
    ...(harness.guestPhysBits !== undefined ? { guestPhysBits: harness.guestPhysBits } : {}),
    ...(variant.backendOptions !== undefined ? { backendOptions: variant.backendOptions } : {}),
  });
  const guest = harness.attach(vm);
  const vcpus: Vcpu[] = [];
  for (let i = 0; i < vcpuCount; i++) {
    // Counting hits costs speed, not behaviour; the suite checks hits are served from the TLB.
    const vcpu = vm.createVcpu({ countTlbHits: true });
    guest.initVcpu(vcpu);
    vcpus.push(vcpu);
  }
  return { harness, variant, hypervisor, vm, guest, vcpus, baselineFrames };
}

/** Leaves and rmap entries in a canonical order, so two snapshots compare as values. */
export function normalizeSnapshot(snapshot: MmuSnapshot): MmuSnapshot {
  return {
    leaves: [...snapshot.leaves].sort((a, b) => a.entry - b.entry),
    rmap: [...snapshot.rmap].sort((a, b) => a.entry - b.entry || a.slotId - b.slotId || a.gfn - b.gfn),
    registers: snapshot.registers,
  };
}

/**
 * Everything "changes nothing" covers, as one comparable string: memslots
 * (ids, ranges, flags, private frames, dirty bitmaps), the memslot generation,
 * host and guest frame counts, vCPUs, and the backend's leaves, rmaps and
 * registers. A page that went from untouched to zero-frame-backed by a read
 * counts as unchanged (no memory was allocated for it).
 */
export function captureVmState(fixture: ConformanceFixture): string {
  const { vm, guest } = fixture;
  const slots = vm.memslots.slots().map((slot) => ({
    id: slot.id,
    baseGfn: slot.baseGfn,
    npages: slot.npages,
    flags: slot.flags,
    frames: Array.from(slot.frames, (f) => (f === FRAME_ZERO ? FRAME_NONE : f)),
    dirty: slot.dirtyBitmap === null ? null : Array.from(slot.dirtyBitmap),
  }));
  return JSON.stringify({
    slots,
    generation: vm.memslots.generation,
    hostFrames: vm.memslots.host.framesInUse,
    guestFrames: vm.memslots.framesInUse,
    vcpus: vm.vcpus.length,
    mmu: normalizeSnapshot(guest.inspect()),
  });
}

/**
 * Run `action`, which must throw an `HvmmuError` with `code` and leave the VM
 * state exactly as before. Returns the violations (empty: refused correctly).
 */
export function refusalViolations(fixture: ConformanceFixture, code: HvmmuErrorCode, action: () => unknown): string[] {
  const before = captureVmState(fixture);
  try {
    action();
  } catch (error) {
    if (!(error instanceof HvmmuError)) return [`expected HvmmuError ${code}, got ${String(error)}`];
    if (error.code !== code) return [`expected HvmmuError ${code}, got ${error.code}: ${error.message}`];
    const after = captureVmState(fixture);
    return after === before ? [] : [`the refused call (${code}) changed VM state:\n    before ${before}\n    after  ${after}`];
  }
  return [`expected HvmmuError ${code}, but the call succeeded`];
}

/** `refusalViolations`, throwing a `ConformanceViolation` named `what` if there are any. */
export function expectRefused(fixture: ConformanceFixture, what: string, code: HvmmuErrorCode, action: () => unknown): void {
  const violations = refusalViolations(fixture, code, action);
  if (violations.length > 0) throw new ConformanceViolation(what, violations);
}
