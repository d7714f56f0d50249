import { Access, HvmmuError } from '@hvmmu/core';
import { ACC, CR0, CR4, EFER, GuestWalk, GuestWalker, PFERR, PagingMode, loadPdptes } from '@hvmmu/x86-shadow/internal';
import { describe, expect, it } from 'vitest';
import { A, CountingMemory, D, GuestImage, P, PS, RW, US, XD, firstDifference, indices, registers, vpnOf } from './guestImage.js';

const walker = new GuestWalker();

function walk(regs: ReturnType<typeof registers>, mem: GuestImage['mem'] | CountingMemory, vpn: number, access: number = Access.READ, setAD = true): GuestWalk {
  const out = new GuestWalk();
  walker.walk(regs, mem, vpn, access, out, setAD);
  return out;
}

describe('paging off', () => {
  it('maps every address to itself, 32 bits wide, with all rights and no table read', () => {
    const img = new GuestImage(4096);
    const mem = new CountingMemory(img.mem);
    const regs = registers('off', 0x1000);
    const w = walk(regs, mem, 0x12345, Access.WRITE | Access.USER);
    expect(w.ok).toBe(true);
    expect(w.gfn).toBe(0x12345);
    expect(w.maxLevel).toBe(PagingMode.NONE);
    expect(w.pteAccess).toBe(ACC.ALL);
    expect(mem.reads + mem.writes).toBe(0);
    // Linear addresses are 32 bits: page 0x1_00012345 wraps to 0x12345... of the low 4 GiB.
    expect(walk(regs, mem, 0x1_0001_2345, Access.READ).gfn).toBe(0x12345);
  });
});

describe('32-bit paging', () => {
  // VA 0xc0345678: PDE index 0x300, PTE index 0x345, offset 0x678.
  const va = 0xc0345678;
  const vpn = Math.floor(va / 4096);

  function image(): GuestImage {
    const img = new GuestImage(1 << 20);
    img.entry32(0x1000, 0x300, 0x2000 | 0x7); // PDE → PT at 0x2000, P|RW|US
    img.entry32(0x2000, 0x345, 0x9a000 | 0x3); // PTE → gfn 0x9a, P|RW (supervisor)
    return img;
  }

  it('walks a 4 KiB page through the PD and PT, recording each level like KVM guest_walker', () => {
    const img = image();
    const regs = registers('bits32', 0x1000 | 0x18); // PWT/PCD bits of CR3 are ignored
    const w = walk(regs, img.mem, vpn, Access.READ);
    expect(w.ok).toBe(true);
    expect(w.level).toBe(1);
    expect(w.maxLevel).toBe(2);
    expect(w.gfn).toBe(0x9a);
    expect(w.tableGfn[2]).toBe(1);
    expect(w.pteGpa[2]).toBe(0x1000 + 0x300 * 4);
    expect(w.tableGfn[1]).toBe(2);
    expect(w.pteGpa[1]).toBe(0x2000 + 0x345 * 4);
    expect(w.ptAccess[2]).toBe(ACC.ALL);
    expect(w.ptAccess[1]).toBe(ACC.ALL); // PDE allowed everything
    // No XD in 4-byte entries: supervisor, writable, executable; clean leaf → KVM maps it read-only.
    expect(w.grantedAccess).toBe(ACC.EXEC | ACC.WRITE);
    expect(w.pteAccess).toBe(ACC.EXEC);
    // A set in both entries, D not (read).
    expect(img.get32(0x1000 + 0x300 * 4)).toBe(0x2000 | 0x27);
    expect(img.get32(0x2000 + 0x345 * 4)).toBe(0x9a000 | 0x23);
    expect(w.pteLo[1]).toBe(0x9a000 | 0x23);
    expect(w.pteHi[1]).toBe(0);
  });

  it('maps a 4 MiB PSE-36 page: PA 31:22 from bits 31:22, PA 35:32 from bits 16:13', () => {
    const img = image();
    // PDE: PA 31:22 = 0x2ab, bits 16:13 = 0xa (PA 35:32), PAT (bit 12) set, PS|P|RW.
    img.entry32(0x1000, 0x300, (0x2ab << 22) | (0xa << 13) | (1 << 12) | 0x83);
    const regs = registers('bits32', 0x1000, { cr4: CR4.PSE });
    const w = walk(regs, img.mem, vpn, Access.WRITE);
    expect(w.ok).toBe(true);
    expect(w.level).toBe(2);
    // gpa = 0xa_aac0_0000 + 0x345000 → gfn 0xa_aac00 + 0x345
    expect(w.gfn).toBe(0xaaac00 + 0x345);
    expect(img.get32(0x1000 + 0x300 * 4)).toBe(((0x2ab << 22) | (0xa << 13) | (1 << 12) | 0x83 | 0x60) >>> 0);
  });

  it('treats bits 21:17 of a 4 MiB PDE as reserved (KVM behaves as PSE-36)', () => {
    for (let bit = 17; bit <= 21; bit++) {
      const img = image();
      img.entry32(0x1000, 0x300, (0x2ab << 22) | (1 << bit) | 0x83);
      const w = walk(registers('bits32', 0x1000, { cr4: CR4.PSE }), img.mem, vpn, Access.WRITE | Access.USER);
      expect(w.ok).toBe(false);
      expect(w.errorCode).toBe(PFERR.P | PFERR.RSVD | PFERR.W | PFERR.U);
      expect(w.level).toBe(2);
      expect(img.get32(0x1000 + 0x300 * 4) & 0x20).toBe(0);
    }
  });

  it('ignores PS without CR4.PSE: the PDE points to a page table', () => {
    const img = image();
    img.entry32(0x1000, 0x300, 0x2000 | 0x87);
    const w = walk(registers('bits32', 0x1000), img.mem, vpn);
    expect(w.ok).toBe(true);
    expect(w.level).toBe(1);
    expect(w.gfn).toBe(0x9a);
  });

  it('uses only the low 32 bits of the address', () => {
    const img = image();
    const w = walk(registers('bits32', 0x1000), img.mem, vpn + 2 ** 20 * 7);
    expect(w.ok).toBe(true);
    expect(w.gfn).toBe(0x9a);
  });
});

describe('PAE paging', () => {
  // VA 0x80345678: PDPTE 2, PDE 0x001, PTE 0x145.
  const va = 0x80345678;
  const vpn = Math.floor(va / 4096);

  function image(): { img: GuestImage; regs: ReturnType<typeof registers> } {
    const img = new GuestImage(1 << 20);
    img.entry64(0x1fc0, 2, 0x3000n | P);
    img.entry64(0x3000, 0x001, 0x4000n | P | RW | US);
    img.entry64(0x4000, 0x145, 0x7_6543_2000n | P | RW | US | XD);
    const regs = registers('pae', 0x1fc0, { efer: EFER.NXE });
    regs.maxPhyAddr = 36;
    expect(loadPdptes(regs, img.mem)).toBe(true);
    return { img, regs };
  }

  it('walks from the cached PDPTE through PD and PT (4 KiB)', () => {
    const { img, regs } = image();
    const w = walk(regs, img.mem, vpn, Access.WRITE | Access.USER);
    expect(w.ok).toBe(true);
    expect(w.maxLevel).toBe(3);
    expect(w.level).toBe(1);
    expect(w.gfn).toBe(0x765432);
    expect(w.pteGpa[3]).toBe(0x1fc0 + 16);
    expect(w.pteLo[3]).toBe(0x3000 | 1);
    expect(w.grantedAccess).toBe(ACC.WRITE | ACC.USER);
    // A on PDE and PTE, D on the PTE; PDPTEs have no A bit and are untouched.
    expect(img.get64(0x1fc0 + 16)).toBe(0x3000n | P);
    expect(img.get64(0x3000 + 8)).toBe(0x4000n | P | RW | US | A);
    expect(img.get64(0x4000 + 0x145 * 8)).toBe(0x7_6543_2000n | P | RW | US | XD | A | D);
  });

  it('maps a 2 MiB page and keeps VA bits 20:12', () => {
    const { img, regs } = image();
    img.entry64(0x3000, 0x001, 0x8_1220_0000n | (1n << 12n) | P | RW | PS); // PAT bit 12 is not an address bit
    const w = walk(regs, img.mem, vpn);
    expect(w.ok).toBe(true);
    expect(w.level).toBe(2);
    // 2 MiB frame 0x8_1220_0000 → gfn 0x812200, plus VA bits 20:12 (0x145).
    expect(w.gfn).toBe(0x812200 + 0x145);
  });

  it('uses the PDPTEs cached at CR3 load, not what memory holds now', () => {
    const { img, regs } = image();
    img.entry64(0x1fc0, 2, 0n);
    expect(walk(regs, img.mem, vpn).ok).toBe(true);
    // A not-present cached PDPTE faults at level 3 with P=0.
    regs.pdpteLo[2] = 0;
    const w = walk(regs, img.mem, vpn, Access.FETCH);
    expect(w.ok).toBe(false);
    expect(w.level).toBe(3);
    expect(w.errorCode).toBe(PFERR.ID);
  });

  it('treats bits MAXPHYADDR..62 as reserved in PDEs and PTEs, and bit 63 without NXE', () => {
    const { img, regs } = image();
    img.entry64(0x4000, 0x145, (1n << 52n) | 0x5000n | P | RW | US);
    let w = walk(regs, img.mem, vpn);
    expect(w.errorCode).toBe(PFERR.P | PFERR.RSVD);
    expect(w.level).toBe(1);
    img.entry64(0x4000, 0x145, (1n << 36n) | 0x5000n | P);
    w = walk(regs, img.mem, vpn);
    expect(w.errorCode).toBe(PFERR.P | PFERR.RSVD);
    img.entry64(0x4000, 0x145, (1n << 35n) | 0x5000n | P); // bit 35 is an address bit with MAXPHYADDR 36
    w = walk(regs, img.mem, vpn);
    expect(w.ok).toBe(true);
    expect(w.gfn).toBe(2 ** 23 + 5);
    regs.efer = 0;
    img.entry64(0x4000, 0x145, XD | 0x5000n | P);
    expect(walk(regs, img.mem, vpn).errorCode).toBe(PFERR.P | PFERR.RSVD);
  });

  it('reserves bits 20:13 of a 2 MiB PDE', () => {
    for (let bit = 13n; bit <= 20n; bit++) {
      const { img, regs } = image();
      img.entry64(0x3000, 0x001, 0x20_0000n | (1n << bit) | P | PS);
      const w = walk(regs, img.mem, vpn);
      expect(w.errorCode).toBe(PFERR.P | PFERR.RSVD);
      expect(w.level).toBe(2);
    }
  });
});

describe('4-level paging', () => {
  const va = 0xffff_8123_4567_8abcn;
  const [, i1, i2, i3, i4] = indices(va) as [number, number, number, number, number];

  function image(): { img: GuestImage; regs: ReturnType<typeof registers> } {
    const img = new GuestImage(1 << 20);
    img.entry64(0x1000, i4, 0x2000n | P | RW | US);
    img.entry64(0x2000, i3, 0x3000n | P | RW | US);
    img.entry64(0x3000, i2, 0x4000n | P | RW | US);
    img.entry64(0x4000, i1, 0xab_cdef_0000n | P | RW);
    return { img, regs: registers('long4', 0x1000, { efer: EFER.NXE }) };
  }

  it('walks four levels for a 4 KiB page and sets A on each, D on the leaf for a write', () => {
    const { img, regs } = image();
    const w = walk(regs, img.mem, vpnOf(va), Access.WRITE);
    expect(w.ok).toBe(true);
    expect(w.level).toBe(1);
    expect(w.maxLevel).toBe(4);
    expect(w.gfn).toBe(0xabcdef0);
    expect([4, 3, 2, 1].map((l) => w.tableGfn[l])).toEqual([1, 2, 3, 4]);
    expect([4, 3, 2, 1].map((l) => w.pteGpa[l])).toEqual([0x1000 + i4 * 8, 0x2000 + i3 * 8, 0x3000 + i2 * 8, 0x4000 + i1 * 8]);
    expect(img.get64(0x1000 + i4 * 8)).toBe(0x2000n | P | RW | US | A);
    expect(img.get64(0x2000 + i3 * 8)).toBe(0x3000n | P | RW | US | A);
    expect(img.get64(0x3000 + i2 * 8)).toBe(0x4000n | P | RW | US | A);
    expect(img.get64(0x4000 + i1 * 8)).toBe(0xab_cdef_0000n | P | RW | A | D);
  });

  it('maps 2 MiB and 1 GiB pages (1 GiB only with PDPE1GB)', () => {
    const { img, regs } = image();
    img.entry64(0x3000, i2, 0x12_3460_0000n | P | RW | PS);
    let w = walk(regs, img.mem, vpnOf(va));
    expect(w.level).toBe(2);
    expect(w.gfn).toBe(0x1234600 + i1);

    img.entry64(0x2000, i3, 0x40_c000_0000n | (1n << 12n) | P | RW | PS);
    w = walk(regs, img.mem, vpnOf(va));
    expect(w.level).toBe(3);
    // 1 GiB frame 0x40_c000_0000 + VA bits 29:12
    expect(w.gfn).toBe(0x40c0000 + i2 * 512 + i1);

    regs.gbPages = false;
    w = walk(regs, img.mem, vpnOf(va));
    expect(w.ok).toBe(false);
    expect(w.level).toBe(3);
    expect(w.errorCode).toBe(PFERR.P | PFERR.RSVD);
  });

  it('reserves bits 29:13 of a 1 GiB PDPTE and PS in a PML4E', () => {
    const { img, regs } = image();
    img.entry64(0x2000, i3, 0x40_c000_0000n | (1n << 29n) | P | PS);
    expect(walk(regs, img.mem, vpnOf(va)).errorCode).toBe(PFERR.P | PFERR.RSVD);
    const fresh = image();
    fresh.img.entry64(0x1000, i4, 0x2000n | P | PS);
    const w = walk(fresh.regs, fresh.img.mem, vpnOf(va));
    expect(w.level).toBe(4);
    expect(w.errorCode).toBe(PFERR.P | PFERR.RSVD);
  });

  it('reserves bit 8 of PML4Es on AMD only, never of PDPTEs', () => {
    const { img, regs } = image();
    img.entry64(0x1000, i4, 0x2000n | P | RW | US | 0x100n);
    img.entry64(0x2000, i3, 0x3000n | P | RW | US | 0x100n);
    expect(walk(regs, img.mem, vpnOf(va)).ok).toBe(true);
    regs.amd = true;
    const w = walk(regs, img.mem, vpnOf(va));
    expect(w.level).toBe(4);
    expect(w.errorCode).toBe(PFERR.P | PFERR.RSVD);
    img.entry64(0x1000, i4, 0x2000n | P | RW | US);
    expect(walk(regs, img.mem, vpnOf(va)).ok).toBe(true);
  });

  it('reserves physical-address bits from MAXPHYADDR to 51 at every level, ignores 52..58', () => {
    for (const maxPhyAddr of [36, 40, 46, 52]) {
      for (const level of [4, 3, 2, 1]) {
        const { img, regs } = image();
        regs.maxPhyAddr = maxPhyAddr;
        img.entry64(0x4000, i1, 0x5000n | P | RW); // a leaf below 2^36
        const table = [0, 0x4000, 0x3000, 0x2000, 0x1000][level]!;
        const index = [0, i1, i2, i3, i4][level]!;
        const value = img.get64(table + index * 8);
        if (maxPhyAddr < 52) {
          img.set64(table + index * 8, value | (1n << BigInt(maxPhyAddr)));
          const w = walk(regs, img.mem, vpnOf(va));
          expect(w.errorCode).toBe(PFERR.P | PFERR.RSVD);
          expect(w.level).toBe(level);
        }
        // Bits 52..58 are ignored in every entry.
        img.set64(table + index * 8, value | (0x7fn << 52n));
        expect(walk(regs, img.mem, vpnOf(va)).ok).toBe(true);
      }
    }
    // The top address bit below MAXPHYADDR is an address bit of the leaf.
    const { img, regs } = image();
    regs.maxPhyAddr = 46;
    img.entry64(0x4000, i1, (1n << 45n) | P);
    expect(walk(regs, img.mem, vpnOf(va)).gfn).toBe(2 ** 33);
  });

  it('treats XD as reserved at every level while EFER.NXE = 0', () => {
    for (const level of [4, 3, 2, 1]) {
      const { img, regs } = image();
      regs.efer = EFER.LME | EFER.LMA;
      const table = [0, 0x4000, 0x3000, 0x2000, 0x1000][level]!;
      const index = [0, i1, i2, i3, i4][level]!;
      img.set64(table + index * 8, img.get64(table + index * 8) | XD);
      const w = walk(regs, img.mem, vpnOf(va), Access.FETCH);
      expect(w.level).toBe(level);
      // I/D is not reported: neither NXE nor SMEP is on.
      expect(w.errorCode).toBe(PFERR.P | PFERR.RSVD);
    }
  });

  it('reports a non-canonical address as #GP without reading a table', () => {
    const { img, regs } = image();
    const mem = new CountingMemory(img.mem);
    for (const bad of [0x0000_8000_0000_0000n, 0xffff_7fff_ffff_f000n, 0x8000_0000_0000_0000n, 0x0001_0000_0000_0000n]) {
      const w = walk(regs, mem, vpnOf(bad), Access.WRITE);
      expect(w.ok).toBe(false);
      expect(w.nonCanonical).toBe(true);
      expect(w.errorCode).toBe(0);
      expect(w.badTableGpa).toBe(false);
    }
    expect(mem.reads).toBe(0);
    // The highest canonical page of each half is walked normally.
    expect(walk(regs, mem, vpnOf(0x0000_7fff_ffff_f000n)).nonCanonical).toBe(false);
    expect(walk(regs, mem, vpnOf(0xffff_8000_0000_0000n)).nonCanonical).toBe(false);
  });

  it('takes the root from CR3 bits 51:12, ignoring the PCID', () => {
    const img = new GuestImage(1 << 20);
    const regs = registers('long4', 0x1000 | 0x5a5, { cr4: CR4.PCIDE });
    img.entry64(0x1000, 0, 0x2000n | P);
    img.entry64(0x2000, 0, 0x3000n | P);
    img.entry64(0x3000, 0, 0x4000n | P);
    img.entry64(0x4000, 7, 0x9000n | P);
    expect(walk(regs, img.mem, 7).gfn).toBe(9);
    // A root above 4 GiB: outside this image.
    regs.cr3 = 0x1_0000_1000;
    const w = walk(regs, img.mem, 7);
    expect(w.badTableGpa).toBe(true);
    expect(w.tableGfn[4]).toBe(0x100001);
  });
});

describe('5-level paging', () => {
  const va = 0xff5a_b123_4567_8000n; // bits 63:56 all ones: canonical with LA57
  const [, i1, i2, i3, i4, i5] = indices(va) as [number, number, number, number, number, number];

  function image(): { img: GuestImage; regs: ReturnType<typeof registers> } {
    const img = new GuestImage(1 << 20);
    img.entry64(0x5000, i5, 0x1000n | P | RW | US);
    img.entry64(0x1000, i4, 0x2000n | P | RW | US);
    img.entry64(0x2000, i3, 0x3000n | P | RW | US);
    img.entry64(0x3000, i2, 0x4000n | P | RW | US);
    img.entry64(0x4000, i1, 0x77_7000n | P | US);
    return { img, regs: registers('long5', 0x5000) };
  }

  it('uses VA bits 56:48 for the PML5 index and sets A in all five entries', () => {
    const { img, regs } = image();
    expect(i5).toBe(0x15a);
    const w = walk(regs, img.mem, vpnOf(va), Access.USER);
    expect(w.ok).toBe(true);
    expect(w.maxLevel).toBe(5);
    expect(w.gfn).toBe(0x777);
    expect(w.pteGpa[5]).toBe(0x5000 + i5 * 8);
    expect(img.get64(0x5000 + i5 * 8)).toBe(0x1000n | P | RW | US | A);
    expect(img.get64(0x4000 + i1 * 8)).toBe(0x77_7000n | P | US | A);
  });

  it('maps 1 GiB and 2 MiB pages below a PML5E, and reserves PS in a PML5E', () => {
    const { img, regs } = image();
    img.entry64(0x2000, i3, 0x80_0000_0000n | P | US | PS);
    expect(walk(regs, img.mem, vpnOf(va), Access.USER).gfn).toBe(0x8000000 + i2 * 512 + i1);
    img.entry64(0x5000, i5, 0x1000n | P | PS);
    const w = walk(regs, img.mem, vpnOf(va));
    expect(w.level).toBe(5);
    expect(w.errorCode).toBe(PFERR.P | PFERR.RSVD);
  });

  it('checks canonicality on bit 56, not bit 47', () => {
    const { img, regs } = image();
    // Canonical for 5 levels although bits 63:47 differ.
    expect(walk(regs, img.mem, vpnOf(0x00ff_8000_0000_0000n)).nonCanonical).toBe(false);
    expect(walk(regs, img.mem, vpnOf(0x0100_0000_0000_0000n)).nonCanonical).toBe(true);
    expect(walk(regs, img.mem, vpnOf(0xfe00_0000_0000_0000n)).nonCanonical).toBe(true);
  });
});

describe('accessed and dirty flags', () => {
  const va = 0x0000_0040_1020_3000n;
  const [, i1, i2, i3, i4] = indices(va) as [number, number, number, number, number];

  function image(): { img: GuestImage; regs: ReturnType<typeof registers> } {
    const img = new GuestImage(1 << 20);
    img.entry64(0x1000, i4, 0x2000n | P | RW | US);
    img.entry64(0x2000, i3, 0x3000n | P | RW | US);
    img.entry64(0x3000, i2, 0x4000n | P | RW | US);
    img.entry64(0x4000, i1, 0x5000n | P | RW | US);
    return { img, regs: registers('long4', 0x1000) };
  }

  it('writes nothing without setAccessedDirty, and the result is the same', () => {
    const { img, regs } = image();
    const before = img.snapshot();
    const w = walk(regs, img.mem, vpnOf(va), Access.WRITE | Access.USER, false);
    expect(w.ok).toBe(true);
    expect(w.gfn).toBe(5);
    expect(firstDifference(img.bytes, before)).toBe(-1);
  });

  it('writes nothing when nothing is missing (A everywhere, D on the leaf for a write)', () => {
    const { img, regs } = image();
    walk(regs, img.mem, vpnOf(va), Access.WRITE);
    const mem = new CountingMemory(img.mem);
    const before = img.snapshot();
    walk(regs, mem, vpnOf(va), Access.WRITE);
    walk(regs, mem, vpnOf(va), Access.READ);
    expect(mem.writes).toBe(0);
    expect(firstDifference(img.bytes, before)).toBe(-1);
  });

  it('sets only the missing bits: A in a middle entry, D on a clean leaf', () => {
    const { img, regs } = image();
    walk(regs, img.mem, vpnOf(va), Access.READ);
    img.entry64(0x2000, i3, 0x3000n | P | RW | US); // A cleared again
    const mem = new CountingMemory(img.mem);
    walk(regs, mem, vpnOf(va), Access.READ);
    expect(mem.writes).toBe(1);
    expect(img.get64(0x2000 + i3 * 8)).toBe(0x3000n | P | RW | US | A);
    expect(img.get64(0x4000 + i1 * 8)).toBe(0x5000n | P | RW | US | A);
    walk(regs, mem, vpnOf(va), Access.WRITE);
    expect(mem.writes).toBe(2);
    expect(img.get64(0x4000 + i1 * 8)).toBe(0x5000n | P | RW | US | A | D);
  });

  it('skips entries in memory that is not writable, as KVM skips read-only slots', () => {
    const { img, regs } = image();
    const mem = new CountingMemory(img.mem);
    mem.readOnlyGfns.add(2); // the PDPT
    const w = walk(regs, mem, vpnOf(va), Access.WRITE);
    expect(w.ok).toBe(true);
    expect(img.get64(0x2000 + i3 * 8)).toBe(0x3000n | P | RW | US);
    expect(w.pteLo[3]).toBe(Number(0x3000n | P | RW | US));
    expect(img.get64(0x1000 + i4 * 8)).toBe(0x2000n | P | RW | US | A);
    expect(img.get64(0x4000 + i1 * 8)).toBe(0x5000n | P | RW | US | A | D);
  });

  it('maps a clean leaf read-only for a read (KVM protect_clean_gpte) and keeps the granted rights apart', () => {
    const { img, regs } = image();
    let w = walk(regs, img.mem, vpnOf(va), Access.USER);
    expect(w.grantedAccess).toBe(ACC.ALL);
    expect(w.pteAccess).toBe(ACC.EXEC | ACC.USER);
    w = walk(regs, img.mem, vpnOf(va), Access.USER | Access.WRITE);
    expect(w.pteAccess).toBe(ACC.ALL);
    w = walk(regs, img.mem, vpnOf(va), Access.USER);
    expect(w.pteAccess).toBe(ACC.ALL); // D is set now
  });

  it('ORs the bits into the entry as it is now when the same entry serves two levels', () => {
    // PML4E 0 points to the PML4 itself, so VA 0 uses PML4E 0 at levels 4 and 3.
    const img = new GuestImage(1 << 20);
    const regs = registers('long4', 0x1000);
    img.entry64(0x1000, 0, 0x1000n | P | RW);
    const w = walk(regs, img.mem, 0, Access.WRITE);
    expect(w.ok).toBe(true);
    // Levels 4, 3, 2, 1 all use entry 0 of the PML4 page, which is also the mapped page.
    expect(w.gfn).toBe(1);
    expect(img.get64(0x1000)).toBe(0x1000n | P | RW | A | D);
  });
});

describe('privilege and access decoding', () => {
  const va = 0x1000n;
  function image(): { img: GuestImage; regs: ReturnType<typeof registers> } {
    const img = new GuestImage(1 << 20);
    img.entry64(0x1000, 0, 0x2000n | P | RW | US);
    img.entry64(0x2000, 0, 0x3000n | P | RW | US);
    img.entry64(0x3000, 0, 0x4000n | P | RW | US);
    img.entry64(0x4000, 1, 0x5000n | P); // supervisor-only, read-only
    return { img, regs: registers('long4', 0x1000, { cr0: CR0.WP, cr4: CR4.SMAP }) };
  }

  it('treats an explicit access at CPL 3 as a user access even without Access.USER', () => {
    const { img, regs } = image();
    regs.cpl = 3;
    const w = walk(regs, img.mem, vpnOf(va));
    expect(w.errorCode).toBe(PFERR.P | PFERR.U);
  });

  it('treats an implicit access at CPL 3 as a supervisor access (no U in the error code)', () => {
    const { img, regs } = image();
    regs.cpl = 3;
    expect(walk(regs, img.mem, vpnOf(va), Access.IMPLICIT).ok).toBe(true);
    expect(walk(regs, img.mem, vpnOf(va), Access.IMPLICIT | Access.WRITE).errorCode).toBe(PFERR.P | PFERR.W);
  });

  it('re-evaluates after a register change (no stale precomputed tables)', () => {
    const { img, regs } = image();
    expect(walk(regs, img.mem, vpnOf(va), Access.WRITE).errorCode).toBe(PFERR.P | PFERR.W);
    regs.cr0 &= ~CR0.WP;
    expect(walk(regs, img.mem, vpnOf(va), Access.WRITE).ok).toBe(true);
    regs.maxPhyAddr = 32;
    img.entry64(0x4000, 1, 0x1_0000_5000n | P);
    expect(walk(regs, img.mem, vpnOf(va)).errorCode).toBe(PFERR.P | PFERR.RSVD);
    regs.maxPhyAddr = 33;
    expect(walk(regs, img.mem, vpnOf(va)).gfn).toBe(0x100005);
  });

  it('throws HvmmuError for host misuse: bad access bits, bad vpn, impossible MAXPHYADDR', () => {
    const { img, regs } = image();
    const out = new GuestWalk();
    for (const access of [Access.WRITE | Access.FETCH, 16, -1, 1.5, Number.NaN]) {
      expect(() => walker.walk(regs, img.mem, 1, access, out, true)).toThrow(HvmmuError);
    }
    for (const vpn of [-1, 2 ** 52, 1.5, Number.NaN, Infinity]) {
      expect(() => walker.walk(regs, img.mem, vpn, Access.READ, out, true)).toThrow(HvmmuError);
    }
    for (const maxPhyAddr of [31, 53, 40.5]) {
      regs.maxPhyAddr = maxPhyAddr;
      expect(() => walker.walk(regs, img.mem, 1, Access.READ, out, true)).toThrow(/MAXPHYADDR/);
    }
  });
});

describe('translateGva', () => {
  const va = 0xffff_ffff_8020_1abcn;
  const [, i1, i2, i3, i4] = indices(va) as [number, number, number, number, number];
  function image(): { img: GuestImage; regs: ReturnType<typeof registers> } {
    const img = new GuestImage(1 << 20);
    img.entry64(0x1000, i4, 0x2000n | P | RW);
    img.entry64(0x2000, i3, 0x3000n | P | RW);
    img.entry64(0x3000, i2, 0x4000n | P | RW);
    img.entry64(0x4000, i1, 0x12_3456_7000n | P | RW);
    return { img, regs: registers('long4', 0x1000) };
  }

  it('translates a bigint or a sign-extended negative number, never writing A/D', () => {
    const { img, regs } = image();
    const before = img.snapshot();
    expect(walker.translateGva(regs, img.mem, va)).toBe(0x12_3456_7abc);
    expect(walker.translateGva(regs, img.mem, va - (1n << 64n))).toBe(0x12_3456_7abc);
    expect(walker.translateGva(regs, img.mem, Number(BigInt.asIntN(64, va)))).toBe(0x12_3456_7abc);
    expect(firstDifference(img.bytes, before)).toBe(-1);
  });

  it('returns -1 on a fault and leaves the details in the walk passed in', () => {
    const { img, regs } = image();
    const out = new GuestWalk();
    expect(walker.translateGva(regs, img.mem, va, Access.USER, out)).toBe(-1);
    expect(out.errorCode).toBe(PFERR.P | PFERR.U);
    expect(walker.translateGva(regs, img.mem, 0x8000_0000_0000_0000n, Access.READ, out)).toBe(-1);
    expect(out.nonCanonical).toBe(true);
    expect(() => walker.translateGva(regs, img.mem, 1n << 64n)).toThrow(HvmmuError);
    expect(() => walker.translateGva(regs, img.mem, 2 ** 60)).toThrow(HvmmuError);
  });
});
