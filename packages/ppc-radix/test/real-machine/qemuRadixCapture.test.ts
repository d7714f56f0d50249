import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { SparsePageMemory } from '@hvmmu/core';
import { Dsisr, RadixAccess, RadixRegisters, RadixTranslation, RadixVector, RadixWalker, enumerateRadixTree, radixDebugTranslate } from '@hvmmu/ppc-radix';

/**
 * A real machine's radix tables: Debian's ppc64el kernel (64K pages) under
 * QEMU 7.2's pseries POWER9 (fixtures/ppc-radix, made by
 * fixtures/ppc/generate.sh; see its README). hvmmu must answer every one of
 * QEMU's 8116 `gva2gpa` probes (a user-mode and a kernel-mode stop) exactly,
 * list exactly the leaves of both trees, and write nothing while doing so.
 */
const dir = new URL('../../../../fixtures/ppc-radix/', import.meta.url);

interface Stop {
  msr: string;
  pr: boolean;
  pidr: number;
  lpidr: number;
  amr: string;
  iamr: string;
}

const registers = JSON.parse(readFileSync(new URL('registers.json', dir), 'utf8')) as {
  pate: { dw0: string; dw1: string };
  stops: Record<'user' | 'kernel', Stop>;
  regions: { name: string; va: string; bytes: string }[];
};

function tables(): SparsePageMemory {
  const raw = gunzipSync(readFileSync(new URL('tables.bin.gz', dir)));
  const pages = new Map<number, Uint8Array>();
  for (let at = 0; at < raw.length; at += 8 + 4096) {
    const gpa = Number(raw.readBigUInt64LE(at));
    pages.set(gpa, raw.subarray(at + 8, at + 8 + 4096));
  }
  return new SparsePageMemory(pages);
}

function regsAt(stop: Stop): RadixRegisters {
  const msr = BigInt(`0x${stop.msr}`);
  const regs = new RadixRegisters().setVirtualHypervisorPate(BigInt(`0x${registers.pate.dw0}`), BigInt(`0x${registers.pate.dw1}`));
  // MSR bits (POWER ISA v3.0 Book III 4.2.1): HV 60, PR 14, IR 5, DR 4.
  regs.hv = ((msr >> 60n) & 1n) === 1n;
  regs.pr = ((msr >> 14n) & 1n) === 1n;
  regs.ir = ((msr >> 5n) & 1n) === 1n;
  regs.dr = ((msr >> 4n) & 1n) === 1n;
  regs.pidr = stop.pidr;
  regs.lpidr = stop.lpidr;
  regs.setAmr(BigInt(`0x${stop.amr}`));
  regs.setIamr(BigInt(`0x${stop.iamr}`));
  return regs;
}

function lines(file: string): string[][] {
  return gunzipSync(readFileSync(new URL(file, dir)))
    .toString('utf8')
    .split('\n')
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => l.split(' '));
}

describe('real machine: QEMU 7.2 pseries POWER9, Debian 6.1 ppc64el (radix, 64K pages)', () => {
  const probes = lines('gva2gpa.txt.gz');

  for (const stopName of ['user', 'kernel'] as const) {
    it(`answers every ${stopName}-mode gva2gpa probe as QEMU did, writing nothing`, () => {
      const mem = tables();
      const before = mem.bytes.slice();
      const regs = regsAt(registers.stops[stopName]);
      expect(regs.pr).toBe(stopName === 'user');
      const mine = probes.filter((p) => p[2] === stopName);
      expect(mine.length).toBe(4058);
      const wrong: string[] = [];
      let mapped = 0;
      for (const [gva, answer] of mine) {
        const got = radixDebugTranslate(mem, regs, BigInt(`0x${gva}`));
        const expected = answer === 'unmapped' ? null : BigInt(`0x${answer}`);
        if (got !== expected) wrong.push(`${gva}: QEMU ${answer}, hvmmu ${got === null ? 'unmapped' : got.toString(16)}`);
        if (expected !== null) mapped++;
      }
      expect(wrong.slice(0, 10)).toEqual([]);
      expect(mapped).toBeGreaterThan(stopName === 'user' ? 100 : 1000);
      expect(Buffer.from(mem.bytes).equals(Buffer.from(before))).toBe(true);
    });
  }

  it('lists exactly the leaves of the user (PID 2) and kernel (PID 0) trees, with page size and entry', () => {
    const mem = tables();
    const regs = regsAt(registers.stops.user);
    const expected = lines('mappings.txt.gz').map(([, pid, va, pa, shift, , pte]) => `${pid} ${va} ${pa} ${shift} ${pte}`);
    const listed: string[] = [];
    const prtb = 0x7e00_0000;
    for (const [pid, quadrant] of [
      [2, 0],
      [0, 3],
    ] as const) {
      const at = mem.resolve(prtb + pid * 16, false);
      const listing = enumerateRadixTree(mem, mem.view.getUint32(at, false), mem.view.getUint32(at + 4, false), { quadrant });
      expect(listing.badEntries).toBe(0);
      expect(listing.truncated).toBe(false);
      for (const leaf of listing.leaves) {
        const pte = ((BigInt(leaf.pteHi) << 32n) | BigInt(leaf.pteLo)).toString(16);
        listed.push(`${pid} ${leaf.address.toString(16)} ${leaf.ra.toString(16)} ${leaf.pageShift} ${pte}`);
      }
    }
    void regs;
    expect(listed.sort()).toEqual(expected.sort());
    expect(listed.length).toBe(1179);
  });

  it('the hardware path on the same tables: user stores fault as POWER9 does (protection before R/C), kernel pages are closed to user state', () => {
    const mem = tables();
    const regs = regsAt(registers.stops.user);
    const walker = new RadixWalker(mem);
    const out = new RadixTranslation();
    const region = (name: string): bigint => BigInt(registers.regions.find((r) => r.name === name)!.va);
    const split = (ea: bigint): [number, number] => [Number(ea >> 32n), Number(ea & 0xffff_ffffn)];
    // The shared zero page under 'ro-zero' is R, not C, user read-only (R-0Ur--): a store is a protection fault.
    expect(walker.translate(regs, ...split(region('ro-zero')), RadixAccess.LOAD, out)).toBe(true);
    expect(walker.translate(regs, ...split(region('ro-zero')), RadixAccess.STORE, out)).toBe(false);
    expect([out.vector, out.cause]).toEqual([RadixVector.DSI, Dsisr.PROTFAULT | Dsisr.STORE]);
    // 'rw' pages were written (RC0Urw-): a store translates.
    expect(walker.translate(regs, ...split(region('rw')), RadixAccess.STORE, out)).toBe(true);
    expect(out.pageShift).toBe(16);
    // The kernel's linear map from user state: privileged pages give nothing.
    expect(walker.translate(regs, 0xc000_0000, 0x0001_0000, RadixAccess.LOAD, out)).toBe(false);
    expect([out.vector, out.cause, out.darHi]).toEqual([RadixVector.DSI, Dsisr.PROTFAULT, 0xc000_0000]);
  });
});
