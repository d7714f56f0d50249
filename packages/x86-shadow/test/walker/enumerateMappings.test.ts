import { Access, FlatGuestMemory, HvmmuError } from '@hvmmu/core';
import { ACC, CR4, EFER, GuestWalk, GuestWalker, enumerateMappings, loadPdptes, type MappingList } from '@hvmmu/x86-shadow/internal';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { GuestImage, P, PS, RW, US, XD, firstDifference, key, registers } from './guestImage.js';
import { propertyRuns } from '../../../../test-support/propertyRuns.js';

const X = ACC.EXEC;
const W = ACC.WRITE;
const U = ACC.USER;

/** The hand-built 4-level image and the mappings it holds, worked out by hand. */
function longModeImage(): GuestImage {
  const img = new GuestImage(1 << 20);
  // Lower half: PML4E 0 → PDPT 0x2000 → PD 0x3000 → PT 0x4000.
  img.entry64(0x1000, 0, 0x2000n | P | RW | US);
  img.entry64(0x2000, 0, 0x3000n | P | RW | US);
  img.entry64(0x3000, 0, 0x4000n | P | RW | US);
  for (let i = 0; i < 4; i++) img.entry64(0x4000, i, (BigInt(0x100 + i) * 4096n) | P | RW | US);
  img.entry64(0x4000, 4, 0x104000n | P | US); // read-only: a new run
  img.entry64(0x4000, 5, 0x200000n | P | RW | US); // not contiguous in gpa: a new run
  img.entry64(0x4000, 6, 0x201000n); // not present
  img.entry64(0x4000, 7, (1n << 51n) | 0x202000n | P | RW | US); // reserved bit: skipped
  img.entry64(0x4000, 8, 0x300000n | P | RW | US | XD);
  img.entry64(0x3000, 1, 0x4000_0000n | P | RW | US | PS); // 2 MiB
  img.entry64(0x3000, 2, 0x4020_0000n | P | RW | US | PS); // 2 MiB, contiguous with the one before
  img.entry64(0x3000, 3, 0x7_0000_0000n | P | RW | US); // PT outside memory
  img.entry64(0x2000, 1, 0x80_0000_0000n | P | RW | PS); // 1 GiB, supervisor
  // Upper half: PML4E 511 → PDPT 0x5000 → PDPTE 510 → PD 0x6000 → 2 MiB page with key 5.
  img.entry64(0x1000, 511, 0x5000n | P | RW);
  img.entry64(0x5000, 510, 0x6000n | P | RW);
  img.entry64(0x6000, 0, 0x20_0000n | P | RW | PS | key(5));
  return img;
}

const EXPECTED_LONG = [
  { vpn: 0, gfn: 0x100, pages: 4, access: X | W | U, pkey: 0 },
  { vpn: 4, gfn: 0x104, pages: 1, access: X | U, pkey: 0 },
  { vpn: 5, gfn: 0x200, pages: 1, access: X | W | U, pkey: 0 },
  { vpn: 8, gfn: 0x300, pages: 1, access: W | U, pkey: 0 },
  { vpn: 512, gfn: 0x40000, pages: 1024, access: X | W | U, pkey: 0 },
  { vpn: 2 ** 18, gfn: 0x8000000, pages: 2 ** 18, access: X | W, pkey: 0 },
  // VA 0xffff_ffff_8000_0000: PML4E 511, PDPTE 510.
  { vpn: 0xf_ffff_fff8_0000, gfn: 0x200, pages: 512, access: X | W, pkey: 5 },
];

/** Walk the first, middle and last page of every run (of at most `maxRuns` spread runs): the walker must agree. */
function walkerAgrees(list: MappingList, regs: ReturnType<typeof registers>, mem: FlatGuestMemory, maxRuns = Infinity): void {
  const walker = new GuestWalker();
  const out = new GuestWalk();
  const step = Math.max(1, Math.ceil(list.count / maxRuns));
  const disagreements: string[] = [];
  for (let i = 0; i < list.count; i += step) {
    const run = list.run(i);
    for (const k of [0, run.pages - 1, Math.floor(run.pages / 2)]) {
      const ok = walker.walk(regs, mem, run.vpn + k, Access.READ, out, false);
      if (!ok || out.gfn !== run.gfn + k || out.grantedAccess !== run.access || out.pkey !== run.pkey) {
        disagreements.push(`vpn ${run.vpn + k}: walk ok=${ok} gfn=${out.gfn} access=${out.grantedAccess} pkey=${out.pkey}, run ${JSON.stringify(run)}`);
      }
    }
  }
  expect(disagreements).toEqual([]);
}

describe('enumerateMappings', () => {
  it('lists every mapping of a 4-level image as runs with their effective rights and keys', () => {
    const img = longModeImage();
    const regs = registers('long4', 0x1000, { efer: EFER.NXE, cr4: CR4.PKE });
    const mem = new FlatGuestMemory(img.bytes, { readOnly: true });
    const before = img.snapshot();
    const list = enumerateMappings(regs, mem);
    expect(list.runs()).toEqual(EXPECTED_LONG);
    expect(list.pages).toBe(4 + 1 + 1 + 1 + 1024 + 2 ** 18 + 512);
    expect(list.reservedEntries).toBe(1);
    expect(list.badTables).toBe(1);
    expect(list.entriesRead).toBe(6 * 512);
    expect(list.truncated).toBe(false);
    expect(firstDifference(img.bytes, before)).toBe(-1);
    walkerAgrees(list, regs, mem);
  });

  it('reports no keys without CR4.PKE, and XD as executable without NXE (then XD is reserved: skipped)', () => {
    const img = longModeImage();
    const list = enumerateMappings(registers('long4', 0x1000), img.mem);
    expect(list.runs().map((r) => r.pkey)).toEqual([0, 0, 0, 0, 0, 0]);
    expect(list.reservedEntries).toBe(2); // bit 51, and XD without NXE
    expect(list.runs().map((r) => r.vpn)).toEqual([0, 4, 5, 512, 2 ** 18, 0xf_ffff_fff8_0000]);
  });

  it('treats PS in a PDPTE as reserved without 1 GiB pages', () => {
    const img = longModeImage();
    const regs = registers('long4', 0x1000, { efer: EFER.NXE });
    regs.gbPages = false;
    const list = enumerateMappings(regs, img.mem);
    expect(list.runs().some((r) => r.pages === 2 ** 18)).toBe(false);
    expect(list.reservedEntries).toBe(2);
  });

  it('lists 32-bit mappings with 4 MiB PSE-36 pages', () => {
    const img = new GuestImage(1 << 20);
    img.entry32(0x1000, 0, 0x2000 | 0x7);
    img.entry32(0x2000, 0, 0x10000 | 0x7);
    img.entry32(0x2000, 1, 0x11000 | 0x7);
    img.entry32(0x2000, 1023, 0x12000 | 0x5);
    // 4 MiB page: PA 31:22 = 5, PA 35:32 = 3 (bits 16:13), user read-only.
    img.entry32(0x1000, 1, (5 << 22) | (3 << 13) | 0x85);
    img.entry32(0x1000, 2, (6 << 22) | (1 << 17) | 0x85); // bit 17: reserved in a PSE-36 PDE
    const regs = registers('bits32', 0x1000, { cr4: CR4.PSE });
    const list = enumerateMappings(regs, img.mem);
    expect(list.runs()).toEqual([
      { vpn: 0, gfn: 0x10, pages: 2, access: X | W | U, pkey: 0 },
      { vpn: 1023, gfn: 0x12, pages: 1, access: X | U, pkey: 0 },
      { vpn: 1024, gfn: 3 * 2 ** 20 + 5 * 1024, pages: 1024, access: X | U, pkey: 0 },
    ]);
    expect(list.reservedEntries).toBe(1);
    walkerAgrees(list, regs, img.mem);
    // Without CR4.PSE those PDEs are page-table pointers, far outside this image.
    const noPse = enumerateMappings(registers('bits32', 0x1000), img.mem);
    expect(noPse.runs()).toHaveLength(2);
    expect(noPse.badTables).toBe(2);
  });

  it('walks PAE tables from the cached PDPTEs, or from memory for a raw image', () => {
    const img = new GuestImage(1 << 20);
    img.entry64(0x1fe0, 3, 0x3000n | P);
    img.entry64(0x3000, 0, 0x60_0000n | P | RW | PS);
    img.entry64(0x3000, 1, 0x4000n | P | RW | US);
    img.entry64(0x4000, 2, 0x9000n | P | US | XD);
    const regs = registers('pae', 0x1fe0, { efer: EFER.NXE });
    const expected = [
      { vpn: 3 * 2 ** 18, gfn: 0x600, pages: 512, access: X | W, pkey: 0 },
      { vpn: 3 * 2 ** 18 + 512 + 2, gfn: 9, pages: 1, access: U, pkey: 0 },
    ];
    // Nothing cached yet: no mapping, until the PDPTEs are read from memory or loaded.
    expect(enumerateMappings(regs, img.mem).count).toBe(0);
    expect(enumerateMappings(regs, img.mem, { pdptesFromMemory: true }).runs()).toEqual(expected);
    expect(loadPdptes(regs, img.mem)).toBe(true);
    const list = enumerateMappings(regs, img.mem);
    expect(list.runs()).toEqual(expected);
    walkerAgrees(list, regs, img.mem);
  });

  it('sign-extends 5-level addresses from bit 56', () => {
    const img = new GuestImage(1 << 20);
    img.entry64(0x1000, 300, 0x2000n | P | RW | US);
    img.entry64(0x2000, 0, 0x3000n | P | RW | US);
    img.entry64(0x3000, 0, 0x4000n | P | RW | US);
    img.entry64(0x4000, 0, 0x5000n | P | RW | US);
    img.entry64(0x5000, 9, 0xa000n | P | RW | US);
    const regs = registers('long5', 0x1000);
    const list = enumerateMappings(regs, img.mem);
    expect(list.runs()).toEqual([{ vpn: 300 * 2 ** 36 + (2 ** 52 - 2 ** 45) + 9, gfn: 10, pages: 1, access: X | W | U, pkey: 0 }]);
    walkerAgrees(list, regs, img.mem);
  });

  it('bounds the work on a self-referencing PML4 and says when it stopped early', () => {
    const img = new GuestImage(1 << 20);
    img.entry64(0x1000, 0, 0x2000n | P | RW | US);
    img.entry64(0x2000, 0, 0x3000n | P | RW | US);
    img.entry64(0x3000, 0, 0x4000n | P | RW | US);
    img.entry64(0x4000, 0, 0x77000n | P | RW | US);
    img.entry64(0x1000, 0x1ed, 0x1000n | P | RW); // the recursive slot
    const regs = registers('long4', 0x1000);
    const list = enumerateMappings(regs, img.mem);
    // Tables visited: PML4; PDPT, PD, PT; PML4 as PDPT; PDPT as PD, PD as PT; PML4 as PD, PDPT as PT, PML4 as PT.
    expect(list.entriesRead).toBe(10 * 512);
    expect(list.truncated).toBe(false);
    // The self-map: all four indices 0x1ed map the PML4 page itself.
    const selfVpn = 0x1ed * (2 ** 27 + 2 ** 18 + 2 ** 9 + 1) + (2 ** 52 - 2 ** 36);
    expect(list.runs()).toContainEqual({ vpn: selfVpn, gfn: 1, pages: 1, access: X | W, pkey: 0 });
    expect(list.runs()[0]).toEqual({ vpn: 0, gfn: 0x77, pages: 1, access: X | W | U, pkey: 0 });
    walkerAgrees(list, regs, img.mem);

    const cut = enumerateMappings(regs, img.mem, { maxEntries: 1000 });
    expect(cut.truncated).toBe(true);
    expect(cut.entriesRead).toBe(1000);
    const few = enumerateMappings(regs, img.mem, { maxRuns: 2 });
    expect(few.truncated).toBe(true);
    expect(few.count).toBe(2);
  });

  it('reports nothing with paging off, and throws HvmmuError for a bad budget', () => {
    const img = longModeImage();
    expect(enumerateMappings(registers('off', 0x1000), img.mem).count).toBe(0);
    expect(() => enumerateMappings(registers('long4', 0x1000), img.mem, { maxRuns: 0 })).toThrow(HvmmuError);
    expect(() => enumerateMappings(registers('long4', 0x1000), img.mem, { maxEntries: 1.5 })).toThrow(HvmmuError);
  });

  it('tolerates garbage images: bounded, ordered, non-overlapping runs that the walker agrees with', () => {
    let totalRuns = 0;
    let truncated = 0;
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 0x7fffffff }),
        fc.constantFrom('bits32', 'pae', 'long4', 'long5'),
        fc.boolean(),
        fc.integer({ min: 1, max: 6000 }),
        (seed, mode, nxe, maxEntries) => {
          const img = new GuestImage(16 * 4096);
          let x = seed;
          for (let off = 0; off < img.bytes.length; off += 4) {
            x ^= x << 13;
            x ^= x >>> 17;
            x ^= x << 5;
            // Low words: pointers into the image with random flags; high words mostly 0.
            const word = (off & 4) === 0 ? ((x >>> 0) % (18 * 4096)) & ~0x100 : (x & 0xff) === 0 ? x >>> 0 : 0;
            img.view.setUint32(off, word >>> 0, true);
          }
          const regs = registers(mode, 0x1000, { efer: nxe ? EFER.NXE : 0, cr4: CR4.PSE });
          const before = img.snapshot();
          const list = enumerateMappings(regs, img.mem, { maxEntries, pdptesFromMemory: true });
          expect(list.entriesRead).toBeLessThanOrEqual(maxEntries);
          totalRuns += list.count;
          if (list.truncated) truncated++;
          expect(firstDifference(img.bytes, before)).toBe(-1);
          let ordered = true;
          for (let i = 1; i < list.count; i++) ordered &&= list.vpnStart[i]! >= list.vpnStart[i - 1]! + list.pageCount[i - 1]!;
          expect(ordered).toBe(true);
          // The walker starts PAE walks at the cached PDPTEs: compare when they load (else a MOV to CR3 would #GP).
          if (mode !== 'pae' || loadPdptes(regs, img.mem)) walkerAgrees(list, regs, img.mem, 64);
        },
      ),
      { numRuns: propertyRuns(200) },
    );
    // The garbage does map pages, and some images exhaust the entry budget.
    expect(totalRuns).toBeGreaterThan(1000);
    expect(truncated).toBeGreaterThan(10);
  });
});
