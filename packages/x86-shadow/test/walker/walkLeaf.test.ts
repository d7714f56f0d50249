import { describe, expect, it } from 'vitest';
import { Access, FlatGuestMemory, HvmmuError } from '@hvmmu/core';
import { CR0, CR4, EFER, GuestWalker, X86Registers } from '@hvmmu/x86-shadow/internal';
import { AccessRig, allControls, allUpperFlags, entry, permissiveUpper } from './accessHarness.js';
import type { EntryFlags } from './accessOracle.js';

// GuestWalker.walkLeaf: the last level of a long-mode walk whose upper levels a shadow page vouches
// for (the shadow MMU's first-touch path), checked against the same ISA oracle as the full walk.

/** Every PTE flag combination of a long-mode 4 KiB leaf. */
function allPtes(): EntryFlags[] {
  const names: (keyof EntryFlags)[] = ['present', 'writable', 'user', 'accessed', 'dirty', 'noExecute', 'reservedBit', 'key1'];
  return Array.from({ length: 1 << names.length }, (_, b) => {
    const set: Partial<Record<keyof EntryFlags, boolean>> = {};
    names.forEach((n, i) => {
      set[n] = (b & (1 << i)) !== 0;
    });
    return entry(set);
  });
}

/** Table-pointer PDEs with A set: every W/U/XD combination. */
function tablePdes(): EntryFlags[] {
  return Array.from({ length: 8 }, (_, b) =>
    entry({
      present: true,
      accessed: true,
      writable: (b & 1) !== 0,
      user: (b & 2) !== 0,
      noExecute: (b & 4) !== 0,
    }),
  );
}

describe('GuestWalker.walkLeaf', () => {
  for (const mode of ['long4', 'long5'] as const) {
    it(`${mode}: refuses what faults or needs A/D, else matches the ISA oracle, for every PTE × PDE W/U/XD × access × control bit`, () => {
      const rig = new AccessRig(mode);
      const r = rig.runLeaf(allControls(mode), tablePdes(), allPtes(), permissiveUpper(mode));
      expect(r.mismatches).toEqual([]);
      expect(r.cases).toBeGreaterThan(1_000_000);
      expect(r.faults).toBeGreaterThan(100_000);
    });
  }

  it('takes the W, U and XD of every upper level from pt_access', () => {
    const rig = new AccessRig('long4');
    const controls = allControls('long4').filter((c) => !c.ac && !c.pke);
    const ptes = allPtes().filter((p) => !p.key1 && !p.reservedBit);
    let cases = 0;
    for (const upper of allUpperFlags(2)) {
      const r = rig.runLeaf(controls, tablePdes(), ptes, upper);
      expect(r.mismatches).toEqual([]);
      cases += r.cases;
    }
    expect(cases).toBeGreaterThan(1_000_000);
  });

  it('reads through resolve as through a flat image', () => {
    const rig = new AccessRig('long4', true);
    const controls = allControls('long4').filter((c) => !c.ac && !c.smap);
    const r = rig.runLeaf(controls, tablePdes(), allPtes(), permissiveUpper('long4'));
    expect(r.mismatches).toEqual([]);
  });

  it('declines outside long mode, for a table at or above 4 GiB, and for a table outside memory', () => {
    const image = new Uint8Array(1 << 20);
    const view = new DataView(image.buffer);
    const mem = new FlatGuestMemory(image);
    const walker = new GuestWalker();
    const regs = new X86Registers();
    regs.cr0 = (CR0.PE | CR0.PG) >>> 0;
    regs.cr4 = CR4.PAE;
    regs.efer = EFER.LME | EFER.LMA;
    // A valid leaf at index 3 of the table at gfn 0x10.
    view.setUint32(0x10_000 + 3 * 8, 0x55_000 | 0x67, true);
    expect(walker.walkLeaf(regs, mem, 3, Access.READ, 0x10, 7)).toBe(0x55);
    expect(walker.walkLeaf(regs, mem, 3, Access.READ, 2 ** 22, 7)).toBe(-1);
    expect(walker.walkLeaf(regs, mem, 3, Access.READ, 0x200, 7)).toBe(-1);
    regs.efer = 0; // PAE paging: 8-byte entries, but not long mode.
    expect(walker.walkLeaf(regs, mem, 3, Access.READ, 0x10, 7)).toBe(-1);
  });

  it('throws a typed error on a bad vpn or access, as walk does', () => {
    const walker = new GuestWalker();
    const mem = new FlatGuestMemory(new Uint8Array(4096));
    const regs = new X86Registers();
    expect(() => walker.walkLeaf(regs, mem, -1, Access.READ, 0, 7)).toThrow(HvmmuError);
    expect(() => walker.walkLeaf(regs, mem, 0.5, Access.READ, 0, 7)).toThrow(HvmmuError);
    expect(() => walker.walkLeaf(regs, mem, 0, Access.WRITE | Access.FETCH, 0, 7)).toThrow(HvmmuError);
  });
});
