import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { HashPageTable, HptRevmapEntries, HptSlotRmap, RMAP_CHANGED_HI, RMAP_PRESENT_HI, RMAP_REFERENCED_HI, RMAP_TYPE_HPT_HI } from '@hvmmu/ppc-hpt';
import { propertyRuns } from '../../../test-support/propertyRuns.js';

/**
 * The HPT reverse map against a model: per page, the HPTEs mapping it in
 * ring order from the head (KVM inserts before the head, so the head stays
 * and new entries go to the tail), the R/C of removed entries accumulated.
 */
describe('HPT reverse map (kvmppc_add_revmap_chain, remove_revmap_chain)', () => {
  it('the rmap word: type HPT, PRESENT and the head index; a new entry goes before the head; the head moves on when removed', () => {
    const rev = new HptRevmapEntries(new HashPageTable(18));
    const slot = new HptSlotRmap(4, rev);
    slot.add(2, 10);
    expect([slot.hi[2], slot.lo[2]]).toEqual([RMAP_TYPE_HPT_HI | RMAP_PRESENT_HI, 10]);
    slot.add(2, 11);
    slot.add(2, 12);
    expect(slot.chain(2)).toEqual([10, 11, 12]);
    expect(slot.remove(2, 10, true, false)).toBe(false);
    expect(slot.chain(2)).toEqual([11, 12]);
    expect(slot.hi[2]! & RMAP_REFERENCED_HI).toBe(RMAP_REFERENCED_HI);
    expect(rev.guestView.view.getUint32(10 * 16 + 12) & 0x100).toBe(0x100); // the real R reached the guest view
    expect(slot.remove(2, 12, false, true)).toBe(true);
    expect(slot.remove(2, 11, false, false)).toBe(false);
    expect(slot.present(2)).toBe(false);
    expect([slot.takeRc(2, RMAP_CHANGED_HI), slot.takeRc(2, RMAP_CHANGED_HI)]).toEqual([true, false]);
  });

  it('agrees with a model through random adds and removes', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ add: fc.boolean(), page: fc.integer({ min: 0, max: 3 }), k: fc.nat(), r: fc.boolean(), c: fc.boolean() }), { maxLength: 150 }),
        (ops) => {
          const rev = new HptRevmapEntries(new HashPageTable(18));
          const slot = new HptSlotRmap(4, rev);
          const model: number[][] = [[], [], [], []];
          const rc = [0, 0, 0, 0];
          const free = Array.from({ length: 32 }, (_, i) => i);
          for (const o of ops) {
            if (o.add && free.length > 0) {
              const index = free.splice(o.k % free.length, 1)[0]!;
              slot.add(o.page, index);
              model[o.page]!.push(index); // appended at the tail: the head stays first
            } else if (!o.add && model[o.page]!.length > 0) {
              const list = model[o.page]!;
              const index = list.splice(o.k % list.length, 1)[0]!;
              slot.remove(o.page, index, o.r, o.c);
              rc[o.page] = rc[o.page]! | (o.r ? RMAP_REFERENCED_HI : 0) | (o.c ? RMAP_CHANGED_HI : 0);
              free.push(index);
            }
            for (let p = 0; p < 4; p++) {
              expect(slot.chain(p)).toEqual(model[p]);
              expect(slot.hi[p]! & (RMAP_REFERENCED_HI | RMAP_CHANGED_HI)).toBe(rc[p]);
            }
          }
        },
      ),
      { numRuns: propertyRuns(200) },
    );
  });
});
