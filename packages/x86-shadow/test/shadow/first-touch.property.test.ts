import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Access, FaultKind, FlatGuestMemory } from '@hvmmu/core';
import { CR0, CR4, GuestWalk, GuestWalker, X86Registers, type X86ShadowMmu } from '@hvmmu/x86-shadow';
import { A, D, NX_HI, P, TableBuilder, U, W, controlsFor, makeVm } from './helpers/guest.js';
import { checkInvariants } from './helpers/invariants.js';

/*
 * The MMU against hardware, access by access. A long-mode guest (4- or 5-level, under a host root
 * of its own level or a 5-level passthrough root) whose tables mostly have A and D
 * set (so first touches take the leaf-only path), with data pages that have their own frames,
 * goes through random steps:
 * - accesses of every kind and privilege;
 * - guest edits of any entry on the paths (W, U, XD, A, D, P), made by storing through its own
 *   mapping of its tables and followed by INVLPG, as a correct guest does;
 * - notifier invalidations that drop the leaves, so first touches come back.
 * Before each access, the guest's table pages are copied into a flat image, and the plain walker
 * (A/D updates on, no caches) walks that copy as hardware would. The access must then agree with
 * it: success or the same #PF error code, the same page, and the same A/D bits left in the
 * tables.
 */

const TABLES = 0x10_0000;
const TABLE_BYTES = 0x10_0000;
/** The data pages: gfn DATA_GFN + i, each holding its own gfn in its first word. */
const DATA_GFN = 0x1000;
const DATA_PAGES = 64;
/** Guest VAs under test: two 2 MiB regions, 8 pages each, under one PML4E (index 1). */
const VAS = [...Array(8).keys()].flatMap((i) => [2 ** 39 + i * 0x1000, 2 ** 39 + 0x20_0000 + i * 0x1000]);
/** The guest's window onto its table pages, under another top-level entry (edits never cut it off). */
const windowBase = (long5: boolean): number => (long5 ? 2 ** 48 : 2 * 2 ** 39);

type Step =
  | { op: 'access'; va: number; kind: number }
  | { op: 'edit'; va: number; level: number; flags: number; nx: boolean }
  | { op: 'drop' };

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 12, arbitrary: fc.record({ op: fc.constant('access' as const), va: fc.nat(VAS.length - 1), kind: fc.nat(5) }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('edit' as const), va: fc.nat(VAS.length - 1), level: fc.integer({ min: 1, max: 5 }), flags: fc.nat(0x7f), nx: fc.boolean() }) },
  { weight: 1, arbitrary: fc.constant({ op: 'drop' as const }) },
);

const KINDS = [Access.READ, Access.WRITE, Access.FETCH, Access.USER, Access.USER | Access.WRITE, Access.USER | Access.FETCH];

function build(long5: boolean, hostRootLevel: number, wp: boolean, smep: boolean, smap: boolean) {
  const t = makeVm({ slotBytes: 4 << 20, backendOptions: { hostRootLevel } });
  t.mem.create({ id: 1, guestPhysAddr: DATA_GFN * 4096, size: DATA_PAGES * 4096 });
  const mode = long5 ? 'long5' : 'long4';
  const b = new TableBuilder(t.mem, mode, TABLES);
  const root = b.root();
  // Entries with A and D set; each VA maps its own data page.
  VAS.forEach((va, i) => b.map4k(root, va, (DATA_GFN + i) * 4096, P | W | U | A | D, 0, P | W | U | A));
  for (let i = 0; i < DATA_PAGES; i++) t.mem.write32((DATA_GFN + i) * 4096, DATA_GFN + i, true);
  // Every table page the VAs use, in the guest's window (supervisor, writable).
  const tablePages = new Set<number>();
  for (const va of VAS) for (let level = 1; level <= b.levels; level++) tablePages.add(b.entryAt(root, va, level) & ~0xfff);
  const windowOf = new Map<number, number>();
  [...tablePages].forEach((page, i) => {
    windowOf.set(page, windowBase(long5) + i * 4096);
    b.map4k(root, windowBase(long5) + i * 4096, page, P | W | A | D, 0, P | W | A);
  });
  const controls = controlsFor(mode, root, { cr4: (smep ? CR4.SMEP : 0) | (smap ? CR4.SMAP : 0) });
  if (!wp) controls.cr0 = (controls.cr0 & ~CR0.WP) >>> 0;
  expect(t.x.loadControlRegisters(controls)).toBe(true);
  return { ...t, b, root, windowOf, mmu: t.vm.mmu as X86ShadowMmu };
}

type World = ReturnType<typeof build>;

/** The guest's table pages as they are now, in a flat image the plain walker can update. */
function snapshot(w: World): Uint8Array {
  const image = new Uint8Array(TABLES + TABLE_BYTES);
  for (const page of w.windowOf.keys()) w.mem.readBytes(page, image.subarray(page, page + 4096));
  return image;
}

function access(w: World, s: Extract<Step, { op: 'access' }>, walker: GuestWalker, out: GuestWalk): string[] {
  const va = VAS[s.va]!;
  const kind = KINDS[s.kind]!;
  const image = snapshot(w);
  const regs = new X86Registers();
  regs.cr0 = w.x.regs.cr0;
  regs.cr3 = w.x.regs.cr3;
  regs.cr4 = w.x.regs.cr4;
  regs.efer = w.x.regs.efer;
  const hwOk = walker.walk(regs, new FlatGuestMemory(image), va / 4096, kind, out, true);
  const ok = (kind & Access.WRITE) !== 0 ? w.x.write(va + 8, 4, 0x5a5a, 0, kind) : w.x.read(va, 4, kind);
  const errors: string[] = [];
  const what = `access ${kind} at ${va.toString(16)}`;
  if (ok !== hwOk) errors.push(`${what}: MMU ${ok ? 'allowed' : `faulted (${w.vcpu.fault.kind}/${w.vcpu.fault.code})`}, hardware ${hwOk ? 'allows' : `faults (${out.errorCode})`}`);
  if (!ok && !hwOk && (w.vcpu.fault.kind !== FaultKind.GUEST || w.vcpu.fault.code !== out.errorCode)) {
    errors.push(`${what}: error code ${w.vcpu.fault.code} (kind ${w.vcpu.fault.kind}), hardware ${out.errorCode}`);
  }
  if (ok && hwOk && (kind & Access.WRITE) === 0 && w.x.readLo !== out.gfn) {
    errors.push(`${what}: read page ${w.x.readLo.toString(16)}, hardware maps gfn ${out.gfn.toString(16)}`);
  }
  // A/D as hardware leaves them.
  const now = new Uint8Array(4096);
  for (const page of w.windowOf.keys()) {
    w.mem.readBytes(page, now);
    const k = now.findIndex((byte, i) => byte !== image[page + i]);
    if (k >= 0) {
      errors.push(`${what}: table byte at ${(page + k).toString(16)} is ${now[k]!.toString(16)}, hardware leaves ${image[page + k]!.toString(16)}`);
      break;
    }
  }
  return errors;
}

function edit(w: World, s: Extract<Step, { op: 'edit' }>): void {
  const level = Math.min(s.level, w.b.levels);
  const gpa = w.b.entryAt(w.root, VAS[s.va]!, level);
  const old = w.b.read(gpa);
  // Same target, new flags (P kept most of the time so the path stays walkable).
  const flags = (s.flags & (W | U | A | D)) | ((s.flags & 0x40) !== 0 || (s.flags & 3) !== 0 ? P : 0);
  const lo = ((old.lo & ~0xfff) | flags) >>> 0;
  const hi = s.nx ? (old.hi | NX_HI) >>> 0 : (old.hi & ~NX_HI) >>> 0;
  const at = w.windowOf.get(gpa & ~0xfff)! + (gpa & 0xfff);
  const savedCpl = w.x.regs.cpl;
  w.x.setCpl(0);
  expect(w.x.write(at, 8, lo, hi, Access.WRITE)).toBe(true);
  w.x.setCpl(savedCpl);
  for (const va of VAS) w.x.invlpg(va);
}

describe('first touches against hardware', () => {
  it('every access agrees with a plain walk of the same tables: outcome, error code, page and A/D bits', () => {
    const walker = new GuestWalker();
    const out = new GuestWalk();
    let fastTouches = 0;
    fc.assert(fc.property(
      fc.boolean(), fc.constantFrom(3, 5), fc.boolean(), fc.boolean(), fc.boolean(),
      fc.array(stepArb, { minLength: 20, maxLength: 80, size: 'max' }),
      (long5, hostRootLevel, wp, smep, smap, steps) => {
        // hostRootLevel 5 puts a 4-level guest under a passthrough 5-level root.
        const w = build(long5, hostRootLevel, wp, smep, smap);
        const dataSlot = w.mem.get(1)!;
        steps.forEach((s, n) => {
          const faultsBefore = w.mmu.stats()['shadowFaults']!;
          const errors = s.op === 'access' ? access(w, s, walker, out) : [];
          if (s.op === 'edit') edit(w, s);
          if (s.op === 'drop') w.mmu.invalidateGfnRange(dataSlot, dataSlot.baseGfn, dataSlot.baseGfn + DATA_PAGES);
          if (s.op === 'access' && w.mmu.stats()['shadowFaults']! > faultsBefore) fastTouches++;
          errors.push(...checkInvariants(w.vm));
          if (errors.length > 0) throw new Error(`step ${n} ${JSON.stringify(s)}:\n  ${errors.slice(0, 6).join('\n  ')}`);
        });
      },
    ), { numRuns: Number(process.env['PROP_RUNS'] ?? 100) });
    // The runs did fault in pages (the path under test), not only hit the TLB.
    expect(fastTouches).toBeGreaterThan(100);
  });
});
