import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { FlatGuestMemory } from '@hvmmu/core';
import {
  Dsisr,
  RadixAccess,
  RadixRegisters,
  RadixTranslation,
  RadixTreeBuilder,
  RadixVector,
  RadixWalker,
  enumerateRadixTree,
  radixDebugTranslate,
  type RadixGeometryName,
} from '@hvmmu/ppc-radix';
import { propertyRuns } from '../../../test-support/propertyRuns.js';

/**
 * Random mappings (4K/64K/2M/1G pages, random EAA, privilege) described as a
 * plain list — the model — then built as Linux would and checked three ways:
 * every model page translates to its real address with the right page size
 * and access, addresses outside it fault with NOPTE, and enumeration lists
 * exactly the model. Later mappings replace earlier ones that overlap, so
 * the model resolves overlaps by the same rule (last writer of a leaf wins;
 * a smaller page below a larger one replaces it).
 */
interface ModelPage {
  addr: number;
  shift: number;
  ra: number;
  read: boolean;
  write: boolean;
  execute: boolean;
  privileged: boolean;
}

const geometryShifts: Record<RadixGeometryName, number[]> = { '4k': [12, 21, 30], '64k': [16, 21, 30] };

function pageArb(geometry: RadixGeometryName): fc.Arbitrary<ModelPage> {
  return fc
    .record({
      slot: fc.integer({ min: 0, max: 63 }),
      shiftIndex: fc.integer({ min: 0, max: 2 }),
      raSlot: fc.integer({ min: 0, max: 255 }),
      read: fc.boolean(),
      write: fc.boolean(),
      execute: fc.boolean(),
      privileged: fc.boolean(),
      high: fc.boolean(),
    })
    .map((r) => {
      const shift = geometryShifts[geometry][r.shiftIndex]!;
      // Spread pages over the 52-bit space, aligned to their size.
      const addr = (r.high ? 2 ** 51 : 0) + r.slot * 2 ** 30 + (shift < 30 ? (r.slot % 7) * 2 ** shift * 3 : 0);
      const aligned = addr - (addr % 2 ** shift);
      return { addr: aligned, shift, ra: r.raSlot * 2 ** 30, read: r.read, write: r.write, execute: r.execute, privileged: r.privileged };
    });
}

/** The leaves the model leaves in place: a later page replaces any earlier one it overlaps (the builder rewrites that entry or a directory over it). */
function effective(pages: ModelPage[]): ModelPage[] {
  const kept: ModelPage[] = [];
  for (const p of pages) {
    for (let i = kept.length - 1; i >= 0; i--) {
      const k = kept[i]!;
      const overlap = k.addr < p.addr + 2 ** p.shift && p.addr < k.addr + 2 ** k.shift;
      if (overlap) kept.splice(i, 1);
    }
    kept.push(p);
  }
  return kept;
}

describe('radix translation and enumeration against a model of the mappings', () => {
  for (const geometry of ['4k', '64k'] as const) {
    it(`${geometry} base pages: translation, faults and enumeration agree with the model`, () => {
      fc.assert(
        fc.property(fc.array(pageArb(geometry), { minLength: 1, maxLength: 12 }), fc.integer({ min: 0, max: 2 ** 20 - 1 }), (pages, probe) => {
          const memory = new FlatGuestMemory(new ArrayBuffer(8 << 20));
          const builder = new RadixTreeBuilder(memory, 0, 8 << 20);
          const processTable = builder.createProcessTable();
          const tree = builder.createTree(geometry);
          processTable.setProcess(0, tree);
          for (const p of pages) tree.map(p.addr, p.ra, p.shift, { read: p.read, write: p.write, execute: p.execute, privileged: p.privileged });
          const model = effective(pages);
          const [ph, pl] = processTable.pointer();
          const regs = new RadixRegisters().setVirtualHypervisorPate(1n << 63n, (BigInt(ph) << 32n) | BigInt(pl));
          const walker = new RadixWalker(memory);
          const out = new RadixTranslation();
          for (const p of model) {
            const offset = probe % 2 ** p.shift;
            const ea = p.addr + offset;
            const eaHi = 0xc000_0000 + Math.floor(ea / 2 ** 32);
            const eaLo = ea >>> 0;
            const canLoad = p.read || p.write;
            expect(walker.translate(regs, eaHi, eaLo, RadixAccess.LOAD, out)).toBe(canLoad);
            if (canLoad) {
              expect(out.ra).toBe(p.ra + offset);
              expect(out.pageShift).toBe(p.shift);
            } else {
              expect([out.vector, out.cause]).toEqual([RadixVector.DSI, Dsisr.PROTFAULT]);
            }
            expect(walker.translate(regs, eaHi, eaLo, RadixAccess.STORE, out)).toBe(p.write);
            expect(walker.translate(regs, eaHi, eaLo, RadixAccess.FETCH, out)).toBe(p.execute);
            const debug = radixDebugTranslate(memory, regs, (BigInt(eaHi) << 32n) | BigInt(eaLo));
            expect(debug).toBe(canLoad || p.execute ? BigInt(p.ra + offset) : null);
            // User state: privileged pages refuse everything.
            regs.pr = true;
            expect(walker.translate(regs, eaHi, eaLo, RadixAccess.LOAD, out)).toBe(canLoad && !p.privileged);
            regs.pr = false;
          }
          // An address in no model page: NOPTE (or an earlier level's invalid entry, still NOPTE).
          const hole = 2 ** 50 + probe * 4096;
          expect(model.some((p) => hole >= p.addr && hole < p.addr + 2 ** p.shift)).toBe(false);
          expect(walker.translate(regs, 0xc000_0000 + Math.floor(hole / 2 ** 32), hole >>> 0, RadixAccess.LOAD, out)).toBe(false);
          expect([out.vector, out.cause]).toEqual([RadixVector.DSI, Dsisr.NOPTE]);
          // Enumeration lists the model, no more, no less.
          const [rh, rl] = tree.rootEntry();
          const listing = enumerateRadixTree(memory, rh, rl, { quadrant: 3 });
          const listed = listing.leaves.map((l) => `${(l.address & ((1n << 52n) - 1n)).toString(16)}:${l.pageShift}:${l.ra.toString(16)}`).sort();
          const expected = model.map((p) => `${p.addr.toString(16)}:${p.shift}:${p.ra.toString(16)}`).sort();
          expect(listed).toEqual(expected);
          expect(listing.badEntries).toBe(0);
        }),
        { numRuns: propertyRuns(150) },
      );
    });
  }

  it('hostile tables: random bytes everywhere never throw, never hang, and stay within the entry budget', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 4096, maxLength: 4096 }),
        fc.integer({ min: 0, max: 2 ** 32 - 1 }),
        fc.integer({ min: 0, max: 2 }),
        (noise, ea, access) => {
          const buffer = new ArrayBuffer(1 << 20);
          const bytes = new Uint8Array(buffer);
          // The same noise in every page: whatever an entry points at inside the image is noise too.
          for (let at = 0; at < bytes.length; at += 4096) bytes.set(noise, at);
          const memory = new FlatGuestMemory(buffer);
          const regs = new RadixRegisters().setVirtualHypervisorPate(1n << 63n, 0x1000n);
          const out = new RadixTranslation();
          const walker = new RadixWalker(memory);
          for (const quadrant of [0, 3]) {
            const ok = walker.translate(regs, quadrant * 0x4000_0000, ea, access, out);
            if (!ok) expect([RadixVector.DSI, RadixVector.ISI, RadixVector.DSEG, RadixVector.ISEG]).toContain(out.vector);
            expect(out.refs).toBeLessThanOrEqual(5);
          }
          const listing = enumerateRadixTree(memory, noise[0]! * 0x100_0000, 0x1000 | 0xa0 | 13, { maxEntries: 20_000 });
          expect(listing.entriesRead).toBeLessThanOrEqual(20_000);
        },
      ),
      { numRuns: propertyRuns(200) },
    );
  });
});
