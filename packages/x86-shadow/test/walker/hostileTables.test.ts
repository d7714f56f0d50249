import { Access, FlatGuestMemory, type GuestMemory } from '@hvmmu/core';
import { CR0, CR4, EFER, GuestWalk, GuestWalker, PFERR, X86Registers } from '@hvmmu/x86-shadow/internal';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CountingMemory, GuestImage, P, RW, US, firstDifference, registers } from './guestImage.js';
import { propertyRuns } from '../../../../test-support/propertyRuns.js';

const walker = new GuestWalker();

type ArbValue<T> = T extends fc.Arbitrary<infer V> ? V : never;

describe('hostile guest tables', () => {
  it('reports a table outside guest memory as badTableGpa with the not-present #PF KVM injects', () => {
    const img = new GuestImage(64 << 10);
    const regs = registers('long4', 0x1000);
    img.entry64(0x1000, 0, 0x2000n | P | RW | US);
    img.entry64(0x2000, 0, 0x7_0000_0000n | P | RW | US); // PD far outside the 64 KiB image
    const before = img.snapshot();
    const out = new GuestWalk();
    expect(walker.walk(regs, img.mem, 0, Access.WRITE | Access.USER, out, true)).toBe(false);
    expect(out.badTableGpa).toBe(true);
    expect(out.level).toBe(2);
    expect(out.tableGfn[2]).toBe(0x700000);
    expect(out.errorCode).toBe(PFERR.W | PFERR.U);
    expect(firstDifference(img.bytes, before)).toBe(-1);
  });

  it('does not throw when memory resolves an entry so close to the end of the view that 8 bytes do not fit', () => {
    const img = new GuestImage(8192);
    const regs = registers('long4', 0x1000);
    img.entry64(0x1000, 0, 0x2000n | P);
    // A GuestMemory that maps every gpa to the last 4 bytes of its view.
    const ragged: GuestMemory = { view: img.view, resolve: () => img.view.byteLength - 4 };
    const out = new GuestWalk();
    expect(walker.walk(regs, ragged, 0, Access.READ, out, true)).toBe(false);
    expect(out.badTableGpa).toBe(true);
    // 32-bit entries do fit there, and a zero entry is simply not present.
    const regs32 = registers('bits32', 0x1000);
    expect(walker.walk(regs32, ragged, 0, Access.READ, out, true)).toBe(false);
    expect(out.badTableGpa).toBe(false);
    expect(out.errorCode).toBe(0);
  });

  it('terminates on a self-referencing table at every level, mapping the table itself', () => {
    for (const mode of ['bits32', 'long4', 'long5'] as const) {
      const img = new GuestImage(64 << 10);
      const regs = registers(mode, 0x3000);
      if (mode === 'bits32') img.entry32(0x3000, 0, 0x3000 | 0x7);
      else img.entry64(0x3000, 0, 0x3000n | P | RW | US);
      const mem = new CountingMemory(img.mem);
      const out = new GuestWalk();
      expect(walker.walk(regs, mem, 0, Access.USER | Access.WRITE, out, true)).toBe(true);
      expect(out.gfn).toBe(3);
      // At most two reads per level (the long-mode fast path hands A/D updates
      // to the general walk, which reads again), one A/D write per level.
      expect(mem.reads).toBeLessThanOrEqual(2 * out.maxLevel);
      expect(mem.writes).toBe(out.maxLevel);
    }
  });

  it('stops at the top level with a reserved-bit fault when every byte of memory is 0xff', () => {
    const img = new GuestImage(64 << 10);
    img.bytes.fill(0xff);
    for (const mode of ['pae', 'long4', 'long5'] as const) {
      const regs = registers(mode, 0x1000);
      for (let i = 0; i < 4; i++) {
        regs.pdpteLo[i] = 0x2001;
        regs.pdpteHi[i] = 0;
      }
      const out = new GuestWalk();
      expect(walker.walk(regs, img.mem, 5, Access.READ, out, true)).toBe(false);
      expect(out.errorCode).toBe(PFERR.P | PFERR.RSVD);
      expect(out.level).toBe(mode === 'pae' ? 2 : out.maxLevel);
    }
    // 32-bit entries have nothing reserved outside a PSE leaf: all-ones maps 4 MiB with PSE, a PT without.
    const out = new GuestWalk();
    expect(walker.walk(registers('bits32', 0x1000, { cr4: CR4.PSE }), img.mem, 5, Access.READ, out, false)).toBe(false);
    expect(out.errorCode).toBe(PFERR.P | PFERR.RSVD);
    expect(walker.walk(registers('bits32', 0x1000), img.mem, 5, Access.READ, out, false)).toBe(false);
    expect(out.badTableGpa).toBe(true);
  });

  describe('random memory, registers and accesses (fast-check)', () => {
    const modeArb = fc.constantFrom('bits32', 'pae', 'long4', 'long5');
    const regsArb = fc.record({
      mode: modeArb,
      wp: fc.boolean(),
      smep: fc.boolean(),
      smap: fc.boolean(),
      pke: fc.boolean(),
      pse: fc.boolean(),
      nxe: fc.boolean(),
      ac: fc.boolean(),
      cpl: fc.constantFrom(0, 3),
      amd: fc.boolean(),
      gbPages: fc.boolean(),
      maxPhyAddr: fc.integer({ min: 32, max: 52 }),
      cr3: fc.integer({ min: 0, max: 0x1f }).map((page) => page * 4096),
      pkru: fc.integer({ min: 0, max: 0xffffffff }),
      pdptes: fc.array(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), { minLength: 4, maxLength: 4 }),
    });
    // Every slot of a 32-page image holds an entry: mostly pointing inside the
    // image (some beyond it), random low flags, and now and then stray high
    // bits (XD, an address bit above MAXPHYADDR, ignored bits, all ones).
    const imageArb = fc.record({ seed: fc.integer({ min: 1, max: 0x7fffffff }), presentPercent: fc.integer({ min: 50, max: 100 }) });
    const accessArb = fc.constantFrom(0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14);
    const vpnArb = fc.oneof(
      fc.integer({ min: 0, max: 0xfffff }),
      fc.integer({ min: 0, max: 2 ** 52 - 1 }),
      fc.integer({ min: 0, max: 63 }).map((k) => 2 ** 52 - 1 - k),
    );

    function build(image: ArbValue<typeof imageArb>, r: ArbValue<typeof regsArb>): { mem: CountingMemory; bytes: Uint8Array; regs: X86Registers } {
      const bytes = new Uint8Array(32 * 4096);
      const view = new DataView(bytes.buffer);
      let x = image.seed;
      const next = (): number => {
        // xorshift32
        x ^= x << 13;
        x ^= x >>> 17;
        x ^= x << 5;
        return x >>> 0;
      };
      const highs = [0, 0, 0, 0, 0, 0, 1 << 31, 1 << 19, 0x7ff << 20, 0xffffffff];
      for (let gpa = 0; gpa < bytes.length; gpa += 8) {
        const page = next() % 36;
        let flags = next() & 0xfff;
        flags = next() % 100 < image.presentPercent ? flags | 1 : flags & ~1;
        view.setUint32(gpa, (page * 4096 + flags) >>> 0, true);
        view.setUint32(gpa + 4, highs[next() % highs.length]! >>> 0, true);
      }
      const regs = new X86Registers();
      regs.cr0 = (CR0.PG | CR0.PE | (r.wp ? CR0.WP : 0)) >>> 0;
      regs.cr4 =
        (r.mode !== 'bits32' ? CR4.PAE : 0) |
        (r.mode === 'long5' ? CR4.LA57 : 0) |
        (r.pse ? CR4.PSE : 0) |
        (r.smep ? CR4.SMEP : 0) |
        (r.smap ? CR4.SMAP : 0) |
        (r.pke ? CR4.PKE : 0);
      regs.efer = (r.mode === 'long4' || r.mode === 'long5' ? EFER.LME | EFER.LMA : 0) | (r.nxe ? EFER.NXE : 0);
      regs.cr3 = r.cr3;
      regs.cpl = r.cpl;
      regs.rflagsAc = r.ac;
      regs.amd = r.amd;
      regs.gbPages = r.gbPages;
      regs.maxPhyAddr = r.maxPhyAddr;
      regs.pkru = r.pkru;
      r.pdptes.forEach((v, i) => {
        regs.pdpteLo[i] = Number(v & 0xffffffffn);
        regs.pdpteHi[i] = Number(v >> 32n);
      });
      return { mem: new CountingMemory(new FlatGuestMemory(bytes)), bytes, regs };
    }

    it('never throws, reads at most two entries per level, and writes nothing on a fault', () => {
      const outcomes = { ok: 0, pf: 0, rsvd: 0, bad: 0, gp: 0 };
      fc.assert(
        fc.property(imageArb, regsArb, vpnArb, accessArb, fc.boolean(), (image, r, vpn, access, setAD) => {
          const { mem, bytes, regs } = build(image, r);
          const before = bytes.slice();
          const out = new GuestWalk();
          const ok = walker.walk(regs, mem, vpn, access, out, setAD);
          if (ok) outcomes.ok++;
          else if (out.nonCanonical) outcomes.gp++;
          else if (out.badTableGpa) outcomes.bad++;
          else if ((out.errorCode & PFERR.RSVD) !== 0) outcomes.rsvd++;
          else outcomes.pf++;
          // Bounded work: the fast path and the general walk read each level at most once each.
          expect(mem.reads).toBeLessThanOrEqual(10);
          expect(mem.writes).toBeLessThanOrEqual(5);
          const failures = [!ok && out.nonCanonical, !ok && out.badTableGpa, !ok && !out.nonCanonical && !out.badTableGpa];
          if (ok) expect(failures).toEqual([false, false, false]);
          else expect(failures.filter(Boolean)).toHaveLength(1);
          if (!ok || !setAD) expect(firstDifference(bytes, before)).toBe(-1);
          if (!ok && !out.nonCanonical && !out.badTableGpa) {
            // Architectural #PF code bits only, P set unless the entry was not present.
            expect(out.errorCode & ~0x3f).toBe(0);
            if ((out.errorCode & PFERR.RSVD) !== 0) expect(out.errorCode & (PFERR.P | PFERR.PK)).toBe(PFERR.P);
          }
        }),
        { numRuns: propertyRuns(3000) },
      );
      // Every kind of outcome is exercised.
      for (const count of Object.values(outcomes)) expect(count).toBeGreaterThan(30);
    });

    it('on success changes only the A and D bits of the entries it used', () => {
      fc.assert(
        fc.property(imageArb, regsArb, vpnArb, accessArb, (image, r, vpn, access) => {
          const { mem, bytes, regs } = build(image, r);
          const before = bytes.slice();
          const out = new GuestWalk();
          if (!walker.walk(regs, mem, vpn, access, out, true)) return;
          const used = new Set<number>();
          for (let level = out.level; level <= out.maxLevel; level++) used.add(out.pteGpa[level]!);
          for (let off = 0; off < bytes.length; off++) {
            if (bytes[off] === before[off]) continue;
            // The only byte that may change is byte 0 of a used entry, and only in bits 5 and 6.
            expect(used.has(off)).toBe(true);
            expect((bytes[off]! ^ before[off]!) & ~0x60).toBe(0);
          }
        }),
        { numRuns: propertyRuns(2000) },
      );
    });

    it('gives the same translation and fault with and without A/D updates, and on a second walk', () => {
      fc.assert(
        fc.property(imageArb, regsArb, vpnArb, accessArb, (image, r, vpn, access) => {
          const { mem, regs } = build(image, r);
          const a = new GuestWalk();
          const b = new GuestWalk();
          const c = new GuestWalk();
          const okA = walker.walk(regs, mem, vpn, access, a, false);
          const okB = walker.walk(regs, mem, vpn, access, b, true);
          const okC = walker.walk(regs, mem, vpn, access, c, true);
          const summary = (ok: boolean, w: GuestWalk): unknown[] => [
            ok,
            w.errorCode,
            w.nonCanonical,
            w.badTableGpa,
            ok ? w.gfn : -1,
            ok ? w.grantedAccess : -1,
            w.level,
            w.pkey,
          ];
          expect(summary(okB, b)).toEqual(summary(okA, a));
          expect(summary(okC, c)).toEqual(summary(okA, a));
        }),
        { numRuns: propertyRuns(2000) },
      );
    });
  });
});
