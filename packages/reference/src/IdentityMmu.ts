import {
  Access,
  FaultKind,
  FaultOutcome,
  FRAME_ZERO,
  GFN_HOST_OUT_OF_MEMORY,
  HvmmuError,
  MemslotInvalidation,
  MemslotFlags,
  MemslotTable,
  TlbShootdown,
  TRACE_HOOK,
  VM_CONFIG,
  type FaultInfo,
  type FaultOutcomeValue,
  type Memslot,
  type MemslotChange,
  type Mmu,
  type TraceHook,
  type MappingLeaf,
  type MmuSnapshot,
  type RmapRecord,
  type Vcpu,
  type VmConfig,
} from '@hvmmu/core';
import { inject, injectable } from 'tsyringe';
import { IdentityFaultVector } from './IdentityFaultCode.js';
import type { IdentityStats, IdentityTypes } from './IdentityTypes.js';
import { HostStageTable } from './HostStageTable.js';
import { IDENTITY_FEATURES, type IdentityMapFeatures } from './IdentityMapFeatures.js';
import { IdentityRmapContext } from './IdentityRmapContext.js';
import { IdentitySlotRmap } from './IdentitySlotRmap.js';
import { IDENTITY_MISS_HOST, IdentityTranslator } from './IdentityTranslator.js';

/** Bits of a page's state as QUERY_PAGE reports it. */
export const IdentityPageState = {
  /** A memslot backs the gfn. */
  MEMORY: 1 << 0,
  /** That slot is READONLY. */
  READ_ONLY: 1 << 1,
  /** The page has its own host frame (not the shared zero frame, not untouched). */
  PRIVATE: 1 << 2,
  /** The host-stage table maps the gfn. */
  MAPPED: 1 << 3,
  /** ... writably. */
  WRITABLE: 1 << 4,
  /** The slot logs dirty pages and this one is dirty. */
  DIRTY: 1 << 5,
} as const;

/**
 * The identity backend's MMU: guest virtual = guest physical, and the
 * hardware table is a `HostStageTable` gfn → host frame, filled on faults
 * through the memslots. A read fault of an untouched page maps the shared zero
 * frame read-only (core's `gfnToHfn`); a write fault gives the page its own
 * frame (core invalidates the zero mapping first). Every leaf is recorded in
 * its slot's rmap through the slot's current rmap table, and every host-side
 * event (invalidate, change_pte, aging, dirty-log harvest, slot teardown)
 * works through those tables.
 */
@injectable()
export class IdentityMmu implements Mmu<IdentityTypes> {
  readonly backendId: string;
  /** `vm.arch` is the MMU itself: page state, the host-stage table, the per-vCPU translators. */
  readonly arch: IdentityMmu = this;
  private readonly translators: (IdentityTranslator | undefined)[] = [];
  /** Slots holding an identity rmap (live ones, and one being deleted until its commit). */
  private readonly rmapSlots = new Set<Memslot<IdentityTypes>>();

  private faults = 0;
  private guestFaults = 0;
  private zeroFrameMaps = 0;
  private zaps = 0;

  constructor(
    @inject(MemslotTable) private readonly memslots: MemslotTable<IdentityTypes>,
    @inject(HostStageTable) readonly table: HostStageTable,
    @inject(TlbShootdown) private readonly tlbs: TlbShootdown,
    @inject(IdentityRmapContext) private readonly rmapContext: IdentityRmapContext,
    @inject(IDENTITY_FEATURES) readonly features: IdentityMapFeatures,
    @inject(VM_CONFIG) config: VmConfig<IdentityTypes['options']>,
    @inject(TRACE_HOOK) private readonly trace: TraceHook | null,
  ) {
    this.backendId = features.id;
    this.memslotInvalidation = config.backendOptions.memslotInvalidation;
  }

  /** This VM's memslot-invalidation strategy. */
  readonly memslotInvalidation: IdentityTypes['options']['memslotInvalidation'];

  // ------------------------------------------------------------ vCPUs

  attachVcpu(vcpu: Vcpu<IdentityTypes>): IdentityTranslator {
    const translator = new IdentityTranslator(vcpu.id, this.table, this.memslots);
    this.translators[vcpu.id] = translator;
    return translator;
  }

  detachVcpu(vcpu: Vcpu<IdentityTypes>): void {
    this.translators[vcpu.id] = undefined;
  }

  /** The vCPU's translator (its protection-table register lives there). */
  translatorOf(vcpu: { readonly id: number }): IdentityTranslator {
    const translator = this.translators[vcpu.id];
    if (translator === undefined) throw new HvmmuError('VCPU_BAD_ID', `vCPU ${vcpu.id} is not attached to this identity MMU`);
    return translator;
  }

  // ------------------------------------------------------------ faults

  handleFault(vcpu: Vcpu<IdentityTypes>, vpn: number, access: number, missCode: number, fault: FaultInfo): FaultOutcomeValue {
    this.faults++;
    if ((missCode & IDENTITY_MISS_HOST) === 0) {
      this.guestFaults++;
      fault.deliver(IdentityFaultVector.PROTECTION, missCode);
      this.traceFault(vcpu, vpn, access, 'guest');
      return FaultOutcome.DONE;
    }
    const gfn = vpn;
    const gpa = gfn * 4096;
    const slot = this.memslots.findByGfn(gfn);
    if (slot === undefined) {
      fault.exit(FaultKind.NO_MEMORY, gpa);
      this.traceFault(vcpu, vpn, access, 'no-memory');
      return FaultOutcome.DONE;
    }
    const write = (access & Access.WRITE) !== 0;
    const hfn = write && slot.readOnly ? -1 : this.memslots.gfnToHfn(slot, gfn, write);
    if (hfn === GFN_HOST_OUT_OF_MEMORY) {
      fault.exit(FaultKind.HOST_OUT_OF_MEMORY, gpa);
      this.traceFault(vcpu, vpn, access, 'host-out-of-memory');
      return FaultOutcome.DONE;
    }
    if (hfn < 0) {
      fault.exit(FaultKind.READ_ONLY, gpa);
      this.traceFault(vcpu, vpn, access, 'read-only');
      return FaultOutcome.DONE;
    }
    // A read maps a private frame writable too, unless writes must be seen:
    // READONLY slots, and dirty logging (the first write must fault to log it).
    const backing = slot.frames[gfn - slot.baseGfn]!;
    const writable = write || (backing >= 0 && !slot.readOnly && !slot.dirtyLogging);
    if (write) slot.markDirty(gfn);
    if (backing === FRAME_ZERO) this.zeroFrameMaps++;
    const entry = this.table.lookup(gfn);
    if (entry >= 0) {
      // Present but not writable (dirty-log armed, or re-pointed by change_pte): upgrade in place.
      this.table.repoint(entry, hfn);
      this.table.setWritable(entry, writable);
    } else {
      slot.rmapOps.add(slot, gfn, 1, this.table.insert(gfn, hfn, writable, slot.id));
    }
    this.traceFault(vcpu, vpn, access, 'mapped');
    return FaultOutcome.RETRY;
  }

  // ------------------------------------------------------------ memslot hooks

  prepareMemslot(slot: Memslot<IdentityTypes>, change: MemslotChange): IdentitySlotRmap {
    if (change === 'create') {
      if ((slot.flags & MemslotFlags.LOG_DIRTY_PAGES) !== 0 && !this.features.dirtyLogging) {
        throw new HvmmuError('UNSUPPORTED_BY_BACKEND', `backend '${this.backendId}' does not log dirty pages (capabilities.dirtyLogging is false)`);
      }
      if ((slot.flags & MemslotFlags.READONLY) !== 0 && !this.features.readOnlyMemslots) {
        throw new HvmmuError('UNSUPPORTED_BY_BACKEND', `backend '${this.backendId}' has no read-only memslots (capabilities.readOnlyMemslots is false)`);
      }
    }
    this.rmapSlots.add(slot);
    return new IdentitySlotRmap(slot.npages);
  }

  flushMemslot(slot: Memslot<IdentityTypes>, _change: MemslotChange): void {
    if (this.memslotInvalidation === MemslotInvalidation.FAST_ZAP) {
      this.zapAll();
      return;
    }
    // The slot is on the invalid table now: each unmap drops and shoots down.
    const rmap = IdentitySlotRmap.of(slot);
    for (let i = 0; i < slot.npages && rmap.used > 0; i++) {
      if (rmap.heads[i] !== 0) slot.rmapOps.unmap(slot, slot.baseGfn + i, 1);
    }
  }

  commitMemslot(slot: Memslot<IdentityTypes>, change: MemslotChange, oldFlags: number): void {
    if (change === 'delete') {
      // The rmap's memory goes with the slot (as in the 2013 KVM invalid-rmap patch).
      this.rmapSlots.delete(slot);
      return;
    }
    if (change === 'flags' && (oldFlags & MemslotFlags.LOG_DIRTY_PAGES) === 0 && slot.dirtyLogging) {
      // Logging on: write-protect every mapped page so its next write faults and is logged.
      this.forEachMapped(slot, slot.baseGfn, slot.endGfn, (gfn) => slot.rmapOps.writeProtect(slot, gfn, 1));
    }
  }

  invalidateGfnRange(slot: Memslot<IdentityTypes>, startGfn: number, endGfn: number): number {
    let dropped = 0;
    this.forEachMapped(slot, startGfn, endGfn, (gfn) => {
      if (slot.rmapOps.unmap(slot, gfn, 1)) dropped++;
      return false;
    });
    if (this.trace !== null) this.trace({ kind: 'identity-invalidate', slot: slot.id, startGfn, endGfn, dropped });
    return dropped;
  }

  changeGfnPte(slot: Memslot<IdentityTypes>, gfn: number, hfn: number): void {
    if (this.features.hostInvalidation) slot.rmapOps.setPte(slot, gfn, 1, hfn, false);
    else slot.rmapOps.unmap(slot, gfn, 1);
  }

  dirtyLogHarvested(slot: Memslot<IdentityTypes>, harvested: Uint32Array): void {
    for (let word = 0; word < harvested.length; word++) {
      let bits = harvested[word]!;
      while (bits !== 0) {
        const bit = 31 - Math.clz32(bits);
        bits &= ~(1 << bit);
        const index = word * 32 + bit;
        if (index < slot.npages) slot.rmapOps.writeProtect(slot, slot.baseGfn + index, 1);
      }
    }
  }

  // ------------------------------------------------------------ aging, zap, stats

  ageGfnRange(slot: Memslot<IdentityTypes>, startGfn: number, endGfn: number): boolean {
    this.requireHostInvalidation('age');
    return this.forEachMapped(slot, startGfn, endGfn, (gfn) => slot.rmapOps.age(slot, gfn, 1));
  }

  testAgeGfnRange(slot: Memslot<IdentityTypes>, startGfn: number, endGfn: number): boolean {
    this.requireHostInvalidation('testAge');
    return this.forEachMapped(slot, startGfn, endGfn, (gfn) => slot.rmapOps.testAge(slot, gfn, 1));
  }

  zapAll(): void {
    for (const slot of this.rmapSlots) {
      const rmap = IdentitySlotRmap.of(slot);
      for (let i = 0; i < slot.npages && rmap.used > 0; i++) {
        const entry = rmap.entryAt(i);
        if (entry >= 0) slot.rmapOps.remove(slot, slot.baseGfn + i, 1, entry);
      }
    }
    this.table.reset();
    this.tlbs.flushAll();
    this.zaps++;
    if (this.trace !== null) this.trace({ kind: 'identity-zap-all' });
  }

  stats(): IdentityStats {
    let rmapBytes = 0;
    for (const slot of this.rmapSlots) rmapBytes += IdentitySlotRmap.of(slot).bytes;
    const c = this.rmapContext.counters;
    return {
      identityMappings: this.table.count,
      identityTableNodes: this.table.nodes,
      identityTableBytes: this.table.bytes,
      identityRmapBytes: rmapBytes,
      identityFaults: this.faults,
      identityGuestFaults: this.guestFaults,
      identityZeroFrameMaps: this.zeroFrameMaps,
      identityZapAlls: this.zaps,
      identityRmapDrops: c.drops,
      identityWriteProtects: c.writeProtects,
      identityInvalidSlotWarnings: c.invalidSlotWarnings,
    };
  }

  // ------------------------------------------------------------ introspection

  /** Host-side view of one guest page (what QUERY_PAGE returns): `IdentityPageState` bits and the slot id. */
  pageState(gfn: number): { readonly state: number; readonly slotId: number } {
    let state = 0;
    let slotId = 0;
    const slot = this.memslots.findByGfn(gfn);
    if (slot !== undefined) {
      slotId = slot.id;
      state |= IdentityPageState.MEMORY;
      if (slot.readOnly) state |= IdentityPageState.READ_ONLY;
      if (slot.frameAt(gfn - slot.baseGfn) >= 0) state |= IdentityPageState.PRIVATE;
      if (slot.isDirty(gfn)) state |= IdentityPageState.DIRTY;
    }
    const entry = gfn < this.table.maxGfn ? this.table.lookup(gfn) : -1;
    if (entry >= 0) {
      state |= IdentityPageState.MAPPED;
      if (this.table.isWritable(entry)) state |= IdentityPageState.WRITABLE;
    }
    return { state, slotId };
  }

  /** Every leaf and rmap entry, and each vCPU's protection register (for the conformance suite). */
  inspect(): MmuSnapshot {
    const table = this.table;
    const leaves: MappingLeaf[] = [];
    for (let entry = 0; entry < table.entryLimit; entry++) {
      if (!table.isPresent(entry)) continue;
      leaves.push({
        entry,
        slotId: table.slotOf(entry),
        gfn: table.gfnOf(entry),
        level: 1,
        pages: 1,
        hfn: table.hfnOf(entry),
        writable: table.isWritable(entry),
      });
    }
    const rmap: RmapRecord[] = [];
    for (const slot of this.rmapSlots) {
      const heads = IdentitySlotRmap.of(slot).heads;
      for (let i = 0; i < heads.length; i++) {
        if (heads[i] !== 0) rmap.push({ slotId: slot.id, gfn: slot.baseGfn + i, level: 1, entry: heads[i]! - 1 });
      }
    }
    const registers = this.translators.map(
      (t): Readonly<Record<string, number>> => (t === undefined ? {} : { protectionBase: t.protectionBase, protectionPages: t.protectionPages }),
    );
    return { leaves, rmap, registers };
  }

  // ------------------------------------------------------------ internals

  /** Call `visit` for each mapped gfn of [startGfn, endGfn) ∩ slot; true if any call returned true. */
  private forEachMapped(slot: Memslot<IdentityTypes>, startGfn: number, endGfn: number, visit: (gfn: number) => boolean): boolean {
    const rmap = IdentitySlotRmap.of(slot);
    const lo = Math.max(startGfn, slot.baseGfn);
    const hi = Math.min(endGfn, slot.baseGfn + slot.npages);
    let any = false;
    for (let gfn = lo; gfn < hi && rmap.used > 0; gfn++) {
      if (rmap.heads[gfn - slot.baseGfn] !== 0 && visit(gfn)) any = true;
    }
    return any;
  }

  private requireHostInvalidation(op: string): void {
    if (!this.features.hostInvalidation) {
      throw new HvmmuError('UNSUPPORTED_BY_BACKEND', `backend '${this.backendId}' does not age pages (${op}; capabilities.hostInvalidation is false)`);
    }
  }

  private traceFault(vcpu: Vcpu<IdentityTypes>, vpn: number, access: number, outcome: string): void {
    if (this.trace !== null) this.trace({ kind: 'identity-fault', vcpu: vcpu.id, gfn: vpn, access, outcome });
  }
}
