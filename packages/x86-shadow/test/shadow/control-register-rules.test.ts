import { describe, expect, it } from 'vitest';
import { CR0 as PKG_CR0, PagingMode } from '@hvmmu/x86-shadow/internal';
import { P, TableBuilder, W, controlsFor, makeVm, type GuestMode, type TestVm } from './helpers/guest.js';
import { vcpuState } from './helpers/refusals.js';

/*
 * MOV to CR0/CR3/CR4 and WRMSR IA32_EFER as the Intel SDM defines their #GP
 * (Vol. 2B "MOV—Move to/from Control Registers", Vol. 3A §2.2.1, §2.5,
 * §4.1.2, §4.10.1): a refused write returns false and changes nothing.
 * Bits and masks are written here from the SDM, not imported.
 */

// CR0 (§2.5): PE MP EM TS ET NE = bits 5:0, WP 16, AM 18, NW 29, CD 30, PG 31; the rest reserved.
const PE = 0x1;
const WP = 0x1_0000;
const NW = 0x2000_0000;
const CD = 0x4000_0000;
const PG = 0x8000_0000;
const CR0_DEFINED = 0xe005_003f;
// CR4 (§2.5, Figure 2-7): reserved bits 15, 26, 29, 30, 31.
const PAE = 0x20;
const LA57 = 0x1000;
const PCIDE = 0x2_0000;
const CET = 0x80_0000;
const CR4_RESERVED_BITS = [15, 26, 29, 30, 31];
const CR4_DEFINED = 0x1bff_7fff;
// EFER (§2.2.1, Table 2-1): SCE 0, LME 8, LMA 10, NXE 11; AMD (APM Vol. 2 §3.1.7) adds SVME 12, LMSLE 13, FFXSR 14, TCE 15.
const SCE = 0x1;
const LME = 0x100;
const LMA = 0x400;
const NXE = 0x800;
const EFER_INTEL = 0x0d01;
const EFER_AMD = 0xfd01;

const DATA_VA = 0x40_0000;

interface Guest extends TestVm {
  readonly b: TableBuilder;
  readonly root: number;
}

/** A guest in `mode` with a live root, a shadow mapping and a TLB entry for a refused write to leave alone. */
function runningGuest(mode: GuestMode, extra: { cr0?: number; cr4?: number; efer?: number } = {}, amd = false): Guest {
  const t = makeVm();
  if (amd) t.x.setCpuid({ amd: true });
  const b = new TableBuilder(t.mem, mode, 0x10_0000);
  const root = b.root();
  b.map4k(root, DATA_VA, 0x20_0000, P | W);
  expect(t.x.loadControlRegisters(controlsFor(mode, root, extra))).toBe(true);
  expect(t.x.read(DATA_VA, 4)).toBe(true);
  expect(t.vcpu.tlb.countValid()).toBeGreaterThan(0);
  return { ...t, b, root };
}

/** `write` must raise #GP: return false, and leave registers, roots, TLB and statistics as they were. */
function expectRefused(t: TestVm, write: () => boolean): void {
  const before = vcpuState(t);
  expect(write()).toBe(false);
  expect(vcpuState(t)).toEqual(before);
}

const bit = (n: number): number => 2 ** n;

describe('MOV to CR0', () => {
  it('accepts PE | PG | WP built with | (a negative int32) without >>> 0', () => {
    const t = runningGuest('long4');
    const signed = PKG_CR0.PE | PKG_CR0.PG | PKG_CR0.WP;
    expect(signed).toBeLessThan(0);
    expect(t.x.setCr0(signed)).toBe(true);
    expect(t.x.regs.cr0 >>> 0).toBe((PE | PG | WP) >>> 0);
    // Paging off, then on again with the same constants: back in 4-level paging.
    expect(t.x.setCr0(PKG_CR0.PE)).toBe(true);
    expect(t.x.regs.pagingMode).toBe(PagingMode.NONE);
    expect(t.x.setCr0(PKG_CR0.PE | PKG_CR0.PG)).toBe(true);
    expect(t.x.regs.pagingMode).toBe(PagingMode.LONG4);
    expect(t.x.read(DATA_VA, 4)).toBe(true);
  });

  it('refuses NW=1 with CD=0 (#GP), accepts NW=1 with CD=1 and CD alone', () => {
    const t = runningGuest('long4');
    const cr0 = t.x.regs.cr0;
    expectRefused(t, () => t.x.setCr0((cr0 | NW) >>> 0));
    expect(t.x.setCr0((cr0 | NW | CD) >>> 0)).toBe(true);
    expect(t.x.setCr0((cr0 | CD) >>> 0)).toBe(true);
  });

  it('refuses PG=1 with PE=0 (#GP), in and out of paging', () => {
    const t = runningGuest('long4');
    expectRefused(t, () => t.x.setCr0((PG | WP) >>> 0));
    const off = runningGuest('bits32');
    expect(off.x.setCr0(0)).toBe(true);
    expectRefused(off, () => off.x.setCr0(PG));
  });

  it('ignores writes to the reserved bits of 31:0 (no #GP on MOV to CR0; they read as 0)', () => {
    const t = runningGuest('long4');
    const cr0 = t.x.regs.cr0;
    const reserved = ~CR0_DEFINED >>> 0;
    expect(t.x.setCr0((cr0 | reserved) >>> 0)).toBe(true);
    expect(t.x.regs.cr0 >>> 0).toBe(cr0 >>> 0);
    expect(t.x.regs.pagingMode).toBe(PagingMode.LONG4);
  });

  it('clearing PG leaves long mode (allowed), unless CR4.PCIDE=1 (#GP)', () => {
    const t = runningGuest('long4');
    expect(t.x.setCr0((t.x.regs.cr0 & ~PG) >>> 0)).toBe(true);
    expect(t.x.regs.efer & LMA).toBe(0);
    const pcid = runningGuest('long4', { cr4: PCIDE });
    expectRefused(pcid, () => pcid.x.setCr0((pcid.x.regs.cr0 & ~PG) >>> 0));
  });

  it('refuses to set PG with EFER.LME=1 while CR4.PAE=0 (#GP, SDM 4.1.2)', () => {
    const t = runningGuest('bits32');
    expect(t.x.setCr0(PE | WP)).toBe(true);
    expect(t.x.setEfer(LME)).toBe(true);
    expectRefused(t, () => t.x.setCr0((PE | PG | WP) >>> 0));
  });

  it('refuses to clear WP while CR4.CET=1 (#GP), accepts it once CET is clear', () => {
    const t = runningGuest('long4', { cr4: CET });
    const cr0 = t.x.regs.cr0;
    expectRefused(t, () => t.x.setCr0((cr0 & ~WP) >>> 0));
    expect(t.x.setCr4((t.x.regs.cr4 & ~CET) >>> 0)).toBe(true);
    expect(t.x.setCr0((cr0 & ~WP) >>> 0)).toBe(true);
  });
});

describe('MOV to CR4', () => {
  it.each(CR4_RESERVED_BITS)('refuses reserved bit %i (#GP) in every mode', (n) => {
    for (const mode of ['bits32', 'pae', 'long4', 'long5'] as const) {
      const t = runningGuest(mode);
      expectRefused(t, () => t.x.setCr4((t.x.regs.cr4 | bit(n)) >>> 0));
    }
  });

  it('accepts every bit the SDM defines at once (LA57 left as it is in IA-32e mode)', () => {
    const t = runningGuest('long4');
    const all = (CR4_DEFINED & ~LA57) >>> 0;
    expect(t.x.setCr4(all)).toBe(true);
    expect(t.x.regs.cr4 >>> 0).toBe(all);
    expect(t.x.read(DATA_VA, 4)).toBe(true);
  });

  it('accepts the CR4 values of the QEMU captures (fixtures/x86) in their modes', () => {
    // registers.json of each capture: cr0 0x80050033; cr4 as below.
    const cases: Array<[GuestMode, number]> = [
      ['bits32', 0x35_0ed0],
      ['pae', 0x35_0ef0],
      ['long4', 0x75_0ef0],
      ['long5', 0x75_1ef0],
    ];
    for (const [mode, cr4] of cases) {
      const t = runningGuest(mode);
      expect(t.x.setCr0(0x8005_0033)).toBe(true);
      expect(t.x.setCr4(cr4)).toBe(true);
    }
  });

  it('refuses clearing PAE in IA-32e mode (#GP), allows it outside', () => {
    const t = runningGuest('long4');
    expectRefused(t, () => t.x.setCr4((t.x.regs.cr4 & ~PAE) >>> 0));
    const pae = runningGuest('pae');
    expect(pae.x.setCr4((pae.x.regs.cr4 & ~PAE) >>> 0)).toBe(true);
    expect(pae.x.regs.pagingMode).toBe(PagingMode.BITS32);
  });

  it('refuses changing LA57 in IA-32e mode (#GP) both ways, allows it with paging off', () => {
    const t4 = runningGuest('long4');
    expectRefused(t4, () => t4.x.setCr4((t4.x.regs.cr4 | LA57) >>> 0));
    const t5 = runningGuest('long5');
    expectRefused(t5, () => t5.x.setCr4((t5.x.regs.cr4 & ~LA57) >>> 0));
    expect(t5.x.setCr0((t5.x.regs.cr0 & ~PG) >>> 0)).toBe(true);
    expect(t5.x.setCr4((t5.x.regs.cr4 & ~LA57) >>> 0)).toBe(true);
  });

  it('refuses setting PCIDE outside IA-32e mode (#GP, SDM 4.10.1)', () => {
    for (const mode of ['bits32', 'pae'] as const) {
      const t = runningGuest(mode);
      expectRefused(t, () => t.x.setCr4((t.x.regs.cr4 | PCIDE) >>> 0));
    }
    const off = runningGuest('long4');
    expect(off.x.setCr0((off.x.regs.cr0 & ~PG) >>> 0)).toBe(true);
    expectRefused(off, () => off.x.setCr4((off.x.regs.cr4 | PCIDE) >>> 0));
  });

  it('refuses setting PCIDE while CR3[11:0] is not 0 (#GP), accepts it with CR3[11:0] = 0', () => {
    const t = runningGuest('long4');
    expect(t.x.setCr3(t.root + 0x8)).toBe(true); // PWT
    expectRefused(t, () => t.x.setCr4((t.x.regs.cr4 | PCIDE) >>> 0));
    expect(t.x.setCr3(t.root)).toBe(true);
    expect(t.x.setCr4((t.x.regs.cr4 | PCIDE) >>> 0)).toBe(true);
    // With PCIDE=1, CR3[11:0] is the PCID: loading one is legal.
    expect(t.x.setCr3(t.root + 0x5)).toBe(true);
    expect(t.x.read(DATA_VA, 4)).toBe(true);
  });

  it('refuses setting CET while CR0.WP=0 (#GP)', () => {
    const t = runningGuest('long4');
    expect(t.x.setCr0((t.x.regs.cr0 & ~WP) >>> 0)).toBe(true);
    expectRefused(t, () => t.x.setCr4((t.x.regs.cr4 | CET) >>> 0));
  });
});

describe('WRMSR IA32_EFER', () => {
  it('refuses 0xffffffff (#GP)', () => {
    for (const mode of ['bits32', 'long4'] as const) {
      const t = runningGuest(mode);
      expectRefused(t, () => t.x.setEfer(0xffff_ffff));
    }
  });

  it('refuses every bit an Intel processor reserves, one at a time', () => {
    const t = runningGuest('long4');
    const efer = t.x.regs.efer;
    for (let n = 0; n < 32; n++) {
      if ((EFER_INTEL & bit(n)) !== 0) continue;
      expectRefused(t, () => t.x.setEfer((efer | bit(n)) >>> 0));
    }
  });

  it("accepts AMD's SVME, LMSLE, FFXSR and TCE for an AMD guest only", () => {
    const intel = runningGuest('long4');
    const amd = runningGuest('long4', {}, true);
    for (let n = 12; n < 32; n++) {
      const value = (amd.x.regs.efer | bit(n)) >>> 0;
      if ((EFER_AMD & bit(n)) !== 0) {
        expect(amd.x.setEfer(value)).toBe(true);
        expect(amd.x.regs.efer & bit(n)).not.toBe(0);
        expect(amd.x.setEfer((value & ~bit(n)) >>> 0)).toBe(true);
      } else {
        expectRefused(amd, () => amd.x.setEfer(value));
      }
      expectRefused(intel, () => intel.x.setEfer((intel.x.regs.efer | bit(n)) >>> 0));
    }
  });

  it('refuses changing LME while CR0.PG=1 (#GP, SDM 4.1.2), allows it with paging off', () => {
    const t4 = runningGuest('long4');
    expectRefused(t4, () => t4.x.setEfer((t4.x.regs.efer & ~LME) >>> 0));
    for (const mode of ['bits32', 'pae'] as const) {
      const t = runningGuest(mode);
      expectRefused(t, () => t.x.setEfer((t.x.regs.efer | LME) >>> 0));
    }
    const off = runningGuest('pae');
    expect(off.x.setCr0((off.x.regs.cr0 & ~PG) >>> 0)).toBe(true);
    expect(off.x.setEfer((off.x.regs.efer | LME) >>> 0)).toBe(true);
    expect(off.x.setCr0((off.x.regs.cr0 | PG) >>> 0)).toBe(true);
    expect(off.x.regs.pagingMode).toBe(PagingMode.LONG4);
  });

  it('ignores the written LMA (read-only, derived from LME and CR0.PG), accepts SCE and NXE', () => {
    const t = runningGuest('long4');
    expect(t.x.setEfer(LME | NXE | SCE)).toBe(true);
    expect(t.x.regs.efer).toBe(LME | LMA | NXE | SCE);
    const off = runningGuest('bits32');
    expect(off.x.setEfer(LMA | NXE)).toBe(true);
    expect(off.x.regs.efer).toBe(NXE);
  });

  it('accepts EFER 0xd01 (SCE | LME | LMA | NXE, the QEMU long-mode captures) in IA-32e mode', () => {
    const t = runningGuest('long4');
    expect(t.x.setEfer(0xd01)).toBe(true);
    expect(t.x.regs.efer).toBe(0xd01);
  });
});

describe('MOV to CR3', () => {
  it('refuses bits at or above MAXPHYADDR in IA-32e mode and above 31 outside it (#GP)', () => {
    const t = runningGuest('long4');
    expectRefused(t, () => t.x.setCr3(2 ** t.x.regs.maxPhyAddr + t.root));
    const pae = runningGuest('pae');
    expectRefused(pae, () => pae.x.setCr3(2 ** 32 + pae.root));
  });

  it('refuses a PDPT with a reserved PDPTE in PAE mode without changing anything (register write count included)', () => {
    const t = runningGuest('pae');
    const bad = t.b.page();
    t.b.write(bad, 0x30_0000 | P | 0x2); // PDPTE bit 1 is reserved (SDM 4.4.1)
    expectRefused(t, () => t.x.setCr3(bad));
  });
});

describe('whole register sets (loadControlRegisters)', () => {
  it('checks what must hold of any state, not what one MOV may change: long4 → long5 in one load', () => {
    const t = runningGuest('long4');
    expect(t.x.loadControlRegisters(controlsFor('long5', t.root))).toBe(true);
    expect(t.x.regs.pagingMode).toBe(PagingMode.LONG5);
  });

  it('refuses a state no processor can be in, changing nothing', () => {
    const t = runningGuest('long4');
    const c = controlsFor('long4', t.root);
    expectRefused(t, () => t.x.loadControlRegisters({ ...c, cr0: (c.cr0 | NW) >>> 0 }));
    expectRefused(t, () => t.x.loadControlRegisters({ ...c, cr4: (c.cr4 & ~PAE) >>> 0 }));
    expectRefused(t, () => t.x.loadControlRegisters({ ...c, cr4: (c.cr4 | bit(15)) >>> 0 }));
    expectRefused(t, () => t.x.loadControlRegisters({ ...c, efer: (c.efer | bit(9)) >>> 0 }));
    expectRefused(t, () => t.x.loadControlRegisters({ ...controlsFor('pae', t.root), cr4: PAE | PCIDE }));
    expectRefused(t, () => t.x.loadControlRegisters({ ...c, cr4: (c.cr4 | CET) >>> 0, cr0: PE | PG }));
  });
});
