import { Access, FlatGuestMemory, Hypervisor, type Vcpu, type Vm } from '@hvmmu/core';
import { ShadowPages, X86ShadowMmu, x86ShadowBackend, type X86ShadowTypes } from '@hvmmu/x86-shadow/internal';
import { faultRoundsVsRaw, median, type BenchContext, type BenchFigure, type BenchSuite } from '../../../bench/src/BenchFigure.js';
import { buildLongModeTables, rawLongModeWalk } from '../../../bench/src/x86Walk.bench.js';

const TWO_POW_32 = 0x1_0000_0000;
const PTE_P = 1,
  PTE_W = 2,
  PTE_U = 4,
  PTE_A = 0x20,
  PTE_D = 0x40;
/** Guest virtual base of the mapped pages (PML4 index 1). */
const VA_BASE = 2 ** 39;
/** Data slot (id 1) base: 4 GiB. */
const DATA_GPA = TWO_POW_32;

interface Guest {
  readonly hv: Hypervisor;
  readonly vm: Vm<X86ShadowTypes>;
  readonly vcpu: Vcpu;
  readonly mmu: X86ShadowMmu;
  readonly pages: number;
}

/**
 * A 4-level guest whose tables (in slot 0) map `pages` consecutive 4 KiB
 * pages at VA 2^39 onto slot 1 (at 4 GiB); entries have A (and D) set, so
 * faults do no guest A/D writes. `privateFrames` gives every data page its
 * own host frame first (otherwise reads map the shared zero frame).
 */
function buildGuest(pages: number, strategy: 'fast-zap' | 'invalid-rmap', privateFrames: boolean): Guest {
  const ptPages = Math.ceil(pages / 512);
  const tablePages = ptPages + Math.ceil(ptPages / 512) + 4;
  const hostBytes = (tablePages + (privateFrames ? pages : 0) + 64) * 4096;
  const hv = new Hypervisor({ memoryBytes: Math.max(hostBytes, 16 << 20) });
  const vm = hv.createVm({ backend: x86ShadowBackend, backendOptions: { memslotInvalidation: strategy }, tlbEntries: 1024 });
  const mem = vm.memslots;
  mem.create({ id: 0, guestPhysAddr: 0, size: tablePages * 4096 });
  mem.create({ id: 1, guestPhysAddr: DATA_GPA, size: pages * 4096 });
  let next = 0;
  const alloc = (): number => next++ * 4096;
  const pml4 = alloc();
  const pdpt = alloc();
  const set = (gpa: number, target: number, flags: number): void => {
    mem.write64Halves(gpa, Math.floor(target / TWO_POW_32), ((target % TWO_POW_32) + flags) >>> 0, true);
  };
  set(pml4 + 8, pdpt, PTE_P | PTE_W | PTE_U | PTE_A);
  let pd = -1;
  let pt = -1;
  for (let p = 0; p < pages; p++) {
    if (p % (512 * 512) === 0) {
      pd = alloc();
      set(pdpt + Math.floor(p / (512 * 512)) * 8, pd, PTE_P | PTE_W | PTE_U | PTE_A);
    }
    if (p % 512 === 0) {
      pt = alloc();
      set(pd + (Math.floor(p / 512) % 512) * 8, pt, PTE_P | PTE_W | PTE_U | PTE_A);
    }
    set(pt + (p % 512) * 8, DATA_GPA + p * 4096, PTE_P | PTE_W | PTE_U | PTE_A | PTE_D);
    if (privateFrames) mem.write32(DATA_GPA + p * 4096, p, true);
  }
  const vcpu = vm.createVcpu();
  if (!vcpu.arch.loadControlRegisters({ cr0: 0x8001_0001, cr3: pml4, cr4: 0x20, efer: 0x900 })) {
    throw new Error('bench set-up: control registers refused');
  }
  return { hv, vm, vcpu, mmu: vm.mmu as X86ShadowMmu, pages };
}

/** Touch every page once (a read through the vCPU); returns the sum of host addresses. */
function touchAll(g: Guest): number {
  let s = 0;
  for (let p = 0; p < g.pages; p++) {
    const hpa = g.vcpu.translate(VA_BASE + p * 4096, Access.READ);
    if (hpa < 0) throw new Error(`bench: access to page ${p} faulted (kind ${g.vcpu.fault.kind})`);
    s += hpa;
  }
  return s;
}

/**
 * Shadow fault: first touch of a 4 KiB page whose guest tables exist (and
 * whose upper shadow levels exist), from the TLB miss through the hardware
 * walk, `handleFault` (guest walk — of the leaf alone, as the level-1
 * shadow page exists: see `X86ShadowMmu.firstTouch` —, memslot lookup,
 * FNAME(fetch), spte + rmap) to the retried access — in units of the raw 4-level walk of
 * `x86.walk`. Leaves are dropped between rounds (untimed) with the MMU
 * notifier, which keeps the shadow pages.
 */
function shadowFault(ctx: BenchContext): BenchFigure {
  const pages = ctx.quick ? 2048 : 8192;
  const g = buildGuest(pages, 'fast-zap', true);
  touchAll(g);
  const slot = g.vm.memslots.get(1);
  // The raw walk of `x86.walk`, over the same kind of spread tables (2048 walks per call).
  const rawWalks = 2048;
  const { image, cr3, vpns } = buildLongModeTables(rawWalks);
  const view = new FlatGuestMemory(image).view;
  const raw = rawLongModeWalk(view, cr3, vpns);
  const { value, baseline } = faultRoundsVsRaw(
    ctx,
    pages,
    () => g.mmu.invalidateGfnRange(slot, slot.baseGfn, slot.baseGfn + pages),
    () => touchAll(g),
    raw,
    rawWalks,
  );
  return {
    value,
    baseline,
    ratio: value / baseline,
    unit: 'ns',
    ratioMeaning: 'shadow fault (miss → handleFault → retried access) / raw 4-level walk',
    target: '≤ 6',
  };
}

interface DeleteResult {
  sptes: number;
  totalNs: number;
  invalidateNs: number;
}

/**
 * Fast zap's first half flips a one-bit generation and posts requests: a few
 * µs at most, the scale of this machine's timer and scheduling jitter. It is
 * timed over this many consecutive flips; the count is odd, so the pages end
 * obsolete as after one flip (nothing runs between the flips).
 */
const INVALIDATE_FLIPS = 1001;

/** Map `pages` pages, then delete their memslot under `strategy`; for fast zap also time the invalidate step alone. */
function measureDelete(pages: number, strategy: 'fast-zap' | 'invalid-rmap'): DeleteResult {
  const g = buildGuest(pages, strategy, false);
  touchAll(g);
  const sptes = g.mmu.stats()['rmapEntries']!;
  const shadow: ShadowPages = g.mmu.pages;
  let invalidateNs = 0;
  let zapNs = 0;
  if (strategy === 'fast-zap') {
    // The two halves of kvm_mmu_zap_all_fast, timed apart; the delete below then finds nothing left.
    const t0 = performance.now();
    for (let k = 0; k < INVALIDATE_FLIPS; k++) shadow.invalidateAllFast();
    const t1 = performance.now();
    shadow.zapObsoletePages();
    const t2 = performance.now();
    invalidateNs = ((t1 - t0) * 1e6) / INVALIDATE_FLIPS;
    zapNs = (t2 - t1) * 1e6;
  }
  const t3 = performance.now();
  g.vm.memslots.delete(1);
  const t4 = performance.now();
  return { sptes, totalNs: zapNs + invalidateNs + (t4 - t3) * 1e6, invalidateNs };
}

function memslotDelete(ctx: BenchContext): Record<string, BenchFigure> {
  const sizes = ctx.quick ? [1 << 10, 1 << 14, 1 << 16] : [1 << 10, 1 << 14, 1 << 18, 1 << 20];
  const label = (n: number): string => (n >= 1 << 20 ? `${n >> 20}M` : `${n >> 10}K`);
  const figures: Record<string, BenchFigure> = {};
  // Small slots are cheap to repeat and their per-spte figure is the baseline
  // of the growth ratios, so they get the most rounds (GC and JIT noise).
  const runs = (n: number): number => (n <= 1 << 14 ? (ctx.quick ? 5 : 15) : 3);
  const results = new Map<string, DeleteResult>();
  // Warm-up: compile every path before the first timed size.
  for (let k = 0; k < 5; k++) for (const strategy of ['invalid-rmap', 'fast-zap'] as const) measureDelete(sizes[0]!, strategy);
  for (const n of sizes) {
    for (const strategy of ['invalid-rmap', 'fast-zap'] as const) {
      const rs: DeleteResult[] = [];
      for (let k = 0; k < runs(n); k++) rs.push(measureDelete(n, strategy));
      const pick = (f: (r: DeleteResult) => number): number => median(rs.map(f));
      results.set(`${strategy}/${n}`, { sptes: rs[0]!.sptes, totalNs: pick((r) => r.totalNs), invalidateNs: pick((r) => r.invalidateNs) });
    }
  }
  const first = sizes[0]!;
  for (const n of sizes) {
    const inv = results.get(`invalid-rmap/${n}`)!;
    const fz = results.get(`fast-zap/${n}`)!;
    const inv0 = results.get(`invalid-rmap/${first}`)!;
    const fz0 = results.get(`fast-zap/${first}`)!;
    figures[`invalidRmap.perSpte.${label(n)}`] = {
      value: inv.totalNs / inv.sptes,
      baseline: inv0.totalNs / inv0.sptes,
      ratio: inv.totalNs / inv.sptes / (inv0.totalNs / inv0.sptes),
      unit: 'ns/spte',
      ratioMeaning: `invalid-rmap delete cost per spte vs at ${label(first)} (growth; ${inv.sptes} sptes)`,
    };
    figures[`fastZap.perSpte.${label(n)}`] = {
      value: fz.totalNs / fz.sptes,
      baseline: fz0.totalNs / fz0.sptes,
      ratio: fz.totalNs / fz.sptes / (fz0.totalNs / fz0.sptes),
      unit: 'ns/spte',
      ratioMeaning: `fast-zap delete cost per spte vs at ${label(first)} (growth; ${fz.sptes} sptes)`,
    };
    figures[`fastZap.invalidateStep.${label(n)}`] = {
      value: fz.invalidateNs,
      baseline: fz0.invalidateNs,
      ratio: fz.invalidateNs / fz0.invalidateNs,
      unit: 'ns',
      ratioMeaning: `generation flip + TLB generation vs at ${label(first)}`,
      target: '≈ 1 (must not grow with the slot)',
    };
    figures[`fastZapVsInvalidRmap.${label(n)}`] = {
      value: fz.totalNs,
      baseline: inv.totalNs,
      ratio: fz.totalNs / inv.totalNs,
      unit: 'ns',
      ratioMeaning: 'fast-zap delete / invalid-rmap delete (same slot, same mappings)',
    };
  }
  return figures;
}

/**
 * Host bytes per mapped guest page: shadow tables (sptes, shadowed
 * translations, page metadata, hash, lists) + rmap heads, descriptors and
 * write tracking, over the pages mapped. Baseline: KVM's per-4 KiB cost
 * under shadow paging, 8 (spte) + 8 (shadowed_translation) + 8 (4 KiB rmap
 * head) = 24 bytes, upper levels and headers not counted.
 */
function bytesPerPage(ctx: BenchContext): BenchFigure {
  const pages = ctx.quick ? 1 << 14 : 1 << 16;
  const g = buildGuest(pages, 'fast-zap', false);
  touchAll(g);
  const s = g.mmu.stats();
  const value = s['hostBytes']! / pages;
  return { value, baseline: 24, ratio: value / 24, unit: 'B/page', ratioMeaning: `host bytes per mapped page (${pages} pages) / KVM's 24` };
}

/** `x86.shadow.fault`: shadow fault cost in raw-walk units (target ≤ 6). */
export const x86ShadowFaultSuite: BenchSuite = {
  name: 'x86.shadow.fault',
  run(ctx) {
    return { firstTouch4k: shadowFault(ctx) };
  },
};

/** `x86.shadow.memslot`: memslot delete of 1K…1M mapped pages under each strategy. */
export const x86MemslotDeleteSuite: BenchSuite = {
  name: 'x86.shadow.memslot',
  run(ctx) {
    return memslotDelete(ctx);
  },
};

/** `x86.shadow.memory`: host bytes per mapped guest page. */
export const x86ShadowMemorySuite: BenchSuite = {
  name: 'x86.shadow.memory',
  run(ctx) {
    return { bytesPerMappedPage: bytesPerPage(ctx) };
  },
};
