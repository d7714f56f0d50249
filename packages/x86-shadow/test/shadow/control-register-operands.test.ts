import { describe, expect, it } from 'vitest';
import { PagingMode, type ControlRegisters } from '@hvmmu/x86-shadow/internal';
import { P, TableBuilder, W, controlsFor, makeVm, type TestVm } from './helpers/guest.js';
import { expectBadArgument, vcpuState } from './helpers/refusals.js';

/*
 * What the embedding program may pass to the vCPU's register API. A number
 * is a 32-bit pattern: any integer in [-2^31, 2^32) (OR-ing bit constants
 * yields a signed int32). loadControlRegisters also takes bigints, the full
 * 64-bit register values. Anything else is host misuse: HvmmuError
 * BAD_ARGUMENT, and nothing changes.
 */

const PE = 0x1;
const WP = 0x1_0000;
const PG = 0x8000_0000;
const PAE = 0x20;
const LME = 0x100;
const LMA = 0x400;
const NXE = 0x800;

/** Bad values, typed as the API's parameter type the way an untyped caller would pass them. */
function bad<T>(value: unknown): T {
  return value as T;
}

const NOT_U32: readonly unknown[] = [
  2 ** 32,
  2 ** 40,
  -(2 ** 31) - 1,
  -(2 ** 40),
  1.5,
  -0.5,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  Number.NEGATIVE_INFINITY,
  '1',
  '0x80000001',
  1n,
  undefined,
  null,
  {},
  [],
  true,
  Symbol('cr'),
];

function long4Guest(): TestVm & { root: number } {
  const t = makeVm();
  const b = new TableBuilder(t.mem, 'long4', 0x10_0000);
  const root = b.root();
  b.map4k(root, 0x40_0000, 0x20_0000, P | W);
  expect(t.x.loadControlRegisters(controlsFor('long4', root))).toBe(true);
  expect(t.x.read(0x40_0000, 4)).toBe(true);
  return { ...t, root };
}

/** `action` must throw BAD_ARGUMENT and leave everything as it was. */
function expectMisuse(t: TestVm, action: () => unknown): void {
  const before = vcpuState(t);
  expectBadArgument(action);
  expect(vcpuState(t)).toEqual(before);
}

describe('32-bit register operands (CR0, CR4, EFER, PKRU)', () => {
  it('refuses non-integers, NaN, non-numbers and values outside [-2^31, 2^32), changing nothing', () => {
    const t = long4Guest();
    for (const value of NOT_U32) {
      expectMisuse(t, () => t.x.setCr0(bad(value)));
      expectMisuse(t, () => t.x.setCr4(bad(value)));
      expectMisuse(t, () => t.x.setEfer(bad(value)));
      expectMisuse(t, () => t.x.setPkru(bad(value)));
    }
  });

  it('takes a negative int32 as its 32-bit pattern', () => {
    const t = long4Guest();
    expect(t.x.setCr0(PE | PG | WP | 0)).toBe(true);
    expect(t.x.regs.cr0 >>> 0).toBe((PE | PG | WP) >>> 0);
    // -2^31 is PG alone: a well-formed operand the processor refuses (PG without PE), not host misuse.
    expect(t.x.setCr0(-(2 ** 31))).toBe(false);
    t.x.setPkru(-1);
    expect(t.x.regs.pkru).toBe(0xffff_ffff);
    // 2^32 - 1 sets reserved CR4 bits: #GP, not an exception.
    expect(t.x.setCr4(2 ** 32 - 1)).toBe(false);
  });
});

describe('CR3 operands', () => {
  it('refuses negative, fractional, unsafe and non-number values, changing nothing', () => {
    const t = long4Guest();
    for (const value of [-1, -4096, 4096.5, 2 ** 53, Number.NaN, '4096', 4096n, null, undefined, Symbol('cr3')]) {
      expectMisuse(t, () => t.x.setCr3(bad(value)));
    }
  });
});

describe('loadControlRegisters with numbers or bigints', () => {
  it('takes bigints for any field, to the same effect as numbers', () => {
    const a = long4Guest();
    const b = long4Guest();
    const c = controlsFor('long4', a.root);
    expect(a.x.loadControlRegisters({ cr0: BigInt(c.cr0), cr3: BigInt(c.cr3), cr4: BigInt(c.cr4), efer: BigInt(c.efer) })).toBe(true);
    expect(b.x.loadControlRegisters({ ...c, cr3: BigInt(c.cr3) })).toBe(true);
    for (const t of [a, b]) {
      expect([t.x.regs.cr0 >>> 0, t.x.regs.cr3, t.x.regs.cr4, t.x.regs.efer]).toEqual([(PE | PG | WP) >>> 0, a.root, PAE, LME | LMA | NXE]);
      expect(t.x.regs.pagingMode).toBe(PagingMode.LONG4);
    }
  });

  it('refuses bits 63:32 of CR0, CR4 or EFER (reserved: #GP), changing nothing', () => {
    const t = long4Guest();
    const c = controlsFor('long4', t.root);
    const high = 1n << 32n;
    for (const values of [
      { ...c, cr0: BigInt(c.cr0) | high },
      { ...c, cr4: BigInt(c.cr4) | (1n << 63n) },
      { ...c, efer: BigInt(c.efer) | high },
    ] satisfies ControlRegisters[]) {
      const before = vcpuState(t);
      expect(t.x.loadControlRegisters(values)).toBe(false);
      expect(vcpuState(t)).toEqual(before);
    }
  });

  it('refuses a CR3 at or above 2^MAXPHYADDR in IA-32e mode, up to 2^64 - 1', () => {
    const t = long4Guest();
    const c = controlsFor('long4', t.root);
    for (const cr3 of [1n << 40n, 1n << 52n, (1n << 64n) - 1n]) {
      const before = vcpuState(t);
      expect(t.x.loadControlRegisters({ ...c, cr3 })).toBe(false);
      expect(vcpuState(t)).toEqual(before);
    }
  });

  it('refuses negative bigints, bigints of 2^64 or more, non-objects and missing fields', () => {
    const t = long4Guest();
    const c = controlsFor('long4', t.root);
    for (const field of ['cr0', 'cr3', 'cr4', 'efer'] as const) {
      expectMisuse(t, () => t.x.loadControlRegisters({ ...c, [field]: -1n }));
      expectMisuse(t, () => t.x.loadControlRegisters({ ...c, [field]: 1n << 64n }));
      expectMisuse(t, () => t.x.loadControlRegisters({ ...c, [field]: bad<number>('0') }));
      expectMisuse(t, () => t.x.loadControlRegisters({ ...c, [field]: bad<number>(undefined) }));
    }
    for (const values of [null, undefined, 42, 'cr0']) expectMisuse(t, () => t.x.loadControlRegisters(bad(values)));
  });
});

describe('EFLAGS.AC, CPL and CPUID', () => {
  it('setRflagsAc takes only booleans', () => {
    const t = long4Guest();
    for (const value of ['yes', 1, 0, null, undefined, {}]) expectMisuse(t, () => t.x.setRflagsAc(bad(value)));
    t.x.setRflagsAc(true);
    expect(t.x.regs.rflagsAc).toBe(true);
  });

  it('setCpl takes only 0..3', () => {
    const t = long4Guest();
    for (const value of [4, -1, 1.5, '3', null, Symbol('cpl')]) expectMisuse(t, () => t.x.setCpl(bad(value)));
  });

  it('setCpuid checks every field before changing any', () => {
    const t = long4Guest();
    for (const cpuid of [
      null,
      'amd',
      { gbPages: 'no' },
      { amd: 1 },
      { maxPhyAddr: 53 },
      { maxPhyAddr: 31 },
      { maxPhyAddr: 40.5 },
      { maxPhyAddr: '40' },
      { maxPhyAddr: Symbol('40') },
      { maxPhyAddr: 36, gbPages: 'x' },
      { maxPhyAddr: 36, amd: 'AuthenticAMD' },
    ]) {
      expectMisuse(t, () => t.x.setCpuid(bad(cpuid)));
    }
    t.x.setCpuid({ maxPhyAddr: 46, gbPages: false, amd: true });
    expect([t.x.regs.maxPhyAddr, t.x.regs.gbPages, t.x.regs.amd]).toEqual([46, false, true]);
  });
});
