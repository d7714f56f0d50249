import { describe, expect, it } from 'vitest';
import { Access, ACCESS_KINDS, TranslationResult, isValidAccess } from '@hvmmu/core';
import { A, D, P, TableBuilder, U, controlsFor, makeVm } from './helpers/guest.js';
import { EC_ID as PF_ID, EC_P as PF_P, EC_U as PF_U, EC_W as PF_W } from '../walker/accessOracle.js';

// The code a miss of the hardware walk (the shadow table) hands to the fault handler: the bits of
// the #PF error code the CPU would report for it (SDM 4.7), P set when a present leaf refused.

function guest() {
  const t = makeVm();
  const b = new TableBuilder(t.mem, 'long4', 0x10_0000);
  const pml4 = b.root();
  // A read-only user page, and its neighbour left unmapped in the shadow table.
  b.map4k(pml4, 0x40_0000, 0x20_0000, P | U | A | D);
  b.map4k(pml4, 0x40_1000, 0x20_1000, P | U | A | D);
  expect(t.x.loadControlRegisters(controlsFor('long4', pml4))).toBe(true);
  return t;
}

/** What the error code says of an access: W for a write, U for a user-mode one, I/D for a fetch (NXE is on). */
function expectedBits(access: number, cpl: number): number {
  const user = (access & Access.IMPLICIT) === 0 && ((access & Access.USER) !== 0 || cpl === 3);
  return ((access & Access.WRITE) !== 0 ? PF_W : 0) | (user ? PF_U : 0) | ((access & Access.FETCH) !== 0 ? PF_ID : 0);
}

describe('hardware walk misses', () => {
  it('report W, U and I/D for every access kind and CPL, without P for an empty entry', () => {
    const t = guest();
    expect(t.x.read(0x40_0000, 4)).toBe(true);
    const out = new TranslationResult();
    let tried = 0;
    for (const cpl of [0, 3]) {
      t.x.setCpl(cpl);
      for (let access = 0; access < ACCESS_KINDS; access++) {
        if (!isValidAccess(access)) continue;
        out.missCode = -1;
        expect(t.x.translate(0x40_1000 / 4096, access, out)).toBe(-1);
        expect(out.missCode, `access ${access} at CPL ${cpl}`).toBe(expectedBits(access, cpl));
        tried++;
      }
    }
    expect(tried).toBeGreaterThanOrEqual(16);
  });

  it('add P when the leaf is present but refuses the access', () => {
    const t = guest();
    expect(t.x.read(0x40_0000, 4)).toBe(true);
    const out = new TranslationResult();
    expect(t.x.translate(0x40_0000 / 4096, Access.WRITE, out)).toBe(-1);
    expect(out.missCode).toBe(PF_P | PF_W);
    t.x.setCpl(3);
    expect(t.x.translate(0x40_0000 / 4096, Access.WRITE, out)).toBe(-1);
    expect(out.missCode).toBe(PF_P | PF_W | PF_U);
    expect(t.x.translate(0x40_0000 / 4096, Access.READ, out)).toBeGreaterThanOrEqual(0);
  });
});
