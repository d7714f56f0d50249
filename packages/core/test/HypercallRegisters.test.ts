import { describe, expect, it } from 'vitest';
import { HypercallRegisters } from '@hvmmu/core';
import { expectHvmmuError } from './fixtures/assertions.js';

function snapshot(r: HypercallRegisters): number[][] {
  return [[...r.argHi], [...r.argLo], [...r.retHi], [...r.retLo]];
}

describe('HypercallRegisters', () => {
  it('has 9 registers by default (PAPR: r4..r12) and any count in 1..64', () => {
    expect(new HypercallRegisters().count).toBe(9);
    expect(new HypercallRegisters(1).argLo.length).toBe(1);
    expect(new HypercallRegisters(64).retHi.length).toBe(64);
  });

  it.each([0, -1, 65, 1.5, Number.NaN])('count %s is HCALL_BAD_REGISTER', (count) => {
    expectHvmmuError(() => new HypercallRegisters(count), 'HCALL_BAD_REGISTER');
  });

  it('splits numbers below 2^53 into 32-bit halves and back', () => {
    const r = new HypercallRegisters(4);
    const cases: Array<[number, number, number]> = [
      [0, 0, 0],
      [0xffff_ffff, 0, 0xffff_ffff],
      [0x1_0000_0000, 1, 0],
      [0x1_2345_6789, 1, 0x2345_6789],
      [2 ** 53 - 1, 0x1f_ffff, 0xffff_ffff],
    ];
    for (const [value, hi, lo] of cases) {
      r.setArg(2, value);
      expect([r.argHi[2], r.argLo[2]]).toEqual([hi, lo]);
      expect(r.arg(2)).toBe(value);
      r.setRet(3, value);
      expect([r.retHi[3], r.retLo[3]]).toEqual([hi, lo]);
      expect(r.ret(3)).toBe(value);
    }
  });

  it('carries values with bit 63 set as halves; as a number they read as -1 (does not fit)', () => {
    const r = new HypercallRegisters();
    // An HPTE first dword with the valid bit: 0x8000_0000_0000_0001.
    r.setArgHalves(0, 0x8000_0000, 0x0000_0001);
    expect(r.argHi[0]).toBe(0x8000_0000);
    expect(r.argLo[0]).toBe(1);
    expect(r.arg(0)).toBe(-1);
    // 0xffff_ffff_ffff_ffff given as signed halves is stored as its bit pattern.
    r.setArgHalves(1, -1, -1);
    expect([r.argHi[1], r.argLo[1]]).toEqual([0xffff_ffff, 0xffff_ffff]);
    expect(r.arg(1)).toBe(-1);
    // Just above 2^53 - 1 does not fit either.
    r.setArgHalves(2, 0x20_0000, 0);
    expect(r.arg(2)).toBe(-1);
    r.setRetHalves(0, 0x8000_0000, 0xdead_beef);
    expect([r.retHi[0], r.retLo[0]]).toEqual([0x8000_0000, 0xdead_beef]);
    expect(r.ret(0)).toBe(-1);
  });

  it("stores a negative return as its 64-bit two's complement", () => {
    const r = new HypercallRegisters();
    r.setRet(0, -2); // H_FUNCTION
    expect([r.retHi[0], r.retLo[0]]).toEqual([0xffff_ffff, 0xffff_fffe]);
    r.setRet(1, -(2 ** 32)); // 0xffff_ffff_0000_0000
    expect([r.retHi[1], r.retLo[1]]).toEqual([0xffff_ffff, 0]);
    r.setRet(2, -(2 ** 53 - 1)); // 0xffe0_0000_0000_0001
    expect([r.retHi[2], r.retLo[2]]).toEqual([0xffe0_0000, 1]);
  });

  it.each([-1, 2 ** 53, 1.5, Number.NaN, Number.POSITIVE_INFINITY])('setArg(%s) is HCALL_BAD_REGISTER and changes nothing', (value) => {
    const r = new HypercallRegisters();
    r.setArg(0, 42);
    const before = snapshot(r);
    expectHvmmuError(() => r.setArg(0, value), 'HCALL_BAD_REGISTER');
    expect(snapshot(r)).toEqual(before);
  });

  it.each([2 ** 53, 1.5, Number.NaN])('setRet(%s) is HCALL_BAD_REGISTER and changes nothing', (value) => {
    const r = new HypercallRegisters();
    r.setRet(0, 42);
    const before = snapshot(r);
    expectHvmmuError(() => r.setRet(0, value), 'HCALL_BAD_REGISTER');
    expect(snapshot(r)).toEqual(before);
  });

  it.each([-1, 9, 1.5, Number.NaN])('register index %s is HCALL_BAD_REGISTER for every accessor and changes nothing', (i) => {
    const r = new HypercallRegisters();
    const before = snapshot(r);
    expectHvmmuError(() => r.setArg(i, 1), 'HCALL_BAD_REGISTER');
    expectHvmmuError(() => r.setArgHalves(i, 1, 1), 'HCALL_BAD_REGISTER');
    expectHvmmuError(() => r.setRet(i, 1), 'HCALL_BAD_REGISTER');
    expectHvmmuError(() => r.setRetHalves(i, 1, 1), 'HCALL_BAD_REGISTER');
    expectHvmmuError(() => r.arg(i), 'HCALL_BAD_REGISTER');
    expectHvmmuError(() => r.ret(i), 'HCALL_BAD_REGISTER');
    expect(snapshot(r)).toEqual(before);
  });

  it('clear zeroes arguments and returns', () => {
    const r = new HypercallRegisters(2);
    r.setArgHalves(0, 1, 2).setArg(1, 3);
    r.setRetHalves(1, 4, 5);
    r.clear();
    expect(snapshot(r)).toEqual([
      [0, 0],
      [0, 0],
      [0, 0],
      [0, 0],
    ]);
  });
});
