import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Access, ACCESS_KINDS, FaultKind, FRAME_ZERO, MemslotFlags, TRANSLATE_FAULT } from '@hvmmu/core';
import { GuestWalk, GuestWalker, X86ShadowMmu } from '@hvmmu/x86-shadow/internal';
import { A, D, NX_HI, P, PS, TableBuilder, U, W, controlsFor, makeVm, type GuestMode, type TestVm } from './helpers/guest.js';
import { checkInvariants } from './helpers/invariants.js';
import { propertyRuns } from '../../../../test-support/propertyRuns.js';

/*
 * Random guest lives under shadow paging. Each run picks a paging mode, a
 * memslot strategy and a host root level, builds two address spaces, then
 * applies random steps: guest page-table edits (made as the guest makes
 * them: stores through its own mapping of the tables, followed by the TLB
 * invalidation a correct guest issues — INVLPG of the affected pages or a
 * CR3 reload), hostile entries (reserved bits, pointers outside RAM, self
 * references), accesses of every kind and privilege, CR3 switches, INVLPG,
 * CR0.WP/SMEP/SMAP/AC/CPL/PKRU changes, paging off and on, memslot
 * create/delete/move, notifier invalidations, frame migration, dirty-log
 * harvests and zap-all. After every step: helpers/invariants.ts, and for every
 * virtual page of the run and every access kind, that neither the shadow
 * leaf nor the TLB grants an access that an independent guest walk (the
 * walker, without A/D updates) refuses, maps another gfn, or that the host
 * side forbids.
 */

const POOL_BASE = 0x10_0000;
const WINDOW_TABLES = 0x20_0000;
const DATA_BASE_GFN = 0x300;
const DATA_GFNS = 16;
const SLOT_BASES = [0x100_0000, 0x110_0000, 0x120_0000, 0x130_0000];
const SLOT_PAGES = 16;
const HOLE_GFN = 0x5000;
const EXTRA_POOL_PAGES = 4;

interface Layout {
  readonly vas: number[];
  /** Where the guest maps its own table pages (pool page k at windowBase + k pages). */
  readonly windowBase: number;
  /** Index of the window's entry in the root table. */
  readonly windowIndexAtTop: number;
}

const LAYOUTS: Record<GuestMode, Layout> = {
  long4: {
    vas: [0x40_0000, 0x40_1000, 0x40_2000, 0x60_0000, 0x60_1000, 0x4000_0000, 0x4000_1000, 0x80_0000_0000, 0x80_0000_1000, 0x7000, 0x40_3000, 0x4020_0000],
    windowBase: 255 * 2 ** 39,
    windowIndexAtTop: 255,
  },
  long5: {
    vas: [0x40_0000, 0x40_1000, 0x40_2000, 0x60_0000, 0x4000_0000, 0x4000_1000, 0x80_0000_0000, 2 ** 48, 2 ** 48 + 0x1000, 0x7000, 0x40_3000, 0x4020_0000],
    windowBase: 30 * 2 ** 48, // below 2^53, so a plain number
    windowIndexAtTop: 30,
  },
  pae: {
    vas: [0x40_0000, 0x40_1000, 0x40_2000, 0x60_0000, 0x60_1000, 0x4000_0000, 0x4000_1000, 0x8000_0000, 0x8020_0000, 0x7000, 0x40_3000, 0x4020_0000],
    windowBase: 0xc000_0000,
    windowIndexAtTop: 3,
  },
  bits32: {
    vas: [0x40_0000, 0x40_1000, 0x40_2000, 0x60_0000, 0x60_1000, 0x4000_0000, 0x4000_1000, 0x8000_0000, 0x8040_0000, 0x7000, 0x40_3000, 0x4080_0000],
    windowBase: 0xffc0_0000,
    windowIndexAtTop: 1023,
  },
};

function windowVa(w: { layout: Layout }, gpa: number): number {
  return w.layout.windowBase + (gpa - POOL_BASE);
}

type Step =
  | { op: 'edit'; table: number; index: number; kind: number; flags: number; target: number; hi: number; lo: number; invalidate: 'invlpg' | 'cr3' }
  | { op: 'access'; va: number; kind: number; value: number }
  | { op: 'cr3'; root: number }
  | { op: 'invlpg'; va: number }
  | { op: 'control'; what: number; value: number }
  | { op: 'slot'; what: number; id: number; base: number; flags: number }
  | { op: 'host'; what: number; pick: number; count: number }
  | { op: 'zapAll' };

interface World extends TestVm {
  readonly mode: GuestMode;
  readonly layout: Layout;
  readonly roots: number[];
  readonly pool: number[];
  readonly windowTables: Set<number>;
  readonly entrySize: number;
  readonly levels: number;
  readonly indices: number[];
  readonly walker: GuestWalker;
  readonly walk: GuestWalk;
  readonly pke: boolean;
  cpl: number;
  slotBase: Map<number, number>;
}

function build(mode: GuestMode, strategy: string, hostRootLevel: number, pke: boolean): World {
  const t = makeVm({
    backendOptions: { memslotInvalidation: strategy as 'fast-zap' | 'invalid-rmap', hostRootLevel: hostRootLevel as 3 | 4 | 5 },
    slotBytes: 4 << 20,
    tlbEntries: 64,
  });
  const layout = LAYOUTS[mode];
  const b = new TableBuilder(t.mem, mode, POOL_BASE);
  const roots = [b.root(), b.root()];
  const slotBase = new Map<number, number>();
  t.mem.create({ id: 1, guestPhysAddr: SLOT_BASES[0]!, size: SLOT_PAGES * 4096 });
  t.mem.create({ id: 2, guestPhysAddr: SLOT_BASES[1]!, size: SLOT_PAGES * 4096 });
  slotBase.set(1, SLOT_BASES[0]!);
  slotBase.set(2, SLOT_BASES[1]!);
  // Initial mappings: address space A maps every VA but the last three, B a different subset.
  layout.vas.forEach((va, i) => {
    const gfn = i % 3 === 0 ? DATA_BASE_GFN + i : i % 3 === 1 ? SLOT_BASES[0]! / 4096 + i : SLOT_BASES[1]! / 4096 + i;
    if (i < layout.vas.length - 3) b.map4k(roots[0]!, va, gfn * 4096, P | W | U | (i % 4 === 0 ? A | D : 0));
    if (i % 2 === 0) b.map4k(roots[1]!, va, gfn * 4096, P | W | U);
  });
  const pool: number[] = [];
  const firstFree = b.nextGpa;
  for (let gpa = POOL_BASE; gpa < firstFree; gpa += 4096) pool.push(gpa);
  for (let k = 0; k < EXTRA_POOL_PAGES; k++) pool.push(b.page());
  // The window: the guest's own mapping of its tables, through tables outside the pool.
  const wb = new TableBuilder(t.mem, mode, WINDOW_TABLES);
  const targets = [...pool];
  for (const gpa of targets) wb.map4k(roots[0]!, windowVa({ layout }, gpa), gpa, P | W);
  const windowTables = new Set<number>();
  for (let gpa = WINDOW_TABLES; gpa < wb.nextGpa; gpa += 4096) windowTables.add(gpa);
  const esz = mode === 'bits32' ? 4 : 8;
  const topAt = (root: number) => root + layout.windowIndexAtTop * esz;
  const topLo = t.mem.read32(topAt(roots[0]!), true);
  t.mem.write32(topAt(roots[1]!), topLo, true);
  // Indices the edits aim at: those the run's VAs use at every level, plus a few others.
  const indices = new Set<number>([0, 1, 2, 3]);
  for (const va of layout.vas) for (let level = 1; level <= b.levels; level++) indices.add(b.index(va, level));
  indices.delete(layout.windowIndexAtTop);
  expect(t.x.loadControlRegisters(controlsFor(mode, roots[0]!, pke ? { cr4: 1 << 22 } : {}))).toBe(true);
  return {
    ...t,
    mode,
    layout,
    roots,
    pool,
    windowTables,
    entrySize: esz,
    levels: b.levels,
    indices: [...indices],
    walker: new GuestWalker(),
    walk: new GuestWalk(),
    pke,
    cpl: 0,
    slotBase,
  };
}

/** The gfns used as tables by walks of the run's VAs in the current address space. */
function tableGfns(w: World): Set<number> {
  const out = new Set<number>();
  for (const va of w.layout.vas) {
    w.walker.walk(w.x.regs, w.mem, Math.floor(va / 4096), Access.READ, w.walk, false);
    for (let level = 1; level <= w.walk.maxLevel; level++) out.add(Math.floor(w.walk.tableGfn[level]!));
  }
  return out;
}

/**
 * Whether a MOV to CR3 of `cr3` can load the PAE PDPTEs (SDM 4.4.1): no
 * present PDPTE may set bits 2:1, 8:5 or 63:MAXPHYADDR (the run keeps
 * MAXPHYADDR 40). Read from guest memory here, independently of the MMU.
 */
function pdptesLoadable(w: World, cr3: number): boolean {
  const pdpt = (cr3 & 0xffff_ffe0) >>> 0;
  for (let i = 0; i < 4; i++) {
    const lo = w.mem.read32(pdpt + i * 8, true);
    const hi = w.mem.read32(pdpt + i * 8 + 4, true);
    if ((lo & P) !== 0 && ((lo & 0x1e6) !== 0 || (hi & 0xffff_ff00) !== 0)) return false;
  }
  return true;
}

function invalidateAll(w: World, how: 'invlpg' | 'cr3'): void {
  if (how === 'cr3') {
    const loadable = w.mode !== 'pae' || pdptesLoadable(w, w.x.regs.cr3);
    expect(w.x.setCr3(w.x.regs.cr3)).toBe(loadable);
    if (loadable) return;
    // The MOV to CR3 raised #GP and flushed nothing: a PDPTE picked up a reserved bit, e.g. A
    // (bit 5) set by a walk that used the PDPT as a page directory through a self-referencing
    // PDPTE. The guest invalidates with INVLPG instead.
  }
  for (const va of w.layout.vas) w.x.invlpg(va);
}

function entryValue(w: World, s: Extract<Step, { op: 'edit' }>): { lo: number; hi: number } {
  const pool = w.pool;
  const pkeyHi = w.entrySize === 8 ? s.hi & 0x7800_0000 : 0;
  const nx = w.entrySize === 8 && (s.flags & 0x100) !== 0 ? NX_HI : 0;
  const flags = (s.flags & (W | U | A | D)) | P;
  let gfn: number;
  switch (s.kind) {
    case 0: // a table
      gfn = pool[s.target % pool.length]! / 4096;
      return { lo: ((gfn * 4096) | flags) >>> 0, hi: nx };
    case 1: // a 4 KiB leaf onto data
    case 2: {
      // a large leaf (PS)
      const targets = [DATA_BASE_GFN + (s.target % DATA_GFNS), SLOT_BASES[s.target % 4]! / 4096 + (s.target % SLOT_PAGES), HOLE_GFN];
      gfn = targets[s.target % 3]!;
      if (s.kind === 2) gfn -= gfn % 1024;
      return { lo: ((gfn * 4096) | flags | (s.kind === 2 ? PS : 0)) >>> 0, hi: (nx | pkeyHi) >>> 0 };
    }
    case 3: // not present
      return { lo: 0, hi: 0 };
    case 4: // hostile garbage: anything, reserved bits included
      return { lo: s.lo >>> 0, hi: w.entrySize === 8 ? s.hi >>> 0 : 0 };
    case 5: // a table outside guest RAM
      return { lo: (0x7fff_f000 | flags) >>> 0, hi: 0 };
    default: // self reference: the entry points at its own table
      return { lo: (pool[s.table % pool.length]! | flags) >>> 0, hi: 0 };
  }
}

function runStep(w: World, s: Step): void {
  const x = w.x;
  switch (s.op) {
    case 'edit': {
      const table = w.pool[s.table % w.pool.length]!;
      const index = w.indices[s.index % w.indices.length]!;
      let { lo, hi } = entryValue(w, s);
      if (w.mode === 'pae' && w.roots.includes(table)) {
        // Keep PDPTEs loadable (hostile PDPTEs, refused at CR3 load, are covered by the unit tests):
        // clear the reserved bits 1..2, 5..8 and MAXPHYADDR..63 (SDM 4.4.1).
        lo = (lo & ~0x1e6) >>> 0;
        hi &= 0xff;
      }
      const savedCpl = w.cpl;
      if (savedCpl !== 0) x.setCpl(0);
      const ok = x.write(windowVa(w, table + index * w.entrySize), w.entrySize, lo, hi);
      if (savedCpl !== 0) x.setCpl(savedCpl);
      expect(ok, `window write failed: fault ${w.vcpu.fault.kind}/${w.vcpu.fault.code}`).toBe(true);
      invalidateAll(w, w.mode === 'pae' ? 'cr3' : s.invalidate);
      break;
    }
    case 'access': {
      const va = w.layout.vas[s.va % w.layout.vas.length]!;
      const kinds = [Access.READ, Access.WRITE, Access.FETCH, Access.USER, Access.USER | Access.WRITE, Access.USER | Access.FETCH, Access.IMPLICIT];
      const access = kinds[s.kind % kinds.length]!;
      if ((access & Access.WRITE) !== 0) {
        // A correct guest that stores into one of its live page tables invalidates afterwards.
        const ok = w.walker.walk(x.regs, w.mem, Math.floor(va / 4096), access, w.walk, false);
        const gfn = w.walk.gfn;
        if (ok && w.windowTables.has(gfn * 4096)) break; // never overwrite the window's own tables
        const tables = ok ? tableGfns(w) : new Set<number>();
        x.write(va + 8, 4, s.value, 0, access);
        if (ok && (tables.has(gfn) || w.pool.includes(gfn * 4096))) invalidateAll(w, 'invlpg');
      } else {
        x.read(va + 8, 4, access);
      }
      break;
    }
    case 'cr3': {
      const root = w.roots[s.root % 2]!;
      expect(x.setCr3(root)).toBe(w.mode !== 'pae' || pdptesLoadable(w, root));
      break;
    }
    case 'invlpg':
      x.invlpg(w.layout.vas[s.va % w.layout.vas.length]!);
      break;
    case 'control': {
      const r = x.regs;
      switch (s.what % 7) {
        case 0:
          x.setCr0((r.cr0 ^ (1 << 16)) >>> 0);
          break; // CR0.WP
        case 1:
          x.setCr4((r.cr4 ^ (1 << 20)) >>> 0);
          break; // SMEP
        case 2:
          x.setCr4((r.cr4 ^ (1 << 21)) >>> 0);
          break; // SMAP
        case 3:
          x.setRflagsAc(!r.rflagsAc);
          break;
        case 4:
          w.cpl = w.cpl === 0 ? 3 : 0;
          x.setCpl(w.cpl);
          break;
        case 5:
          if (w.pke) x.setPkru(s.value >>> 0);
          break;
        default: {
          // Paging off and on again (a full MMU reset both ways). Turning PAE paging on loads
          // the PDPTEs (#GP if one is reserved): a guest whose PDPT no longer loads keeps paging on.
          const saved = { cr0: r.cr0, cr3: r.cr3, cr4: r.cr4, efer: r.efer };
          const off = { cr0: (saved.cr0 & ~0x8000_0000) >>> 0, cr3: saved.cr3, cr4: saved.cr4, efer: saved.efer & ~0x100 };
          if (s.value % 2 === 0 && (w.mode !== 'pae' || pdptesLoadable(w, saved.cr3))) {
            expect(x.loadControlRegisters(off)).toBe(true);
            for (const va of w.layout.vas) if (va < 0x100_0000) x.read(va, 4);
            expect(x.loadControlRegisters(saved)).toBe(true);
          }
        }
      }
      break;
    }
    case 'slot': {
      const id = 1 + (s.id % 2);
      const base = SLOT_BASES[s.base % SLOT_BASES.length]!;
      const mem = w.mem;
      const clash = (gpa: number) => [...w.slotBase].some(([other, b]) => other !== id && b === gpa);
      switch (s.what % 5) {
        case 0:
          if (!mem.has(id) && !clash(base)) {
            mem.create({ id, guestPhysAddr: base, size: SLOT_PAGES * 4096, flags: s.flags % 2 === 0 ? 0 : MemslotFlags.READONLY });
            w.slotBase.set(id, base);
          }
          break;
        case 1:
          if (mem.has(id)) {
            mem.delete(id);
            w.slotBase.delete(id);
          }
          break;
        case 2:
          if (mem.has(id) && !clash(base)) {
            mem.move(id, base);
            w.slotBase.set(id, base);
          }
          break;
        case 3: {
          const slotId = s.flags % 3 === 0 ? 0 : id;
          if (mem.has(slotId) && !mem.get(slotId).readOnly) mem.setFlags(slotId, mem.get(slotId).dirtyLogging ? 0 : MemslotFlags.LOG_DIRTY_PAGES);
          break;
        }
        default: {
          const slotId = s.flags % 3 === 0 ? 0 : id;
          if (mem.has(slotId) && mem.get(slotId).dirtyLogging) mem.getDirtyLog(slotId);
        }
      }
      break;
    }
    case 'host': {
      const frames: number[] = [];
      for (const slot of w.mem.slots()) for (const f of slot.frames) if (f >= 0) frames.push(f);
      if (frames.length === 0) break;
      const f = frames[s.pick % frames.length]!;
      switch (s.what % 4) {
        case 0:
          w.vm.invalidateHostRange(f, f + s.count);
          break;
        case 1:
          w.vm.migrateHostFrame(f);
          break;
        case 2:
          w.vm.ageHostRange(f, f + s.count);
          break;
        default:
          w.vm.testAgeHostRange(f, f + s.count);
      }
      break;
    }
    case 'zapAll':
      w.vm.zapAll();
      break;
  }
}

/** No translation grants more than guest ∧ host allow (clean guest leaves stay read-only as in paging_tmpl.h protect_clean_gpte, dirty-logged writes are logged as spte.c make_spte does, and the TLB on top). */
function checkGrants(w: World): string[] {
  const errors: string[] = [];
  const mmu = w.vm.mmu as X86ShadowMmu;
  const pages = mmu.pages;
  const spt = pages.spt;
  const x = w.x;
  const tlb = w.vcpu.tlb;
  const zero = w.mem.host.zeroFrame;
  for (const va of w.layout.vas) {
    const vpn = Math.floor(va / 4096);
    const gvpn = x.cpuLevel >= 4 ? vpn : vpn % 0x10_0000;
    const e = mmu.findLeaf(x, gvpn);
    const leafPerm = e < 0 ? 0 : x.hardwarePerm(spt.sptLo[e]!, spt.sptHi[e]!);
    const leafFrame = e < 0 ? -1 : (spt.sptHi[e]! & 0xfffff) * 0x10_0000 + (spt.sptLo[e]! >>> 12);
    const leafGfn = e < 0 ? -1 : pages.getGfn(Math.floor(e / 512), e % 512);
    const i = vpn & tlb.mask;
    const tlbHit = tlb.tags[i] === vpn;
    const tlbPerm = tlbHit ? tlb.perms[i]! : 0;
    if (tlbHit) {
      if (e < 0) errors.push(`va ${va.toString(16)}: TLB entry without a shadow leaf`);
      else if (tlb.frames[i] !== leafFrame) errors.push(`va ${va.toString(16)}: TLB frame ${tlb.frames[i]} != leaf frame ${leafFrame}`);
      if ((tlbPerm & ~leafPerm) !== 0) errors.push(`va ${va.toString(16)}: TLB grants ${tlbPerm.toString(16)} beyond the leaf's ${leafPerm.toString(16)}`);
    }
    const granted = leafPerm | tlbPerm;
    for (let access = 0; access < ACCESS_KINDS; access++) {
      if (((granted >> access) & 1) === 0) continue;
      const what = `va ${va.toString(16)} access ${access}`;
      if (!w.walker.walk(x.regs, w.mem, gvpn, access, w.walk, false)) {
        errors.push(`${what}: granted, but the guest walk faults (code ${w.walk.errorCode})`);
        continue;
      }
      const gfn = w.walk.gfn;
      if (gfn !== leafGfn) errors.push(`${what}: the leaf maps gfn ${leafGfn}, the guest maps ${gfn}`);
      const slot = w.mem.findByGfn(gfn);
      if (slot === undefined) {
        errors.push(`${what}: granted on gfn ${gfn}, which no memslot holds`);
        continue;
      }
      const backing = slot.frames[gfn - slot.baseGfn]!;
      const expected = backing >= 0 ? backing : backing === FRAME_ZERO ? zero : -1;
      if (leafFrame !== expected) errors.push(`${what}: frame ${leafFrame}, the slot backs gfn ${gfn} with ${expected}`);
      if ((access & Access.WRITE) !== 0) {
        if (slot.readOnly || backing < 0) errors.push(`${what}: write granted on a read-only or unbacked page`);
        if (w.walk.maxLevel > 0 && (w.walk.pteLo[w.walk.level]! & D) === 0) errors.push(`${what}: write granted while the guest leaf is clean`);
        if (slot.dirtyLogging && !slot.isDirty(gfn)) errors.push(`${what}: write granted on an unlogged page of a dirty-logged slot`);
      }
    }
  }
  return errors;
}

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      op: fc.constant('edit' as const),
      table: fc.nat(64),
      index: fc.nat(64),
      kind: fc.nat(6),
      flags: fc.nat(0x1ff),
      target: fc.nat(1000),
      hi: fc.integer({ min: 0, max: 0xffff_ffff }),
      lo: fc.integer({ min: 0, max: 0xffff_ffff }),
      invalidate: fc.constantFrom('invlpg' as const, 'cr3' as const),
    }),
  },
  { weight: 10, arbitrary: fc.record({ op: fc.constant('access' as const), va: fc.nat(64), kind: fc.nat(6), value: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('cr3' as const), root: fc.nat(1) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('invlpg' as const), va: fc.nat(64) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('control' as const), what: fc.nat(6), value: fc.integer({ min: 0, max: 0xffff_ffff }) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('slot' as const), what: fc.nat(4), id: fc.nat(1), base: fc.nat(3), flags: fc.nat(5) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('host' as const), what: fc.nat(3), pick: fc.nat(500), count: fc.integer({ min: 1, max: 4 }) }) },
  { weight: 1, arbitrary: fc.constant({ op: 'zapAll' as const }) },
);

describe.each(['long4', 'long5', 'pae', 'bits32'] as const)('random %s guests under shadow paging', (mode) => {
  it('keep every invariant and never grant more than guest ∧ host, after every step', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('fast-zap', 'invalid-rmap'),
        fc.constantFrom(3, 4, 5),
        fc.boolean(),
        fc.array(stepArb, { minLength: 10, maxLength: 40, size: 'max' }),
        (strategy, hostRootLevel, pke, steps) => {
          const w = build(mode, strategy, hostRootLevel, pke && (mode === 'long4' || mode === 'long5'));
          expect(checkInvariants(w.vm)).toEqual([]);
          steps.forEach((s, n) => {
            runStep(w, s);
            const errors = [...checkInvariants(w.vm), ...checkGrants(w)];
            if (errors.length > 0) throw new Error(`step ${n} ${JSON.stringify(s)}:\n  ${errors.slice(0, 8).join('\n  ')}`);
          });
        },
      ),
      { numRuns: propertyRuns(200) },
    );
  });
});

describe('hostile guests', () => {
  it('garbage in every table entry: architected faults, no exception, bounded work', () => {
    fc.assert(
      fc.property(
        fc.constantFrom<GuestMode>('long4', 'long5', 'pae', 'bits32'),
        fc.array(fc.tuple(fc.integer({ min: 0, max: 0xffff_ffff }), fc.integer({ min: 0, max: 0xffff_ffff })), { minLength: 64, maxLength: 64 }),
        fc.array(fc.integer({ min: 0, max: 2 ** 30 }), { minLength: 32, maxLength: 32 }),
        (mode, garbage, picks) => {
          const t = makeVm({ slotBytes: 4 << 20 });
          const b = new TableBuilder(t.mem, mode, POOL_BASE);
          const pages = [b.root(), b.page(), b.page(), b.page()];
          // Every entry of every table: garbage that points back into the tables (self references
          // and loops), outside RAM, or anywhere, with any flag and reserved bit.
          let k = 0;
          for (const page of pages) {
            for (let i = 0; i < 4096 / b.entrySize; i++) {
              const [lo, hi] = garbage[k++ % garbage.length]!;
              const pointAt = (lo >>> 8) % 4 === 0 ? pages[lo % 4]! : (lo & ~0xfff) >>> 0;
              if (b.entrySize === 8) t.mem.write64Halves(page + i * 8, hi, (pointAt | (lo & 0xfff)) >>> 0, true);
              else t.mem.write32(page + i * 4, (pointAt | (lo & 0xfff)) >>> 0, true);
            }
          }
          if (!t.x.loadControlRegisters(controlsFor(mode, pages[0]!))) {
            // Reserved bits in a present PDPTE: the MOV to CR3 itself is refused (#GP) and nothing changes.
            expect(mode).toBe('pae');
            expect(t.x.regs.cr0 & 0x8000_0000).toBe(0);
            return;
          }
          const walker = new GuestWalker();
          const walk = new GuestWalk();
          const long = mode === 'long4' || mode === 'long5';
          picks.forEach((pick, n) => {
            // Canonical low-half pages in long mode, 32-bit pages otherwise; vary the index bits walked.
            const vpn = long ? (pick * 1031) % 2 ** 35 : pick % 2 ** 20;
            const access = [Access.READ, Access.WRITE, Access.FETCH, Access.USER | Access.WRITE][n % 4]!;
            const misses = t.vcpu.tableMisses;
            const hpa = t.vcpu.translate(vpn * 4096, access);
            // Bounded: never more table misses than core's retry limit, never a retry-limit fault.
            expect(t.vcpu.tableMisses - misses).toBeLessThanOrEqual(16);
            const ok = walker.walk(t.x.regs, t.mem, vpn, access, walk, false);
            if (hpa === TRANSLATE_FAULT) {
              expect([FaultKind.GUEST, FaultKind.NO_MEMORY, FaultKind.READ_ONLY, FaultKind.EMULATE]).toContain(t.vcpu.fault.kind);
              // The architected #PF: exactly the code an independent walk computes.
              if (t.vcpu.fault.kind === FaultKind.GUEST) {
                expect(ok).toBe(false);
                expect(t.vcpu.fault.code).toBe(walk.errorCode);
              }
            } else {
              expect(ok).toBe(true);
            }
          });
          expect(checkInvariants(t.vm)).toEqual([]);
        },
      ),
      { numRuns: propertyRuns(60) },
    );
  });
});
