import fc from 'fast-check';
import { Access, MemslotFlags, type BackendCapabilities, type HvmmuErrorCode } from '@hvmmu/core';
import type { ConformanceHarness, ConformanceVariant } from '../ConformanceHarness.js';
import { GUEST_PERM_ALL } from '../ConformanceHarness.js';
import { createConformanceFixture, DEFAULT_HOST_MEMORY_BYTES, refusalViolations, type ConformanceFixture } from '../ConformanceFixture.js';
import { ConformanceViolation } from '../invariants/ConformanceViolation.js';
import { checkMmuInvariants } from '../invariants/checkMmuInvariants.js';
import { RmapModel } from '../invariants/checkRmapConsistency.js';
import { checkHostRangeUnmapped } from '../invariants/checkTlbCoherence.js';
import { checkedAccess } from '../model/checkedAccess.js';
import { GuestModel } from '../model/GuestModel.js';

/**
 * One step of a random sequence. Pages are offsets into the harness's data
 * region. Host events (invalidateFrame, migrate, age, testAge) take `page` as
 * a pick among the pages that have a private frame at that moment; a
 * `targeted` access picks among the guest's mapped pages, a `targeted` harvest
 * among the slots that log dirty pages. Untargeted forms hit whatever is (or
 * is not) there, which covers the refusals.
 */
export type MmuOperation =
  | { readonly op: 'create'; readonly slot: number; readonly page: number; readonly pages: number; readonly flags: number }
  | { readonly op: 'delete'; readonly slot: number }
  | { readonly op: 'move'; readonly slot: number; readonly page: number }
  | { readonly op: 'setFlags'; readonly slot: number; readonly logDirty: boolean }
  | { readonly op: 'getDirtyLog'; readonly slot: number; readonly targeted: boolean }
  | { readonly op: 'map'; readonly page: number; readonly perm: number }
  | { readonly op: 'unmap'; readonly page: number }
  | { readonly op: 'access'; readonly vcpu: number; readonly page: number; readonly targeted: boolean; readonly access: number; readonly flushFirst: boolean }
  | { readonly op: 'invalidateFrame'; readonly page: number; readonly count: number }
  | { readonly op: 'invalidateRange'; readonly startHfn: number; readonly count: number }
  | { readonly op: 'migrate'; readonly page: number }
  | { readonly op: 'age'; readonly page: number }
  | { readonly op: 'testAge'; readonly page: number }
  | { readonly op: 'zapAll' };

/** Pages of the data region random sequences use: few enough that slots collide and pages repeat. */
const SPAN = 64;
/** The working set most page choices fall in. */
const HOT_PAGES = 8;
/** Memslot ids random sequences use. */
const SLOT_IDS = 4;
const ACCESSES = [Access.READ, Access.WRITE, Access.FETCH, Access.USER, Access.USER | Access.WRITE, Access.USER | Access.FETCH];

/**
 * Random operation sequences for `harness`: memslot create/delete/move/flags
 * (including requests core must refuse), guest map/unmap, accesses from two
 * vCPUs, host invalidation, migration, aging, dirty-log harvests and zap-all.
 * Operations a capability gates are only generated when it is declared.
 */
export function mmuOperationsArbitrary(harness: ConformanceHarness, maxLength = 50): fc.Arbitrary<MmuOperation[]> {
  const caps = harness.backend.capabilities;
  const span = Math.min(SPAN, harness.dataRegion.pages);
  const slot = fc.integer({ min: 0, max: Math.min(SLOT_IDS, harness.dataRegion.slotIds.length) - 1 });
  // Mostly a small working set, so creates, maps, accesses and host events meet on the same pages.
  const page = fc.oneof({ weight: 4, arbitrary: fc.integer({ min: 0, max: HOT_PAGES - 1 }) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: span - 1 }) });
  // Mostly full permissions, so accesses get past the guest stage and reach the MMU.
  const perm = fc.oneof({ weight: 2, arbitrary: fc.constant(GUEST_PERM_ALL) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: GUEST_PERM_ALL }) });
  // Rarely: a full flush erases the very TLB entries a missing shootdown would leave behind.
  const flushFirst = fc.oneof({ weight: 7, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) });
  const pick = fc.nat({ max: 255 });
  const frames = (harness.hostMemoryBytes ?? DEFAULT_HOST_MEMORY_BYTES) / 4096;
  const flags = fc.oneof(
    { weight: 2, arbitrary: fc.constant(0) },
    { weight: 2, arbitrary: fc.constant(MemslotFlags.LOG_DIRTY_PAGES) },
    { weight: 1, arbitrary: fc.constant(MemslotFlags.READONLY) },
    { weight: 1, arbitrary: fc.constant(MemslotFlags.READONLY | MemslotFlags.LOG_DIRTY_PAGES) },
  );
  const arbitraries: { arbitrary: fc.Arbitrary<MmuOperation>; weight: number }[] = [
    { weight: 3, arbitrary: fc.record({ op: fc.constant('create' as const), slot, page, pages: fc.integer({ min: 1, max: 16 }), flags }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('delete' as const), slot }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('move' as const), slot, page }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('setFlags' as const), slot, logDirty: caps.dirtyLogging ? fc.boolean() : fc.constant(false) }) },
    { weight: 2, arbitrary: fc.record({ op: fc.constant('getDirtyLog' as const), slot, targeted: fc.boolean() }) },
    { weight: 4, arbitrary: fc.record({ op: fc.constant('map' as const), page, perm }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('unmap' as const), page }) },
    {
      weight: 10,
      arbitrary: fc.record({
        op: fc.constant('access' as const),
        vcpu: fc.integer({ min: 0, max: 1 }),
        page,
        targeted: fc.boolean(),
        access: fc.constantFrom(...ACCESSES),
        flushFirst,
      }),
    },
    { weight: 2, arbitrary: fc.record({ op: fc.constant('invalidateFrame' as const), page: pick, count: fc.integer({ min: 1, max: 3 }) }) },
    {
      weight: 1,
      arbitrary: fc.record({
        op: fc.constant('invalidateRange' as const),
        startHfn: fc.integer({ min: 0, max: frames - 1 }),
        count: fc.integer({ min: 1, max: 64 }),
      }),
    },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('migrate' as const), page: pick }) },
    { weight: 1, arbitrary: fc.constant({ op: 'zapAll' as const }) },
  ];
  if (caps.hostInvalidation) {
    arbitraries.push({ weight: 1, arbitrary: fc.record({ op: fc.constant('age' as const), page: pick }) });
    arbitraries.push({ weight: 1, arbitrary: fc.record({ op: fc.constant('testAge' as const), page: pick }) });
  }
  return fc.array(fc.oneof(...arbitraries), { minLength: 1, maxLength, size: 'max' });
}

/**
 * Run one sequence on a fresh VM of `variant`, checking after every step the
 * model's prediction of that step and every invariant
 * (`checkMmuInvariants` with the guest's mappings). Throws a
 * `ConformanceViolation` naming the step on the first failure.
 */
export function runMmuOperations(harness: ConformanceHarness, variant: ConformanceVariant, ops: readonly MmuOperation[]): void {
  const fixture = createConformanceFixture(harness, variant);
  const runner = new OperationRunner(fixture, harness.backend.capabilities);
  ops.forEach((op, step) => {
    const violations = runner.run(op, step);
    const context = `${harness.name} [${variant.name}] step ${step} ${JSON.stringify(op)}`;
    if (violations.length > 0) throw new ConformanceViolation(context, violations);
    const snapshot = fixture.guest.inspect();
    const invariants = checkMmuInvariants(fixture.vm, snapshot, {
      guestView: runner.model.guestView(),
      dirtyLogging: harness.backend.capabilities.dirtyLogging,
      rmapModel: harness.rmapModel ?? RmapModel.ONE_PER_LEAF,
    });
    if (invariants.length > 0) throw new ConformanceViolation(`${context}: invariant broken afterwards`, invariants);
  });
}

class OperationRunner {
  readonly model: GuestModel;
  /** Host frames aged since their last access: testAge must report them old. */
  private readonly aged = new Set<number>();

  constructor(
    private readonly fixture: ConformanceFixture,
    private readonly caps: BackendCapabilities,
  ) {
    this.model = new GuestModel(fixture.guest);
  }

  run(op: MmuOperation, step: number): string[] {
    const { vm, guest, harness } = this.fixture;
    const region = harness.dataRegion;
    const memslots = vm.memslots;
    switch (op.op) {
      case 'create': {
        const id = region.slotIds[op.slot]!;
        const pages = Math.min(op.pages, region.pages - op.page);
        const baseGfn = region.baseGfn + op.page;
        const unsupported =
          ((op.flags & MemslotFlags.READONLY) !== 0 && !this.caps.readOnlyMemslots) ||
          ((op.flags & MemslotFlags.LOG_DIRTY_PAGES) !== 0 && !this.caps.dirtyLogging);
        const refusal: HvmmuErrorCode | undefined = this.model.slots.has(id)
          ? 'MEMSLOT_EXISTS'
          : this.model.overlaps(baseGfn, pages, -1)
            ? 'MEMSLOT_OVERLAP'
            : unsupported
              ? 'UNSUPPORTED_BY_BACKEND'
              : undefined;
        const request = { id, guestPhysAddr: baseGfn * 4096, size: pages * 4096, flags: op.flags };
        if (refusal !== undefined) return this.refused(refusal, () => memslots.create(request));
        memslots.create(request);
        this.model.addSlot(id, baseGfn, pages, op.flags);
        return [];
      }
      case 'delete': {
        const id = region.slotIds[op.slot]!;
        if (!this.model.slots.has(id)) return this.refused('MEMSLOT_UNKNOWN', () => memslots.delete(id));
        const owned = Array.from(memslots.get(id).frames).filter((f) => f >= 0);
        const guestFrames = memslots.framesInUse;
        memslots.delete(id);
        this.model.slots.delete(id);
        // The slot's frames are free now and may back another page next (a migration's new frame,
        // say): what was aged of them is not that page's state.
        for (const f of owned) this.aged.delete(f);
        const violations = owned
          .filter((f) => vm.memslots.host.isAllocated(f))
          .map((f) => `deleting memslot ${id} left its host frame 0x${f.toString(16)} allocated`);
        if (memslots.framesInUse !== guestFrames - owned.length)
          violations.push(`deleting memslot ${id} (${owned.length} frames) left ${memslots.framesInUse} of ${guestFrames} frames accounted`);
        return violations;
      }
      case 'move': {
        const id = region.slotIds[op.slot]!;
        const slot = this.model.slots.get(id);
        if (slot === undefined) return this.refused('MEMSLOT_UNKNOWN', () => memslots.move(id, region.baseGfn * 4096));
        const baseGfn = region.baseGfn + Math.min(op.page, region.pages - slot.npages);
        if (this.model.overlaps(baseGfn, slot.npages, id)) return this.refused('MEMSLOT_OVERLAP', () => memslots.move(id, baseGfn * 4096));
        memslots.move(id, baseGfn * 4096);
        slot.baseGfn = baseGfn;
        return [];
      }
      case 'setFlags': {
        const id = region.slotIds[op.slot]!;
        const slot = this.model.slots.get(id);
        const flags = ((slot?.flags ?? 0) & MemslotFlags.READONLY) | (op.logDirty ? MemslotFlags.LOG_DIRTY_PAGES : 0);
        if (slot === undefined) return this.refused('MEMSLOT_UNKNOWN', () => memslots.setFlags(id, flags));
        memslots.setFlags(id, flags);
        if (((slot.flags ^ flags) & MemslotFlags.LOG_DIRTY_PAGES) !== 0) slot.dirty.clear();
        slot.flags = flags;
        return [];
      }
      case 'getDirtyLog': {
        let id = region.slotIds[op.slot]!;
        if (op.targeted) {
          const logging = [...this.model.slots.values()]
            .filter((s) => (s.flags & MemslotFlags.LOG_DIRTY_PAGES) !== 0)
            .map((s) => s.id)
            .sort((a, b) => a - b);
          if (logging.length === 0) return [];
          id = logging[op.slot % logging.length]!;
        }
        const slot = this.model.slots.get(id);
        if (slot === undefined) return this.refused('MEMSLOT_UNKNOWN', () => memslots.getDirtyLog(id));
        if ((slot.flags & MemslotFlags.LOG_DIRTY_PAGES) === 0) return this.refused('MEMSLOT_BAD_FLAGS', () => memslots.getDirtyLog(id));
        const log = memslots.getDirtyLog(id);
        const violations: string[] = [];
        for (const index of slot.dirty) {
          if ((log[index >>> 5]! & (1 << (index & 31))) === 0) violations.push(`page ${index} of memslot ${id} was written but its dirty bit is clear`);
        }
        for (let index = slot.npages; index < log.length * 32; index++) {
          if ((log[index >>> 5]! & (1 << (index & 31))) !== 0) violations.push(`dirty bit ${index} is set beyond memslot ${id}'s ${slot.npages} pages`);
        }
        slot.dirty.clear();
        return violations;
      }
      case 'map': {
        const gfn = region.baseGfn + op.page;
        guest.map(gfn, op.perm);
        this.model.mappings.set(gfn, op.perm);
        return [];
      }
      case 'unmap': {
        const gfn = region.baseGfn + op.page;
        if (!this.model.mappings.has(gfn)) return [];
        guest.unmap(gfn);
        this.model.mappings.delete(gfn);
        return [];
      }
      case 'access': {
        const vcpu = this.fixture.vcpus[op.vcpu]!;
        // A host-side full flush first forces the walk (hardware may drop TLB entries at any time).
        if (op.flushFirst) vcpu.tlb.flushAll();
        const mapped = [...this.model.mappings.keys()].sort((a, b) => a - b);
        const gfn = op.targeted && mapped.length > 0 ? mapped[op.page % mapped.length]! : region.baseGfn + op.page;
        const violations = checkedAccess(this.fixture, this.model, vcpu, gfn, op.access, stampFor(step));
        const hfn = this.privateFrameOf(gfn);
        if (hfn >= 0) this.aged.delete(hfn);
        return violations;
      }
      case 'invalidateFrame': {
        const hfn = this.privateFrameOf(this.pickBackedGfn(op.page));
        if (hfn < 0) return [];
        vm.invalidateHostRange(hfn, hfn + op.count);
        return checkHostRangeUnmapped(vm, guest.inspect(), hfn, hfn + op.count);
      }
      case 'invalidateRange': {
        vm.invalidateHostRange(op.startHfn, op.startHfn + op.count);
        return checkHostRangeUnmapped(vm, guest.inspect(), op.startHfn, op.startHfn + op.count);
      }
      case 'migrate': {
        const gfn = this.pickBackedGfn(op.page);
        const hfn = this.privateFrameOf(gfn);
        if (hfn < 0) return this.refused('HOST_BAD_FRAME', () => vm.migrateHostFrame(vm.memslots.host.zeroFrame));
        const moved = vm.migrateHostFrame(hfn);
        // Page migration carries the page's young state to the new frame (Linux folio_migrate_flags);
        // the old frame number is free and may back another page next.
        if (this.aged.delete(hfn)) this.aged.add(moved);
        const slot = memslots.findByGfn(gfn)!;
        const violations: string[] = [];
        if (slot.frames[gfn - slot.baseGfn] !== moved)
          violations.push(`after migrating hfn 0x${hfn.toString(16)}, gfn 0x${gfn.toString(16)} is not backed by the new frame 0x${moved.toString(16)}`);
        if (vm.memslots.host.isAllocated(hfn)) violations.push(`migration left the old host frame 0x${hfn.toString(16)} allocated`);
        return violations;
      }
      case 'age': {
        const hfn = this.privateFrameOf(this.pickBackedGfn(op.page));
        if (hfn < 0) return [];
        vm.ageHostRange(hfn, hfn + 1);
        this.aged.add(hfn);
        return [];
      }
      case 'testAge': {
        const hfn = this.privateFrameOf(this.pickBackedGfn(op.page));
        if (hfn < 0) return [];
        const young = vm.testAgeHostRange(hfn, hfn + 1);
        const again = vm.testAgeHostRange(hfn, hfn + 1);
        const violations: string[] = [];
        if (young !== again) violations.push(`testAge of hfn 0x${hfn.toString(16)} changed its own answer (${young} then ${again})`);
        if (young && this.aged.has(hfn)) violations.push(`hfn 0x${hfn.toString(16)} was aged and not accessed since, but testAge reports it young`);
        return violations;
      }
      case 'zapAll': {
        vm.zapAll();
        const snapshot = guest.inspect();
        const violations: string[] = [];
        if (snapshot.leaves.length > 0) violations.push(`zapAll left ${snapshot.leaves.length} leaves`);
        if (snapshot.rmap.length > 0) violations.push(`zapAll left ${snapshot.rmap.length} rmap entries`);
        for (const vcpu of vm.vcpus) if (vcpu.tlb.countValid() > 0) violations.push(`zapAll left ${vcpu.tlb.countValid()} entries in vCPU ${vcpu.id}'s TLB`);
        return violations;
      }
    }
  }

  /** The `pick`-th (mod count) gfn that has a private frame, in gfn order; −1 if none has. */
  private pickBackedGfn(pick: number): number {
    const backed: number[] = [];
    for (const slot of this.fixture.vm.memslots.slots()) {
      if (!this.model.slots.has(slot.id)) continue;
      for (let i = 0; i < slot.npages; i++) if (slot.frames[i]! >= 0) backed.push(slot.baseGfn + i);
    }
    return backed.length === 0 ? -1 : backed[pick % backed.length]!;
  }

  /** The private host frame backing gfn, or −1 (no slot, untouched, or on the zero frame). */
  private privateFrameOf(gfn: number): number {
    const slot = this.fixture.vm.memslots.findByGfn(gfn);
    if (slot === undefined) return -1;
    const hfn = slot.frames[gfn - slot.baseGfn]!;
    return hfn >= 0 ? hfn : -1;
  }

  /** The call must throw HvmmuError `code` and change nothing. */
  private refused(code: HvmmuErrorCode, action: () => unknown): string[] {
    return refusalViolations(this.fixture, code, action);
  }
}

/** A distinct non-zero 32-bit value per step (Knuth's multiplicative hash), so stale reads are caught. */
function stampFor(step: number): number {
  return (Math.imul(step + 1, 0x9e3779b1) | 1) >>> 0;
}
