import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Access, FaultKind, FlatGuestMemory, MemslotFlags } from '@hvmmu/core';
import { CR0, CR4, GuestWalk, GuestWalker, X86Registers, type X86ShadowMmu } from '@hvmmu/x86-shadow/internal';
import { A, D, NX_HI, P, TableBuilder, U, W, controlsFor, makeVm } from './helpers/guest.js';
import { checkInvariants } from './helpers/invariants.js';
import { propertyRuns } from '../../../../test-support/propertyRuns.js';

/*
 * The MMU against hardware, access by access. A guest in any paging mode (4- and 5-level ones
 * also under a 5-level passthrough host root) whose tables mostly have A and D set (so long-mode
 * first touches take the leaf-only path), with data pages that have their own frames, goes
 * through random steps:
 * - accesses of every kind and privilege;
 * - guest edits of any entry on the paths (W, U, XD, A, D, P), made by storing through its own
 *   mapping of its tables and followed by INVLPG, as a correct guest does;
 * - notifier invalidations that drop the leaves, so first touches come back;
 * - CR0.WP, CR4.SMEP/SMAP and EFLAGS.AC toggles, followed by a CR3 reload;
 * - PKRU writes, with CR4.PKE on in half the runs and keys on the leaves;
 * - CPL changes (at CPL 3 every access but an implicit one is a user access);
 * - CR3 switches between two address spaces that share a page table;
 * - the data memslot deleted, created again (read-only or not), moved away and back.
 * Before each access, the guest's table pages are copied into a flat image, and the plain walker
 * (A/D updates on, no caches) walks that copy as hardware would. The access must then agree with
 * it: success or the same #PF error code, the same page, and the same A/D bits left in the
 * tables.
 */

const TABLES = 0x10_0000;
const TABLE_BYTES = 0x10_0000;
/** The data pages (memslot 1): gfn DATA_GFN + i, each holding its own gfn in its first word. */
const DATA_GFN = 0x1000;
const DATA_PAGES = 64;
/** Where the data slot goes when it is moved away from the gfns the tables use. */
const AWAY_GFN = 0x2000;
type Mode = 'long4' | 'long5' | 'pae' | 'bits32';
const isLong = (mode: Mode): boolean => mode === 'long4' || mode === 'long5';
/** Guest VAs under test: two regions of 8 pages, each under its own PDE (and one PML4E in long mode). */
const vasFor = (mode: Mode): number[] => {
  const base = isLong(mode) ? 2 ** 39 : 0x4000_0000;
  return [...Array(8).keys()].flatMap((i) => [base + i * 0x1000, base + 0x40_0000 + i * 0x1000]);
};
const VA_COUNT = 16;
/** The guest's window onto its table pages, under another top-level entry (edits never cut it off). */
const windowBase = (mode: Mode): number => (mode === 'long5' ? 2 ** 48 : mode === 'long4' ? 2 * 2 ** 39 : 0x8000_0000);

type Step =
  | { op: 'access'; va: number; kind: number }
  | { op: 'control'; what: number }
  | { op: 'edit'; va: number; level: number; flags: number; nx: boolean; key: number }
  | { op: 'pkru'; value: number }
  | { op: 'cpl'; cpl: number }
  | { op: 'cr3' }
  | { op: 'slot'; what: number; readOnly: boolean }
  | { op: 'drop' };

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 12, arbitrary: fc.record({ op: fc.constant('access' as const), va: fc.nat(VA_COUNT - 1), kind: fc.nat(7) }) },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant('edit' as const),
      va: fc.nat(VA_COUNT - 1),
      level: fc.integer({ min: 1, max: 5 }),
      flags: fc.nat(0x7f),
      nx: fc.boolean(),
      key: fc.nat(15),
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('pkru' as const), value: fc.integer({ min: 0, max: 0xffff_ffff }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('cpl' as const), cpl: fc.constantFrom(0, 3) }) },
  { weight: 1, arbitrary: fc.constant({ op: 'cr3' as const }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('slot' as const), what: fc.nat(1), readOnly: fc.boolean() }) },
  { weight: 1, arbitrary: fc.constant({ op: 'drop' as const }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('control' as const), what: fc.nat(3) }) },
);

/** Access kinds: explicit ones at the current CPL, explicit user ones, implicit supervisor ones (SMAP's rules). */
const KINDS = [
  Access.READ,
  Access.WRITE,
  Access.FETCH,
  Access.USER,
  Access.USER | Access.WRITE,
  Access.USER | Access.FETCH,
  Access.IMPLICIT,
  Access.IMPLICIT | Access.WRITE,
];

function build(mode: Mode, strategy: string, hostRootLevel: number, wp: boolean, smep: boolean, smap: boolean, pke: boolean) {
  const t = makeVm({
    slotBytes: 4 << 20,
    backendOptions: { hostRootLevel: hostRootLevel as 3 | 4 | 5, memslotInvalidation: strategy as 'fast-zap' | 'invalid-rmap' },
  });
  t.mem.create({ id: 1, guestPhysAddr: DATA_GFN * 4096, size: DATA_PAGES * 4096 });
  const b = new TableBuilder(t.mem, mode, TABLES);
  const vas = vasFor(mode);
  // Two address spaces. Entries have A and D set, and each VA maps its own data page, another
  // one in the second space, whose second region shares the first space's page table.
  const roots = [b.root(), b.root()];
  vas.forEach((va, i) => {
    b.map4k(roots[0]!, va, (DATA_GFN + i) * 4096, P | W | U | A | D, 0, P | W | U | A);
    b.map4k(roots[1]!, va, (DATA_GFN + vas.length + i) * 4096, P | W | U | A | D, 0, P | W | U | A);
  });
  const shared = vas[1]!;
  b.write(b.entryAt(roots[1]!, shared, 2), b.read(b.entryAt(roots[0]!, shared, 2)).lo);
  writeMarkers(t.mem);
  // The levels the guest edits: all but the PAE PDPTEs (cached at CR3 load, with no W/U/A bits).
  const levels = mode === 'pae' ? 2 : b.levels;
  // Every table page the VAs use at those levels, in the guest's window (supervisor, writable)
  // in both spaces.
  const tablePages = new Set<number>();
  for (const root of roots) {
    for (const va of vas) for (let level = 1; level <= levels; level++) tablePages.add(b.entryAt(root, va, level) & ~0xfff);
  }
  const windowOf = new Map<number, number>();
  [...tablePages].forEach((page, i) => {
    windowOf.set(page, windowBase(mode) + i * 4096);
    for (const root of roots) b.map4k(root, windowBase(mode) + i * 4096, page, P | W | A | D, 0, P | W | A);
  });
  // CR4.PKE only matters in long mode; elsewhere it must change nothing.
  const controls = controlsFor(mode, roots[0]!, { cr4: (smep ? CR4.SMEP : 0) | (smap ? CR4.SMAP : 0) | (pke ? CR4.PKE : 0) });
  if (!wp) controls.cr0 = (controls.cr0 & ~CR0.WP) >>> 0;
  expect(t.x.loadControlRegisters(controls)).toBe(true);
  return { ...t, b, roots, space: 0, vas, levels, windowOf, mode, mmu: t.vm.mmu as X86ShadowMmu };
}

/** Each data page's first word: its gfn (host-side writes, which a read-only slot allows). */
function writeMarkers(mem: ReturnType<typeof makeVm>['mem']): void {
  for (let i = 0; i < DATA_PAGES; i++) mem.write32((DATA_GFN + i) * 4096, DATA_GFN + i, true);
}

/**
 * Memslot changes under the data: delete the slot or create it again (read-only or not, its
 * pages filled anew), or move it away from the gfns the tables use, or back.
 */
function slotChange(w: World, s: Extract<Step, { op: 'slot' }>): void {
  const mem = w.mem;
  if (s.what === 0) {
    if (mem.has(1)) {
      mem.delete(1);
    } else {
      mem.create({ id: 1, guestPhysAddr: DATA_GFN * 4096, size: DATA_PAGES * 4096, flags: s.readOnly ? MemslotFlags.READONLY : 0 });
      writeMarkers(mem);
    }
  } else if (mem.has(1)) {
    mem.move(1, mem.get(1).baseGfn === DATA_GFN ? AWAY_GFN * 4096 : DATA_GFN * 4096);
  }
}

type World = ReturnType<typeof build>;

/** The guest's table pages as they are now, in a flat image the plain walker can update. */
function snapshot(w: World): Uint8Array {
  const image = new Uint8Array(TABLES + TABLE_BYTES);
  for (const page of w.windowOf.keys()) w.mem.readBytes(page, image.subarray(page, page + 4096));
  return image;
}

function access(w: World, s: Extract<Step, { op: 'access' }>, walker: GuestWalker, out: GuestWalk): string[] {
  const va = w.vas[s.va]!;
  const kind = KINDS[s.kind]!;
  const image = snapshot(w);
  const regs = new X86Registers();
  regs.cr0 = w.x.regs.cr0;
  regs.cr3 = w.x.regs.cr3;
  regs.cr4 = w.x.regs.cr4;
  regs.efer = w.x.regs.efer;
  regs.rflagsAc = w.x.regs.rflagsAc;
  regs.pkru = w.x.regs.pkru;
  // At CPL 3 an access without Access.USER is a user access too.
  regs.cpl = w.x.regs.cpl;
  // PAE: the PDPTEs as the CPU cached them at CR3 load.
  regs.pdpteLo.set(w.x.regs.pdpteLo);
  regs.pdpteHi.set(w.x.regs.pdpteHi);
  const walkOk = walker.walk(regs, new FlatGuestMemory(image), va / 4096, kind, out, true);
  const ok = (kind & Access.WRITE) !== 0 ? w.x.write(va + 8, 4, 0x5a5a, 0, kind) : w.x.read(va, 4, kind);
  const errors: string[] = [];
  const what = `access ${kind} at ${va.toString(16)}`;
  // Where the walk ends in no memory, or writes a read-only slot, the host refuses the access
  // (after the walk: its A/D bits stay set, as hardware's do).
  const slot = walkOk ? w.mem.findByGfn(out.gfn) : undefined;
  const hostFault = !walkOk
    ? FaultKind.NONE
    : slot === undefined
      ? FaultKind.NO_MEMORY
      : (kind & Access.WRITE) !== 0 && slot.readOnly
        ? FaultKind.READ_ONLY
        : FaultKind.NONE;
  const hwOk = walkOk && hostFault === FaultKind.NONE;
  if (hostFault !== FaultKind.NONE && (ok || w.vcpu.fault.kind !== hostFault)) {
    errors.push(`${what}: MMU ${ok ? 'allowed' : `faulted (${w.vcpu.fault.kind})`}, the host refuses it (${hostFault})`);
  }
  if (hostFault === FaultKind.NONE && ok !== hwOk)
    errors.push(
      `${what}: MMU ${ok ? 'allowed' : `faulted (${w.vcpu.fault.kind}/${w.vcpu.fault.code})`}, hardware ${hwOk ? 'allows' : `faults (${out.errorCode})`}`,
    );
  if (!ok && !walkOk && (w.vcpu.fault.kind !== FaultKind.GUEST || w.vcpu.fault.code !== out.errorCode)) {
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
  const level = Math.min(s.level, w.levels);
  const gpa = w.b.entryAt(w.roots[w.space]!, w.vas[s.va]!, level);
  const old = w.b.read(gpa);
  // Same target, new flags (P kept most of the time so the path stays walkable).
  const flags = (s.flags & (W | U | A | D)) | ((s.flags & 0x40) !== 0 || (s.flags & 3) !== 0 ? P : 0);
  const lo = ((old.lo & ~0xfff) | flags) >>> 0;
  const at = w.windowOf.get(gpa & ~0xfff)! + (gpa & 0xfff);
  const savedCpl = w.x.regs.cpl;
  w.x.setCpl(0);
  if (w.mode === 'bits32') {
    expect(w.x.write(at, 4, lo, 0, Access.WRITE)).toBe(true);
  } else {
    // A leaf also gets a protection key (bits 62:59; ignored above the leaf and without CR4.PKE).
    const keyed = level === 1 ? ((old.hi & ~(0xf << 27)) | (s.key << 27)) >>> 0 : old.hi;
    const hi = s.nx ? (keyed | NX_HI) >>> 0 : (keyed & ~NX_HI) >>> 0;
    expect(w.x.write(at, 8, lo, hi, Access.WRITE)).toBe(true);
  }
  w.x.setCpl(savedCpl);
  for (const va of w.vas) w.x.invlpg(va);
}

/**
 * Toggle CR0.WP, CR4.SMEP, CR4.SMAP or EFLAGS.AC, then reload CR3 so the hardware's TLB holds
 * nothing cached under the old bits (the comparison is with a walk under the new ones).
 */
function control(w: World, s: Extract<Step, { op: 'control' }>): void {
  const r = w.x.regs;
  if (s.what === 0) expect(w.x.setCr0((r.cr0 ^ CR0.WP) >>> 0)).toBe(true);
  if (s.what === 1) expect(w.x.setCr4((r.cr4 ^ CR4.SMEP) >>> 0)).toBe(true);
  if (s.what === 2) expect(w.x.setCr4((r.cr4 ^ CR4.SMAP) >>> 0)).toBe(true);
  if (s.what === 3) w.x.setRflagsAc(!r.rflagsAc);
  expect(w.x.setCr3(r.cr3)).toBe(true);
}

describe.each(['long4', 'long5', 'pae', 'bits32'] as const)('%s guests against hardware', (mode) => {
  it('every access agrees with a plain walk of the same tables and the memslots: outcome, error code, page, A/D bits', () => {
    const walker = new GuestWalker();
    const out = new GuestWalk();
    let faultsTaken = 0;
    fc.assert(
      fc.property(
        fc.constantFrom('fast-zap', 'invalid-rmap'),
        fc.constantFrom(3, 4, 5),
        fc.boolean(),
        fc.boolean(),
        fc.boolean(),
        fc.boolean(),
        fc.array(stepArb, { minLength: 20, maxLength: 80, size: 'max' }),
        (strategy, hostRootLevel, wp, smep, smap, pke, steps) => {
          // A host root above the guest's levels: special pml4/pml5 pages for 32-bit/PAE guests,
          // a passthrough root for a 4-level guest under 5 levels.
          const w = build(mode, strategy, hostRootLevel, wp, smep, smap, pke);
          steps.forEach((s, n) => {
            const faultsBefore = w.mmu.stats()['shadowFaults']!;
            const errors = s.op === 'access' ? access(w, s, walker, out) : [];
            if (s.op === 'edit') edit(w, s);
            if (s.op === 'drop' && w.mem.has(1)) {
              const dataSlot = w.mem.get(1);
              w.mmu.invalidateGfnRange(dataSlot, dataSlot.baseGfn, dataSlot.baseGfn + DATA_PAGES);
            }
            if (s.op === 'slot') slotChange(w, s);
            if (s.op === 'control') control(w, s);
            if (s.op === 'pkru') w.x.setPkru(s.value >>> 0);
            if (s.op === 'cpl') w.x.setCpl(s.cpl);
            if (s.op === 'cr3') {
              w.space ^= 1;
              expect(w.x.setCr3(w.roots[w.space]!)).toBe(true);
            }
            if (s.op === 'access' && w.mmu.stats()['shadowFaults']! > faultsBefore) faultsTaken++;
            errors.push(...checkInvariants(w.vm));
            if (errors.length > 0) throw new Error(`step ${n} ${JSON.stringify(s)}:\n  ${errors.slice(0, 6).join('\n  ')}`);
          });
        },
      ),
      { numRuns: propertyRuns(100) },
    );
    // The runs did fault in pages (the path under test), not only hit the TLB.
    expect(faultsTaken).toBeGreaterThan(100);
  });
});
