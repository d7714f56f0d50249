import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { PTE_LIST_EXT, PTE_LIST_SPTE_SKIP, PteListPool } from '@hvmmu/x86-shadow/internal';
import { propertyRuns } from '../../../../test-support/propertyRuns.js';

/** One list head in its own array, as an rmap slot or a parent_ptes head. */
function list() {
  const heads = new Uint32Array(1);
  const pool = new PteListPool(4);
  return { heads, pool };
}

describe('pte_list encoding (KVM mmu.c, 2023 tail_count layout)', () => {
  it('empty → single pointer → descriptor of two; add returns the count before it', () => {
    const { heads, pool } = list();
    expect(heads[0]).toBe(0);
    expect(pool.add(heads, 0, 1000)).toBe(0);
    // Single form: bit 0 clear, the entry itself (stored doubled).
    expect(heads[0]).toBe(2000);
    expect(pool.shape(heads[0]!)).toEqual({ counts: [1], tailCount: 0 });
    expect(pool.add(heads, 0, 1001)).toBe(1);
    // Descriptor form: bit 0 set; {old, new}, spte_count 2, tail_count 0.
    expect(heads[0]! & 1).toBe(1);
    expect(pool.shape(heads[0]!)).toEqual({ counts: [2], tailCount: 0 });
    expect(pool.add(heads, 0, 1002)).toBe(2);
    expect(pool.count(heads[0]!)).toBe(3);
  });

  it('a full head gets a new head in front of it; only the head is partly filled', () => {
    const { heads, pool } = list();
    for (let i = 0; i < PTE_LIST_EXT; i++) pool.add(heads, 0, 600 + i);
    expect(pool.shape(heads[0]!)).toEqual({ counts: [14], tailCount: 0 });
    // 15th entry: new head with count 1, tail_count 14.
    expect(pool.add(heads, 0, 700)).toBe(14);
    expect(pool.shape(heads[0]!)).toEqual({ counts: [1, 14], tailCount: 14 });
    for (let i = 1; i < 15; i++) pool.add(heads, 0, 700 + i);
    // 29 entries: head of 1 in front of two full descriptors.
    expect(pool.shape(heads[0]!)).toEqual({ counts: [1, 14, 14], tailCount: 28 });
    expect(pool.count(heads[0]!)).toBe(29);
  });

  it("remove fills the hole with the head's last entry and frees an emptied head", () => {
    const { heads, pool } = list();
    for (let i = 0; i < 15; i++) pool.add(heads, 0, 600 + i); // [1 | 14]
    expect(pool.inUse).toBe(2);
    // Remove an entry of the full tail descriptor: the head's only entry (614) moves into its slot,
    // the head empties and is freed; the tail becomes the head (a list never returns to single form).
    expect(pool.remove(heads, 0, 603)).toBe(true);
    expect(pool.shape(heads[0]!)).toEqual({ counts: [14], tailCount: 0 });
    expect(pool.inUse).toBe(1);
    const entries: number[] = [];
    pool.collect(heads[0]!, entries);
    expect(entries).toEqual([600, 601, 602, 614, 604, 605, 606, 607, 608, 609, 610, 611, 612, 613]);
    for (const e of [600, 601, 602, 614, 604, 605, 606, 607, 608, 609, 610, 611, 612]) pool.remove(heads, 0, e);
    expect(pool.shape(heads[0]!)).toEqual({ counts: [1], tailCount: 0 });
    expect(heads[0]! & 1).toBe(1);
    expect(pool.remove(heads, 0, 613)).toBe(true);
    expect(heads[0]).toBe(0);
    expect(pool.inUse).toBe(0);
    expect(pool.remove(heads, 0, 613)).toBe(false);
  });

  it('single form removes only its own entry', () => {
    const { heads, pool } = list();
    pool.add(heads, 0, 777);
    expect(pool.remove(heads, 0, 778)).toBe(false);
    expect(pool.remove(heads, 0, 777)).toBe(true);
    expect(heads[0]).toBe(0);
  });

  it('clear-in-place writes the skip marker and keeps shape and memory (invalid rmap)', () => {
    const { heads, pool } = list();
    for (let i = 0; i < 16; i++) pool.add(heads, 0, 900 + i); // [2 | 14]
    const before = pool.shape(heads[0]!);
    const descs = pool.inUse;
    expect(pool.clearInPlace(heads, 0, 905)).toBe(true);
    expect(pool.shape(heads[0]!)).toEqual(before);
    expect(pool.inUse).toBe(descs);
    const entries: number[] = [];
    pool.collect(heads[0]!, entries);
    expect(entries.filter((e) => e === PTE_LIST_SPTE_SKIP)).toHaveLength(1);
    expect(entries).not.toContain(905);
    const single = list();
    single.pool.add(single.heads, 0, 42);
    expect(single.pool.clearInPlace(single.heads, 0, 42)).toBe(true);
    expect(single.heads[0]! >>> 1).toBe(PTE_LIST_SPTE_SKIP);
  });

  it('any add/remove sequence keeps the head/tail rule and the exact entry set', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 512, max: 560 })), { maxLength: 300 }), (ops) => {
        const { heads, pool } = list();
        const model = new Set<number>();
        for (const [add, e] of ops) {
          if (add && !model.has(e)) {
            expect(pool.add(heads, 0, e)).toBe(model.size);
            model.add(e);
          } else if (!add) {
            expect(pool.remove(heads, 0, e)).toBe(model.has(e));
            model.delete(e);
          }
          const val = heads[0]!;
          expect(pool.count(val)).toBe(model.size);
          const entries: number[] = [];
          pool.collect(val, entries);
          expect(new Set(entries)).toEqual(model);
          expect(entries).toHaveLength(model.size);
          if ((val & 1) === 1) {
            const { counts, tailCount } = pool.shape(val);
            expect(counts.slice(1).every((c) => c === PTE_LIST_EXT)).toBe(true);
            expect(counts[0]).toBeGreaterThanOrEqual(1);
            expect(tailCount).toBe(counts.slice(1).reduce((a, b) => a + b, 0));
          }
        }
        // Every descriptor still allocated belongs to the list.
        expect(pool.inUse).toBe((heads[0]! & 1) === 1 ? pool.shape(heads[0]!).counts.length : 0);
      }),
      { numRuns: propertyRuns(200) },
    );
  });
});
