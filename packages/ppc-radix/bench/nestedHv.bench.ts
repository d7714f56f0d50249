import { Access, FlatGuestMemory, Hypervisor, type GuestMemory, type Memslot, type Vcpu, type Vm } from '@hvmmu/core';
import {
  HvGuestStateField,
  L1NestedHost,
  NestedHcall,
  PtRegsField,
  RadixSlotRmap,
  RadixTreeBuilder,
  ppcRadixBackend,
  type PartitionScopedTree,
  type PpcRadixTypes,
  type RadixTree,
} from '@hvmmu/ppc-radix';
import { faultRoundsVsRaw, median, type BenchContext, type BenchFigure, type BenchSuite } from '../../../bench/src/BenchFigure.js';

const MiB = 1 << 20;
const PAGE = 4096;
/** L1 memory: slot 0 [0, 64 MiB) is L1's own (its tables from 8 MiB, the L2 state at 48 MiB); slot 1 at 1 GiB is what L1 gives the L2. */
const L1_OWN_BYTES = 64 * MiB;
const L1_ARENA = 8 * MiB;
const L1_ARENA_BYTES = 32 * MiB;
const HV_PTR = 48 * MiB;
const REGS_PTR = 48 * MiB + PAGE;
const L2_MEMORY = 1 << 30;
const L2_LPID = 5;
/** The L2's own tables (virtual mode only) are at L2 real [0, L2_TABLE_BYTES); its data pages follow (from 0 in real mode). */
const L2_TABLE_BYTES = 4 * MiB;
/** L2 effective addresses of the data pages in virtual mode (quadrant 0, PID 1). */
const L2_VA_BASE = 2 ** 39;
const L2_PID = 1;
/** MSR of a ppc64el kernel: SF, ME, IR, DR, RI, LE (IR and DR only for the virtual-mode L2). */
const MSR_RELOCATED = 0x8000_0000_0000_1033n;
const MSR_REAL = 0x8000_0000_0000_1003n;

/** L2 real address = L1 real address - L2_MEMORY (the L2 builds its own tables in its memory). */
class L2RealView implements GuestMemory {
  constructor(private readonly l1: GuestMemory) {}
  get view(): DataView {
    return this.l1.view;
  }
  resolve(gpa: number, write: boolean): number {
    return gpa >= 0 ? this.l1.resolve(gpa + L2_MEMORY, write) : -1;
  }
}

interface NestedSetup {
  readonly vm: Vm<PpcRadixTypes>;
  readonly vcpu: Vcpu<PpcRadixTypes>;
  readonly l1: L1NestedHost;
  /** L1's partition-scoped tree for the L2 (in L1 memory). */
  readonly l1Tree: RadixTree;
  /** The memslot L1 gives the L2 (slot 1). */
  readonly l2Slot: Memslot<PpcRadixTypes>;
  /** L2 real frame of data page p. */
  readonly dataGfn0: number;
  /** What the L2 accesses for data page p. */
  address(p: number): number;
  /** H_ENTER_NESTED from L1 (the hv_guest_state and pt_regs are in place). */
  enter(): void;
  shadowTree(): PartitionScopedTree;
}

/**
 * An L1 with nested HV (its partition table registered through
 * `L1NestedHost`) and an L2 it has entered: L1's partition-scoped tree for
 * the L2 maps L2 real [0, bytes) to the L1 memslot at 1 GiB with 4 KiB
 * leaves (R and C set, so no R/C fault goes to L1), every L1 page already
 * written by L1 (a private host frame each). `aliases` > 1 maps `pages` L2
 * frames per data page onto the same L1 page (the nested rmap then names
 * each L1 page that many times). In virtual mode the L2 runs with
 * relocation on, its own 4K-geometry tree for PID 1 mapping
 * L2_VA_BASE + p pages to data page p.
 */
function buildNested(pages: number, mode: 'real' | 'virtual', aliases = 1): NestedSetup {
  const tableBytes = mode === 'virtual' ? L2_TABLE_BYTES : 0;
  const l2Bytes = tableBytes + pages * PAGE;
  const hv = new Hypervisor({ memoryBytes: L1_OWN_BYTES + 2 * l2Bytes + 64 * MiB });
  const vm = hv.createVm({ backend: ppcRadixBackend, backendOptions: { nestedHv: true }, tlbEntries: 1024 });
  vm.memslots.create({ id: 0, guestPhysAddr: 0, size: L1_OWN_BYTES });
  const l2Slot = vm.memslots.create({ id: 1, guestPhysAddr: L2_MEMORY, size: l2Bytes });
  for (let a = 0; a < l2Bytes; a += PAGE) vm.memslots.write32(L2_MEMORY + a, a / PAGE + 1, true);
  const vcpu = vm.createVcpu();
  const builder = new RadixTreeBuilder(vm.memslots, L1_ARENA, L1_ARENA_BYTES);
  const l1 = new L1NestedHost({
    hcall: (number, args) => L1NestedHost.hcallOn(vcpu, number, args),
    alloc: (bytes) => builder.allocate(bytes),
    write: (gpa, bytes) => vm.memslots.writeBytes(gpa, bytes),
  });
  if (!l1.init(8).ok) throw new Error('bench set-up: H_SET_PARTITION_TABLE refused');
  const l1Tree = builder.createTree('4k');
  const rights = { read: true, write: true, execute: true, referenced: true, changed: true };
  for (let a = 0; a < tableBytes; a += PAGE) l1Tree.map(a, L2_MEMORY + a, 12, rights);
  const dataGfn0 = tableBytes / PAGE;
  for (let k = 0; k < aliases; k++) {
    for (let p = 0; p < pages; p++) l1Tree.map(tableBytes + (k * pages + p) * PAGE, L2_MEMORY + tableBytes + p * PAGE, 12, rights);
  }
  let processTable: [number, number] = [0, 0];
  if (mode === 'virtual') {
    const l2 = new RadixTreeBuilder(new L2RealView(vm.memslots), 0, L2_TABLE_BYTES);
    const table = l2.createProcessTable(0);
    const tree = l2.createTree('4k');
    table.setProcess(L2_PID, tree);
    for (let p = 0; p < pages; p++) tree.map(L2_VA_BASE + p * PAGE, tableBytes + p * PAGE, 12, { read: true, write: true, referenced: true, changed: true });
    processTable = table.pointer();
  }
  const dw1 = (BigInt(processTable[0]) << 32n) | BigInt(processTable[1]);
  if (l1.setEntry(L2_LPID, l1Tree.pateDw0(), dw1) !== 0) throw new Error('bench set-up: the L2 partition-table entry was refused');
  // hv_guest_state (version 2) and pt_regs, little-endian as a ppc64el L1 writes them.
  const state = new Uint8Array(248);
  const sv = new DataView(state.buffer);
  sv.setBigUint64(HvGuestStateField.version, 2n, true);
  sv.setUint32(HvGuestStateField.lpid, L2_LPID, true);
  sv.setBigUint64(HvGuestStateField.pidr, BigInt(L2_PID), true);
  vm.memslots.writeBytes(HV_PTR, state);
  const regs = new Uint8Array(352);
  new DataView(regs.buffer).setBigUint64(PtRegsField.msr, mode === 'virtual' ? MSR_RELOCATED : MSR_REAL, true);
  vm.memslots.writeBytes(REGS_PTR, regs);
  const enter = (): void => {
    vcpu.hcallRegs.clear();
    vcpu.hcallRegs.setArg(0, HV_PTR).setArg(1, REGS_PTR);
    if (vcpu.hypercall(NestedHcall.H_ENTER_NESTED) !== 0 || !vcpu.arch.inL2) throw new Error('bench set-up: H_ENTER_NESTED failed');
  };
  enter();
  return {
    vm,
    vcpu,
    l1,
    l1Tree,
    l2Slot,
    dataGfn0,
    address: mode === 'virtual' ? (p) => L2_VA_BASE + p * PAGE : (p) => tableBytes + p * PAGE,
    enter,
    shadowTree() {
      const run = vcpu.arch.nested;
      if (run === null) throw new Error('bench: the vCPU left the L2');
      return run.tree;
    },
  };
}

/** Touch `count` consecutive L2 pages from `first` (a read each); returns the sum of host addresses. */
function touch(s: NestedSetup, first: number, count: number): number {
  const vcpu = s.vcpu;
  let sum = 0;
  for (let p = first; p < first + count; p++) {
    const hpa = vcpu.translate(s.address(p), Access.READ);
    if (hpa < 0) throw new Error(`bench: the L2's access to page ${p} faulted (vector 0x${vcpu.fault.vector.toString(16)}, kind ${vcpu.fault.kind})`);
    sum += hpa;
  }
  return sum;
}

const noop = (): void => {};

/**
 * Back to "the mapping exists in L1's tables, nothing shadowed yet": every
 * data page's shadow leaf removed (kvmhv_invalidate_shadow_pte, TLB flushed)
 * and its nested rmap list emptied; the shadow tree's directories, L0's
 * leaves for the L1 pages and the L2's shadowed tables stay — as x86's
 * first-touch bench keeps its shadow pages. With `dropL0`, L0's leaves go
 * too (host invalidation of the L1 pages), so each first touch also
 * instantiates L0's leaf.
 */
function unshadow(s: NestedSetup, pages: number, dropL0: boolean): void {
  const slot = s.l2Slot;
  if (dropL0) {
    for (let p = 0; p < pages; p++) {
      const hfn = slot.frames[s.dataGfn0 + p]!;
      s.vm.memslots.invalidateHostRange(hfn, hfn + 1);
    }
    return;
  }
  const tree = s.shadowTree();
  const rmap = RadixSlotRmap.of(slot).nested;
  for (let p = 0; p < pages; p++) {
    s.vm.arch.nested.clearShadowLeaf(tree, s.dataGfn0 + p);
    rmap.detachAll(s.dataGfn0 + p, noop);
  }
}

// ------------------------------------------------------------ the raw 4-level radix walk

/**
 * The baseline: a raw 4-level radix walk (Linux's 4K geometry, 13/9/9/9) over
 * tables spread as radixWalk's are (each address a different PMD/PTE
 * table), reading each entry big-endian as two 32-bit halves, each next
 * address from the entry just read, no checks — the walk `ppc.radix.walk`'s
 * raw baseline makes per dimension (there with 64K pages). `walks` walks per call.
 */
function rawRadixWalk(walks: number): () => number {
  const host = new FlatGuestMemory(new ArrayBuffer(64 * MiB));
  const b = new RadixTreeBuilder(host, MiB, 60 * MiB);
  const tree = b.createTree('4k');
  const his = new Uint32Array(walks);
  const los = new Uint32Array(walks);
  for (let p = 0; p < walks; p++) {
    // Distinct for p < 2048 (p and p + 256k differ in the PMD index unless k ≡ 0 mod 8).
    const ea = (p % 16) * 2 ** 39 + ((p >> 4) % 16) * 2 ** 30 + ((p * 7) % 512) * 2 ** 21 + ((p >> 2) % 512) * 2 ** 12;
    tree.map(ea, (p % 4096) * PAGE, 12, { read: true, write: true });
    his[p] = Math.floor(ea / 2 ** 32);
    los[p] = ea >>> 0;
  }
  const view = host.view;
  const [rootHi, rootLo] = tree.rootEntry();
  const root = (rootHi & 0x0fff_ffff) * 2 ** 32 + ((rootLo & 0xffff_ff00) >>> 0);
  const SHIFTS = [39, 30, 21, 12];
  const NLS = [13, 9, 9, 9];
  const index = (ah: number, al: number, level: number): number => {
    const shift = SHIFTS[level]!;
    const mask = (1 << NLS[level]!) - 1;
    return shift >= 32 ? (ah >>> (shift - 32)) & mask : ((al >>> shift) | (ah << (32 - shift))) & mask;
  };
  const walk = (): number => {
    let s = 0;
    for (let p = 0; p < walks; p++) {
      const ah = his[p]!;
      const al = los[p]!;
      let table = root;
      for (let level = 0; level < 4; level++) {
        const off = table + index(ah, al, level) * 8;
        const hi = view.getUint32(off, false);
        const lo = view.getUint32(off + 4, false);
        table = (hi & 0x01ff_ffff) * 2 ** 32 + ((lo & (level === 3 ? 0xffff_f000 : 0xffff_ff00)) >>> 0);
      }
      s += table + (al & 0xfff);
    }
    return s;
  };
  // Walk p must end at the page mapped for it.
  let expected = 0;
  for (let p = 0; p < walks; p++) expected += (p % 4096) * PAGE;
  if (walk() !== expected) throw new Error('bench set-up: the raw radix walk does not find the mapped pages');
  return walk;
}

// ------------------------------------------------------------ L2 first touch

/**
 * L2 first touch: the mapping exists in L1's partition-scoped tree for the
 * L2 (and, unless `dropL0`, L0's leaf for the L1 page too), nothing is
 * shadowed yet. From the TLB miss through the walk under the shadow LPID
 * (HDSI), kvmhv_nested_page_fault (L0's software walk of L1's tree in L1
 * memory, L0's leaf looked up — or instantiated —, the shadow leaf made and
 * inserted, the nested rmap entry) to the retried access and the TLB fill —
 * in raw 4-level radix walks, timed as x86's first-touch figure is
 * (`faultRoundsVsRaw`).
 */
function l2FirstTouch(ctx: BenchContext, mode: 'real' | 'virtual', dropL0: boolean): BenchFigure {
  const pages = ctx.quick ? 2048 : 8192;
  const s = buildNested(pages, mode);
  touch(s, 0, pages); // shadow tables (and in virtual mode the L2's own table pages) exist from here
  const rawWalks = 2048;
  const raw = rawRadixWalk(rawWalks);
  const stats0 = s.vm.stats();
  const { value, baseline, warmRounds, rounds } = faultRoundsVsRaw(
    ctx,
    pages,
    () => unshadow(s, pages, dropL0),
    () => touch(s, 0, pages),
    raw,
    rawWalks,
  );
  // Every timed touch was one L2 fault L0 resolved with one shadow insert; none went to L1.
  const st = s.vm.stats();
  const touches = (warmRounds + rounds) * pages;
  if (st.ppcRadixShadowInserts - stats0.ppcRadixShadowInserts !== touches || st.ppcRadixL2Reflected !== stats0.ppcRadixL2Reflected) {
    throw new Error(
      `bench: expected ${touches} shadow inserts and no reflection, got ${st.ppcRadixShadowInserts - stats0.ppcRadixShadowInserts} and ${st.ppcRadixL2Reflected - stats0.ppcRadixL2Reflected}`,
    );
  }
  if (dropL0 && st.ppcRadixInstantiations - stats0.ppcRadixInstantiations !== touches) throw new Error('bench: expected an L0 instantiation per touch');
  const what =
    mode === 'real'
      ? "L2 first touch, real mode (walk under the shadow LPID, L0 walks L1's tree, shadow insert, retried access)"
      : 'L2 first touch, relocation on (2-D walk of the L2 tree under the shadow tree, twice)';
  return {
    value,
    baseline,
    ratio: value / baseline,
    unit: 'ns',
    ratioMeaning: `${what}${dropL0 ? ', L0 leaf instantiated too' : ''} / raw 4-level radix walk`,
    ...(mode === 'real' && !dropL0 ? { target: '≤ 6' } : {}),
  };
}

// ------------------------------------------------------------ host bytes per mapped page

/** Backed 4 KiB chunks of a tree's root directory window (its root frames). */
function rootFrames(tree: PartitionScopedTree): number {
  let n = 0;
  for (let a = 0; a < 8 << 13; a += PAGE) if (tree.space.windowBacked(tree.rootDirectoryBase + a)) n++;
  return n;
}

/**
 * Host bytes per mapped page. L1: L0's partition-scoped tree for an L1
 * that touched `pages` consecutive pages (in real mode: one leaf each) —
 * table pages plus the window frames (its root's, the partition table's)
 * — over its leaves; baseline 8 B, the leaf entry itself (KVM keeps no rmap
 * for L1's radix leaves). L2: the shadow tree for an L2 that touched
 * `pages` consecutive pages (real mode) — table pages, its root's frames,
 * and the nested rmap (a slot word per page of the L1 memslot behind them,
 * sized to them, plus list nodes) — over its shadow leaves; baseline 16 B,
 * the shadow leaf entry and the rmap word.
 */
function bytesPerPage(ctx: BenchContext): Record<string, BenchFigure> {
  const pages = ctx.quick ? 1 << 12 : 1 << 14;
  // L1.
  const hv = new Hypervisor({ memoryBytes: pages * PAGE + 64 * MiB });
  const vm = hv.createVm({ backend: ppcRadixBackend });
  vm.memslots.create({ id: 0, guestPhysAddr: 0, size: pages * PAGE });
  const vcpu = vm.createVcpu();
  vcpu.arch.setRelocation(false, false);
  for (let p = 0; p < pages; p++) if (vcpu.translate(p * PAGE, Access.WRITE) < 0) throw new Error('bench: L1 access faulted');
  const l1s = vm.stats();
  if (l1s.ppcRadixLeaves !== pages) throw new Error('bench: expected one L0 leaf per L1 page');
  const l1Bytes = l1s.ppcRadixTableBytes / l1s.ppcRadixLeaves;
  hv.destroyVm(vm);
  // L2.
  const s = buildNested(pages, 'real');
  touch(s, 0, pages);
  const st = s.vm.stats();
  const tree = s.shadowTree();
  if (st.ppcRadixShadowLeaves !== pages) throw new Error('bench: expected one shadow leaf per L2 page');
  // The L1 memslot behind the L2 holds exactly its pages (real mode: no table area).
  const l2Bytes = ((tree.tablePages + rootFrames(tree)) * PAGE + st.ppcRadixNestedRmapBytes) / st.ppcRadixShadowLeaves;
  return {
    l1: {
      value: l1Bytes,
      baseline: 8,
      ratio: l1Bytes / 8,
      unit: 'B/page',
      ratioMeaning: `L0 tree pages + window frames per L1 leaf (${pages} pages) / the 8-byte leaf`,
    },
    l2: {
      value: l2Bytes,
      baseline: 16,
      ratio: l2Bytes / 16,
      unit: 'B/page',
      ratioMeaning: `shadow tree pages + root frames + nested rmap per shadow leaf (${pages} pages) / 16 (leaf + rmap word)`,
    },
  };
}

// ------------------------------------------------------------ host invalidation through the nested rmap

/**
 * Host invalidation (the MMU notifier) of an L1 page whose nested rmap list
 * names `aliases` shadow entries (L1's tree maps that many L2 frames onto
 * it): L0's leaf cleared and flushed, the list detached, each named shadow
 * leaf removed and flushed (kvmhv_remove_nest_rmap_range). Per page; the
 * baseline is the same invalidation of a page named by one entry.
 */
function hostInvalidation(ctx: BenchContext): Record<string, BenchFigure> {
  const pages = ctx.quick ? 64 : 256;
  const sizes = [1, 8, 64];
  const perPage = new Map<number, number>();
  for (const n of sizes) {
    const s = buildNested(pages, 'real', n);
    const hfns = (): number[] => Array.from({ length: pages }, (_, p) => s.l2Slot.frames[s.dataGfn0 + p]!);
    const refill = (): void => {
      touch(s, 0, pages * n);
    };
    const rounds = ctx.quick ? 5 : 21;
    const times: number[] = [];
    for (let r = 0; r < rounds + 5; r++) {
      refill();
      const st = s.vm.stats();
      if (st.ppcRadixShadowLeaves !== pages * n || st.ppcRadixNestedRmapEntries !== pages * n) throw new Error('bench: the aliases are not all shadowed');
      const hs = hfns();
      const t0 = performance.now();
      for (const h of hs) s.vm.memslots.invalidateHostRange(h, h + 1);
      const t1 = performance.now();
      if (s.vm.stats().ppcRadixShadowLeaves !== 0) throw new Error('bench: shadow leaves survived the invalidation');
      if (r >= 5) times.push(((t1 - t0) * 1e6) / pages); // the first five warm the code up
    }
    perPage.set(n, median(times));
  }
  const one = perPage.get(1)!;
  const out: Record<string, BenchFigure> = {};
  for (const n of sizes) {
    const v = perPage.get(n)!;
    out[`entries${n}`] = {
      value: v,
      baseline: one,
      ratio: v / one,
      unit: 'ns/page',
      ratioMeaning: `host invalidation of an L1 page named by ${n} nested rmap entries (${(v / n).toFixed(0)} ns/entry) / by 1`,
    };
  }
  return out;
}

/** `ppc.radix.nested.l2FirstTouch`: the L2 first-touch fault in raw 4-level radix walks (target ≤ 6). */
export const nestedFaultSuite: BenchSuite = {
  name: 'ppc.radix.nested',
  run: (ctx) => ({
    l2FirstTouch: l2FirstTouch(ctx, 'real', false),
    l2FirstTouchWithL0: l2FirstTouch(ctx, 'real', true),
    l2FirstTouchRelocated: l2FirstTouch(ctx, 'virtual', false),
  }),
};

/** `ppc.radix.nestedMemory`: host bytes per mapped page for an L1 and for an L2. */
export const nestedMemorySuite: BenchSuite = {
  name: 'ppc.radix.nestedMemory',
  run: (ctx) => bytesPerPage(ctx),
};

/** `ppc.radix.nestedInvalidate`: host invalidation of an L1 page named by 1, 8, 64 nested rmap entries. */
export const nestedInvalidateSuite: BenchSuite = {
  name: 'ppc.radix.nestedInvalidate',
  run: (ctx) => hostInvalidation(ctx),
};
