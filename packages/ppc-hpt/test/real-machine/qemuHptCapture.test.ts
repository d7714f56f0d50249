import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { HashPageTable, HptAccess, HptCause, HptRegisters, HptTranslation, HptVector, HptWalker, Slb, hptDebugTranslate } from '@hvmmu/ppc-hpt';

/**
 * A real machine's hashed page table: Debian's ppc64el kernel (64K base
 * pages, 16M linear map, MPSS 64K/16M THP pages, 1T segments) under QEMU
 * 7.2's pseries POWER8 (fixtures/ppc-hpt, made by fixtures/ppc/generate.sh;
 * see its README). With the SLB and registers of each stop, hvmmu must
 * answer every one of QEMU's 5320 gva2gpa probes exactly, and write nothing.
 */
const dir = new URL('../../../../fixtures/ppc-hpt/', import.meta.url);

interface SlbEntry {
  slot: number;
  esidWord: string;
  vsidWord: string;
}

const registers = JSON.parse(readFileSync(new URL('registers.json', dir), 'utf8')) as {
  stops: Record<'user' | 'kernel', { msr: string; amr: string; iamr: string; lpcr: string }>;
  regions: { name: string; va: string }[];
};
const slbs = JSON.parse(readFileSync(new URL('slb.json', dir), 'utf8')) as Record<'user' | 'kernel', SlbEntry[]>;
const table = gunzipSync(readFileSync(new URL('htab.bin.gz', dir)));

function machine(stop: 'user' | 'kernel') {
  const hpt = new HashPageTable(24, new Uint8Array(table.buffer.slice(table.byteOffset, table.byteOffset + table.byteLength)));
  const slb = new Slb(32);
  for (const e of slbs[stop]) {
    // slbmte: RB = ESID | V | slot, RS = the VSID word.
    const esid = BigInt(`0x${e.esidWord}`);
    expect(slb.slbmteBig(esid | BigInt(e.slot), BigInt(`0x${e.vsidWord}`))).toBe(true);
  }
  const s = registers.stops[stop];
  const msr = BigInt(`0x${s.msr}`);
  const regs = new HptRegisters().setAmr(BigInt(`0x${s.amr}`)).setIamr(BigInt(`0x${s.iamr}`));
  // MSR (POWER ISA v2.07 Book III 4.2.1): HV 60, PR 14, IR 5, DR 4; LPCR[ISL] bit 61.
  regs.hv = ((msr >> 60n) & 1n) === 1n;
  regs.pr = ((msr >> 14n) & 1n) === 1n;
  regs.ir = ((msr >> 5n) & 1n) === 1n;
  regs.dr = ((msr >> 4n) & 1n) === 1n;
  regs.lpcrIsl = ((BigInt(`0x${s.lpcr}`) >> 61n) & 1n) === 1n;
  regs.virtualHypervisor = true;
  return { hpt, slb, regs };
}

const probes = gunzipSync(readFileSync(new URL('gva2gpa.txt.gz', dir)))
  .toString('utf8')
  .split('\n')
  .filter((l) => l !== '' && !l.startsWith('#'))
  .map((l) => l.split(' '));

describe('real machine: QEMU 7.2 pseries POWER8, Debian 6.1 ppc64el (hash MMU, 64K base pages)', () => {
  for (const stop of ['user', 'kernel'] as const) {
    it(`answers every ${stop}-mode gva2gpa probe as QEMU did, writing nothing`, () => {
      const { hpt, slb, regs } = machine(stop);
      expect(regs.pr).toBe(stop === 'user');
      const before = hpt.bytes.slice();
      const mine = probes.filter((p) => p[2] === stop);
      expect(mine.length).toBe(2660);
      const wrong: string[] = [];
      let mapped = 0;
      for (const [gva, answer] of mine) {
        const got = hptDebugTranslate(regs, slb, hpt, BigInt(`0x${gva}`));
        const expected = answer === 'unmapped' ? null : BigInt(`0x${answer}`);
        if (got !== expected) wrong.push(`${gva}: QEMU ${answer}, hvmmu ${got === null ? 'unmapped' : got.toString(16)}`);
        if (expected !== null) mapped++;
      }
      expect(wrong.slice(0, 10)).toEqual([]);
      expect(mapped).toBeGreaterThan(500);
      expect(Buffer.from(hpt.bytes).equals(Buffer.from(before))).toBe(true);
    });
  }

  it('the hardware path: a user store to the read-only zero page is DSI PROTFAULT|STORE; a kernel address without its SLB entry is a segment fault', () => {
    const { hpt, slb, regs } = machine('user');
    const walker = new HptWalker();
    const out = new HptTranslation();
    const ea = BigInt(registers.regions.find((r) => r.name === 'ro-zero')!.va);
    const hi = Number(ea >> 32n);
    const lo = Number(ea & 0xffff_ffffn);
    expect(walker.translate(regs, slb, hpt, hi, lo, HptAccess.LOAD, out)).toBe(true);
    expect(walker.translate(regs, slb, hpt, hi, lo, HptAccess.STORE, out)).toBe(false);
    expect([out.vector, out.cause, out.darHi, out.darLo]).toEqual([HptVector.DSI, HptCause.PROTFAULT | HptCause.STORE, hi, lo]);
    expect(walker.translate(regs, slb, hpt, 0xd000_0000, 0, HptAccess.LOAD, out)).toBe(false);
    expect([out.vector, out.darHi]).toEqual([HptVector.DSEG, 0xd000_0000]);
    expect(walker.translate(regs, slb, hpt, 0xd000_0000, 0, HptAccess.FETCH, out)).toBe(false);
    expect(out.vector).toBe(HptVector.ISEG);
  });
});
