import { describe, expect, it } from 'vitest';
import { Access, FlatGuestMemory, type GuestMemory } from '@hvmmu/core';
import { CR0, CR4, EFER, GuestWalk, GuestWalker, X86Registers } from '@hvmmu/x86-shadow/internal';

// Entry bits (SDM 4.5), written out here independently of the walker.
const P = 1,
  W = 2,
  U = 4,
  A = 0x20,
  D = 0x40;
const XD_HI = 0x8000_0000;

/**
 * PML4 0x1000 → PDPT 0x2000 → PD 0x3000 → PT 0x4000 → page 0x5000 for va 0,
 * every entry accessed and the leaf dirty (the case the walker's fast path
 * takes). The PDPTE drops W, the PDE sets XD, the PTE keeps U: so the access
 * accumulated above each level (KVM pt_access, ACC X=1 W=2 U=4) is, by hand:
 * above PML4E 7 (nothing yet), above PDPTE 7, above PDE 5 (no W), above PTE 4 (no X).
 */
function image(): Uint8Array {
  const bytes = new Uint8Array(0x6000);
  const v = new DataView(bytes.buffer);
  v.setUint32(0x1000, 0x2000 | P | W | U | A, true);
  v.setUint32(0x2000, 0x3000 | P | U | A, true);
  v.setUint32(0x3000, 0x4000 | P | W | U | A, true);
  v.setUint32(0x3004, XD_HI, true);
  v.setUint32(0x4000, 0x5000 | P | W | U | A | D, true);
  return bytes;
}

function regs(): X86Registers {
  const r = new X86Registers();
  r.cr0 = (CR0.PE | CR0.PG | CR0.WP) >>> 0;
  r.cr4 = CR4.PAE;
  r.efer = EFER.LME | EFER.LMA | EFER.NXE;
  r.cr3 = 0x1000;
  return r;
}

/** The same bytes behind `resolve` at a shifted offset, so the walk cannot use the flat-image path. */
class ShiftedMemory implements GuestMemory {
  readonly view: DataView;
  constructor(
    bytes: Uint8Array,
    private readonly shift: number,
  ) {
    const buf = new Uint8Array(bytes.length + shift);
    buf.set(bytes, shift);
    this.view = new DataView(buf.buffer);
  }
  resolve(gpa: number): number {
    return gpa >= 0 && gpa + 8 <= this.view.byteLength - this.shift ? gpa + this.shift : -1;
  }
}

describe('tableGfn and ptAccess after a walk (computed lazily on the fast path)', () => {
  const expectFields = (walk: GuestWalk): void => {
    expect(walk.ok).toBe(true);
    expect(walk.gfn).toBe(5);
    expect([walk.tableGfn[4], walk.tableGfn[3], walk.tableGfn[2], walk.tableGfn[1]]).toEqual([1, 2, 3, 4]);
    expect([walk.ptAccess[4], walk.ptAccess[3], walk.ptAccess[2], walk.ptAccess[1]]).toEqual([7, 7, 5, 4]);
    expect([walk.pteGpa[4], walk.pteGpa[3], walk.pteGpa[2], walk.pteGpa[1]]).toEqual([0x1000, 0x2000, 0x3000, 0x4000]);
  };

  for (const [name, memory] of [
    ['flat image', () => new FlatGuestMemory(image())],
    ['memory behind resolve, 4-byte aligned', () => new ShiftedMemory(image(), 8)],
    ['memory behind resolve, misaligned (DataView walk)', () => new ShiftedMemory(image(), 1)],
  ] as const) {
    it(`${name}: hand-computed per-level fields, with and without A/D updates`, () => {
      const walker = new GuestWalker();
      for (const setAd of [false, true]) {
        const walk = new GuestWalk();
        walker.walk(regs(), memory(), 0, Access.READ | Access.USER, walk, setAd);
        expectFields(walk);
      }
    });
  }

  it("a result object reused across walks never shows the previous walk's levels", () => {
    const walker = new GuestWalker();
    const walk = new GuestWalk();
    const mem = new FlatGuestMemory(image());
    walker.walk(regs(), mem, 0, Access.READ | Access.USER, walk, true);
    // A second walk that faults at the PML4E (va in PML4 slot 1, not present).
    walker.walk(regs(), mem, 2 ** 27, Access.READ | Access.USER, walk, true);
    expect(walk.ok).toBe(false);
    walker.walk(regs(), mem, 0, Access.READ | Access.USER, walk, false);
    expectFields(walk);
  });
});
