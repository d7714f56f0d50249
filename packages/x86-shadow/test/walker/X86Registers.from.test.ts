import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Access, HvmmuError } from '@hvmmu/core';
import { CR0, GuestWalk, GuestWalker, PagingMode, X86Registers, type RegisterValues } from '@hvmmu/x86-shadow/internal';
import { CAPTURES, FIXTURE_ROOT } from '../real-machine/QemuCapture.js';
import { GuestImage, P, RW, US } from './guestImage.js';

/*
 * X86Registers.from: a register set from values, checked as a whole-state
 * load (KVM_SET_SREGS) is. Bits from the SDM (Vol. 3A §2.2.1, §2.5), written
 * here independently of the package.
 */

const PE = 0x1;
const ET = 0x10;
const WP = 0x1_0000;
const NW = 0x2000_0000;
const PG = 0x8000_0000;
const PAE = 0x20;
const LA57 = 0x1000;
const PCIDE = 0x2_0000;
const LME = 0x100;
const LMA = 0x400;
const NXE = 0x800;

const LONG4: RegisterValues = { cr0: (PE | PG | WP) >>> 0, cr3: 0x1000, cr4: PAE, efer: LME | NXE };

function thrown(action: () => unknown): HvmmuError {
  try {
    action();
  } catch (error) {
    expect(error).toBeInstanceOf(HvmmuError);
    expect((error as HvmmuError).code).toBe('BAD_ARGUMENT');
    return error as HvmmuError;
  }
  throw new Error('expected HvmmuError BAD_ARGUMENT');
}

/** The fields `from` sets, for comparisons. */
function fields(r: X86Registers): unknown[] {
  return [r.cr0, r.cr3, r.cr4, r.efer, r.pkru, r.cpl, r.rflagsAc, r.maxPhyAddr, r.gbPages, r.amd];
}

describe('X86Registers.from', () => {
  it('builds the registers, with LMA derived and the defaults of new X86Registers()', () => {
    const r = X86Registers.from(LONG4);
    expect(fields(r)).toEqual([(PE | PG | WP) >>> 0, 0x1000, PAE, LME | LMA | NXE, 0, 0, false, 40, true, false]);
    expect(r.pagingMode).toBe(PagingMode.LONG4);
    // Written LMA is ignored: paging off means LMA=0.
    expect(X86Registers.from({ ...LONG4, cr0: PE, efer: LME | LMA }).efer).toBe(LME);
  });

  it('takes signed int32 patterns and bigints to the same effect as unsigned numbers', () => {
    const a = X86Registers.from(LONG4);
    const b = X86Registers.from({ ...LONG4, cr0: CR0.PE | CR0.PG | CR0.WP });
    const c = X86Registers.from({ cr0: 0x8001_0001n, cr3: 0x1000n, cr4: 0x20n, efer: 0x900n, pkru: 0xffff_ffffn });
    expect(fields(b)).toEqual(fields(a));
    expect(fields(c)).toEqual([...fields(a).slice(0, 4), 0xffff_ffff, ...fields(a).slice(5)]);
    expect(X86Registers.from({ ...LONG4, pkru: -1 }).pkru).toBe(0xffff_ffff);
  });

  it('sets the optional fields', () => {
    const r = X86Registers.from({ ...LONG4, pkru: 0xc, cpl: 3, rflagsAc: true, maxPhyAddr: 46, gbPages: false, amd: true });
    expect(fields(r).slice(4)).toEqual([0xc, 3, true, 46, false, true]);
  });

  it("drops CR0's reserved bits 31:0 (MOV to CR0 ignores them)", () => {
    expect(X86Registers.from({ ...LONG4, cr0: (PE | PG | WP | 0x40 | 0x8000 | 0x2_0000) >>> 0 }).cr0).toBe((PE | PG | WP) >>> 0);
    expect(X86Registers.from({ ...LONG4, cr0: (PE | PG | WP | ET) >>> 0 }).cr0).toBe((PE | PG | WP | ET) >>> 0);
  });

  it('refuses a state no processor can be in, naming the rule', () => {
    const cases: RegisterValues[] = [
      { ...LONG4, cr0: (PE | PG | WP | NW) >>> 0 }, // NW without CD
      { ...LONG4, cr0: (PG | WP) >>> 0 }, // PG without PE
      { ...LONG4, cr4: 0 }, // IA-32e mode without PAE
      { ...LONG4, cr4: PAE | 0x8000 }, // CR4 bit 15 reserved
      { ...LONG4, efer: LME | 0x200 }, // EFER bit 9 reserved
      { ...LONG4, efer: LME | 0x1000 }, // SVME on an Intel guest
      { ...LONG4, cr0: PE, cr4: PAE | PCIDE }, // PCIDE outside IA-32e mode
      { ...LONG4, cr3: 2 ** 40 }, // CR3 above MAXPHYADDR (40) in IA-32e mode
      { ...LONG4, cr0: PE | PG, cr4: PAE, efer: 0, cr3: 2 ** 32 }, // CR3 above 31 in PAE mode
      { ...LONG4, cr0: BigInt(LONG4.cr0) | (1n << 32n) }, // CR0 bits 63:32
      { ...LONG4, cr4: BigInt(PAE) | (1n << 32n) }, // CR4 bits 63:32 (FRED not modelled)
      { ...LONG4, efer: (1n << 63n) | BigInt(LME) }, // EFER bits 63:32
    ];
    for (const values of cases) {
      const error = thrown(() => X86Registers.from(values));
      expect(error.message).toContain('#GP');
      expect(typeof error.details?.['fault']).toBe('string');
    }
    // SVME is defined on AMD; LA57 with 5-level paging is a legal state.
    expect(X86Registers.from({ ...LONG4, efer: LME | 0x1000, amd: true }).efer).toBe(LME | LMA | 0x1000);
    expect(X86Registers.from({ ...LONG4, cr4: PAE | LA57 }).pagingMode).toBe(PagingMode.LONG5);
  });

  it('refuses host misuse: bad types, negative bigints, bigints of 2^64 or more, bad optional fields', () => {
    const bad = <T>(value: unknown): T => value as T;
    const cases: unknown[] = [
      null,
      undefined,
      42,
      'long4',
      {},
      { ...LONG4, cr0: -1n },
      { ...LONG4, cr3: -1n },
      { ...LONG4, cr4: 1n << 64n },
      { ...LONG4, efer: 1n << 70n },
      { ...LONG4, cr0: 2 ** 32 },
      { ...LONG4, cr0: -(2 ** 31) - 1 },
      { ...LONG4, cr0: 1.5 },
      { ...LONG4, cr0: Number.NaN },
      { ...LONG4, cr0: '0x80010001' },
      { ...LONG4, cr3: -4096 },
      { ...LONG4, cr3: 2 ** 53 },
      { ...LONG4, cr3: '4096' },
      { ...LONG4, pkru: 2 ** 32 },
      { ...LONG4, pkru: 1n << 32n },
      { ...LONG4, cpl: 4 },
      { ...LONG4, cpl: '3' },
      { ...LONG4, rflagsAc: 'yes' },
      { ...LONG4, rflagsAc: 1 },
      { ...LONG4, maxPhyAddr: 53 },
      { ...LONG4, maxPhyAddr: 36.5 },
      { ...LONG4, gbPages: 'no' },
      { ...LONG4, amd: 1 },
    ];
    for (const values of cases) thrown(() => X86Registers.from(bad<RegisterValues>(values)));
  });

  it('accepts the registers of every QEMU capture (fixtures/x86) in its mode', () => {
    for (const capture of CAPTURES) {
      const json = JSON.parse(readFileSync(new URL(`${capture.dir}/registers.json`, FIXTURE_ROOT), 'utf8')) as {
        cr0: string;
        cr3: string;
        cr4: string;
        efer: string;
        cpl: number;
        guestCpu: { vendor: string; maxphyaddr: number; pdpe1gb: number; pkru?: number };
      };
      const r = X86Registers.from({
        cr0: BigInt(`0x${json.cr0}`),
        cr3: BigInt(`0x${json.cr3}`),
        cr4: BigInt(`0x${json.cr4}`),
        efer: BigInt(`0x${json.efer}`),
        cpl: json.cpl,
        maxPhyAddr: json.guestCpu.maxphyaddr,
        gbPages: json.guestCpu.pdpe1gb === 1,
        amd: json.guestCpu.vendor === 'AuthenticAMD',
        pkru: json.guestCpu.pkru ?? 0,
      });
      expect(r.pagingMode, capture.dir).toBe(capture.mode);
      expect([r.cr0, r.cr3, r.cr4, r.efer], capture.dir).toEqual([json.cr0, json.cr3, json.cr4, json.efer].map((h) => Number.parseInt(h, 16)));
    }
  });

  it('gives registers the walker uses as they are', () => {
    const img = new GuestImage(64 << 10);
    // 4-level tables at 0x1000 (PML4) → 0x2000 → 0x3000 → 0x4000 (PT), mapping va 0 to gpa 0x5000.
    img.set64(0x1000, 0x2000n | P | RW | US);
    img.set64(0x2000, 0x3000n | P | RW | US);
    img.set64(0x3000, 0x4000n | P | RW | US);
    img.set64(0x4000, 0x5000n | P | RW | US);
    const out = new GuestWalk();
    expect(new GuestWalker().walk(X86Registers.from(LONG4), img.mem, 0, Access.WRITE, out, false)).toBe(true);
    expect(out.gfn).toBe(5);
  });
});
