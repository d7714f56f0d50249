import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Access, FaultKind, Hypervisor, MemslotFlags, TRANSLATE_FAULT } from '@hvmmu/core';
import { HashPageTable, HptHcall, HptTranslation, HptWalker, HPTE_V_ABSENT_LO, ppcHptBackend } from '@hvmmu/ppc-hpt';
import { propertyRuns } from '../../../../test-support/propertyRuns.js';

/**
 * KVM HV's two tables against the ISA: random hcalls (H_ENTER with and
 * without H_EXACT, H_REMOVE, H_PROTECT, H_CLEAR_REF, H_CLEAR_MOD,
 * H_BULK_REMOVE) with random words, accesses of every kind and privilege,
 * and host events (notifier invalidation, aging, dirty-log harvest,
 * memslot delete / re-create / read-only). After each step:
 *
 * - every access agrees with a walk of the guest view alone (the hash MMU
 *   of POWER ISA v2.07 5.7.7, the walker that answered all 5,320 probes of
 *   the POWER8 capture): a page the guest view maps with the right reaches
 *   that guest page's host frame (or exits NO_MEMORY / READ_ONLY where no
 *   writable memory is), and anything else is the guest view's interrupt
 *   and cause;
 * - the real HPT follows the guest view as KVM keeps it: an entry is V or
 *   ABSENT exactly where the guest view has V; a V entry holds the host
 *   frame of its guest page, is on that page's ring and on no other; ABSENT
 *   entries are on no ring.
 */
const SLOT_GFN = 0x40;
const SLOT_PAGES = 16;
/** Two segments: ESID 1 (VSID 0x55, 256M) and ESID 2 (VSID 0x66, 256M, Kp). */
const SEGMENTS = [
  { esid: 1, vsid: 0x55, kp: 0 },
  { esid: 2, vsid: 0x66, kp: 0x400 },
];

const access = fc.record({
  kind: fc.constantFrom('access' as const),
  seg: fc.integer({ min: 0, max: 1 }),
  page: fc.integer({ min: 0, max: 3 }),
  a: fc.constantFrom(0, 1, 2, 4, 5, 6, 8, 9),
});
const enter = fc.record({
  kind: fc.constantFrom('enter' as const),
  seg: fc.integer({ min: 0, max: 1 }),
  page: fc.integer({ min: 0, max: 3 }),
  gfn: fc.integer({ min: SLOT_GFN - 2, max: SLOT_GFN + SLOT_PAGES + 1 }),
  // Mostly entries the accesses can use; now and then every other PP (4, 5 and 7 are reserved), N, a key,
  // the secondary group, H_EXACT.
  pp: fc.constantFrom(2, 2, 2, 0, 1, 3, 6, 7, 4),
  n: fc.constantFrom(false, false, false, true),
  key: fc.constantFrom(0, 0, 0, 5, 31),
  secondary: fc.constantFrom(false, false, true),
  exact: fc.boolean(),
  slot: fc.constantFrom(0, 0, 1, 7),
  large: fc.integer({ min: 0, max: 9 }),
});
const byIndex = fc.record({
  kind: fc.constantFrom('remove' as const, 'clearRef' as const, 'clearMod' as const, 'protect' as const, 'bulk' as const),
  seg: fc.integer({ min: 0, max: 1 }),
  page: fc.integer({ min: 0, max: 7 }),
  slot: fc.constantFrom(0, 0, 1, 7),
  flags: fc.nat(),
});
const host = fc.record({
  kind: fc.constantFrom('invalidate' as const, 'age' as const, 'harvest' as const, 'recreate' as const),
  page: fc.integer({ min: 0, max: SLOT_PAGES - 1 }),
  readOnly: fc.boolean(),
});
// H_RESIZE_HPT_PREPARE + _COMMIT between the two orders this guest's memory allows (18, 19).
const resize = fc.record({ kind: fc.constantFrom('resize' as const), order: fc.constantFrom(18, 19) });
const op = fc.oneof(
  { weight: 6, arbitrary: access },
  { weight: 3, arbitrary: enter },
  { weight: 2, arbitrary: byIndex },
  { weight: 1, arbitrary: host },
  { weight: 1, arbitrary: resize },
);

function setup(cpu: 'power8' | 'power9') {
  const hv = new Hypervisor({ memoryBytes: 4 << 20 });
  const vm = hv.createVm({ backend: ppcHptBackend, backendOptions: { hptOrder: 18, cpu } });
  vm.memslots.create({ id: 1, guestPhysAddr: SLOT_GFN * 4096, size: SLOT_PAGES * 4096, flags: MemslotFlags.LOG_DIRTY_PAGES });
  const vcpu = vm.createVcpu();
  SEGMENTS.forEach((s, i) => {
    expect(vcpu.arch.slbmte(0, ((s.esid << 28) | 0x0800_0000 | i) >>> 0, 0, ((s.vsid << 12) | s.kp) >>> 0)).toBe(true);
  });
  return { vm, vcpu };
}

/** The primary group of a page of a segment (order 18: 2^11 groups). */
function group(seg: number, page: number, secondary: boolean, mask: number): number {
  const hash = SEGMENTS[seg]!.vsid ^ page;
  return (secondary ? ~hash & mask : hash & mask) >>> 0;
}

describe('ppc-hpt backend against its guest view (differential, random hcalls and host events)', () => {
  it('agrees with a guest-view walk after every step, and keeps the real HPT and the rings as KVM does', () => {
    fc.assert(
      fc.property(fc.constantFrom('power8' as const, 'power9' as const), fc.array(op, { minLength: 10, maxLength: 80 }), (cpu, ops) => {
        const { vm, vcpu } = setup(cpu);
        const hpt = vm.arch.hpt;
        let mask = hpt.guest.hashMask;
        const walker = new HptWalker();
        const oracle = new HptTranslation();
        const regs = vcpu.hcallRegs;
        let readOnly = false;
        // Every entry an operation can reach: the primary and secondary groups of the 16 pages.
        const reachable = (): number[] => {
          const list: number[] = [];
          for (let seg = 0; seg < 2; seg++)
            for (let page = 0; page < 8; page++) for (const sec of [false, true]) for (let k = 0; k < 8; k++) list.push(group(seg, page, sec, mask) * 8 + k);
          return list;
        };
        let candidates = reachable();
        for (const o of ops) {
          if (o.kind === 'access') {
            const ea = ((SEGMENTS[o.seg]!.esid << 28) | (o.page << 12) | 0x18) >>> 0;
            const kindHpt = o.a & 3;
            vcpu.arch.regs.pr = (o.a & 0xc) === Access.USER;
            const allowed = walker.translate(vcpu.arch.regs, vcpu.arch.slb, hpt.guest, 0, ea, kindHpt, oracle, false);
            // The guest view's interrupt: its walk again, guest-visible (a failing walk writes nothing).
            if (!allowed) walker.translate(vcpu.arch.regs, vcpu.arch.slb, hpt.guest, 0, ea, kindHpt, oracle, true);
            const guestVector = allowed ? 0 : oracle.vector;
            const guestCause = oracle.cause;
            const gpa = allowed ? oracle.ra : -1;
            const hpa = vcpu.translate(ea, o.a);
            if (!allowed) {
              expect(hpa).toBe(TRANSLATE_FAULT);
              expect(vcpu.fault.kind).toBe(FaultKind.GUEST);
              expect(vcpu.fault.vector).toBe(guestVector);
              expect(vcpu.fault.code).toBe(guestCause);
              continue;
            }
            const gfn = Math.floor(gpa / 4096);
            const inSlot = gfn >= SLOT_GFN && gfn < SLOT_GFN + SLOT_PAGES && vm.memslots.has(1);
            if (!inSlot) {
              expect(hpa).toBe(TRANSLATE_FAULT);
              expect(vcpu.fault.kind).toBe(FaultKind.NO_MEMORY);
              expect(vcpu.fault.gpa).toBe(gpa);
            } else if ((o.a & 1) !== 0 && readOnly) {
              expect(hpa).toBe(TRANSLATE_FAULT);
              expect(vcpu.fault.kind).toBe(FaultKind.READ_ONLY);
            } else {
              expect(hpa).not.toBe(TRANSLATE_FAULT);
              const hfn = Math.floor(hpa / 4096);
              const frame = vm.memslots.get(1).frameAt(gfn - SLOT_GFN);
              if (frame >= 0) expect(hfn).toBe(frame);
              expect(hpa % 4096).toBe(0x18);
              if ((o.a & 1) !== 0) expect(vm.memslots.get(1).isDirty(gfn)).toBe(true);
            }
          } else if (o.kind === 'enter') {
            const s = SEGMENTS[o.seg]!;
            const large = o.large === 0; // now and then an L entry (16M: LP 0), valid only without a memslot
            const ptex = group(o.seg, o.page, o.secondary, mask) * 8 + (o.exact ? o.slot : 0);
            const v0Lo = ((s.vsid << 12) | (large ? 0x4 : 0) | (o.secondary ? 2 : 0) | 1) >>> 0;
            const r1Hi = ((o.pp & 4) << 29) | ((o.key & 0x18) << 25);
            const r1Lo = ((o.gfn << 12) | ((o.key & 7) << 9) | 0x10 | (o.n ? 4 : 0) | (o.pp & 3)) >>> 0;
            // A guest never has two valid entries for one virtual page (which one the hardware finds is
            // undefined, POWER ISA v2.07 Book III 5.7.7.2): the old one goes first, as Linux's do.
            for (const sec of [false, true]) {
              for (let k = 0; k < 8; k++) {
                const at = (group(o.seg, o.page, sec, mask) * 8 + k) * 16;
                if ((hpt.guest.view.getUint32(at + 4) & 1) !== 0 && hpt.guest.view.getUint32(at + 4) >>> 7 === v0Lo >>> 7) {
                  regs.clear();
                  regs.setArg(1, at / 16);
                  expect(vcpu.hypercall(HptHcall.H_REMOVE)).toBe(0);
                }
              }
            }
            regs.clear();
            regs
              .setArgHalves(0, o.exact ? 0x80 : 0, 0)
              .setArg(1, ptex)
              .setArgHalves(2, 0, v0Lo)
              .setArgHalves(3, r1Hi >>> 0, large ? r1Lo & ~0xff000 : r1Lo);
            vcpu.hypercall(HptHcall.H_ENTER);
          } else if (o.kind === 'resize') {
            // KVM's rehash keeps bolted entries only: none of these is bolted, so every entry goes.
            regs.clear();
            regs.setArg(1, o.order);
            expect(vcpu.hypercall(0x36c)).toBe(0);
            expect(vcpu.hypercall(0x370)).toBe(0);
            expect(hpt.guest.order).toBe(o.order);
            mask = hpt.guest.hashMask;
            candidates = reachable();
            for (let i = 0; i < hpt.guest.entries; i++) if (hpt.guest.isValid(i)) throw new Error(`HPTE ${i} survived a resize without being bolted`);
          } else if (o.kind === 'remove' || o.kind === 'clearRef' || o.kind === 'clearMod' || o.kind === 'protect' || o.kind === 'bulk') {
            regs.clear();
            const ptex = group(o.seg, o.page, false, mask) * 8 + o.slot;
            const number = {
              remove: HptHcall.H_REMOVE,
              clearRef: HptHcall.H_CLEAR_REF,
              clearMod: HptHcall.H_CLEAR_MOD,
              protect: HptHcall.H_PROTECT,
              bulk: HptHcall.H_BULK_REMOVE,
            }[o.kind];
            if (o.kind === 'bulk') regs.setArgHalves(0, 0x4000_0000, ptex).setArg(1, 0);
            else regs.setArgHalves(0, 0, o.kind === 'protect' ? o.flags & 0x3307 : 0).setArg(1, ptex);
            vcpu.hypercall(number);
          } else {
            const slot = vm.memslots.has(1) ? vm.memslots.get(1) : undefined;
            const hfn = slot === undefined ? -1 : slot.frameAt(o.page);
            if (o.kind === 'invalidate' && hfn >= 0) vm.memslots.invalidateHostRange(hfn, hfn + 1);
            else if (o.kind === 'age' && hfn >= 0) vm.ageHostRange(hfn, hfn + 1);
            else if (o.kind === 'harvest' && slot !== undefined && slot.dirtyLogging) vm.memslots.getDirtyLog(1);
            else if (o.kind === 'recreate') {
              if (slot !== undefined) vm.memslots.delete(1);
              else {
                readOnly = o.readOnly;
                vm.memslots.create({
                  id: 1,
                  guestPhysAddr: SLOT_GFN * 4096,
                  size: SLOT_PAGES * 4096,
                  flags: readOnly ? MemslotFlags.READONLY : MemslotFlags.LOG_DIRTY_PAGES,
                });
              }
            }
          }
          const slot = vm.memslots.has(1) ? vm.memslots.get(1) : undefined;
          const rings: { gfn: number; entry: number }[] = [];
          if (slot !== undefined) for (let p = 0; p < SLOT_PAGES; p++) for (const entry of slot.arch.chain(p)) rings.push({ gfn: SLOT_GFN + p, entry });
          checkTables(candidates, hpt.guest, hpt.real, hpt.linkGfn, rings, (gfn) =>
            slot !== undefined && gfn >= SLOT_GFN && gfn < SLOT_GFN + SLOT_PAGES ? slot.frameAt(gfn - SLOT_GFN) : -1,
          );
        }
      }),
      { numRuns: propertyRuns(200) },
    );
  });
});

function checkTables(
  candidates: readonly number[],
  guest: HashPageTable,
  real: HashPageTable,
  linkGfn: Float64Array,
  rmap: readonly { gfn: number; entry: number }[],
  frameOf: (gfn: number) => number,
): void {
  // Plain comparisons (this runs after every step); a failure names the entry and the rule.
  const fail = (i: number, rule: string): never => {
    throw new Error(`HPTE ${i}: ${rule}`);
  };
  const onRing = new Map<number, number>();
  for (const r of rmap) {
    if (onRing.has(r.entry)) fail(r.entry, 'on two rings');
    if (!candidates.includes(r.entry)) fail(r.entry, 'on a ring but never entered');
    onRing.set(r.entry, r.gfn);
  }
  for (const i of candidates) {
    const gLo = guest.view.getUint32(i * 16 + 4);
    const rLo = real.view.getUint32(i * 16 + 4);
    const realValid = (rLo & 1) !== 0;
    const realAbsent = (rLo & HPTE_V_ABSENT_LO) !== 0;
    if (realValid || realAbsent ? (gLo & 1) === 0 : (gLo & 1) !== 0) fail(i, 'real V/ABSENT differs from the guest view V');
    if (realValid && realAbsent) fail(i, 'both V and ABSENT');
    if (realValid) {
      const gfn = linkGfn[i]!;
      if (onRing.get(i) !== gfn) fail(i, `valid but not on the ring of gfn ${gfn}`);
      if (guest.view.getUint32(i * 16 + 12) >>> 12 !== gfn) fail(i, 'ring gfn is not the guest view RPN');
      const frame = frameOf(gfn);
      if (frame >= 0 && real.view.getUint32(i * 16 + 12) >>> 12 !== frame) fail(i, `real RPN is not gfn ${gfn}'s host frame ${frame}`);
    } else if (onRing.has(i)) {
      fail(i, 'not valid but on a ring');
    }
  }
}
