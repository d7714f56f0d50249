import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { HashPageTable, HptAccess, HptRegisters, HptResize, HptTranslation, HptWalker, ResizeStatus, Slb } from '@hvmmu/ppc-hpt';
import { propertyRuns } from '../../../test-support/propertyRuns.js';

const M64 = (1n << 64n) - 1n;

interface Page {
  slot: number; // SLB slot / segment
  page: number; // page index in the segment
  secondary: boolean;
  bolted: boolean;
}

const SEGMENTS = [
  { esid: 1n, vsid: 0x1234n, oneT: false, base: 12, llp: 0x000n },
  { esid: 2n, vsid: 0x5_6789n, oneT: false, base: 16, llp: 0x110n },
  { esid: 3n, vsid: 0x9abn, oneT: true, base: 16, llp: 0x110n },
  { esid: 4n, vsid: 0x77n, oneT: true, base: 24, llp: 0x100n },
];

/** Place an entry for `p` where the ISA's hash puts it (BigInt, independent of the walker), as the guest would with H_ENTER. */
function place(hpt: HashPageTable, p: Page, k: number): { ea: bigint; index: number } | null {
  const s = SEGMENTS[p.slot]!;
  const segBits = s.oneT ? 40n : 28n;
  const off = BigInt(p.page) << BigInt(s.base);
  if (off >= 1n << segBits) return null;
  let hash = s.oneT ? s.vsid ^ ((s.vsid << 25n) & M64) ^ BigInt(p.page) : s.vsid ^ BigInt(p.page);
  if (p.secondary) hash = ~hash & M64;
  const group = Number(hash & BigInt(hpt.hashMask));
  let slot = 0;
  while (slot < 8 && (hpt.view.getUint32((group * 8 + slot) * 16 + 4, false) & 1) !== 0) slot++;
  if (slot === 8) return null;
  const index = group * 8 + slot;
  const va = (s.vsid << segBits) | off;
  const lp = s.base === 16 ? 0x1n : 0n;
  const avpn = ((va >> 23n) << 7n) & ~((((1n << BigInt(s.base)) - 1n) >> 23n) << 7n);
  const dword0 = ((s.oneT ? 1n : 0n) << 62n) | avpn | (s.base > 12 ? 0x4n : 0n) | (p.secondary ? 0x2n : 0n) | (p.bolted ? 0x10n : 0n) | 1n;
  const dword1 = (BigInt(k + 1) << BigInt(Math.max(24, s.base))) | (lp << 12n) | 0x182n;
  hpt.view.setBigUint64(index * 16, dword0, false);
  hpt.view.setBigUint64(index * 16 + 8, dword1, false);
  const ea = s.oneT ? (s.esid << 40n) | off : (s.esid << 28n) | off;
  return { ea, index };
}

function slb(): Slb {
  const b = new Slb(32);
  SEGMENTS.forEach((s, n) => {
    const esidWord = (s.oneT ? s.esid << 40n : s.esid << 28n) | 0x0800_0000n | BigInt(n);
    const vsidWord = (s.oneT ? (1n << 62n) | (s.vsid << 24n) : s.vsid << 12n) | s.llp;
    expect(b.slbmteBig(esidWord, vsidWord)).toBe(true);
  });
  return b;
}

function translate(hpt: HashPageTable, b: Slb, ea: bigint): bigint | null {
  const out = new HptTranslation();
  const ok = new HptWalker().translate(new HptRegisters(), b, hpt, Number(ea >> 32n), Number(ea & 0xffff_ffffn), HptAccess.LOAD, out, false);
  return ok ? out.raBig : null;
}

describe('HPT resize (KVM resize_hpt_rehash_hpte)', () => {
  it('prepare/commit protocol: flags and shifts checked, commit of another size or without prepare is H_CLOSED, shift 0 cancels', () => {
    const r = new HptResize(new HashPageTable(18), 24);
    expect(r.prepare(0, 1, 20)).toBe(ResizeStatus.H_PARAMETER);
    expect(r.prepare(0, 0, 17)).toBe(ResizeStatus.H_PARAMETER);
    expect(r.prepare(0, 0, 25)).toBe(ResizeStatus.H_RESOURCE);
    expect(r.commit(0, 0, 20)).toBe(ResizeStatus.H_CLOSED);
    expect(r.prepare(0, 0, 20)).toBe(ResizeStatus.H_SUCCESS);
    expect(r.commit(0, 0, 19)).toBe(ResizeStatus.H_CLOSED);
    expect(r.prepare(0, 0, 20)).toBe(ResizeStatus.H_SUCCESS);
    expect(r.prepare(0, 0, 0)).toBe(ResizeStatus.H_SUCCESS);
    expect(r.commit(0, 0, 20)).toBe(ResizeStatus.H_CLOSED);
    expect(r.current.order).toBe(18);
  });

  it('growing and shrinking: every bolted entry translates the same after the move (hash found again from AVPN and group), non-bolted ones are gone', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ slot: fc.integer({ min: 0, max: 3 }), page: fc.integer({ min: 0, max: 4095 }), secondary: fc.boolean(), bolted: fc.boolean() }), {
          maxLength: 60,
        }),
        fc.constantFrom([18, 21], [21, 18], [19, 20], [20, 19]),
        (pages, [from, to]) => {
          const hpt = new HashPageTable(from!);
          const b = slb();
          const placed: { ea: bigint; bolted: boolean; ra: bigint }[] = [];
          const seen = new Set<string>();
          pages.forEach((p, k) => {
            const key = `${p.slot}:${p.page}`;
            if (seen.has(key)) return;
            const at = place(hpt, p, k);
            if (at === null) return;
            seen.add(key);
            const ra = translate(hpt, b, at.ea);
            expect(ra).not.toBeNull();
            placed.push({ ea: at.ea, bolted: p.bolted, ra: ra! });
          });
          const resize = new HptResize(hpt, 24);
          expect(resize.prepare(0, 0, to!)).toBe(ResizeStatus.H_SUCCESS);
          const status = resize.commit(0, 0, to!);
          if (status === ResizeStatus.H_PTEG_FULL) {
            expect(resize.current).toBe(hpt); // nothing changed
            return;
          }
          expect(status).toBe(ResizeStatus.H_SUCCESS);
          expect(resize.current.order).toBe(to);
          for (const e of placed) expect(translate(resize.current, b, e.ea)).toBe(e.bolted ? e.ra : null);
        },
      ),
      { numRuns: propertyRuns(150) },
    );
  });

  it('shrinking onto an occupied slot: bolted on bolted fails the commit (H_PTEG_FULL) and changes nothing; a non-bolted entry is just dropped', () => {
    for (const secondBolted of [true, false]) {
      const hpt = new HashPageTable(19);
      const b = slb();
      // Pages 5 and 5 ^ 0x800 of segment 0 hash 0x800 apart: the same group (and slot 0) once the mask loses bit 11.
      const a = place(hpt, { slot: 0, page: 5, secondary: false, bolted: true }, 0)!;
      const c = place(hpt, { slot: 0, page: 5 ^ 0x800, secondary: false, bolted: secondBolted }, 1)!;
      expect(a.index % 8).toBe(0);
      expect(c.index % 8).toBe(0);
      const ra = translate(hpt, b, a.ea);
      const r = new HptResize(hpt, 24);
      r.prepare(0, 0, 18);
      if (secondBolted) {
        expect(r.commit(0, 0, 18)).toBe(ResizeStatus.H_PTEG_FULL);
        expect(r.current).toBe(hpt);
      } else {
        expect(r.commit(0, 0, 18)).toBe(ResizeStatus.H_SUCCESS);
        expect(translate(r.current, b, a.ea)).toBe(ra);
        expect(translate(r.current, b, c.ea)).toBeNull();
      }
    }
  });
});
