import { HvmmuError } from '@hvmmu/core';
import { EFER, loadPdptes } from '@hvmmu/x86-shadow/internal';
import { describe, expect, it } from 'vitest';
import { A, CountingMemory, D, GuestImage, P, PWT, RW, US, XD, firstDifference, registers } from './guestImage.js';

function setup(cr3 = 0x2fe0): { img: GuestImage; regs: ReturnType<typeof registers> } {
  const img = new GuestImage(64 << 10);
  const regs = registers('pae', cr3, { efer: EFER.NXE });
  regs.maxPhyAddr = 36;
  return { img, regs };
}

function cached(regs: ReturnType<typeof registers>): bigint[] {
  return [0, 1, 2, 3].map((i) => (BigInt(regs.pdpteHi[i]!) << 32n) | BigInt(regs.pdpteLo[i]!));
}

describe('loadPdptes (PAE CR3 load, SDM 4.4.1)', () => {
  it('reads the four PDPTEs at CR3 bits 31:5 and caches them', () => {
    const { img, regs } = setup(0x2fe0 | 0x18); // PWT/PCD in bits 3..4 are not part of the address
    const values = [0x3000n | P, 0n, 0x9_8765_4000n | P | PWT, 0x5000n | P];
    values.forEach((v, i) => {
      img.set64(0x2fe0 + i * 8, v);
    });
    expect(loadPdptes(regs, img.mem)).toBe(true);
    expect(cached(regs)).toEqual(values);
  });

  it('ignores CR3 bits above 31', () => {
    const { img, regs } = setup(0x1_0000_2fe0);
    img.set64(0x2fe0, 0x3000n | P);
    expect(loadPdptes(regs, img.mem)).toBe(true);
    expect(cached(regs)[0]).toBe(0x3000n | P);
  });

  it('refuses a present PDPTE with a reserved bit (1..2, 5..8, MAXPHYADDR..63) and leaves the registers unchanged', () => {
    const reservedBits = [1n, 2n, 5n, 6n, 7n, 8n, 36n, 40n, 51n, 52n, 62n, 63n];
    for (const bit of reservedBits) {
      const { img, regs } = setup();
      regs.pdpteLo.set([1, 2, 3, 4]);
      regs.pdpteHi.set([5, 6, 7, 8]);
      img.set64(0x2fe0, 0x3000n | P);
      img.set64(0x2fe8 + 8, 0x4000n | P | (1n << bit));
      expect(loadPdptes(regs, img.mem)).toBe(false);
      expect([...regs.pdpteLo]).toEqual([1, 2, 3, 4]);
      expect([...regs.pdpteHi]).toEqual([5, 6, 7, 8]);
    }
    // R/W, U/S, A, D and XD are all reserved in a PDPTE, even with NXE on.
    for (const bits of [RW, US, A, D, XD]) {
      const { img, regs } = setup();
      img.set64(0x2fe0, 0x3000n | P | bits);
      expect(loadPdptes(regs, img.mem)).toBe(false);
    }
  });

  it('accepts the address bits below MAXPHYADDR, PWT/PCD, the available bits and 9..11', () => {
    const { img, regs } = setup();
    img.set64(0x2fe0, (1n << 35n) | 0xe18n | P);
    expect(loadPdptes(regs, img.mem)).toBe(true);
  });

  it('ignores reserved bits in a not-present PDPTE', () => {
    const { img, regs } = setup();
    img.set64(0x2fe0, 0xffff_ffff_ffff_fffen);
    expect(loadPdptes(regs, img.mem)).toBe(true);
    expect(regs.pdpteLo[0]).toBe(0xfffffffe);
  });

  it('fails (#GP) without throwing when the PDPT is not in guest memory, and never writes memory', () => {
    const { img, regs } = setup(0xfff0_0000);
    const mem = new CountingMemory(img.mem);
    const before = img.snapshot();
    expect(loadPdptes(regs, mem)).toBe(false);
    regs.cr3 = 0x2fe0;
    expect(loadPdptes(regs, mem)).toBe(true);
    expect(mem.writes).toBe(0);
    expect(firstDifference(img.bytes, before)).toBe(-1);
  });

  it('throws HvmmuError for an impossible MAXPHYADDR (host misuse)', () => {
    const { img, regs } = setup();
    regs.maxPhyAddr = 60;
    expect(() => loadPdptes(regs, img.mem)).toThrow(HvmmuError);
  });
});
