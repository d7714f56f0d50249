import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Access, MemslotFlags, type Memslot } from '@hvmmu/core';
import {
  ConformanceViolation,
  GuestPerm,
  checkDirtyLogArmed,
  checkHostRangeUnmapped,
  checkMappingsMatchMemslots,
  checkRmapConsistency,
  RmapModel,
  checkTlbCoherence,
  createConformanceFixture,
  createIdentityMapHarness,
  mmuOperationsArbitrary,
  runMmuOperations,
  type ConformanceFixture,
  type ConformanceHarness,
  type MmuSnapshot,
} from '@hvmmu/conformance';
import {
  IdentityInvalidRmapOps,
  IdentityNormalRmapOps,
  IdentitySlotRmap,
  createIdentityMapBackend,
  type IdentityMapOptions,
  type IdentityTypes,
} from '@hvmmu/reference';

/*
 * The suite must be able to fail. Each broken rmap table below is one bug a
 * real backend could have; the suite's checkers must name it in a hand-built
 * scenario, and the random-sequence property must find it on its own.
 */

/** Forgets the rmap entry of every odd gfn: host events cannot find those mappings. */
class ForgetfulRmapOps extends IdentityNormalRmapOps {
  override add(slot: Memslot<IdentityTypes>, gfn: number, level: number, entry: number): void {
    if (gfn % 2 === 1) return;
    super.add(slot, gfn, level, entry);
  }
}

/** Drops the mapping on unmap but shoots no TLB down (host invalidation leaves stale translations). */
class NoShootdownRmapOps extends IdentityNormalRmapOps {
  override unmap(slot: Memslot<IdentityTypes>, gfn: number, _level: number): boolean {
    const rmap = IdentitySlotRmap.of(slot);
    const entry = rmap.entryAt(gfn - slot.baseGfn);
    if (entry < 0) return false;
    this.context.table.clear(entry);
    rmap.clear(gfn - slot.baseGfn);
    return true;
  }
}

/** An invalid table whose unmap does nothing: a deleted slot stays mapped. */
class IgnorantInvalidRmapOps extends IdentityInvalidRmapOps {
  override unmap(_slot: Memslot<IdentityTypes>, _gfn: number, _level: number): boolean {
    return false;
  }
}

/** Never write-protects: dirty logging is not re-armed after a harvest. */
class LazyDirtyRmapOps extends IdentityNormalRmapOps {
  override writeProtect(_slot: Memslot<IdentityTypes>, _gfn: number, _level: number): boolean {
    return false;
  }
}

const broken = (id: string, tables: IdentityMapOptions['rmapTables']): ConformanceHarness =>
  createIdentityMapHarness(createIdentityMapBackend({ id, ...(tables !== undefined ? { rmapTables: tables } : {}) }));

const forgetful = broken('broken-forgetful-rmap', { normal: ForgetfulRmapOps });
const noShootdown = broken('broken-no-shootdown', { normal: NoShootdownRmapOps });
const ignorant = broken('broken-invalid-unmap', { invalid: IgnorantInvalidRmapOps });
const lazyDirty = broken('broken-dirty-rearm', { normal: LazyDirtyRmapOps });

/** A fixture with one 4-page slot at the start of the data region, every page mapped writable in the guest. */
function scene(harness: ConformanceHarness, flags = 0): { fx: ConformanceFixture; slot: Memslot; va: (gfn: number) => number } {
  const fx = createConformanceFixture(harness, harness.variants.find((v) => v.name === 'invalid-rmap')!);
  const slot = fx.vm.memslots.create({ id: harness.dataRegion.slotIds[0]!, guestPhysAddr: harness.dataRegion.baseGfn * 4096, size: 4 * 4096, flags });
  for (let gfn = slot.baseGfn; gfn < slot.endGfn; gfn++) fx.guest.map(gfn, GuestPerm.WRITE);
  return { fx, slot, va: (gfn) => fx.guest.vpnOf(gfn) * 4096 };
}

function guestViewOf(fx: ConformanceFixture, slot: Memslot<IdentityTypes>): Map<number, { gfn: number; perm: number }> {
  const view = new Map<number, { gfn: number; perm: number }>();
  for (let gfn = slot.baseGfn; gfn < slot.endGfn; gfn++) view.set(fx.guest.vpnOf(gfn), { gfn, perm: GuestPerm.WRITE });
  return view;
}

/** Run the random-sequence property against a broken backend and return how it failed. */
function randomSearch(harness: ConformanceHarness): string {
  const variant = harness.variants.find((v) => v.name === 'invalid-rmap')!;
  const details = fc.check(
    fc.property(mmuOperationsArbitrary(harness, 50), (ops) => runMmuOperations(harness, variant, ops)),
    { numRuns: 1000 },
  );
  expect(details.failed).toBe(true);
  expect(details.errorInstance).toBeInstanceOf(ConformanceViolation);
  return (details.errorInstance as ConformanceViolation).message;
}

describe('the suite catches a broken rmap that forgets entries', () => {
  it('checkRmapConsistency names the unrecorded leaf; after a delete, checkMappingsMatchMemslots names the leftover mapping and the freed frame', () => {
    const { fx, slot, va } = scene(forgetful);
    const odd = slot.baseGfn % 2 === 1 ? slot.baseGfn : slot.baseGfn + 1;
    expect(fx.vcpus[0]!.translate(va(odd), Access.WRITE)).toBeGreaterThanOrEqual(0);
    const snapshot = fx.guest.inspect();
    expect(checkRmapConsistency(snapshot)).toEqual([expect.stringContaining('has no rmap entry')]);
    fx.vm.memslots.delete(slot.id);
    const after = checkMappingsMatchMemslots(fx.vm, fx.guest.inspect());
    expect(after).toContainEqual(expect.stringContaining(`maps through memslot ${slot.id}, which no longer exists`));
  });

  it('is found by random operation sequences', () => {
    expect(randomSearch(forgetful)).toMatch(/no rmap entry|no longer exists|free/);
  });
});

describe('the suite catches an invalidation that forgets the TLB shootdown', () => {
  it('checkHostRangeUnmapped and checkTlbCoherence name the stale TLB entry', () => {
    const { fx, slot, va } = scene(noShootdown);
    expect(fx.vcpus[0]!.translate(va(slot.baseGfn), Access.WRITE)).toBeGreaterThanOrEqual(0);
    const hfn = slot.frames[0]!;
    expect(fx.vm.invalidateHostRange(hfn, hfn + 1)).toBe(1);
    const snapshot = fx.guest.inspect();
    expect(snapshot.leaves).toEqual([]);
    expect(checkHostRangeUnmapped(fx.vm, snapshot, hfn, hfn + 1)).toEqual([expect.stringContaining('TLB still caches')]);
    expect(checkTlbCoherence(fx.vm, snapshot, guestViewOf(fx, slot as Memslot<IdentityTypes>))).toEqual([expect.stringContaining('missing TLB shootdown')]);
  });

  it('is found by random operation sequences', () => {
    expect(randomSearch(noShootdown)).toMatch(/TLB/);
  });
});

describe('the suite catches a memslot delete or move that leaves mappings behind', () => {
  it('checkMappingsMatchMemslots names the mapping into the deleted slot and its freed frame', () => {
    const { fx, slot, va } = scene(ignorant);
    expect(fx.vcpus[0]!.translate(va(slot.baseGfn), Access.WRITE)).toBeGreaterThanOrEqual(0);
    fx.vm.memslots.delete(slot.id);
    const violations = checkMappingsMatchMemslots(fx.vm, fx.guest.inspect());
    expect(violations).toEqual([expect.stringContaining('which no longer exists')]);
  });

  it('is found by random operation sequences', () => {
    expect(randomSearch(ignorant)).toMatch(/no longer exists|outside memslot|no rmap entry/);
  });
});

describe('the suite catches dirty logging that is not re-armed', () => {
  it('checkDirtyLogArmed names the writable, clean page after a harvest', () => {
    const { fx, slot, va } = scene(lazyDirty, MemslotFlags.LOG_DIRTY_PAGES);
    expect(fx.vcpus[0]!.translate(va(slot.baseGfn), Access.WRITE)).toBeGreaterThanOrEqual(0);
    expect(checkDirtyLogArmed(fx.vm, fx.guest.inspect())).toEqual([]);
    expect(Array.from(fx.vm.memslots.getDirtyLog(slot.id))).toEqual([1]);
    expect(checkDirtyLogArmed(fx.vm, fx.guest.inspect())).toEqual([expect.stringContaining('would go unlogged')]);
  });

  it('is found by random operation sequences', () => {
    expect(randomSearch(lazyDirty)).toMatch(/unlogged|dirty bit is clear/);
  });
});

describe('the invariant checkers on hand-built snapshots', () => {
  const leaf = { entry: 7, slotId: 1, gfn: 0x100, level: 1, pages: 1, hfn: 0x20, writable: true };
  const snap = (s: Partial<MmuSnapshot>): MmuSnapshot => ({ leaves: [], rmap: [], registers: [], ...s });

  it('accept one leaf with its one rmap entry', () => {
    expect(checkRmapConsistency(snap({ leaves: [leaf], rmap: [{ slotId: 1, gfn: 0x100, level: 1, entry: 7 }] }))).toEqual([]);
  });

  it('report a duplicate rmap entry, a dangling one and one filed under the wrong gfn', () => {
    expect(
      checkRmapConsistency(
        snap({
          leaves: [leaf],
          rmap: [
            { slotId: 1, gfn: 0x100, level: 1, entry: 7 },
            { slotId: 1, gfn: 0x100, level: 1, entry: 7 },
          ],
        }),
      ),
    ).toEqual([expect.stringContaining('recorded twice')]);
    expect(checkRmapConsistency(snap({ rmap: [{ slotId: 1, gfn: 0x100, level: 1, entry: 9 }] }))).toEqual([expect.stringContaining('maps nothing')]);
    expect(checkRmapConsistency(snap({ leaves: [leaf], rmap: [{ slotId: 1, gfn: 0x101, level: 1, entry: 7 }] }))).toEqual([
      expect.stringContaining('but that leaf maps slot 1 gfn 0x100'),
    ]);
  });

  it('report two leaves sharing an entry handle', () => {
    const rmap = [{ slotId: 1, gfn: 0x100, level: 1, entry: 7 }];
    expect(checkRmapConsistency(snap({ leaves: [leaf, { ...leaf, gfn: 0x101 }], rmap }))).toContainEqual(expect.stringContaining('share entry handle 7'));
  });

  describe('under the names-every-leaf model (a nested rmap: lists dropped whole, never single entries)', () => {
    const nested = RmapModel.NAMES_EVERY_LEAF;
    // A nested rmap entry names an L2 mapping, e.g. L1 LPID 3 and L2 frame 0x55: (3 << 40) + 0x55.
    const l2Entry = 3 * 2 ** 40 + 0x55;
    const l2Leaf = { ...leaf, entry: l2Entry };
    const head = { slotId: 1, gfn: 0x100, level: 1 };

    it('allow stale entries that name no live mapping, which one-per-leaf refuses', () => {
      const rmap = [
        { ...head, entry: l2Entry },
        { ...head, entry: 3 * 2 ** 40 + 0x66 },
        { ...head, gfn: 0x101, entry: 5 * 2 ** 40 },
      ];
      expect(checkRmapConsistency(snap({ leaves: [l2Leaf], rmap }), nested)).toEqual([]);
      expect(checkRmapConsistency(snap({ leaves: [l2Leaf], rmap }))).toContainEqual(expect.stringContaining('maps nothing'));
    });

    it('refuse the same entry twice under one head (the dedup that bounds the rmap)', () => {
      const rmap = [
        { ...head, entry: l2Entry },
        { ...head, entry: l2Entry },
      ];
      expect(checkRmapConsistency(snap({ leaves: [l2Leaf], rmap }), nested)).toEqual([expect.stringContaining('twice')]);
    });

    it('refuse a live mapping that its own head does not name, even if another head does', () => {
      expect(checkRmapConsistency(snap({ leaves: [l2Leaf], rmap: [{ ...head, gfn: 0x101, entry: l2Entry }] }), nested)).toEqual([
        expect.stringContaining('named by no rmap entry'),
      ]);
      expect(checkRmapConsistency(snap({ leaves: [l2Leaf] }), nested)).toEqual([expect.stringContaining('named by no rmap entry')]);
    });
  });
});
