import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { HypercallRegisters } from '@hvmmu/core';
import { HashPageTable, HptHypercalls, PaprStatus } from '@hvmmu/ppc-hpt';
import { propertyRuns } from '../../../test-support/propertyRuns.js';

const H_EXACT = 1n << 39n;
const H_READ_4 = 1n << 37n;
const H_AVPN = 1n << 31n;
const H_ANDCOND = 1n << 30n;
const M64 = (1n << 64n) - 1n;

function regs(...args: bigint[]): HypercallRegisters {
  const r = new HypercallRegisters(9);
  args.forEach((a, i) => {
    r.setArgHalves(i, Number((a >> 32n) & 0xffff_ffffn), Number(a & 0xffff_ffffn));
  });
  return r;
}
const ret = (r: HypercallRegisters, i: number): bigint => (BigInt(r.retHi[i]!) << 32n) | BigInt(r.retLo[i]!);
const arg = (r: HypercallRegisters, i: number): bigint => (BigInt(r.argHi[i]!) << 32n) | BigInt(r.argLo[i]!);

describe('HPT hypercalls (PAPR, KVM semantics), hand-worked registers', () => {
  it('H_ENTER: first free slot of the group, or the exact slot; V set and the hypervisor bits stripped; a full group is H_PTEG_FULL', () => {
    const h = new HptHypercalls(new HashPageTable(18));
    const v = 0x0000_1234_5678_0000n | 0x60n; // AVPN bits, the guest tries HVLOCK|ABSENT, no V
    const r1 = 0x0000_0000_4000_0196n; // RPN, R, C, M, PP 2
    for (let k = 0; k < 8; k++) {
      const r = regs(0n, 0x45n, v, r1);
      expect(h.enter(r)).toBe(PaprStatus.H_SUCCESS);
      expect(ret(r, 0)).toBe(0x40n + BigInt(k)); // group 0x40/8, slots in order
    }
    expect(h.enter(regs(0n, 0x45n, v, r1))).toBe(PaprStatus.H_PTEG_FULL);
    expect(h.enter(regs(H_EXACT, 0x43n, v, r1))).toBe(PaprStatus.H_PTEG_FULL);
    const r = regs(H_EXACT, 0x101n, v, r1);
    expect(h.enter(r)).toBe(PaprStatus.H_SUCCESS);
    expect(ret(r, 0)).toBe(0x101n);
    expect(h.hpt.view.getBigUint64(0x101 * 16, false)).toBe((v & ~0x60n) | 1n);
    expect(h.hpt.view.getBigUint64(0x101 * 16 + 8, false)).toBe(r1);
  });

  it('H_ENTER refuses a page-size encoding KVM rejects and a ptex past the table, before anything changes', () => {
    const hpt = new HashPageTable(18);
    const h = new HptHypercalls(hpt);
    const before = hpt.bytes.slice();
    expect(h.enter(regs(0n, 0n, 0x4n | 1n, 0x5000n))).toBe(PaprStatus.H_PARAMETER); // L with LP 5
    expect(h.enter(regs(0n, 16384n, 1n, 0n))).toBe(PaprStatus.H_PARAMETER);
    expect(h.enter(regs(0n, 1n << 32n, 1n, 0n))).toBe(PaprStatus.H_PARAMETER);
    expect(Buffer.from(hpt.bytes).equals(Buffer.from(before))).toBe(true);
  });

  it('H_REMOVE with H_AVPN and H_ANDCOND; r4/r5 the old words; a second remove is H_NOT_FOUND', () => {
    const h = new HptHypercalls(new HashPageTable(18));
    h.enter(regs(H_EXACT, 9n, 0x0000_00ab_cdef_0080n, 0x1234_5186n));
    expect(h.remove(regs(H_AVPN, 9n, 0x0000_00ab_cdef_0100n))).toBe(PaprStatus.H_NOT_FOUND); // AVPN differs
    expect(h.remove(regs(H_ANDCOND, 9n, 0x0000_0000_0000_0080n))).toBe(PaprStatus.H_NOT_FOUND); // dword0 & avpn ≠ 0
    const r = regs(H_AVPN, 9n, 0x0000_00ab_cdef_0080n); // the AVPN field includes bit 7
    expect(h.remove(r)).toBe(PaprStatus.H_SUCCESS);
    expect([ret(r, 0), ret(r, 1)]).toEqual([0x0000_00ab_cdef_0081n, 0x1234_5186n]);
    expect(h.remove(regs(0n, 9n, 0n))).toBe(PaprStatus.H_NOT_FOUND);
  });

  it('H_READ one entry or four (H_READ_4 aligns down); H_PROTECT sets PP0/PP/N/key from the flags; H_CLEAR_REF/MOD return dword1 before', () => {
    const h = new HptHypercalls(new HashPageTable(18));
    for (let i = 8; i < 12; i++) h.enter(regs(H_EXACT, BigInt(i), BigInt(i) << 12n, 0x1000_0000n * BigInt(i - 7) + 0x182n));
    const r4 = regs(H_READ_4, 10n);
    expect(h.read(r4)).toBe(PaprStatus.H_SUCCESS);
    expect([ret(r4, 0), ret(r4, 6), ret(r4, 7)]).toEqual([(8n << 12n) | 1n, (11n << 12n) | 1n, 0x4000_0000n + 0x182n]);
    // H_PROTECT: flags PP0 (bit 8 → 63), key 0b10_101 (bits 13..12 → 61..60, 11..9 in place), N, PP 1.
    const flags = 0x100n | 0x2000n | 0xa00n | 0x4n | 0x1n;
    expect(h.protect(regs(flags, 8n, 0n))).toBe(PaprStatus.H_SUCCESS);
    const r1 = h.hpt.view.getBigUint64(8 * 16 + 8, false);
    expect(r1).toBe((1n << 63n) | (2n << 60n) | 0x1000_0000n | 0xa00n | 0x180n | 0x4n | 0x1n);
    const cr = regs(0n, 9n);
    expect(h.clearRc(cr, 0x100)).toBe(PaprStatus.H_SUCCESS);
    expect(ret(cr, 0)).toBe(0x2000_0182n);
    expect(h.hpt.view.getBigUint64(9 * 16 + 8, false)).toBe(0x2000_0082n);
    expect(h.clearRc(regs(0n, 100n), 0x80)).toBe(PaprStatus.H_NOT_FOUND);
  });

  it('H_BULK_REMOVE: responses in the TS words (success with R/C, not found), end of list, and a malformed request stops the call', () => {
    const h = new HptHypercalls(new HashPageTable(18));
    h.enter(regs(H_EXACT, 1n, 0x1000n, 0x180n)); // R and C
    h.enter(regs(H_EXACT, 2n, 0x2000n, 0x100n)); // R only
    const request = (ptex: bigint, match = 0n): bigint => (1n << 62n) | (match << 56n) | ptex;
    const r = regs(request(1n), 0n, request(2n, 2n), 0x2000n, request(3n), 0n, 3n << 62n, 0n);
    expect(h.bulkRemove(r)).toBe(PaprStatus.H_SUCCESS);
    expect(arg(r, 0)).toBe((0x80n << 56n) | (3n << 58n) | 1n); // success, R and C
    expect(arg(r, 2)).toBe((0x82n << 56n) | (2n << 58n) | 2n); // success (AVPN match), R
    expect(arg(r, 4)).toBe((0x90n << 56n) | 3n); // not found
    const bad = regs(request(1n << 40n), 0n, request(5n), 0n);
    expect(h.bulkRemove(bad)).toBe(PaprStatus.H_PARAMETER);
    expect(arg(bad, 0) >> 56n).toBe(0xa0n);
    expect(arg(bad, 2)).toBe(request(5n)); // untouched after the error
  });

  it('random hcall sequences agree with a plain model of the guest view after every step', () => {
    const op = fc.record({
      kind: fc.integer({ min: 0, max: 6 }),
      ptex: fc.oneof(fc.integer({ min: 0, max: 31 }), fc.constant(16384), fc.integer({ min: 0, max: 16383 })),
      exact: fc.boolean(),
      avpn: fc.boolean(),
      w0: fc.bigInt({ min: 0n, max: M64 }),
      w1: fc.bigInt({ min: 0n, max: M64 }),
    });
    fc.assert(
      fc.property(fc.array(op, { maxLength: 80 }), (ops) => {
        const hpt = new HashPageTable(18);
        const h = new HptHypercalls(hpt);
        const model = new Map<number, [bigint, bigint]>();
        const modelWord = (i: number): [bigint, bigint] => model.get(i) ?? [0n, 0n];
        const validIn = (i: number): boolean => (modelWord(i)[0] & 1n) === 1n;
        for (const o of ops) {
          const p = o.ptex;
          if (o.kind === 0) {
            // 4K entries (L clear) always have a valid encoding.
            const v0 = o.w0 & ~0x4n;
            const r = regs(o.exact ? H_EXACT : 0n, BigInt(p), v0, o.w1);
            const status = h.enter(r);
            if (p >= 16384) expect(status).toBe(PaprStatus.H_PARAMETER);
            else {
              let slot = o.exact ? p : -1;
              if (!o.exact) for (let s = p & ~7; s < (p & ~7) + 8 && slot < 0; s++) if (!validIn(s)) slot = s;
              if (slot < 0 || validIn(slot)) expect(status).toBe(PaprStatus.H_PTEG_FULL);
              else {
                expect(status).toBe(PaprStatus.H_SUCCESS);
                expect(ret(r, 0)).toBe(BigInt(slot));
                model.set(slot, [(v0 & ~0x61n) | 1n, o.w1 & ~(1n << 62n)]);
              }
            }
          } else if (o.kind === 1) {
            const [w0, w1] = modelWord(p);
            const avpn = o.avpn ? w0 & ~0x7fn : 0n;
            const r = regs(o.avpn ? H_AVPN : 0n, BigInt(p), avpn);
            const status = h.remove(r);
            if (p >= 16384) expect(status).toBe(PaprStatus.H_PARAMETER);
            else if (!validIn(p)) expect(status).toBe(PaprStatus.H_NOT_FOUND);
            else {
              expect(status).toBe(PaprStatus.H_SUCCESS);
              expect([ret(r, 0), ret(r, 1)]).toEqual([w0, w1]);
              model.set(p, [0n, w1]);
            }
          } else if (o.kind === 2 && p < 16384) {
            const r = regs(0n, BigInt(p));
            expect(h.read(r)).toBe(PaprStatus.H_SUCCESS);
            expect([ret(r, 0), ret(r, 1)]).toEqual(modelWord(p));
          } else if (o.kind === 3) {
            const flags = o.w0 & 0x3f07n;
            const status = h.protect(regs(flags, BigInt(p), 0n));
            if (p >= 16384) expect(status).toBe(PaprStatus.H_PARAMETER);
            else if (!validIn(p)) expect(status).toBe(PaprStatus.H_NOT_FOUND);
            else {
              const [w0, w1] = modelWord(p);
              const mask = (1n << 63n) | (3n << 60n) | 0xe07n;
              const nw = ((flags & 0x100n) << 55n) | ((flags & 0x3000n) << 48n) | (flags & 0xe07n);
              model.set(p, [w0, (w1 & ~mask) | nw]);
            }
          } else if (o.kind === 4 || o.kind === 5) {
            const bit = o.kind === 4 ? 0x100 : 0x80;
            const r = regs(0n, BigInt(p));
            const status = h.clearRc(r, bit);
            if (p >= 16384) expect(status).toBe(PaprStatus.H_PARAMETER);
            else if (!validIn(p)) expect(status).toBe(PaprStatus.H_NOT_FOUND);
            else {
              const [w0, w1] = modelWord(p);
              expect(ret(r, 0)).toBe(w1);
              model.set(p, [w0, w1 & ~BigInt(bit)]);
            }
          }
          for (const [i, [w0, w1]] of model) {
            expect(hpt.view.getBigUint64(i * 16, false)).toBe(w0);
            expect(hpt.view.getBigUint64(i * 16 + 8, false)).toBe(w1);
          }
        }
      }),
      { numRuns: propertyRuns(200) },
    );
  });
});
