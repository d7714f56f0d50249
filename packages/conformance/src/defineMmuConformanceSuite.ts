import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Access, FaultKind, HvmmuError, MemslotFlags, TRANSLATE_FAULT, type BackendCapabilities, type Memslot, type Vcpu } from '@hvmmu/core';
import { GUEST_PERM_ALL, GuestPerm, type ConformanceHarness, type ConformanceVariant, type GuestAnswer } from './ConformanceHarness.js';
import { captureVmState, normalizeSnapshot, createConformanceFixture, expectRefused, type ConformanceFixture } from './ConformanceFixture.js';
import { describeAnswer } from './GuestAnswers.js';
import { HOST_MISUSE_CASES, type MisuseScene } from './hostile/hostMisuseCases.js';
import { assertNoViolations } from './invariants/ConformanceViolation.js';
import { checkMmuInvariants } from './invariants/checkMmuInvariants.js';
import { RmapModel } from './invariants/checkRmapConsistency.js';
import { checkHostRangeUnmapped } from './invariants/checkTlbCoherence.js';
import { checkedAccess, PROBE_OFFSET } from './model/checkedAccess.js';
import { GuestModel } from './model/GuestModel.js';
import { mmuOperationsArbitrary, runMmuOperations } from './random/MmuOperations.js';

export interface MmuConformanceOptions {
  /** fast-check runs of the random-operation property, per variant (default 100). */
  readonly numRuns?: number;
  /** Longest random operation sequence (default 50). */
  readonly maxOperations?: number;
  /** fast-check runs of the random-hypercall property, per variant (default 100). */
  readonly hypercallRuns?: number;
}

/**
 * Register the MMU contract for `harness` as Vitest `describe`/`it` blocks,
 * once per variant: map then translate, permissions, host-range invalidation,
 * migration, memslot delete and move, dirty logging and aging (or, where the
 * backend declares them absent, that they are refused), zap-all, teardown,
 * random operation sequences against a model with every invariant checked
 * after each step, hostile guest actions and host-API misuse.
 */
export function defineMmuConformanceSuite(harness: ConformanceHarness, options: MmuConformanceOptions = {}): void {
  const caps = harness.backend.capabilities;
  describe(`MMU conformance: ${harness.name}`, () => {
    describe('declarations', () => {
      it(`declares the harness's paging mode '${harness.pagingMode}'`, () => {
        expect(caps.pagingModes).toContain(harness.pagingMode);
      });

      it('runs a variant for every memslot-invalidation strategy it declares, and only those', () => {
        expect(harness.variants.length).toBeGreaterThan(0);
        expect([...new Set(harness.variants.map((v) => v.memslotInvalidation))].sort()).toEqual([...caps.memslotInvalidation].sort());
      });

      it('gives the suite a data region it can use', () => {
        const region = harness.dataRegion;
        expect(region.pages).toBeGreaterThanOrEqual(64);
        expect(new Set(region.slotIds).size).toBe(region.slotIds.length);
        expect(region.slotIds.length).toBeGreaterThanOrEqual(4);
      });
    });

    for (const variant of harness.variants) {
      describe(`[${variant.name}]`, () => {
        defineVariant(harness, variant, caps, options);
      });
    }
  });
}

function defineVariant(harness: ConformanceHarness, variant: ConformanceVariant, caps: BackendCapabilities, options: MmuConformanceOptions): void {
  const region = harness.dataRegion;
  const fixture = (): ConformanceFixture => createConformanceFixture(harness, variant);
  /** Create suite memslot number `index` at `offset` pages into the data region. */
  const slotAt = (fx: ConformanceFixture, index: number, offset: number, pages: number, flags = 0): Memslot =>
    fx.vm.memslots.create({ id: region.slotIds[index]!, guestPhysAddr: (region.baseGfn + offset) * 4096, size: pages * 4096, flags });
  const va = (fx: ConformanceFixture, gfn: number): number => fx.guest.vpnOf(gfn) * 4096 + PROBE_OFFSET;
  const translate = (fx: ConformanceFixture, vcpu: Vcpu, gfn: number, access: number): number => vcpu.translate(va(fx, gfn), access);
  const rmapModel = harness.rmapModel ?? RmapModel.ONE_PER_LEAF;
  const invariants = (fx: ConformanceFixture, model?: GuestModel): void =>
    assertNoViolations(
      'invariants',
      checkMmuInvariants(fx.vm, fx.guest.inspect(), {
        dirtyLogging: caps.dirtyLogging,
        rmapModel,
        ...(model !== undefined ? { guestView: model.guestView() } : {}),
      }),
    );
  /** A model that knows the fixture's slots, for checked accesses. */
  const modelOf = (fx: ConformanceFixture, ...slots: Memslot[]): GuestModel => {
    const model = new GuestModel(fx.guest);
    for (const s of slots) model.addSlot(s.id, s.baseGfn, s.npages, s.flags);
    return model;
  };
  const mapAll = (fx: ConformanceFixture, model: GuestModel, firstGfn: number, count: number, perm: number): void => {
    for (let gfn = firstGfn; gfn < firstGfn + count; gfn++) {
      fx.guest.map(gfn, perm);
      model.mappings.set(gfn, perm);
    }
  };
  /** A fresh fixture whose suite memslot 0 (`pages` pages, `flags`) has its first `mapped` pages mapped with `perm`, and its model. */
  const mappedSlot = (pages: number, perm: number, flags = 0, mapped = pages): { fx: ConformanceFixture; slot: Memslot; model: GuestModel } => {
    const fx = fixture();
    const slot = slotAt(fx, 0, 0, pages, flags);
    const model = modelOf(fx, slot);
    mapAll(fx, model, slot.baseGfn, mapped, perm);
    return { fx, slot, model };
  };
  let stamp = 0x5eed_0001;
  const access = (fx: ConformanceFixture, model: GuestModel, vcpu: Vcpu, gfn: number, kind: number): void => {
    stamp = (Math.imul(stamp, 0x9e3779b1) | 1) >>> 0;
    assertNoViolations('access', checkedAccess(fx, model, vcpu, gfn, kind, stamp));
  };

  it('declares a hypercall ABI that matches what it registers', () => {
    const fx = fixture();
    const dispatcher = fx.vm.hypercalls;
    expect(dispatcher.abi.name).toBe(caps.hypercallAbi);
    if (caps.hypercallAbi === 'none') expect(dispatcher.list()).toEqual([]);
    else expect(dispatcher.list().length).toBeGreaterThan(0);
  });

  describe('map then translate', () => {
    it('completes a write at the host frame the memslot backs the page with, and the VMM sees the same bytes', () => {
      const fx = fixture();
      const slot = slotAt(fx, 0, 0, 4);
      const gfn = slot.baseGfn + 1;
      fx.guest.map(gfn, GuestPerm.WRITE);
      const hpa = translate(fx, fx.vcpus[0]!, gfn, Access.WRITE);
      expect(hpa).not.toBe(TRANSLATE_FAULT);
      expect(slot.frames[1]).toBeGreaterThanOrEqual(0);
      expect(hpa).toBe(slot.frames[1]! * 4096 + PROBE_OFFSET);
      const host = fx.vm.memslots.host;
      host.write32(hpa, 0xcafe_f00d, true);
      expect(fx.vm.memslots.read32(gfn * 4096 + PROBE_OFFSET, true)).toBe(0xcafe_f00d);
      fx.vm.memslots.write32(gfn * 4096 + 0x800, 0x1234_5678, true);
      expect(host.read32(hpa - PROBE_OFFSET + 0x800, true)).toBe(0x1234_5678);
      invariants(fx);
    });

    it('reads an untouched page as zeros from its current backing, then gives it a private frame on the first write', () => {
      const { fx, slot, model } = mappedSlot(4, GuestPerm.WRITE);
      const gfn = slot.baseGfn + 2;
      access(fx, model, fx.vcpus[0]!, gfn, Access.READ);
      access(fx, model, fx.vcpus[1]!, gfn, Access.READ);
      access(fx, model, fx.vcpus[0]!, gfn, Access.WRITE);
      expect(slot.frames[2]).toBeGreaterThanOrEqual(0);
      expect(slot.frames[2]).not.toBe(fx.vm.memslots.host.zeroFrame);
      // Both vCPUs now read the write, whatever they cached for the untouched page.
      access(fx, model, fx.vcpus[0]!, gfn, Access.READ);
      access(fx, model, fx.vcpus[1]!, gfn, Access.READ);
      invariants(fx, model);
    });

    it('serves a repeated access from the TLB without a table walk or fault', () => {
      const fx = fixture();
      const slot = slotAt(fx, 0, 0, 2);
      fx.guest.map(slot.baseGfn, GuestPerm.WRITE);
      const vcpu = fx.vcpus[0]!;
      const first = translate(fx, vcpu, slot.baseGfn, Access.WRITE);
      const hits = vcpu.tlb.hits;
      const walks = vcpu.tlb.misses;
      const faults = vcpu.tableMisses;
      expect(translate(fx, vcpu, slot.baseGfn, Access.WRITE)).toBe(first);
      expect(translate(fx, vcpu, slot.baseGfn, Access.READ)).toBe(first);
      expect(vcpu.tlb.hits).toBe(hits + 2);
      expect(vcpu.tlb.misses).toBe(walks);
      expect(vcpu.tableMisses).toBe(faults);
    });

    it("faults a write to a read-only guest mapping with the architecture's protection code, granting no write anywhere", () => {
      const { fx, slot, model } = mappedSlot(2, GuestPerm.READ, 0, 1);
      access(fx, model, fx.vcpus[0]!, slot.baseGfn, Access.READ);
      expect(translate(fx, fx.vcpus[0]!, slot.baseGfn, Access.WRITE)).toBe(TRANSLATE_FAULT);
      expect(fx.vcpus[0]!.fault.kind).toBe(FaultKind.GUEST);
      expect(fx.vcpus[0]!.fault.code).toBe(fx.guest.guestFaultCode(Access.WRITE, true, GuestPerm.READ));
      access(fx, model, fx.vcpus[1]!, slot.baseGfn, Access.WRITE);
      invariants(fx, model);
    });

    it('faults user accesses to supervisor pages and fetches from non-executable pages, and allows what the mapping grants', () => {
      const fx = fixture();
      const slot = slotAt(fx, 0, 0, 4);
      const model = modelOf(fx, slot);
      const kinds = [Access.READ, Access.WRITE, Access.FETCH, Access.USER, Access.USER | Access.WRITE, Access.USER | Access.FETCH];
      mapAll(fx, model, slot.baseGfn, 1, GuestPerm.WRITE);
      mapAll(fx, model, slot.baseGfn + 1, 1, GuestPerm.USER | GuestPerm.EXEC);
      mapAll(fx, model, slot.baseGfn + 2, 1, GUEST_PERM_ALL);
      for (let page = 0; page < 3; page++) {
        for (const kind of kinds) access(fx, model, fx.vcpus[page & 1]!, slot.baseGfn + page, kind);
      }
      invariants(fx, model);
    });

    it('faults not-present on a page the guest does not map', () => {
      const fx = fixture();
      const slot = slotAt(fx, 0, 0, 2);
      const model = modelOf(fx, slot);
      for (const kind of [Access.READ, Access.USER | Access.WRITE, Access.FETCH]) access(fx, model, fx.vcpus[0]!, slot.baseGfn, kind);
      expect(fx.vcpus[0]!.fault.code).toBe(fx.guest.guestFaultCode(Access.FETCH, false));
    });

    it('ends an access the guest allows to a guest-physical hole in NO_MEMORY at that address, mapping nothing', () => {
      const fx = fixture();
      const slot = slotAt(fx, 0, 0, 2);
      const hole = slot.baseGfn + 8;
      const model = modelOf(fx, slot);
      mapAll(fx, model, hole, 1, GUEST_PERM_ALL);
      access(fx, model, fx.vcpus[0]!, hole, Access.READ);
      access(fx, model, fx.vcpus[1]!, hole, Access.WRITE);
      expect(fx.vcpus[1]!.fault.kind).toBe(FaultKind.NO_MEMORY);
      expect(fx.guest.inspect().leaves.filter((l) => hole >= l.gfn && hole < l.gfn + l.pages)).toEqual([]);
      invariants(fx, model);
    });

    it('translates the same page to the same frame on every vCPU, each through its own TLB', () => {
      const { fx, slot, model } = mappedSlot(2, GuestPerm.WRITE);
      access(fx, model, fx.vcpus[0]!, slot.baseGfn, Access.WRITE);
      access(fx, model, fx.vcpus[1]!, slot.baseGfn, Access.READ);
      const vpn = fx.guest.vpnOf(slot.baseGfn);
      for (const vcpu of fx.vcpus) {
        // The TLB set of vpn in the context the vCPU runs in (core SoftTlb: (vpn & mask) ^ context).
        const i = (vpn & vcpu.tlb.mask) ^ vcpu.context;
        expect(vcpu.tlb.tags[i]).toBe(vpn);
        expect(vcpu.tlb.frames[i]).toBe(slot.frames[0]);
      }
      invariants(fx, model);
    });

    if (caps.readOnlyMemslots) {
      it('ends writes to a READONLY memslot in READ_ONLY at that address, serves reads, and maps it writable nowhere', () => {
        const { fx, slot, model } = mappedSlot(2, GUEST_PERM_ALL, MemslotFlags.READONLY);
        // The VMM fills its ROM through its own mapping; the guest must read that.
        fx.vm.memslots.write32(slot.baseGfn * 4096 + PROBE_OFFSET, 0x0b0e_0b0e, true);
        model.slots.get(slot.id)!.values.set(0, 0x0b0e_0b0e);
        access(fx, model, fx.vcpus[0]!, slot.baseGfn, Access.READ);
        access(fx, model, fx.vcpus[0]!, slot.baseGfn, Access.WRITE);
        access(fx, model, fx.vcpus[1]!, slot.baseGfn + 1, Access.USER | Access.WRITE);
        expect(fx.vcpus[1]!.fault.kind).toBe(FaultKind.READ_ONLY);
        invariants(fx, model);
      });
    } else {
      it('refuses READONLY memslots, as its capabilities declare', () => {
        const fx = fixture();
        expectRefused(fx, 'create a READONLY memslot', 'UNSUPPORTED_BY_BACKEND', () => slotAt(fx, 0, 0, 2, MemslotFlags.READONLY));
      });
    }
  });

  describe('host-range invalidation', () => {
    it("removes the frame's mappings and TLB entries; the next access misses, re-faults and reaches the same frame", () => {
      const { fx, slot, model } = mappedSlot(4, GuestPerm.WRITE);
      for (let page = 0; page < 2; page++) {
        access(fx, model, fx.vcpus[0]!, slot.baseGfn + page, Access.WRITE);
        access(fx, model, fx.vcpus[1]!, slot.baseGfn + page, Access.READ);
      }
      const hfn = slot.frames[0]!;
      expect(fx.vm.invalidateHostRange(hfn, hfn + 1)).toBeGreaterThanOrEqual(1);
      assertNoViolations('after invalidateHostRange', checkHostRangeUnmapped(fx.vm, fx.guest.inspect(), hfn, hfn + 1));
      // Every vCPU misses its TLB; the first one also finds the tables empty and faults the page back in.
      const faults = fx.vcpus[0]!.tableMisses;
      for (const vcpu of fx.vcpus) {
        const misses = vcpu.tlb.misses;
        access(fx, model, vcpu, slot.baseGfn, Access.READ);
        expect(vcpu.tlb.misses).toBe(misses + 1);
      }
      expect(fx.vcpus[0]!.tableMisses).toBeGreaterThan(faults);
      expect(slot.frames[0]).toBe(hfn);
      invariants(fx, model);
    });

    it('drops nothing and changes nothing for host frames that back nothing of the VM', () => {
      const { fx, slot, model } = mappedSlot(2, GuestPerm.WRITE);
      access(fx, model, fx.vcpus[0]!, slot.baseGfn, Access.WRITE);
      const frames = fx.vm.memslots.host.frameCount;
      const before = captureVmState(fx);
      expect(fx.vm.invalidateHostRange(frames - 16, frames)).toBe(0);
      expect(fx.vm.invalidateHostRange(frames, frames + 100)).toBe(0);
      expect(captureVmState(fx)).toBe(before);
    });

    it('re-points every translation to the new frame when a host frame migrates, keeping the contents', () => {
      const { fx, slot, model } = mappedSlot(2, GuestPerm.WRITE);
      access(fx, model, fx.vcpus[0]!, slot.baseGfn, Access.WRITE);
      access(fx, model, fx.vcpus[1]!, slot.baseGfn, Access.READ);
      const old = slot.frames[0]!;
      const moved = fx.vm.migrateHostFrame(old);
      expect(moved).not.toBe(old);
      expect(slot.frames[0]).toBe(moved);
      expect(fx.vm.memslots.host.isAllocated(old)).toBe(false);
      invariants(fx, model);
      for (const vcpu of fx.vcpus) access(fx, model, vcpu, slot.baseGfn, Access.READ);
      access(fx, model, fx.vcpus[1]!, slot.baseGfn, Access.WRITE);
      access(fx, model, fx.vcpus[0]!, slot.baseGfn, Access.READ);
      invariants(fx, model);
    });
  });

  describe('memslot delete and move', () => {
    it('leaves nothing mapped into a deleted memslot, frees its frames, empties its rmap and keeps other slots intact', () => {
      const fx = fixture();
      const a = slotAt(fx, 0, 0, 8);
      const b = slotAt(fx, 1, 16, 4);
      const model = modelOf(fx, a, b);
      mapAll(fx, model, a.baseGfn, 8, GuestPerm.WRITE);
      mapAll(fx, model, b.baseGfn, 4, GuestPerm.WRITE);
      for (const s of [a, b]) {
        for (let page = 0; page < s.npages; page++) {
          access(fx, model, fx.vcpus[page & 1]!, s.baseGfn + page, page % 3 === 2 ? Access.READ : Access.WRITE);
          access(fx, model, fx.vcpus[(page + 1) & 1]!, s.baseGfn + page, Access.READ);
        }
      }
      const owned = Array.from(a.frames).filter((f) => f >= 0);
      expect(owned.length).toBeGreaterThan(0);
      const hostFrames = fx.vm.memslots.host.framesInUse;
      const guestFrames = fx.vm.memslots.framesInUse;
      fx.vm.memslots.delete(a.id);
      model.slots.delete(a.id);

      const snapshot = fx.guest.inspect();
      const inA = (gfn: number): boolean => gfn >= a.baseGfn && gfn < a.endGfn;
      expect(snapshot.leaves.filter((l) => l.slotId === a.id || inA(l.gfn))).toEqual([]);
      expect(snapshot.rmap.filter((r) => r.slotId === a.id)).toEqual([]);
      expect(owned.filter((f) => fx.vm.memslots.host.isAllocated(f))).toEqual([]);
      expect(fx.vm.memslots.framesInUse).toBe(guestFrames - owned.length);
      expect(fx.vm.memslots.host.framesInUse).toBeLessThanOrEqual(hostFrames - owned.length);
      invariants(fx, model);
      for (let page = 0; page < 8; page++) access(fx, model, fx.vcpus[page & 1]!, a.baseGfn + page, Access.READ);
      for (let page = 0; page < 4; page++) access(fx, model, fx.vcpus[page & 1]!, b.baseGfn + page, Access.READ);
      invariants(fx, model);
    });

    it('gives a deleted range created again fresh zeroed memory', () => {
      const { fx, slot, model } = mappedSlot(2, GuestPerm.WRITE);
      access(fx, model, fx.vcpus[0]!, slot.baseGfn, Access.WRITE);
      fx.vm.memslots.delete(slot.id);
      model.slots.delete(slot.id);
      const again = slotAt(fx, 0, 0, 2);
      model.addSlot(again.id, again.baseGfn, again.npages, again.flags);
      access(fx, model, fx.vcpus[0]!, slot.baseGfn, Access.READ);
      access(fx, model, fx.vcpus[1]!, slot.baseGfn, Access.READ);
      invariants(fx, model);
    });

    it('moves a memslot: the old range ends in NO_MEMORY, the new range shows the same contents, nothing maps the old gfns', () => {
      const { fx, slot, model } = mappedSlot(4, GuestPerm.WRITE);
      mapAll(fx, model, region.baseGfn + 32, 4, GuestPerm.WRITE);
      for (let page = 0; page < 4; page++) {
        access(fx, model, fx.vcpus[0]!, slot.baseGfn + page, Access.WRITE);
        access(fx, model, fx.vcpus[1]!, slot.baseGfn + page, Access.READ);
      }
      const frames = Array.from(slot.frames);
      const oldBase = slot.baseGfn;
      fx.vm.memslots.move(slot.id, (region.baseGfn + 32) * 4096);
      model.slots.get(slot.id)!.baseGfn = region.baseGfn + 32;
      expect(Array.from(slot.frames)).toEqual(frames);
      const snapshot = fx.guest.inspect();
      expect(snapshot.leaves.filter((l) => l.gfn < oldBase + 4 && l.gfn + l.pages > oldBase)).toEqual([]);
      expect(snapshot.rmap.filter((r) => r.gfn >= oldBase && r.gfn < oldBase + 4)).toEqual([]);
      invariants(fx, model);
      for (let page = 0; page < 4; page++) {
        access(fx, model, fx.vcpus[page & 1]!, oldBase + page, Access.READ);
        access(fx, model, fx.vcpus[page & 1]!, slot.baseGfn + page, Access.READ);
      }
      invariants(fx, model);
    });
  });

  describe('dirty logging', () => {
    if (caps.dirtyLogging) {
      it('sets the bit on a write, returns and clears it on get, and re-arms so the next write sets it again', () => {
        const { fx, slot, model } = mappedSlot(8, GuestPerm.WRITE, MemslotFlags.LOG_DIRTY_PAGES);
        access(fx, model, fx.vcpus[0]!, slot.baseGfn + 2, Access.WRITE);
        invariants(fx, model);
        expect(Array.from(fx.vm.memslots.getDirtyLog(slot.id))).toEqual([1 << 2]);
        expect(Array.from(fx.vm.memslots.getDirtyLog(slot.id))).toEqual([0]);
        invariants(fx, model);
        // The vCPU cached a writable translation before the harvest: it must not absorb this write.
        access(fx, model, fx.vcpus[0]!, slot.baseGfn + 2, Access.WRITE);
        access(fx, model, fx.vcpus[1]!, slot.baseGfn + 5, Access.WRITE);
        expect(Array.from(fx.vm.memslots.getDirtyLog(slot.id))).toEqual([(1 << 2) | (1 << 5)]);
        invariants(fx, model);
      });

      it('write-protects pages mapped writable before logging was turned on', () => {
        const { fx, slot, model } = mappedSlot(4, GuestPerm.WRITE);
        for (let page = 0; page < 2; page++) access(fx, model, fx.vcpus[page]!, slot.baseGfn + page, Access.WRITE);
        fx.vm.memslots.setFlags(slot.id, MemslotFlags.LOG_DIRTY_PAGES);
        model.slots.get(slot.id)!.flags = MemslotFlags.LOG_DIRTY_PAGES;
        invariants(fx, model);
        access(fx, model, fx.vcpus[1]!, slot.baseGfn + 1, Access.WRITE);
        expect(Array.from(fx.vm.memslots.getDirtyLog(slot.id))).toEqual([1 << 1]);
        fx.vm.memslots.setFlags(slot.id, 0);
        model.slots.get(slot.id)!.flags = 0;
        expectRefused(fx, 'dirty log after logging was turned off', 'MEMSLOT_BAD_FLAGS', () => fx.vm.memslots.getDirtyLog(slot.id));
        access(fx, model, fx.vcpus[0]!, slot.baseGfn + 1, Access.WRITE);
        invariants(fx, model);
      });
    } else {
      it('refuses dirty-logged memslots, as its capabilities declare', () => {
        const fx = fixture();
        expectRefused(fx, 'create a LOG_DIRTY_PAGES memslot', 'UNSUPPORTED_BY_BACKEND', () => slotAt(fx, 0, 0, 2, MemslotFlags.LOG_DIRTY_PAGES));
      });
    }
  });

  describe('aging', () => {
    if (caps.hostInvalidation) {
      it('reports and clears young, leaves testAge without effect, and a walked access makes the page young again', () => {
        const { fx, slot, model } = mappedSlot(2, GuestPerm.WRITE);
        access(fx, model, fx.vcpus[0]!, slot.baseGfn, Access.WRITE);
        const hfn = slot.frames[0]!;
        expect(fx.vm.testAgeHostRange(hfn, hfn + 1)).toBe(true);
        expect(fx.vm.testAgeHostRange(hfn, hfn + 1)).toBe(true);
        expect(fx.vm.ageHostRange(hfn, hfn + 1)).toBe(true);
        expect(fx.vm.testAgeHostRange(hfn, hfn + 1)).toBe(false);
        expect(fx.vm.ageHostRange(hfn, hfn + 1)).toBe(false);
        for (const vcpu of fx.vcpus) vcpu.tlb.flushAll();
        access(fx, model, fx.vcpus[1]!, slot.baseGfn, Access.READ);
        expect(fx.vm.testAgeHostRange(hfn, hfn + 1)).toBe(true);
        const frames = fx.vm.memslots.host.frameCount;
        expect(fx.vm.ageHostRange(frames - 8, frames)).toBe(false);
        invariants(fx, model);
      });
    } else {
      it('refuses aging, as its capabilities declare', () => {
        const fx = fixture();
        const slot = slotAt(fx, 0, 0, 2);
        fx.guest.map(slot.baseGfn, GuestPerm.WRITE);
        expect(translate(fx, fx.vcpus[0]!, slot.baseGfn, Access.WRITE)).not.toBe(TRANSLATE_FAULT);
        const hfn = slot.frames[0]!;
        expectRefused(fx, 'ageHostRange', 'UNSUPPORTED_BY_BACKEND', () => fx.vm.ageHostRange(hfn, hfn + 1));
        expectRefused(fx, 'testAgeHostRange', 'UNSUPPORTED_BY_BACKEND', () => fx.vm.testAgeHostRange(hfn, hfn + 1));
      });
    }
  });

  describe('zap all and teardown', () => {
    it('drops every mapping, rmap entry and TLB entry on zapAll; accesses then fault back in with the same contents', () => {
      const { fx, slot, model } = mappedSlot(4, GuestPerm.WRITE);
      for (let page = 0; page < 4; page++) access(fx, model, fx.vcpus[page & 1]!, slot.baseGfn + page, Access.WRITE);
      fx.vm.zapAll();
      const snapshot = fx.guest.inspect();
      expect(snapshot.leaves).toEqual([]);
      expect(snapshot.rmap).toEqual([]);
      for (const vcpu of fx.vcpus) expect(vcpu.tlb.countValid()).toBe(0);
      for (let page = 0; page < 4; page++) access(fx, model, fx.vcpus[(page + 1) & 1]!, slot.baseGfn + page, Access.READ);
      invariants(fx, model);
    });

    it('returns every host frame the VM used when it is destroyed', () => {
      const { fx, slot, model } = mappedSlot(8, GuestPerm.WRITE);
      for (let page = 0; page < 8; page++) access(fx, model, fx.vcpus[page & 1]!, slot.baseGfn + page, page & 2 ? Access.READ : Access.WRITE);
      expect(fx.hypervisor.memory.framesInUse).toBeGreaterThan(fx.baselineFrames);
      fx.hypervisor.destroyVm(fx.vm);
      expect(fx.hypervisor.memory.framesInUse).toBe(fx.baselineFrames);
    });

    it('keeps two VMs of the backend apart: memory, mappings and invalidations', () => {
      const fx = fixture();
      const vmB = fx.hypervisor.createVm({
        backend: harness.backend,
        tlbEntries: 64,
        ...(variant.backendOptions !== undefined ? { backendOptions: variant.backendOptions } : {}),
        ...(harness.guestPhysBits !== undefined ? { guestPhysBits: harness.guestPhysBits } : {}),
      });
      const guestB = harness.attach(vmB);
      const vcpuB = vmB.createVcpu();
      guestB.initVcpu(vcpuB);
      const slotA = slotAt(fx, 0, 0, 2);
      const slotB = vmB.memslots.create({ id: region.slotIds[0]!, guestPhysAddr: region.baseGfn * 4096, size: 2 * 4096 });
      fx.guest.map(slotA.baseGfn, GuestPerm.WRITE);
      guestB.map(slotB.baseGfn, GuestPerm.WRITE);
      const hpaA = translate(fx, fx.vcpus[0]!, slotA.baseGfn, Access.WRITE);
      const hpaB = vcpuB.translate(guestB.vpnOf(slotB.baseGfn) * 4096 + PROBE_OFFSET, Access.WRITE);
      expect(hpaA).not.toBe(TRANSLATE_FAULT);
      expect(hpaB).not.toBe(TRANSLATE_FAULT);
      expect(Math.floor(hpaA / 4096)).not.toBe(Math.floor(hpaB / 4096));
      const host = fx.hypervisor.memory;
      host.write32(hpaA, 0xaaaa_aaaa, true);
      host.write32(hpaB, 0xbbbb_bbbb, true);
      const snapshotB = JSON.stringify(guestB.inspect());
      const tlbB = vcpuB.tlb.countValid();
      fx.vm.invalidateHostRange(Math.floor(hpaA / 4096), Math.floor(hpaA / 4096) + 1);
      fx.vm.zapAll();
      expect(JSON.stringify(guestB.inspect())).toBe(snapshotB);
      expect(vcpuB.tlb.countValid()).toBe(tlbB);
      expect(host.read32(vcpuB.translate(guestB.vpnOf(slotB.baseGfn) * 4096 + PROBE_OFFSET, Access.READ), true)).toBe(0xbbbb_bbbb);
      expect(host.read32(translate(fx, fx.vcpus[0]!, slotA.baseGfn, Access.READ), true)).toBe(0xaaaa_aaaa);
    });
  });

  describe('random operation sequences', () => {
    it("keep the model's predictions and every invariant after each step", () => {
      fc.assert(
        fc.property(mmuOperationsArbitrary(harness, options.maxOperations ?? 50), (ops) => runMmuOperations(harness, variant, ops)),
        { numRuns: options.numRuns ?? 100 },
      );
    });
  });

  describe('hostile guest', () => {
    it("gets the architected answer to each of the harness's hostile actions, and nothing changes", () => {
      const count = fixture().guest.hostileActions().length;
      expect(count).toBeGreaterThan(0);
      const violations: string[] = [];
      for (let i = 0; i < count; i++) {
        // Each action runs on its own VM, taken from that VM's guest (actions close over their guest).
        const fx = fixture();
        const action = fx.guest.hostileActions()[i]!;
        const vcpu = fx.vcpus[0]!;
        action.prepare?.(vcpu);
        const before = captureVmState(fx);
        let answer: GuestAnswer;
        try {
          answer = action.perform(vcpu);
        } catch (error) {
          violations.push(`${action.name}: threw ${String(error)}`);
          continue;
        }
        if (JSON.stringify(answer) !== JSON.stringify(action.expected)) {
          violations.push(`${action.name}: expected ${describeAnswer(action.expected)}, got ${describeAnswer(answer)}`);
        }
        if (captureVmState(fx) !== before) violations.push(`${action.name}: changed VM state`);
        if (fx.vm.hypercalls.handlerErrors !== 0) violations.push(`${action.name}: a hypercall handler threw ${String(fx.vm.hypercalls.lastHandlerError)}`);
      }
      assertNoViolations('hostile guest actions', violations);
    });

    it("gets the ABI's unknown-function status for a hypercall number no handler serves, and nothing changes", () => {
      const fx = fixture();
      const served = fx.vm.hypercalls.list().map((h) => h.number);
      const number = served.length === 0 ? 0 : Math.max(...served) + 1;
      const before = captureVmState(fx);
      if (harness.nestedGuest === true) {
        // A nested guest's hypercall goes to its own hypervisor (which then runs in its place): no status of this VM's ABI, no mapping changed.
        expect(Number.isInteger(fx.vcpus[0]!.hypercall(number))).toBe(true);
        expect(normalizeSnapshot(fx.guest.inspect())).toEqual(JSON.parse(before).mmu);
        return;
      }
      expect(fx.vcpus[0]!.hypercall(number)).toBe(fx.vm.hypercalls.abi.unknownFunction);
      expect(fx.vcpus[0]!.hypercall(0x7fff_ffff)).toBe(fx.vm.hypercalls.abi.unknownFunction);
      expect(captureVmState(fx)).toBe(before);
    });

    it('never throws, never fails inside a handler and keeps every invariant under hypercalls with random arguments', () => {
      const half = fc.oneof(fc.constantFrom(0, 1, 0xfff, 0x1000, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff), fc.integer({ min: 0, max: 0xffff_ffff }));
      const call = fc.record({
        number: fc.oneof(
          fc.constantFrom(
            ...fixture()
              .vm.hypercalls.list()
              .map((h) => h.number),
            0xffff,
          ),
          fc.integer({ min: 0, max: 0xff }),
        ),
        hi: fc.array(half, { minLength: 9, maxLength: 9 }),
        lo: fc.array(half, { minLength: 9, maxLength: 9 }),
      });
      fc.assert(
        fc.property(fc.array(call, { minLength: 1, maxLength: 8 }), (calls) => {
          const fx = fixture();
          const slot = slotAt(fx, 0, 0, 4);
          fx.guest.map(slot.baseGfn, GuestPerm.WRITE);
          translate(fx, fx.vcpus[0]!, slot.baseGfn, Access.WRITE);
          for (const c of calls) {
            const regs = fx.vcpus[0]!.hcallRegs;
            for (let i = 0; i < 9; i++) regs.setArgHalves(i, c.hi[i]!, c.lo[i]!);
            const status = fx.vcpus[0]!.hypercall(c.number);
            expect(Number.isInteger(status)).toBe(true);
            expect(fx.vm.hypercalls.handlerErrors, String(fx.vm.hypercalls.lastHandlerError)).toBe(0);
          }
          assertNoViolations(
            'invariants after random hypercalls',
            checkMmuInvariants(fx.vm, fx.guest.inspect(), { dirtyLogging: caps.dirtyLogging, rmapModel }),
          );
        }),
        { numRuns: options.hypercallRuns ?? 100 },
      );
    });
  });

  describe('host API misuse', () => {
    const scene = (fx: ConformanceFixture): MisuseScene => {
      const a = slotAt(fx, 0, 0, 8);
      const b = slotAt(fx, 1, 16, 8);
      for (let page = 0; page < 4; page++) {
        fx.guest.map(a.baseGfn + page, GuestPerm.WRITE);
        translate(fx, fx.vcpus[page & 1]!, a.baseGfn + page, page & 1 ? Access.READ : Access.WRITE);
      }
      return { a, b, freeId: region.slotIds[2]! };
    };
    for (const misuse of HOST_MISUSE_CASES) {
      it(`throws ${misuse.code} and changes nothing: ${misuse.name}`, () => {
        const fx = fixture();
        const s = scene(fx);
        expectRefused(fx, misuse.name, misuse.code, () => misuse.run(fx, s));
        invariants(fx);
      });
    }

    it('refuses every use of a destroyed VM with VM_DESTROYED', () => {
      const fx = fixture();
      scene(fx);
      fx.hypervisor.destroyVm(fx.vm);
      for (const use of [() => fx.vm.invalidateHostRange(0, 16), () => fx.vm.createVcpu(), () => fx.vm.zapAll()]) {
        let code = 'no error';
        try {
          use();
        } catch (error) {
          code = error instanceof HvmmuError ? error.code : String(error);
        }
        expect(code).toBe('VM_DESTROYED');
      }
    });
  });
}
