import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { HvmmuError } from '@hvmmu/core';
import { NestedRmapNodes, NestedRmapSlots, decodeNestedRmapEntry, nestedRmapEntry } from '@hvmmu/ppc-radix';
import { propertyRuns } from '../../../test-support/propertyRuns.js';

/**
 * The nested rmap against a plain model (per page: the distinct entries,
 * newest first, the very first one last) and against the encoding KVM's
 * header defines (kvm_book3s_64.h: RMAP_NESTED_LPID_MASK
 * 0xFFF0_0000_0000_0000, RMAP_NESTED_GPA_MASK 0x000F_FFFF_FFFF_F000,
 * RMAP_NESTED_IS_SINGLE_ENTRY 1).
 */
describe('nested rmap', () => {
  it('the entry word: LPID in bits 63..52, the L2 frame in 51..12, bit 0 clear (worked out by hand)', () => {
    expect(nestedRmapEntry(0xabc, 0x12_3456_789a)).toEqual([0xabc1_2345, 0x6789_a000]);
    expect(nestedRmapEntry(1, 0)).toEqual([0x0010_0000, 0]);
    expect(decodeNestedRmapEntry(0xabc1_2345, 0x6789_a001)).toEqual([0xabc, 0x12_3456_789a]);
  });

  it('slot encoding: empty 0; one entry inline with bit 0 set; a list is an even pointer whose chain ends in the first entry, inline', () => {
    const nodes = new NestedRmapNodes(4);
    const slots = new NestedRmapSlots(8, nodes);
    expect(slots.bytes).toBe(0); // nothing allocated before the first insert
    expect(slots.insert(3, 5, 0x100)).toBe(true);
    expect(slots.slotWord(3)).toEqual([0x0050_0000, 0x0010_0001]);
    expect(nodes.inUse).toBe(0); // the first entry takes no node
    expect(slots.insert(3, 5, 0x200)).toBe(true);
    expect(slots.insert(3, 7, 0x100)).toBe(true);
    const [hi, lo] = slots.slotWord(3);
    expect(hi).toBe(0);
    expect(lo % 2).toBe(0);
    expect(nodes.inUse).toBe(2);
    expect(slots.entries(3)).toEqual([
      [7, 0x100],
      [5, 0x200],
      [5, 0x100],
    ]);
    expect(nodes.bytes / 4).toBe(16); // 16 bytes per node
  });

  it('insert dedups: the same mapping faulted a million times leaves memory flat', () => {
    const nodes = new NestedRmapNodes(4);
    const slots = new NestedRmapSlots(1, nodes);
    for (let k = 0; k < 8; k++) slots.insert(0, 9, 1000 + k);
    const bytes = nodes.bytes;
    const inUse = nodes.inUse;
    let inserted = 0;
    for (let k = 0; k < 1_000_000; k++) if (slots.insert(0, 9, 1000 + (k % 8))) inserted++;
    expect(inserted).toBe(0);
    expect([nodes.bytes, nodes.inUse, slots.entries(0).length]).toEqual([bytes, inUse, 8]);
  });

  it('agrees with a model through random inserts, detaches and frees; invariants hold after every step', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            op: fc.integer({ min: 0, max: 9 }),
            page: fc.integer({ min: 0, max: 15 }),
            lpid: fc.integer({ min: 1, max: 4 }),
            gfn: fc.integer({ min: 0, max: 6 }),
          }),
          { maxLength: 200 },
        ),
        (ops) => {
          const nodes = new NestedRmapNodes(2);
          const slots = new NestedRmapSlots(16, nodes);
          const model = new Map<number, [number, number][]>();
          for (const o of ops) {
            if (o.op < 7) {
              const list = model.get(o.page) ?? [];
              const known = list.some(([l, g]) => l === o.lpid && g === o.gfn);
              expect(slots.insert(o.page, o.lpid, o.gfn)).toBe(!known);
              if (!known) model.set(o.page, [[o.lpid, o.gfn], ...list]);
            } else if (o.op < 9) {
              const seen: [number, number][] = [];
              expect(slots.detachAll(o.page, (l, g) => seen.push([l, g]))).toBe((model.get(o.page) ?? []).length);
              expect(seen).toEqual(model.get(o.page) ?? []);
              model.delete(o.page);
            } else {
              slots.freeAll();
              model.clear();
            }
            let live = 0;
            for (let page = 0; page < 16; page++) {
              const want = model.get(page) ?? [];
              expect(slots.entries(page)).toEqual(want);
              const [hi, lo] = slots.slotWord(page);
              if (want.length === 0) expect([hi, lo]).toEqual([0, 0]);
              else if (want.length === 1) expect(lo & 1).toBe(1);
              else expect([hi, lo & 1]).toEqual([0, 0]);
              live += Math.max(0, want.length - 1);
            }
            expect(nodes.inUse).toBe(live); // every node in a list, none leaked
          }
        },
      ),
      { numRuns: propertyRuns(200) },
    );
  });

  it('refuses LPID 0 (the host’s; an entry must never be 0), LPIDs past 12 bits, frames past 40 bits and pages outside the slot', () => {
    const slots = new NestedRmapSlots(4, new NestedRmapNodes());
    for (const [page, lpid, gfn] of [
      [0, 0, 1],
      [0, 0x1000, 1],
      [0, 1, 2 ** 40],
      [4, 1, 1],
      [-1, 1, 1],
      [0, 1.5, 1],
    ] as const) {
      expect(() => slots.insert(page, lpid, gfn)).toThrow(HvmmuError);
    }
    expect(slots.bytes).toBe(0);
  });
});
