import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { HashPageTable, HptAccess, HptCause, HptRegisters, HptTranslation, HptVector, HptWalker, Slb } from '@hvmmu/ppc-hpt';
import { propertyRuns } from '../../../test-support/propertyRuns.js';

/**
 * Hand-built HPTs, with every group and word computed here in BigInt from
 * POWER ISA v2.07 Book III 5.7.7 (hash, AVPN, L/LP) — independently of the
 * walker's 32-bit-halves arithmetic — for what a Linux capture does not
 * show: 4K pages, 256M segments, 16G pages, every PP value under both keys,
 * storage keys with AMR/IAMR, N segments, G/N pages, R/C.
 */
const M64 = (1n << 64n) - 1n;

interface Seg {
  esid: bigint; // EA >> 28 (256M) or EA >> 40 (1T)
  vsid: bigint;
  oneT: boolean;
  llp: bigint; // SLB L||LP: 0 (4K), 0x110 (64K), 0x100 (16M), 0x120 (16G)
  ks?: boolean;
  kp?: boolean;
  n?: boolean;
}

function slbOf(segs: Seg[]): Slb {
  const slb = new Slb(32);
  segs.forEach((s, slot) => {
    const esidWord = s.oneT ? (s.esid << 40n) | 0x0800_0000n : (s.esid << 28n) | 0x0800_0000n;
    const vsidWord = (s.oneT ? (1n << 62n) | (s.vsid << 24n) : s.vsid << 12n) | (s.ks ? 0x800n : 0n) | (s.kp ? 0x400n : 0n) | (s.n ? 0x200n : 0n) | s.llp;
    expect(slb.slbmteBig(esidWord | BigInt(slot), vsidWord)).toBe(true);
  });
  return slb;
}

/** Insert an HPTE for EA (in segment s) mapping real address ra with a page of 2^shift: computes the group and words from the ISA. */
function insert(hpt: HashPageTable, s: Seg, ea: bigint, baseShift: number, actualShift: number, ra: bigint, dword1Extra: bigint, secondary = false): number {
  const segBits = s.oneT ? 40n : 28n;
  const off = ea & ((1n << segBits) - 1n);
  const p = BigInt(baseShift);
  const page = off >> p;
  let hash = s.oneT ? s.vsid ^ (s.vsid << 25n) ^ page : s.vsid ^ page;
  if (secondary) hash = ~hash & M64;
  const group = Number(hash & BigInt(hpt.hashMask));
  // AVPN = VA >> 23 at bit 7; B at 63..62; L for a large base page; H when secondary.
  const va = (s.vsid << segBits) | off;
  const dword0 = ((s.oneT ? 1n : 0n) << 62n) | ((va >> 23n) << 7n) | (baseShift > 12 || actualShift > 12 ? 0x4n : 0n) | (secondary ? 0x2n : 0n) | 1n;
  const lp =
    baseShift === 12 && actualShift === 12
      ? 0n
      : baseShift === 12 && actualShift === 16
        ? 0x7n
        : baseShift === 12 && actualShift === 24
          ? 0x38n
          : baseShift === 16 && actualShift === 16
            ? 0x1n
            : baseShift === 16 && actualShift === 24
              ? 0x8n
              : baseShift === 34
                ? 0x3n
                : 0n;
  const dword1 = (ra & ~((1n << BigInt(actualShift)) - 1n)) | (lp << 12n) | dword1Extra;
  for (let slot = 0; slot < 8; slot++) {
    const at = (group * 8 + slot) * 16;
    if ((hpt.view.getUint32(at + 4, false) & 1) === 0) {
      hpt.view.setBigUint64(at, dword0, false);
      hpt.view.setBigUint64(at + 8, dword1, false);
      return group * 8 + slot;
    }
  }
  throw new Error('group full');
}

const RC = 0x180n;
const split = (ea: bigint): [number, number] => [Number(ea >> 32n), Number(ea & 0xffff_ffffn)];

describe('hash translation on hand-built tables', () => {
  it('4K pages in a 256M segment, 64K in 1T, 16M MPSS, 16G: the RA keeps the EA bits below the actual page size', () => {
    const hpt = new HashPageTable(18);
    const segs: Seg[] = [
      { esid: 0x123n, vsid: 0x7_5432_1abcn, oneT: false, llp: 0n },
      { esid: 0x7fn, vsid: 0x1_2345n, oneT: true, llp: 0x110n },
      { esid: 0x55n, vsid: 0x3_3333n, oneT: false, llp: 0x120n },
    ];
    const slb = slbOf(segs);
    const regs = new HptRegisters();
    const w = new HptWalker();
    const out = new HptTranslation();
    const ea4k = (0x123n << 28n) | 0x0bc_d000n;
    insert(hpt, segs[0]!, ea4k, 12, 12, 0x4_5678_9000n, RC | 0x2n);
    expect(w.translate(regs, slb, hpt, ...split(ea4k + 0xabcn), HptAccess.STORE, out)).toBe(true);
    expect([out.raBig, out.pageShift]).toEqual([0x4_5678_9abcn, 12]);
    const ea64k = (0x7fn << 40n) | 0x12_3456_0000n;
    insert(hpt, segs[1]!, ea64k, 16, 24, 0x9_0100_0000n, RC | 0x2n, true); // 16M actual in a 64K segment, secondary group
    expect(w.translate(regs, slb, hpt, ...split(ea64k + 0x9876n), HptAccess.LOAD, out)).toBe(true);
    expect([out.raBig, out.pageShift]).toEqual([0x9_0100_0000n | ((ea64k + 0x9876n) & 0xff_ffffn), 24]);
    const ea16g = 0x55n << 28n; // a 16G page in a 256M segment maps the segment's 256M of it
    insert(hpt, segs[2]!, ea16g, 34, 34, 0x8_0000_0000n, RC | 0x2n);
    expect(w.translate(regs, slb, hpt, ...split(ea16g + 0x123_4567n), HptAccess.LOAD, out)).toBe(true);
    expect([out.raBig, out.pageShift]).toEqual([0x8_0000_0000n | ((ea16g + 0x123_4567n) & 0x3_ffff_ffffn), 34]);
    expect(out.refs).toBeLessThanOrEqual(16);
  });

  it('PP under both keys: every value allows what the ISA table says (Ks for privileged state, Kp for problem state)', () => {
    // POWER ISA v2.07 Book III 5.7.7.3, as QEMU ppc_hash64_pte_prot: key 0 — pp 0,1,2 rw, 3 and 6 r, 4,5,7 none; key 1 — 1,3 r, 2 rw, others none.
    const expected: Record<number, [string, string]> = {
      0: ['rw', ''],
      1: ['rw', 'r'],
      2: ['rw', 'rw'],
      3: ['r', 'r'],
      4: ['', ''],
      5: ['', ''],
      6: ['r', ''],
      7: ['', ''],
    };
    for (let pp = 0; pp < 8; pp++) {
      const hpt = new HashPageTable(18);
      const seg: Seg = { esid: 1n, vsid: 0x99n, oneT: false, llp: 0n, ks: false, kp: true };
      const slb = slbOf([seg]);
      const ea = (1n << 28n) | 0x5000n;
      insert(hpt, seg, ea, 12, 12, 0x10_0000n, RC | BigInt(pp & 3) | (pp & 4 ? 1n << 63n : 0n));
      for (const pr of [false, true]) {
        const regs = new HptRegisters();
        regs.pr = pr;
        const w = new HptWalker();
        const out = new HptTranslation();
        const r = w.translate(regs, slb, hpt, ...split(ea), HptAccess.LOAD, out, false);
        const wr = w.translate(regs, slb, hpt, ...split(ea), HptAccess.STORE, out, false);
        expect(`${r ? 'r' : ''}${wr ? 'w' : ''}`, `pp ${pp} pr ${pr}`).toBe(expected[pp]![pr ? 1 : 0]);
        if (!wr) {
          w.translate(regs, slb, hpt, ...split(ea), HptAccess.STORE, out);
          expect([out.vector, out.cause]).toEqual([HptVector.DSI, HptCause.PROTFAULT | HptCause.STORE]);
        }
      }
    }
  });

  it('storage keys: AMR denies loads or stores, IAMR fetches, for the HPTE key (DSISR/SRR1 key bit)', () => {
    const hpt = new HashPageTable(18);
    const seg: Seg = { esid: 2n, vsid: 0x42n, oneT: false, llp: 0n };
    const slb = slbOf([seg]);
    const ea = 2n << 28n;
    // key 5: KEY_HI (bits 61..60) = 0b00, KEY_LO (bits 11..9) = 0b101
    insert(hpt, seg, ea, 12, 12, 0x20_0000n, RC | 0x2n | (5n << 9n));
    const regs = new HptRegisters();
    const w = new HptWalker();
    const out = new HptTranslation();
    const keyBits = (v: bigint) => v << BigInt(2 * (31 - 5));
    regs.setAmr(keyBits(2n)); // store disabled for key 5
    expect(w.translate(regs, slb, hpt, ...split(ea), HptAccess.LOAD, out)).toBe(true);
    expect(w.translate(regs, slb, hpt, ...split(ea), HptAccess.STORE, out)).toBe(false);
    expect([out.vector, out.cause]).toEqual([HptVector.DSI, HptCause.KEY | HptCause.STORE]);
    regs.setAmr(keyBits(1n)); // load disabled
    expect(w.translate(regs, slb, hpt, ...split(ea), HptAccess.LOAD, out)).toBe(false);
    expect(out.cause).toBe(HptCause.KEY);
    regs.setAmr(keyBits(2n) << 2n); // key 4's bits: key 5 unaffected
    expect(w.translate(regs, slb, hpt, ...split(ea), HptAccess.STORE, out)).toBe(true);
    regs.setAmr(0n).setIamr(keyBits(1n));
    expect(w.translate(regs, slb, hpt, ...split(ea), HptAccess.FETCH, out)).toBe(false);
    expect([out.vector, out.cause]).toEqual([HptVector.ISI, HptCause.KEY]);
  });

  it('no-execute: an N segment refuses fetches before the search; N or G pages refuse them after', () => {
    const hpt = new HashPageTable(18);
    const segs: Seg[] = [
      { esid: 3n, vsid: 0x77n, oneT: false, llp: 0n, n: true },
      { esid: 4n, vsid: 0x78n, oneT: false, llp: 0n },
    ];
    const slb = slbOf(segs);
    const w = new HptWalker();
    const out = new HptTranslation();
    const regs = new HptRegisters();
    insert(hpt, segs[0]!, 3n << 28n, 12, 12, 0x30_0000n, RC | 0x2n);
    expect(w.translate(regs, slb, hpt, ...split(3n << 28n), HptAccess.FETCH, out)).toBe(false);
    expect([out.vector, out.cause, out.refs]).toEqual([HptVector.ISI, HptCause.NOEXEC_GUARD, 0]);
    insert(hpt, segs[1]!, 4n << 28n, 12, 12, 0x31_0000n, RC | 0x2n | 0x8n); // G
    expect(w.translate(regs, slb, hpt, ...split(4n << 28n), HptAccess.LOAD, out)).toBe(true);
    expect(w.translate(regs, slb, hpt, ...split(4n << 28n), HptAccess.FETCH, out)).toBe(false);
    expect([out.vector, out.cause]).toEqual([HptVector.ISI, HptCause.NOEXEC_GUARD]);
  });

  it('R and C are set in the HPTE when the guest sees the access; a load leaves a clean page read-only', () => {
    const hpt = new HashPageTable(18);
    const seg: Seg = { esid: 5n, vsid: 0x5an, oneT: false, llp: 0n };
    const slb = slbOf([seg]);
    const ptex = insert(hpt, seg, 5n << 28n, 12, 12, 0x40_0000n, 0x2n);
    const w = new HptWalker();
    const out = new HptTranslation();
    const regs = new HptRegisters();
    const dw1 = () => hpt.view.getBigUint64(ptex * 16 + 8, false) & 0x180n;
    expect(w.translate(regs, slb, hpt, ...split(5n << 28n), HptAccess.LOAD, out, false)).toBe(true);
    expect(dw1()).toBe(0n);
    expect(w.translate(regs, slb, hpt, ...split(5n << 28n), HptAccess.LOAD, out)).toBe(true);
    expect([dw1(), out.prot & 2]).toEqual([0x100n, 0]);
    expect(w.translate(regs, slb, hpt, ...split(5n << 28n), HptAccess.STORE, out)).toBe(true);
    expect([dw1(), out.prot & 2, out.ptex]).toEqual([0x180n, 2, ptex]);
  });

  it('an entry whose L/LP encoding is not one of the segment page size’s is skipped, as the architecture says', () => {
    const hpt = new HashPageTable(18);
    const seg16m: Seg = { esid: 6n, vsid: 0x66n, oneT: false, llp: 0x100n };
    const slb = slbOf([seg16m]);
    // A 4K entry (L = 0) in the group a 16M-base segment searches: it hashes the same way for page 0 but must not match.
    insert(hpt, { ...seg16m, llp: 0n }, 6n << 28n, 24, 24, 0x100_0000n, RC);
    const w = new HptWalker();
    const out = new HptTranslation();
    const regs = new HptRegisters();
    // Rewrite the inserted entry's L bit off: a 4K page in a 16M segment.
    for (let i = 0; i < hpt.entries; i++) {
      const v = hpt.view.getUint32(i * 16 + 4, false);
      if ((v & 1) !== 0) hpt.view.setUint32(i * 16 + 4, v & ~0x4, false);
    }
    expect(w.translate(regs, slb, hpt, ...split(6n << 28n), HptAccess.LOAD, out)).toBe(false);
    expect([out.vector, out.cause]).toEqual([HptVector.DSI, HptCause.NOPTE]);
  });

  it('slbmte refuses a slot past the SLB, reserved ESID bits, B = 2/3 and an unsupported page size, writing nothing', () => {
    const slb = new Slb(32);
    expect(slb.slbmteBig((1n << 28n) | 0x0800_0000n | 32n, 0n)).toBe(false);
    expect(slb.slbmteBig((1n << 28n) | 0x0800_0000n | 0x1000_0000n, 0n)).toBe(true); // ESID bit, slot 0: fine
    expect(slb.slbmteBig(0x0800_0000n | 0x100_0000n | 1n, 0n)).toBe(false); // bit 24 reserved
    expect(slb.slbmteBig(0x0800_0000n | 2n, 2n << 62n)).toBe(false);
    expect(slb.slbmteBig(0x0800_0000n | 3n, 0x130n)).toBe(false);
    expect([slb.entry(1), slb.entry(2), slb.entry(3)]).toEqual([
      { esid: 0n, vsid: 0n },
      { esid: 0n, vsid: 0n },
      { esid: 0n, vsid: 0n },
    ]);
  });

  it('hostile tables: random HPTE bytes and random SLB words never throw, read at most 16 HPTEs, and answer with a legal interrupt', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 4096, maxLength: 4096 }),
        fc.bigInt({ min: 0n, max: M64 }),
        fc.bigInt({ min: 0n, max: M64 }),
        fc.bigInt({ min: 0n, max: M64 }),
        fc.integer({ min: 0, max: 2 }),
        (noise, esid, vsid, ea, access) => {
          const hpt = new HashPageTable(18);
          for (let at = 0; at < hpt.bytes.length; at += 4096) hpt.bytes.set(noise, at);
          const slb = new Slb(32);
          slb.slbmteBig((esid & ~0xfffn) | 0n, vsid);
          slb.slbmteBig((ea & ~0xfff_ffffn) | 0x0800_0000n | 1n, vsid);
          const out = new HptTranslation();
          const ok = new HptWalker().translate(new HptRegisters(), slb, hpt, ...split(ea), access, out);
          expect(out.refs).toBeLessThanOrEqual(16);
          if (!ok) expect([HptVector.DSI, HptVector.ISI, HptVector.DSEG, HptVector.ISEG]).toContain(out.vector);
        },
      ),
      { numRuns: propertyRuns(300) },
    );
  });

  it('SLB lookups with the cache answer as an in-order scan of the slots, through random slbmte, slbie and slbia (duplicates included)', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            op: fc.integer({ min: 0, max: 9 }),
            slot: fc.integer({ min: 0, max: 7 }),
            esid: fc.integer({ min: 0, max: 5 }),
            oneT: fc.boolean(),
            v: fc.boolean(),
          }),
          { maxLength: 60 },
        ),
        (ops) => {
          const slb = new Slb(8);
          const model: { esid: bigint; vsid: bigint }[] = Array.from({ length: 8 }, () => ({ esid: 0n, vsid: 0n }));
          const scan = (ea: bigint): number => {
            for (let n = 0; n < 8; n++) {
              const { esid, vsid } = model[n]!;
              const oneT = vsid >> 62n === 1n;
              const want = oneT ? (ea & ~((1n << 40n) - 1n)) | 0x0800_0000n : (ea & ~((1n << 28n) - 1n)) | 0x0800_0000n;
              if (esid === want && vsid >> 62n === (oneT ? 1n : 0n)) return n;
            }
            return -1;
          };
          const eaOf = (e: number, oneT: boolean): bigint => (oneT ? BigInt(e) << 40n : (BigInt(e) << 28n) | (BigInt(e) << 40n));
          for (const o of ops) {
            const ea = eaOf(o.esid, o.oneT);
            if (o.op < 5) {
              const esidWord = (o.oneT ? ea & ~((1n << 40n) - 1n) : ea & ~((1n << 28n) - 1n)) | (o.v ? 0x0800_0000n : 0n);
              const vsidWord = (o.oneT ? 1n << 62n : 0n) | (BigInt(o.esid + 1) << 24n);
              expect(slb.slbmteBig(esidWord | BigInt(o.slot), vsidWord)).toBe(true);
              model[o.slot] = { esid: esidWord, vsid: vsidWord };
            } else if (o.op < 7) {
              const n = scan(ea);
              slb.slbie(Number(ea >> 32n), Number(ea & 0xffff_ffffn));
              if (n >= 0) model[n]!.esid &= ~0x0800_0000n;
            } else if (o.op === 7) {
              slb.slbia();
              for (let n = 1; n < 8; n++) model[n]!.esid &= ~0x0800_0000n;
            }
            for (let e = 0; e < 6; e++) {
              for (const oneT of [false, true]) {
                const probe = eaOf(e, oneT) | 0x1234n;
                expect(slb.lookup(Number(probe >> 32n), Number(probe & 0xffff_ffffn))).toBe(scan(probe));
              }
            }
          }
        },
      ),
      { numRuns: propertyRuns(300) },
    );
  });
});
