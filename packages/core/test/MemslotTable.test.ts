import { describe, expect, it } from 'vitest';
import { FRAME_NONE, FRAME_ZERO, MEMSLOT_MAX_ID, MEMSLOT_VALID_FLAGS, MemslotFlags, type HvmmuErrorCode } from '@hvmmu/core';
import { expectHvmmuError, firstDifference } from './fixtures/assertions.js';
import { makeTable, tableState, type TableFixture } from './fixtures/memslotTable.js';

const PAGE = 4096;
const LOG = MemslotFlags.LOG_DIRTY_PAGES;
const RO = MemslotFlags.READONLY;

/** gfns around the slots the tests create, for before/after lookup comparisons. */
const PROBES = [0, 0xf, 0x10, 0x1f, 0x20, 0x2f, 0x30, 0x3f, 0x40, 0x100, 0x1000];

function expectUnchanged(t: TableFixture, fn: () => unknown, code: HvmmuErrorCode): void {
  const before = tableState(t, PROBES);
  expectHvmmuError(fn, code);
  expect(tableState(t, PROBES)).toEqual(before);
}

describe('memslot flags', () => {
  it('use the KVM uapi bit values', () => {
    expect(MemslotFlags.LOG_DIRTY_PAGES).toBe(1); // KVM_MEM_LOG_DIRTY_PAGES
    expect(MemslotFlags.READONLY).toBe(2); // KVM_MEM_READONLY
    expect(MEMSLOT_VALID_FLAGS).toBe(3);
  });
});

describe('MemslotTable.create', () => {
  it('creates a slot on the normal rmap table, visible to lookups over exactly its range', () => {
    const t = makeTable();
    const g0 = t.table.generation;
    const slot = t.table.create({ id: 3, guestPhysAddr: 0x10000, size: 0x10000, flags: LOG });
    expect(slot.id).toBe(3);
    expect(slot.baseGfn).toBe(0x10);
    expect(slot.npages).toBe(0x10);
    expect(slot.endGfn).toBe(0x20);
    expect(slot.flags).toBe(LOG);
    expect(slot.rmapOps).toBe(t.normal);
    expect(slot.invalid).toBe(false);
    expect(slot.dirtyBitmap).toEqual(new Uint32Array(1));
    expect([...slot.frames]).toEqual(Array(16).fill(FRAME_NONE));
    expect(t.table.generation).toBeGreaterThan(g0);
    expect(t.table.count).toBe(1);
    expect(t.table.get(3)).toBe(slot);
    expect(t.table.has(3)).toBe(true);
    expect(t.table.findByGfn(0xf)).toBeUndefined();
    expect(t.table.findByGfn(0x10)).toBe(slot);
    expect(t.table.findByGfn(0x1f)).toBe(slot);
    expect(t.table.findByGfn(0x20)).toBeUndefined();
    // No memory is allocated until the guest touches a page.
    expect(t.host.framesInUse).toBe(0);
    expect(t.table.framesInUse).toBe(0);
  });

  it('accepts the extreme ids and a slot that ends exactly at the top of the address space', () => {
    const t = makeTable({ guestPhysBits: 32 });
    t.table.create({ id: 0, guestPhysAddr: 0, size: PAGE });
    t.table.create({ id: MEMSLOT_MAX_ID, guestPhysAddr: 2 ** 32 - PAGE, size: PAGE });
    expect(MEMSLOT_MAX_ID).toBe(32767);
    expect(t.table.findByGfn(2 ** 20 - 1)?.id).toBe(MEMSLOT_MAX_ID);
    expect(t.table.count).toBe(2);
  });

  it('allows ranges that touch but do not overlap, on both sides', () => {
    const t = makeTable();
    t.table.create({ id: 1, guestPhysAddr: 0x10000, size: 0x10000 });
    t.table.create({ id: 2, guestPhysAddr: 0x20000, size: 0x10000 }); // starts at 1's end
    t.table.create({ id: 0, guestPhysAddr: 0x0, size: 0x10000 }); // ends at 1's start
    expect(t.table.slots().map((s) => s.id)).toEqual([0, 1, 2]);
    expect(t.table.findByGfn(0xf)?.id).toBe(0);
    expect(t.table.findByGfn(0x10)?.id).toBe(1);
    expect(t.table.findByGfn(0x1f)?.id).toBe(1);
    expect(t.table.findByGfn(0x20)?.id).toBe(2);
  });

  describe('bad requests throw and change nothing', () => {
    function withSlot(): TableFixture {
      const t = makeTable({ guestPhysBits: 32 });
      t.table.create({ id: 1, guestPhysAddr: 0x10000, size: 0x10000 });
      t.table.write32(0x10000, 0xcafe, true); // one populated page, so frame accounting is visible
      t.listener.clear();
      return t;
    }
    const cases: Array<[string, { id: number; guestPhysAddr: number; size: number; flags?: number }, HvmmuErrorCode]> = [
      ['negative id', { id: -1, guestPhysAddr: 0x40000, size: PAGE }, 'MEMSLOT_BAD_ID'],
      ['id above the maximum', { id: MEMSLOT_MAX_ID + 1, guestPhysAddr: 0x40000, size: PAGE }, 'MEMSLOT_BAD_ID'],
      ['fractional id', { id: 1.5, guestPhysAddr: 0x40000, size: PAGE }, 'MEMSLOT_BAD_ID'],
      ['NaN id', { id: Number.NaN, guestPhysAddr: 0x40000, size: PAGE }, 'MEMSLOT_BAD_ID'],
      ['duplicate id', { id: 1, guestPhysAddr: 0x40000, size: PAGE }, 'MEMSLOT_EXISTS'],
      ['unknown flag bit', { id: 2, guestPhysAddr: 0x40000, size: PAGE, flags: 4 }, 'MEMSLOT_BAD_FLAGS'],
      ['negative flags', { id: 2, guestPhysAddr: 0x40000, size: PAGE, flags: -1 }, 'MEMSLOT_BAD_FLAGS'],
      ['fractional flags', { id: 2, guestPhysAddr: 0x40000, size: PAGE, flags: 0.5 }, 'MEMSLOT_BAD_FLAGS'],
      ['flag bit 31', { id: 2, guestPhysAddr: 0x40000, size: PAGE, flags: 0x8000_0000 }, 'MEMSLOT_BAD_FLAGS'],
      ['unaligned base', { id: 2, guestPhysAddr: 0x40001, size: PAGE }, 'MEMSLOT_UNALIGNED'],
      ['base aligned to 2 KiB only', { id: 2, guestPhysAddr: 0x40800, size: PAGE }, 'MEMSLOT_UNALIGNED'],
      ['unaligned size', { id: 2, guestPhysAddr: 0x40000, size: 0x1800 }, 'MEMSLOT_UNALIGNED'],
      ['fractional base', { id: 2, guestPhysAddr: 0.5, size: PAGE }, 'MEMSLOT_UNALIGNED'],
      ['zero size', { id: 2, guestPhysAddr: 0x40000, size: 0 }, 'MEMSLOT_ZERO_SIZE'],
      ['negative size', { id: 2, guestPhysAddr: 0x40000, size: -PAGE }, 'MEMSLOT_OUT_OF_RANGE'],
      ['negative base', { id: 2, guestPhysAddr: -PAGE, size: PAGE }, 'MEMSLOT_OUT_OF_RANGE'],
      ['NaN base', { id: 2, guestPhysAddr: Number.NaN, size: PAGE }, 'MEMSLOT_OUT_OF_RANGE'],
      ['NaN size', { id: 2, guestPhysAddr: 0x40000, size: Number.NaN }, 'MEMSLOT_OUT_OF_RANGE'],
      ['base beyond 2^32', { id: 2, guestPhysAddr: 2 ** 32, size: PAGE }, 'MEMSLOT_OUT_OF_RANGE'],
      ['range crossing 2^32', { id: 2, guestPhysAddr: 2 ** 32 - PAGE, size: 2 * PAGE }, 'MEMSLOT_OUT_OF_RANGE'],
      ['overlap at the start', { id: 2, guestPhysAddr: 0xf000, size: 0x2000 }, 'MEMSLOT_OVERLAP'],
      ['overlap at the end', { id: 2, guestPhysAddr: 0x1f000, size: 0x2000 }, 'MEMSLOT_OVERLAP'],
      ['contained in a slot', { id: 2, guestPhysAddr: 0x14000, size: PAGE }, 'MEMSLOT_OVERLAP'],
      ['containing a slot', { id: 2, guestPhysAddr: 0x0, size: 0x40000 }, 'MEMSLOT_OVERLAP'],
      ['identical to a slot', { id: 2, guestPhysAddr: 0x10000, size: 0x10000 }, 'MEMSLOT_OVERLAP'],
    ];
    it.each(cases)('%s', (_name, request, code) => {
      const t = withSlot();
      expectUnchanged(t, () => t.table.create(request), code);
      expect(t.listener.events).toEqual([]);
      expect(t.table.has(2)).toBe(false);
    });

    it('a slot of more than KVM_MEM_MAX_NR_PAGES (2^31 - 1) pages is MEMSLOT_OUT_OF_RANGE', () => {
      const t = makeTable({ guestPhysBits: 52 });
      expectUnchanged(t, () => t.table.create({ id: 0, guestPhysAddr: 0, size: 2 ** 31 * PAGE }), 'MEMSLOT_OUT_OF_RANGE');
    });

    it('the overlap error names the slot in the way', () => {
      const t = withSlot();
      const error = expectHvmmuError(() => t.table.create({ id: 7, guestPhysAddr: 0x1f000, size: 0x2000 }), 'MEMSLOT_OVERLAP');
      expect(error.details).toEqual({ id: 1 });
    });
  });

  it('calls prepareMemslot before the slot is visible and commitMemslot after (KVM order)', () => {
    const t = makeTable();
    const slot = t.table.create({ id: 4, guestPhysAddr: 0x40000, size: 0x4000, flags: LOG });
    expect(t.listener.sequence()).toEqual(['prepare:create', 'commit:create']);
    const [prepare, commit] = t.listener.events;
    expect(prepare).toMatchObject({ slot: 4, rmap: 'normal', visible: false, hasId: false, generation: 0 });
    expect(commit).toMatchObject({ slot: 4, rmap: 'normal', visible: true, hasId: true, a: 0 });
    expect(commit!.generation).toBe(t.table.generation);
    expect(commit!.generation).toBeGreaterThan(prepare!.generation);
    expect(slot.invalid).toBe(false);
  });
});

describe('MemslotTable.delete', () => {
  it('hides the slot, frees its frames, frees its id and moves the generation', () => {
    const t = makeTable();
    const slot = t.table.create({ id: 1, guestPhysAddr: 0x10000, size: 0x4000 });
    const hostBefore = t.host.framesInUse;
    for (let i = 0; i < 3; i++) t.table.write32(0x10000 + i * PAGE, 0x1000 + i, true);
    expect(t.table.framesInUse).toBe(3);
    expect(t.host.framesInUse).toBe(hostBefore + 3);
    const g = t.table.generation;
    t.table.delete(1);
    expect(t.table.generation).toBeGreaterThan(g);
    expect(t.table.count).toBe(0);
    expect(t.table.has(1)).toBe(false);
    expect(t.table.findByGfn(0x10)).toBeUndefined();
    expect(t.table.framesInUse).toBe(0);
    expect(t.host.framesInUse).toBe(hostBefore);
    expect([...slot.frames]).toEqual(Array(4).fill(FRAME_NONE));
    expectHvmmuError(() => t.table.get(1), 'MEMSLOT_UNKNOWN');
    // The id and the range are free again, and the new slot starts empty.
    t.table.create({ id: 1, guestPhysAddr: 0x10000, size: 0x4000 });
    expect(t.table.read32(0x10000, true)).toBe(0);
  });

  it('after a lookup hit on the slot, the last-hit cache does not return the deleted slot', () => {
    const t = makeTable();
    t.table.create({ id: 1, guestPhysAddr: 0x10000, size: 0x4000 });
    expect(t.table.findByGfn(0x11)?.id).toBe(1);
    t.table.delete(1);
    expect(t.table.findByGfn(0x11)).toBeUndefined();
    expect(t.table.resolve(0x11000, false)).toBe(-1);
  });

  it('follows KVM order: invalid rmap table and hidden → flushMemslot → frames freed → commitMemslot', () => {
    const t = makeTable();
    const slot = t.table.create({ id: 1, guestPhysAddr: 0x10000, size: 0x4000, flags: LOG });
    t.table.write32(0x10000, 1, true);
    t.table.write32(0x12000, 2, true);
    t.listener.clear();
    const g = t.table.generation;
    t.table.delete(1);
    expect(t.listener.sequence()).toEqual(['flush:delete', 'commit:delete']);
    const [flush, commit] = t.listener.events;
    expect(flush).toMatchObject({ rmap: 'invalid', invalid: true, visible: false, hasId: false, framesAllocated: 2 });
    expect(flush!.generation).toBeGreaterThan(g);
    expect(commit).toMatchObject({ rmap: 'invalid', visible: false, hasId: false, framesAllocated: 0, a: LOG });
    expect(commit!.generation).toBeGreaterThan(flush!.generation);
    expect(slot.rmapOps).toBe(t.invalid);
  });

  it.each([[-1], [2], [MEMSLOT_MAX_ID + 1], [Number.NaN]])('unknown id %s is MEMSLOT_UNKNOWN and changes nothing', (id) => {
    const t = makeTable();
    t.table.create({ id: 1, guestPhysAddr: 0x10000, size: 0x4000 });
    expectUnchanged(t, () => t.table.delete(id), 'MEMSLOT_UNKNOWN');
  });

  it('deleting twice is MEMSLOT_UNKNOWN the second time', () => {
    const t = makeTable();
    t.table.create({ id: 1, guestPhysAddr: 0x10000, size: 0x4000 });
    t.table.delete(1);
    expectUnchanged(t, () => t.table.delete(1), 'MEMSLOT_UNKNOWN');
  });
});

describe('MemslotTable.move', () => {
  it('moves the slot, keeps its contents and frames, and lookups follow it', () => {
    const t = makeTable();
    const slot = t.table.create({ id: 1, guestPhysAddr: 0x10000, size: 0x4000 });
    t.table.write32(0x10000, 0x11223344, false);
    t.table.write32(0x13ffc, 0xaabbccdd, true);
    const frames = [...slot.frames];
    const hostFrames = t.host.framesInUse;
    expect(t.table.findByGfn(0x10)).toBe(slot); // warm the last-hit cache on the old place
    const g = t.table.generation;
    t.table.move(1, 0x80000);
    expect(t.table.generation).toBeGreaterThan(g);
    expect(slot.baseGfn).toBe(0x80);
    expect(slot.rmapOps).toBe(t.normal);
    expect(slot.invalid).toBe(false);
    expect(t.table.findByGfn(0x10)).toBeUndefined();
    expect(t.table.findByGfn(0x80)).toBe(slot);
    expect(t.table.findByGfn(0x83)).toBe(slot);
    expect(t.table.read32(0x80000, false)).toBe(0x11223344);
    expect(t.table.read32(0x83ffc, true)).toBe(0xaabbccdd);
    expect([...slot.frames]).toEqual(frames);
    expect(t.host.framesInUse).toBe(hostFrames);
    expect(t.table.gfnOfHostFrame(frames[0]!)).toBe(0x80);
  });

  it('may move onto part of its own old range', () => {
    const t = makeTable();
    t.table.create({ id: 1, guestPhysAddr: 0x10000, size: 0x4000 });
    t.table.write8(0x13000, 0x5a);
    t.table.move(1, 0x12000);
    expect(t.table.findByGfn(0x10)).toBeUndefined();
    expect(t.table.findByGfn(0x15)?.id).toBe(1);
    expect(t.table.read8(0x15000)).toBe(0x5a);
  });

  it('follows KVM order: invalid and hidden → flushMemslot → new base → prepareMemslot → visible → commitMemslot', () => {
    const t = makeTable();
    const slot = t.table.create({ id: 1, guestPhysAddr: 0x10000, size: 0x4000, flags: LOG });
    t.listener.clear();
    t.table.move(1, 0x40000);
    expect(t.listener.sequence()).toEqual(['flush:move', 'prepare:move', 'commit:move']);
    const [flush, prepare, commit] = t.listener.events;
    expect(flush).toMatchObject({ rmap: 'invalid', invalid: true, baseGfn: 0x10, visible: false, hasId: false });
    expect(prepare).toMatchObject({ rmap: 'normal', baseGfn: 0x40, visible: false });
    expect(commit).toMatchObject({ rmap: 'normal', invalid: false, baseGfn: 0x40, visible: true, hasId: true, a: LOG });
    expect(slot.arch).toEqual({}); // per-slot backend data is rebuilt by prepareMemslot (the recording listener's is empty)
  });

  it('to the same base is a no-op: no listener call, generation unchanged', () => {
    const t = makeTable();
    t.table.create({ id: 1, guestPhysAddr: 0x10000, size: 0x4000 });
    t.listener.clear();
    const before = tableState(t, PROBES);
    t.table.move(1, 0x10000);
    expect(tableState(t, PROBES)).toEqual(before);
  });

  const bad: Array<[string, number, number, HvmmuErrorCode]> = [
    ['unknown id', 9, 0x40000, 'MEMSLOT_UNKNOWN'],
    ['unaligned base', 1, 0x40010, 'MEMSLOT_UNALIGNED'],
    ['negative base', 1, -0x4000, 'MEMSLOT_OUT_OF_RANGE'],
    ['beyond the address space', 1, 2 ** 32 - 0x2000, 'MEMSLOT_OUT_OF_RANGE'],
    ['overlapping another slot', 1, 0x1e000, 'MEMSLOT_OVERLAP'],
    ['touching is fine but one page into another slot is not', 1, 0x1d000, 'MEMSLOT_OVERLAP'],
  ];
  it.each(bad)('%s throws and changes nothing', (_name, id, base, code) => {
    const t = makeTable({ guestPhysBits: 32 });
    t.table.create({ id: 1, guestPhysAddr: 0x10000, size: 0x4000 });
    t.table.create({ id: 2, guestPhysAddr: 0x20000, size: 0x4000 });
    t.table.write8(0x10000, 1);
    t.listener.clear();
    expectUnchanged(t, () => t.table.move(id, base), code);
    expect(t.listener.events).toEqual([]);
  });

  it('may move to touch another slot', () => {
    const t = makeTable();
    t.table.create({ id: 1, guestPhysAddr: 0x10000, size: 0x4000 });
    t.table.create({ id: 2, guestPhysAddr: 0x20000, size: 0x4000 });
    t.table.move(1, 0x1c000);
    expect(t.table.findByGfn(0x1f)?.id).toBe(1);
    expect(t.table.findByGfn(0x20)?.id).toBe(2);
  });
});

describe('MemslotTable.setFlags', () => {
  it('turns dirty logging on and off with a fresh bitmap, and commits with the old flags', () => {
    const t = makeTable();
    const slot = t.table.create({ id: 1, guestPhysAddr: 0, size: 40 * PAGE });
    expect(slot.dirtyBitmap).toBeNull();
    t.listener.clear();
    const g0 = t.table.generation;
    t.table.setFlags(1, LOG);
    expect(slot.flags).toBe(LOG);
    expect(slot.dirtyLogging).toBe(true);
    expect(slot.dirtyBitmap).toEqual(new Uint32Array(2)); // 40 pages → 2 words
    expect(t.table.generation).toBeGreaterThan(g0);
    expect(t.listener.sequence()).toEqual(['commit:flags']);
    expect(t.listener.events[0]).toMatchObject({ a: 0, visible: true, rmap: 'normal' });
    const g1 = t.table.generation;
    t.table.setFlags(1, 0);
    expect(slot.dirtyBitmap).toBeNull();
    expect(t.table.generation).toBeGreaterThan(g1);
    expect(t.listener.events[1]).toMatchObject({ event: 'commit', change: 'flags', a: LOG });
  });

  it('setting the same flags is a no-op', () => {
    const t = makeTable();
    t.table.create({ id: 1, guestPhysAddr: 0, size: PAGE, flags: LOG });
    t.listener.clear();
    const before = tableState(t, PROBES);
    t.table.setFlags(1, LOG);
    expect(tableState(t, PROBES)).toEqual(before);
  });

  const bad: Array<[string, number, number, number, HvmmuErrorCode]> = [
    ['unknown id', 0, 5, LOG, 'MEMSLOT_UNKNOWN'],
    ['unknown flag bit', 0, 1, 4, 'MEMSLOT_BAD_FLAGS'],
    ['negative flags', 0, 1, -1, 'MEMSLOT_BAD_FLAGS'],
    ['NaN flags', 0, 1, Number.NaN, 'MEMSLOT_BAD_FLAGS'],
    ['READONLY turned on after creation', 0, 1, RO, 'MEMSLOT_BAD_FLAGS'],
    ['READONLY with dirty logging turned on after creation', 0, 1, RO | LOG, 'MEMSLOT_BAD_FLAGS'],
    ['READONLY turned off after creation', RO, 1, 0, 'MEMSLOT_BAD_FLAGS'],
    ['READONLY turned off while enabling logging', RO, 1, LOG, 'MEMSLOT_BAD_FLAGS'],
  ];
  it.each(bad)('%s throws and changes nothing', (_name, initial, id, flags, code) => {
    const t = makeTable();
    t.table.create({ id: 1, guestPhysAddr: 0x10000, size: 0x4000, flags: initial });
    t.listener.clear();
    const slot = t.table.get(1);
    expectUnchanged(t, () => t.table.setFlags(id, flags), code);
    expect(slot.flags).toBe(initial);
    expect(t.listener.events).toEqual([]);
  });

  it('a READONLY slot may still toggle dirty logging', () => {
    const t = makeTable();
    const slot = t.table.create({ id: 1, guestPhysAddr: 0, size: PAGE, flags: RO });
    t.table.setFlags(1, RO | LOG);
    expect(slot.readOnly).toBe(true);
    expect(slot.dirtyLogging).toBe(true);
  });
});

describe('MemslotTable lookups', () => {
  it('find the right slot among many (binary search), and miss in every hole', () => {
    const t = makeTable();
    // slots of 3 pages every 8 pages, created in a scrambled order
    const order = [5, 0, 9, 3, 7, 1, 8, 2, 6, 4];
    for (const k of order) t.table.create({ id: 100 + k, guestPhysAddr: k * 8 * PAGE, size: 3 * PAGE });
    expect(t.table.slots().map((s) => s.baseGfn)).toEqual([0, 8, 16, 24, 32, 40, 48, 56, 64, 72]);
    for (let gfn = 0; gfn < 90; gfn++) {
      const k = Math.floor(gfn / 8);
      const expected = k < 10 && gfn % 8 < 3 ? 100 + k : undefined;
      expect(t.table.findByGfn(gfn)?.id).toBe(expected);
    }
  });

  it('miss for NaN, negative and fractional-outside gfns', () => {
    const t = makeTable();
    t.table.create({ id: 1, guestPhysAddr: 0, size: 4 * PAGE });
    expect(t.table.findByGfn(2)?.id).toBe(1); // cached
    expect(t.table.findByGfn(Number.NaN)).toBeUndefined();
    expect(t.table.findByGfn(-1)).toBeUndefined();
    expect(t.table.findByGfn(4)).toBeUndefined();
  });

  it('the last-hit cache never returns a stale answer after create, move or delete', () => {
    const t = makeTable();
    t.table.create({ id: 1, guestPhysAddr: 0x10000, size: 0x4000 });
    expect(t.table.findByGfn(0x12)?.id).toBe(1);
    t.table.move(1, 0x20000);
    expect(t.table.findByGfn(0x12)).toBeUndefined();
    t.table.create({ id: 2, guestPhysAddr: 0x10000, size: 0x4000 });
    expect(t.table.findByGfn(0x12)?.id).toBe(2);
    expect(t.table.findByGfn(0x22)?.id).toBe(1);
    t.table.delete(1);
    expect(t.table.findByGfn(0x22)).toBeUndefined();
    expect(t.table.findByGfn(0x12)?.id).toBe(2);
  });

  it('get/has refuse unknown ids', () => {
    const t = makeTable();
    expect(t.table.has(0)).toBe(false);
    expectHvmmuError(() => t.table.get(0), 'MEMSLOT_UNKNOWN');
  });
});

describe('guest memory through the slots: first touch and copy-on-write', () => {
  it('a read of an untouched page maps the shared zero frame and allocates nothing private', () => {
    const t = makeTable();
    const slot = t.table.create({ id: 1, guestPhysAddr: 0x10000, size: 0x4000 });
    const hfn = t.table.gfnToHfn(slot, 0x11, false);
    expect(hfn).toBe(t.host.zeroFrame);
    expect(slot.frames[1]).toBe(FRAME_ZERO);
    expect(t.table.framesInUse).toBe(0);
    expect(t.listener.sequence()).toEqual(['prepare:create', 'commit:create']);
  });

  it('the first write to a zero-mapped page gets a private frame after invalidating the zero mapping', () => {
    const t = makeTable();
    const slot = t.table.create({ id: 1, guestPhysAddr: 0x10000, size: 0x4000 });
    t.table.gfnToHfn(slot, 0x11, false);
    t.listener.clear();
    const seq = t.table.invalidationSeq;
    const hfn = t.table.gfnToHfn(slot, 0x11, true);
    expect(hfn).toBeGreaterThanOrEqual(0);
    expect(hfn).not.toBe(t.host.zeroFrame);
    expect(slot.frames[1]).toBe(hfn);
    expect(t.table.framesInUse).toBe(1);
    expect(t.listener.events).toHaveLength(1);
    expect(t.listener.events[0]).toMatchObject({ event: 'invalidate', slot: 1, a: 0x11, b: 0x12 });
    expect(t.table.invalidationSeq).toBeGreaterThan(seq);
    // Later reads and writes reuse the frame.
    expect(t.table.gfnToHfn(slot, 0x11, false)).toBe(hfn);
    expect(t.table.gfnToHfn(slot, 0x11, true)).toBe(hfn);
    expect(t.table.gfnOfHostFrame(hfn)).toBe(0x11);
    expect(t.table.slotOfHostFrame(hfn)).toBe(slot);
  });

  it('a first write to a never-mapped page needs no invalidation (nothing can map it yet)', () => {
    const t = makeTable();
    const slot = t.table.create({ id: 1, guestPhysAddr: 0x10000, size: 0x4000 });
    t.listener.clear();
    const seq = t.table.invalidationSeq;
    const hfn = t.table.gfnToHfn(slot, 0x13, true);
    expect(hfn).toBeGreaterThanOrEqual(0);
    expect(t.listener.events).toEqual([]);
    expect(t.table.invalidationSeq).toBe(seq);
  });

  it('a write to a READONLY slot resolves to -1 and allocates nothing; reads see zeros', () => {
    const t = makeTable();
    const slot = t.table.create({ id: 1, guestPhysAddr: 0x10000, size: 0x4000, flags: RO });
    expect(t.table.gfnToHfn(slot, 0x10, true)).toBe(-1);
    expect(t.table.resolve(0x10000, true)).toBe(-1);
    expect(t.table.framesInUse).toBe(0);
    expect(t.table.gfnToHfn(slot, 0x10, false)).toBe(t.host.zeroFrame);
    // The VMM loads the ROM through the host-side helpers, which ignore READONLY...
    t.table.write32(0x10000, 0x90909090, true);
    const hfn = slot.frames[0]!;
    expect(hfn).toBeGreaterThanOrEqual(0);
    // ...and the guest still cannot write it.
    expect(t.table.gfnToHfn(slot, 0x10, true)).toBe(-1);
    expect(t.table.gfnToHfn(slot, 0x10, false)).toBe(hfn);
    expect(t.table.resolve(0x10004, false)).toBe(hfn * PAGE + 4);
  });

  it('gfnToHfn outside the given slot, or on a deleted slot, returns -1 and allocates nothing', () => {
    const t = makeTable();
    const slot = t.table.create({ id: 1, guestPhysAddr: 0x10000, size: 0x4000 });
    const host = t.host.framesInUse;
    for (const gfn of [0xf, 0x14, -1, Number.NaN, 0x10 + 0.5]) {
      expect(t.table.gfnToHfn(slot, gfn, false)).toBe(-1);
      expect(t.table.gfnToHfn(slot, gfn, true)).toBe(-1);
    }
    t.table.delete(1);
    expect(t.table.gfnToHfn(slot, 0x10, true)).toBe(-1);
    expect(t.host.framesInUse).toBe(host);
    expect(t.table.framesInUse).toBe(0);
  });

  it('resolve maps gpa to an offset in host memory and refuses hostile addresses', () => {
    const t = makeTable();
    t.table.create({ id: 1, guestPhysAddr: 0x10000, size: 0x4000 });
    const zero = t.host.zeroFrame;
    expect(t.table.resolve(0x10123, false)).toBe(zero * PAGE + 0x123);
    const w = t.table.resolve(0x11ff8, true);
    const slot = t.table.get(1);
    expect(w).toBe(slot.frames[1]! * PAGE + 0xff8);
    t.host.write32(w, 0x01020304, true);
    expect(t.table.read32(0x11ff8, true)).toBe(0x01020304);
    for (const gpa of [0xfff, 0x14000, -1, -PAGE, -0x10000, Number.NaN, 0x10000 + 0.5, 2 ** 53, Number.POSITIVE_INFINITY]) {
      expect(t.table.resolve(gpa, false)).toBe(-1);
      expect(t.table.resolve(gpa, true)).toBe(-1);
    }
    expect(t.table.framesInUse).toBe(1);
  });
});

describe('host-side guest memory helpers', () => {
  it('read and write 8/16/32/64-bit values in both byte orders', () => {
    const t = makeTable();
    t.table.create({ id: 1, guestPhysAddr: 0x10000, size: 0x2000 });
    t.table.write32(0x10000, 0x11223344, false);
    t.table.write16(0x10004, 0x5566, true);
    t.table.write8(0x10006, 0x77);
    t.table.write64Halves(0x10008, 0x80000000, 0x00000001, false);
    const hfn = t.table.get(1).frames[0]!;
    expect([...t.host.bytes.subarray(hfn * PAGE, hfn * PAGE + 16)]).toEqual([0x11, 0x22, 0x33, 0x44, 0x66, 0x55, 0x77, 0x00, 0x80, 0, 0, 0, 0, 0, 0, 0x01]);
    expect(t.table.read32(0x10000, true)).toBe(0x44332211);
    expect(t.table.read16(0x10004, false)).toBe(0x6655);
    expect(t.table.read8(0x10006)).toBe(0x77);
    expect(t.table.read64Hi(0x10008, false)).toBe(0x80000000);
    expect(t.table.read64Lo(0x10008, false)).toBe(1);
    expect(t.table.read64Hi(0x10008, true)).toBe(0x01000000);
    expect(t.table.read64Lo(0x10008, true)).toBe(0x00000080);
  });

  it('host reads of untouched pages read zeros without allocating; host writes allocate; neither marks dirty', () => {
    const t = makeTable();
    const slot = t.table.create({ id: 1, guestPhysAddr: 0, size: 4 * PAGE, flags: LOG });
    const out = new Uint8Array(3 * PAGE);
    out.fill(0xee);
    t.table.readBytes(0x800, out);
    expect(out.every((x) => x === 0)).toBe(true);
    expect(t.table.read64Lo(0x3ff8, true)).toBe(0);
    expect(t.table.framesInUse).toBe(0);
    t.table.write8(PAGE, 1);
    expect(t.table.framesInUse).toBe(1);
    expect(slot.dirtyBitmap).toEqual(new Uint32Array(1));
  });

  it('byte copies cross page and slot boundaries', () => {
    const t = makeTable();
    t.table.create({ id: 1, guestPhysAddr: 0, size: 2 * PAGE });
    t.table.create({ id: 2, guestPhysAddr: 2 * PAGE, size: 2 * PAGE });
    const data = Uint8Array.from({ length: 2 * PAGE + 100 }, (_, i) => (i * 13 + 1) & 0xff);
    t.table.writeBytes(PAGE - 50, data);
    const out = new Uint8Array(data.length);
    t.table.readBytes(PAGE - 50, out);
    expect(out).toEqual(data);
    expect(t.table.read8(2 * PAGE)).toBe(data[PAGE + 50]);
    expect(t.table.framesInUse).toBe(4);
  });

  const bad: Array<[string, (t: TableFixture) => unknown]> = [
    ['read8 in a hole', (t) => t.table.read8(0x20000)],
    ['write32 in a hole', (t) => t.table.write32(0x20000, 1, true)],
    ['read16 crossing a page', (t) => t.table.read16(0x10fff, true)],
    ['write64Halves crossing a page', (t) => t.table.write64Halves(0x10ffc, 1, 2, true)],
    ['read64Hi crossing a page', (t) => t.table.read64Hi(0x10ffc, true)],
    ['write8 at a negative address', (t) => t.table.write8(-1, 1)],
    ['read32 at NaN', (t) => t.table.read32(Number.NaN, true)],
    ['writeBytes running off the end of the slot', (t) => t.table.writeBytes(0x11f00, new Uint8Array(0x200).fill(1))],
    ['writeBytes starting in a hole', (t) => t.table.writeBytes(0xff00, new Uint8Array(0x200).fill(1))],
    ['readBytes running into a hole', (t) => t.table.readBytes(0x11f00, new Uint8Array(0x200))],
  ];
  it.each(bad)('%s throws GUEST_NO_MEMORY and changes nothing', (_name, access) => {
    const t = makeTable();
    t.table.create({ id: 1, guestPhysAddr: 0x10000, size: 0x2000 });
    t.listener.clear();
    const before = tableState(t, PROBES);
    const bytes = t.host.bytes.slice();
    expectHvmmuError(() => access(t), 'GUEST_NO_MEMORY');
    expect(tableState(t, PROBES)).toEqual(before);
    expect(firstDifference(t.host.bytes, bytes)).toBe(-1);
  });
});

describe('dirty logging', () => {
  it('guest write resolves mark pages; get-and-clear returns them, clears the log and tells the listener', () => {
    const t = makeTable();
    const slot = t.table.create({ id: 1, guestPhysAddr: 0x100000, size: 40 * PAGE, flags: LOG });
    for (const page of [0, 5, 33]) t.table.resolve(0x100000 + page * PAGE + 8, true);
    t.table.resolve(0x100000 + 7 * PAGE, false); // reads do not dirty
    expect(slot.isDirty(0x100 + 5)).toBe(true);
    expect(slot.isDirty(0x100 + 7)).toBe(false);
    t.listener.clear();
    const log = t.table.getDirtyLog(1);
    // bit i of word i>>5 is page i: pages 0 and 5 in word 0, page 33 is bit 1 of word 1
    expect([...log]).toEqual([(1 << 0) | (1 << 5), 1 << 1]);
    expect(t.listener.sequence()).toEqual(['harvest']);
    expect(t.listener.events[0]!.bitmap).toEqual([0x21, 0x2]);
    expect([...slot.dirtyBitmap!]).toEqual([0, 0]);
    expect([...t.table.getDirtyLog(1)]).toEqual([0, 0]);
    // the returned log is a copy: the next writes do not show up in it
    t.table.resolve(0x100000, true);
    expect([...log]).toEqual([0x21, 0x2]);
  });

  it('a slot without logging records nothing and refuses get-dirty-log with MEMSLOT_BAD_FLAGS', () => {
    const t = makeTable();
    const slot = t.table.create({ id: 1, guestPhysAddr: 0, size: 4 * PAGE });
    t.table.resolve(0, true);
    expect(slot.isDirty(0)).toBe(false);
    t.listener.clear();
    expectUnchanged(t, () => t.table.getDirtyLog(1), 'MEMSLOT_BAD_FLAGS');
    expectUnchanged(t, () => t.table.getDirtyLog(2), 'MEMSLOT_UNKNOWN');
    expect(t.listener.events).toEqual([]);
  });
});

describe('host-side invalidation (MMU notifier)', () => {
  function populated(): { t: TableFixture; a: number[]; b: number[] } {
    const t = makeTable();
    t.table.create({ id: 1, guestPhysAddr: 0x100000, size: 8 * PAGE });
    t.table.create({ id: 2, guestPhysAddr: 0x200000, size: 8 * PAGE });
    // Touch A0 A1 A2 A5 B0 in that order: the pool hands out consecutive frames.
    for (const gpa of [0x100000, 0x101000, 0x102000, 0x105000, 0x200000]) t.table.write8(gpa, 1);
    const a = [...t.table.get(1).frames];
    const b = [...t.table.get(2).frames];
    const h = a[0]!;
    expect([a[1], a[2], a[5], b[0]]).toEqual([h + 1, h + 2, h + 3, h + 4]);
    t.listener.clear();
    return { t, a, b };
  }

  it('turns a host frame range into coalesced gfn runs per slot, in frame order', () => {
    const { t, a } = populated();
    const h = a[0]!;
    const seq = t.table.invalidationSeq;
    const dropped = t.table.invalidateHostRange(h, h + 5);
    expect(t.listener.events.map((e) => [e.event, e.slot, e.a, e.b])).toEqual([
      ['invalidate', 1, 0x100, 0x103],
      ['invalidate', 1, 0x105, 0x106],
      ['invalidate', 2, 0x200, 0x201],
    ]);
    expect(dropped).toBe(5); // the listener reports one mapping per page
    expect(t.table.invalidationSeq).toBeGreaterThan(seq);
  });

  it('a partial range covers only its frames', () => {
    const { t, a } = populated();
    const h = a[0]!;
    t.table.invalidateHostRange(h + 1, h + 4);
    expect(t.listener.events.map((e) => [e.slot, e.a, e.b])).toEqual([
      [1, 0x101, 0x103],
      [1, 0x105, 0x106],
    ]);
  });

  it('frames that back no guest page, and ranges past the pool, are ignored', () => {
    const { t, a } = populated();
    expect(t.table.invalidateHostRange(a[0]! + 5, t.host.frameCount + 100)).toBe(0);
    expect(t.table.invalidateHostRange(3, 3)).toBe(0);
    expect(t.listener.events).toEqual([]);
  });

  it.each([
    [5, 4],
    [Number.NaN, 4],
    [0, Number.NaN],
    [-10, 4],
    [0.5, 4],
    [0, 4.5],
  ])('a bad range [%s, %s) is BAD_ARGUMENT and changes nothing', (start, end) => {
    const { t } = populated();
    expectUnchanged(t, () => t.table.invalidateHostRange(start, end), 'BAD_ARGUMENT');
  });

  it('migrateHostFrame copies the page, re-points the slot, calls changeGfnPte and frees the old frame', () => {
    const { t, a } = populated();
    const old = a[5]!;
    t.table.write32(0x105ffc, 0xfeedface, false);
    t.table.write32(0x105000, 0x01020304, true);
    const inUse = t.table.framesInUse;
    const hostInUse = t.host.framesInUse;
    const fresh = t.table.migrateHostFrame(old);
    expect(fresh).not.toBe(old);
    expect(t.host.read32(fresh * PAGE + 0xffc, false)).toBe(0xfeedface);
    expect(t.host.read32(fresh * PAGE, true)).toBe(0x01020304);
    expect(t.table.get(1).frames[5]).toBe(fresh);
    expect(t.table.read32(0x105ffc, false)).toBe(0xfeedface);
    expect(t.listener.events.map((e) => [e.event, e.slot, e.a, e.b])).toEqual([['changePte', 1, 0x105, fresh]]);
    expect(t.host.isAllocated(old)).toBe(false);
    expect(t.table.gfnOfHostFrame(old)).toBe(-1);
    expect(t.table.gfnOfHostFrame(fresh)).toBe(0x105);
    expect(t.table.framesInUse).toBe(inUse);
    expect(t.host.framesInUse).toBe(hostInUse);
  });

  it('migrateHostFrame of a frame that backs no page of this VM is HOST_BAD_FRAME and changes nothing', () => {
    const { t } = populated();
    const zero = t.host.zeroFrame;
    const foreign = t.host.allocFrame();
    for (const hfn of [zero, foreign, t.host.frameCount - 1, -1, t.host.frameCount, 1.5, Number.NaN]) {
      const bytes = t.host.bytes.slice();
      expectUnchanged(t, () => t.table.migrateHostFrame(hfn), 'HOST_BAD_FRAME');
      expect(firstDifference(t.host.bytes, bytes)).toBe(-1);
    }
  });

  it('slotOfHostFrame / gfnOfHostFrame answer only for frames of visible slots', () => {
    const { t, a, b } = populated();
    expect(t.table.slotOfHostFrame(b[0]!)?.id).toBe(2);
    expect(t.table.gfnOfHostFrame(b[0]!)).toBe(0x200);
    for (const hfn of [t.host.zeroFrame, -1, t.host.frameCount, 2.5, Number.NaN]) {
      expect(t.table.slotOfHostFrame(hfn)).toBeUndefined();
      expect(t.table.gfnOfHostFrame(hfn)).toBe(-1);
    }
    t.table.delete(1);
    expect(t.table.slotOfHostFrame(a[0]!)).toBeUndefined();
    expect(t.table.gfnOfHostFrame(a[0]!)).toBe(-1);
  });
});
