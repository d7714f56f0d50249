import { describe, expect, it } from 'vitest';
import { FaultKind } from '@hvmmu/core';
import { CR4 } from '@hvmmu/x86-shadow/internal';
import { A, D, P, TableBuilder, U, W, controlsFor, makeVm, type GuestMode } from './helpers/guest.js';
import { checkInvariants } from './helpers/invariants.js';

// Regression: a guest that changes only the protection key of a leaf in an unsync page table
// (SDM 4.6.2: PTE bits 62:59 select the PKRU pair that governs a user page) must see the new key
// after INVLPG or a CR3 reload, as on hardware. The sync of an unsync leaf used to keep the old
// shadow entry whenever the W/U/NX rights were unchanged, so a read PKRU forbids still succeeded.

const VA = 0x40_0000;
const DATA = 0x20_0000;
/** The guest's window onto the page table that maps VA. */
const PT_WINDOW = 0x7000_1000;
/**
 * #PF error code of a supervisor read of the user page: P (bit 0) | PK (bit 5), SDM 4.7 (PKRU
 * governs supervisor data accesses to user pages too, SDM 4.6.2).
 */
const PF_P_PK = 0x21;
/** PKRU.AD for key 8 (SDM 2.7: bit 2k is AD, bit 2k+1 is WD). */
const PKRU_AD_KEY8 = 1 << 16;

function guestWithPke(mode: GuestMode) {
  const t = makeVm();
  const b = new TableBuilder(t.mem, mode, 0x10_0000);
  const root = b.root();
  const pteGpa = b.map4k(root, VA, DATA, P | W | U | A | D);
  b.map4k(root, PT_WINDOW, pteGpa & ~0xfff, P | W | A | D);
  t.mem.write32(DATA, 0x1234_5678, true);
  expect(t.x.loadControlRegisters(controlsFor(mode, root, { cr4: CR4.PKE }))).toBe(true);
  return { ...t, b, root, pteGpa };
}

/** The guest (CPL 0) sets key 8 in its own PTE for VA, writing through its mapping of the page table. */
function guestSetsKey8(t: ReturnType<typeof guestWithPke>): void {
  const at = PT_WINDOW + (t.pteGpa & 0xfff);
  expect(t.x.write(at, 8, (DATA | P | W | U | A | D) >>> 0, 8 << 27)).toBe(true);
  expect(t.b.read(t.pteGpa).hi >>> 27).toBe(8);
}

describe('protection keys after a guest edit of an unsync leaf', () => {
  for (const mode of ['long4', 'long5'] as const) {
    it(`${mode}: INVLPG makes the new key govern the page (#PF with P|PK)`, () => {
      const t = guestWithPke(mode);
      expect(t.x.read(VA, 4)).toBe(true);
      expect(t.x.readLo).toBe(0x1234_5678);
      guestSetsKey8(t);
      t.x.setPkru(PKRU_AD_KEY8);
      t.x.invlpg(VA);
      expect(t.x.read(VA, 4)).toBe(false);
      expect(t.vcpu.fault.kind).toBe(FaultKind.GUEST);
      expect(t.vcpu.fault.code).toBe(PF_P_PK);
      // Key 8 access allowed again: the read succeeds.
      t.x.setPkru(0);
      expect(t.x.read(VA, 4)).toBe(true);
      expect(checkInvariants(t.vm)).toEqual([]);
    });

    it(`${mode}: a CR3 reload makes the new key govern the page`, () => {
      const t = guestWithPke(mode);
      expect(t.x.read(VA, 4)).toBe(true);
      guestSetsKey8(t);
      t.x.setPkru(PKRU_AD_KEY8);
      expect(t.x.setCr3(t.root)).toBe(true);
      expect(t.x.read(VA, 4)).toBe(false);
      expect(t.vcpu.fault.code).toBe(PF_P_PK);
      expect(checkInvariants(t.vm)).toEqual([]);
    });

    it(`${mode}: clearing the key again lifts the PKRU restriction after INVLPG`, () => {
      const t = guestWithPke(mode);
      guestSetsKey8(t);
      t.x.setPkru(PKRU_AD_KEY8);
      expect(t.x.read(VA, 4)).toBe(false);
      expect(t.vcpu.fault.code).toBe(PF_P_PK);
      expect(t.x.write(PT_WINDOW + (t.pteGpa & 0xfff), 8, (DATA | P | W | U | A | D) >>> 0, 0)).toBe(true);
      t.x.invlpg(VA);
      expect(t.x.read(VA, 4)).toBe(true);
      expect(t.x.readLo).toBe(0x1234_5678);
      expect(checkInvariants(t.vm)).toEqual([]);
    });
  }
});
