import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Access, FaultDestination, FaultKind, FRAME_ZERO, type GuestMemory, MemslotFlags, TRANSLATE_FAULT } from '@hvmmu/core';
import {
  Dsisr,
  HvGuestStateField,
  PtRegsField,
  RADIX_PTE,
  RadixFaultWord,
  RadixTreeBuilder,
  SRR1_NOEXEC_GUARD,
  type NestedGuest,
  type RadixTree,
} from '@hvmmu/ppc-radix';
import { propertyRuns } from '../../../../test-support/propertyRuns.js';
import {
  LEAF_BITS,
  MiB,
  type NestedL1,
  enterNested,
  hvState64,
  l1Read64,
  nestedL1,
  ptRegs64,
  tlbInvalidate,
  walkL1Tree,
  writeL2State,
} from './helpers/nestedL1.js';
import { radixInvariants } from './helpers/radixInvariants.js';
import type { RadixTestVm } from './helpers/radixVm.js';

/**
 * Random lives of an L1 hypervisor and its L2s on the radix backend, against
 * a plain model: L1's partition-scoped trees for its L2s as they are in L1
 * memory (walked by the model's own code), L1's partition table, the
 * memslots, which vCPU runs which L2, and what was written where.
 *
 * Every L2 access (real mode: partition scope only; or relocation on, with
 * the L2's own process tree mapping each page it touches to itself, so the
 * 2-D walk reads table pages through the shadow tree as well) is predicted
 * from L1's tree for the L2 and the memslots alone (KVM kvmhv_nested_page_fault's
 * outcomes): the host frame the memslot backs the L1 page with, or an exit
 * to L1 — HDSI with HDSISR NOPTE / PROTFAULT / ATOMIC_RC (| STORE), or HISI
 * with the same cause in SRR1 (NOEXEC_GUARD for a page L1 does not let it
 * execute) — or an exit to the VMM (NO_MEMORY: no memslot behind the L1
 * page; READ_ONLY: a store to a read-only one). After every step: each
 * shadow leaf maps the host frame L0's leaf for the L1 page maps, with no
 * right L1 or L0 lacks, and is named by that page's nested rmap list; no
 * list holds an entry twice; reference counts are the table's plus one per
 * vCPU running the guest; shadow LPIDs are one per guest not yet released.
 */

const GiB = 1024 * MiB;
const LPIDS = [1, 7, 255];
const SLOT1_GFN = 0x800;
const SLOT2_GFNS = [0xc00, 0xe00];
const SLOT_PAGES = 512;
/** L1 real targets of base-page leaves (64 KiB aligned): slot 1, slot 2 at either base, holes. */
const BASE_TARGETS = [8 * MiB, 8 * MiB + 0x1_0000, 12 * MiB, 12 * MiB + 0x1_0000, 14 * MiB, 14 * MiB + 0x1_0000, 5 * MiB, 10 * MiB];
/** ... of 2M leaves. */
const MID_TARGETS = [8 * MiB, 12 * MiB, 14 * MiB, 10 * MiB, 4 * MiB];
/** ... of the 1G leaf at L2 1 GiB: L1 [0, 1 GiB) (whose slot 0 the L2 never touches) or nothing. */
const GIG_TARGETS = [0, GiB];
/** L2 real pages the L2s touch: the base-page leaves', the 2M leaves', and the 1G leaf's (slot 1, slot 2, holes). */
const L2_PAGES = [0x0, 0x1, 0x3, 0x10, 0x21, 0x3f, 0x200, 0x3ff, 0x400, 0x5a5, 0x4_0800, 0x4_09ff, 0x4_0c01, 0x4_0e02, 0x4_1000, 0x4_07ff];
const OFFSETS = [0x0, 0x48, 0xff8];
/** Where the L2s' process table and tree are: L2 real 3 GiB, L1 real 2 MiB (slot 0, after L1's own table arena [1, 2) MiB). */
const L2_TABLES = 3 * GiB;
const L1_TABLES = 2 * MiB;
/** L1 real pages L1 itself touches (real mode): slots 1 and 2 and holes, never slot 0 (its tables). */
const L1_PAGES = [0x800, 0x801, 0x810, 0x9ff, 0xc00, 0xc01, 0xe00, 0xe02, 0x1000, 0x500];
const KINDS = [Access.READ, Access.WRITE, Access.FETCH, Access.READ | Access.USER, Access.WRITE | Access.USER, Access.FETCH | Access.USER];
const HDEC = 0x980;
const HDSI = 0xe00;
const HISI = 0xe20;
const SYSCALL = 0xc00;

/** Where a map/unmap/protect acts: a tree (2 per LPID), a leaf size (0 base, 1 2M, 2 1G), a position. */
const where = { tree: fc.nat(5), size: fc.constantFrom(0, 0, 0, 1, 1, 2), pos: fc.nat(3) };

type Op =
  | { op: 'map'; tree: number; size: number; pos: number; target: number; rights: number; rc: number; flush: number; vcpu: number }
  | { op: 'unmap'; tree: number; size: number; pos: number; flush: number; vcpu: number }
  | { op: 'protect'; tree: number; size: number; pos: number; set: number; clear: number; flush: number; vcpu: number }
  | { op: 'grant'; tree: number; size: number; pos: number; set: number }
  | { op: 'setEntry'; lpid: number; which: number; vcpu: number }
  | { op: 'clearEntry'; lpid: number; vcpu: number }
  | { op: 'enter'; lpid: number; vcpu: number; reloc: boolean }
  | { op: 'access'; vcpu: number; l1: boolean; lpid: number; reloc: boolean; page: number; offset: number; kind: number }
  | { op: 'exit'; vcpu: number; hcall: boolean }
  | { op: 'remove'; lpid: number }
  | { op: 'host'; what: 'invalidate' | 'migrate' | 'age'; slot: number; k: number }
  | { op: 'harvest'; slot: number }
  | { op: 'logging'; slot: number; on: boolean }
  | { op: 'move' }
  | { op: 'recreate' }
  | { op: 'zapAll' };

const bits = fc.nat(LEAF_BITS).map((b) => b & LEAF_BITS);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      op: fc.constant('map' as const),
      ...where,
      target: fc.nat(7),
      rights: fc.nat(7),
      rc: fc.nat(3),
      flush: fc.nat(4),
      vcpu: fc.nat(1),
    }),
  },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('unmap' as const), ...where, flush: fc.nat(4), vcpu: fc.nat(1) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('protect' as const), ...where, set: bits, clear: bits, flush: fc.nat(4), vcpu: fc.nat(1) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('grant' as const), ...where, set: bits }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('setEntry' as const), lpid: fc.nat(2), which: fc.nat(1), vcpu: fc.nat(1) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('clearEntry' as const), lpid: fc.nat(2), vcpu: fc.nat(1) }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('enter' as const), lpid: fc.nat(2), vcpu: fc.nat(1), reloc: fc.boolean() }) },
  {
    weight: 12,
    arbitrary: fc.record({
      op: fc.constant('access' as const),
      vcpu: fc.nat(1),
      l1: fc.oneof({ weight: 1, arbitrary: fc.constant(true) }, { weight: 4, arbitrary: fc.constant(false) }),
      lpid: fc.nat(2),
      reloc: fc.boolean(),
      page: fc.nat(L2_PAGES.length - 1),
      offset: fc.nat(OFFSETS.length - 1),
      kind: fc.constantFrom(...KINDS),
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('exit' as const), vcpu: fc.nat(1), hcall: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('remove' as const), lpid: fc.nat(2) }) },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('host' as const),
      what: fc.constantFrom('invalidate' as const, 'migrate' as const, 'age' as const),
      // Slot 0 too: L1's tables and the L2s' process tables (the 2-D walk's table pages are shadowed like data).
      slot: fc.integer({ min: 0, max: 2 }),
      k: fc.nat(63),
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('harvest' as const), slot: fc.integer({ min: 1, max: 2 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('logging' as const), slot: fc.integer({ min: 1, max: 2 }), on: fc.boolean() }) },
  { weight: 1, arbitrary: fc.constant({ op: 'move' as const }) },
  { weight: 1, arbitrary: fc.constant({ op: 'recreate' as const }) },
  { weight: 1, arbitrary: fc.constant({ op: 'zapAll' as const }) },
);

interface ModelSlot {
  base: number;
  readonly readOnly: boolean;
  logging: boolean;
  /** Pages written since the last harvest (the log must hold at least these). */
  readonly dirty: Set<number>;
}

class Model {
  readonly slots = new Map<number, ModelSlot>();
  /** The last 32-bit value stored at an L1 real address. */
  values = new Map<number, number>();
  /** The L2 LPID each vCPU runs, or null while it runs L1. */
  readonly running: (number | null)[];
  /** Whether the L2 each vCPU runs has relocation on. */
  readonly relocated: boolean[];
  /** Per LPID index: the tree (0 or 1) its partition-table entry names, or null when cleared. */
  readonly installed: (number | null)[];

  constructor(
    readonly vcpus: number,
    readonly lpids: number,
    readonly tableBase: number,
  ) {
    this.running = Array.from({ length: vcpus }, () => null);
    this.relocated = Array.from({ length: vcpus }, () => false);
    this.installed = Array.from({ length: lpids }, () => 0);
  }

  slotAt(gfn: number): [number, ModelSlot] | undefined {
    for (const [id, s] of this.slots) if (gfn >= s.base && gfn < s.base + SLOT_PAGES) return [id, s];
    return undefined;
  }
}

interface Run {
  readonly t: NestedL1;
  readonly model: Model;
  /** trees[2 * lpidIndex + which]. */
  readonly trees: RadixTree[];
  /** PATE dw1 of every L2: its process table (an L2 real address), for runs with relocation on. */
  readonly dw1: bigint;
}

let stamp = 1;

function hex(n: number | bigint): string {
  return `0x${n.toString(16)}`;
}

/** L1's partition-table entry dw0 for LPID `lpid`, read from L1 memory. */
function pateDw0(r: Run, lpid: number): bigint {
  return l1Read64(r.t, BigInt(r.model.tableBase + lpid * 16));
}

/** Bring vCPU v back to L1 (the L2 it runs exits with HDEC), as L1 must be running to make an hcall. */
function toL1(r: Run, v: number): string | null {
  if (r.model.running[v] === null) return null;
  return exitL2(r, v, false);
}

function exitL2(r: Run, v: number, viaHcall: boolean): string | null {
  const vcpu = r.t.vcpus[v]!;
  const lpid = r.model.running[v]!;
  let trap: number;
  if (viaHcall) {
    // The L2's own hcall (sc 1) is L1's to handle: H_ENTER_NESTED completes with 0xc00.
    vcpu.hcallRegs.clear();
    trap = vcpu.hypercall(0x04);
    if (trap !== SYSCALL) return `vCPU ${v}: an L2 hcall returned ${trap}, not 0xc00`;
  } else {
    trap = vcpu.arch.exitNested(HDEC).trap;
  }
  r.model.running[v] = null;
  const want = viaHcall ? SYSCALL : HDEC;
  const e = vcpu.arch.lastNestedExit;
  if (vcpu.arch.inL2 || e === null || e.l1Lpid !== lpid || e.trap !== want || e.status !== want || vcpu.hcallRegs.ret(0) !== want) {
    return `vCPU ${v}: exit ${hex(want)} from L2 ${lpid} ended as ${JSON.stringify(e)}, r3 ${vcpu.hcallRegs.ret(0)}, inL2 ${vcpu.arch.inL2}`;
  }
  return null;
}

/** The leaf address and size a map/unmap/protect names in `tree`. */
function position(tree: RadixTree, size: number, pos: number): [number, number] {
  const [gig, mid, base] = tree.pageShifts as [number, number, number];
  if (size === 0) return [pos * 2 ** base, base];
  if (size === 1) return [2 * MiB * (1 + (pos & 1)), mid];
  return [GiB, gig];
}

/**
 * After L1 changed tree `ti` over [addr, addr + 2^shift): if the tree is
 * its LPID's current one, flush what L0 may cache, as Linux does
 * (kvmppc_radix_tlbie_page with the page size; or the whole LPID; or every
 * LPID): IS 0 with the page's AP, IS 2 RIC 0 or 2, IS 3 RIC 0 or 2.
 */
function flushAfterChange(r: Run, ti: number, addr: number, shift: number, kind: number, v: number): string | null {
  const li = ti >> 1;
  if (r.model.installed[li] !== (ti & 1)) return null;
  const problem = toL1(r, v);
  if (problem !== null) return problem;
  const lpid = LPIDS[li]!;
  let status: number;
  if (kind === 0 && shift <= 21) {
    const ap = shift === 12 ? 0 : shift === 16 ? 5 : 1;
    status = tlbInvalidate(r.t, v, 0, 0, lpid, addr - (addr % 2 ** shift), ap);
  } else if (kind <= 2) {
    status = tlbInvalidate(r.t, v, kind === 2 ? 2 : 0, 2, lpid);
  } else {
    status = tlbInvalidate(r.t, v, kind === 4 ? 2 : 0, 3, 0);
  }
  return status === 0 ? null : `H_TLB_INVALIDATE (kind ${kind}) returned ${status}`;
}

/** The size (log2) of the leaf of `tree` covering addr, or 0. */
function leafShiftAt(r: Run, tree: RadixTree, addr: number): number {
  const [hi, lo] = tree.rootEntry();
  const leaf = walkL1Tree(r.t, (BigInt((hi | 0x8000_0000) >>> 0) << 32n) | BigInt(lo), BigInt(addr));
  return leaf === null ? 0 : leaf.shift;
}

function step(r: Run, op: Op): string | null {
  const { t, model } = r;
  const { vm } = t;
  const nTrees = 2 * model.lpids;
  switch (op.op) {
    case 'map': {
      const ti = op.tree % nTrees;
      const tree = r.trees[ti]!;
      const [addr, shift] = position(tree, op.size, op.pos);
      const targets = op.size === 0 ? BASE_TARGETS : op.size === 1 ? MID_TARGETS : GIG_TARGETS;
      const ra = targets[op.target % targets.length]!;
      const old = leafShiftAt(r, tree, addr);
      tree.map(addr, ra, shift, {
        read: (op.rights & 1) !== 0,
        write: (op.rights & 2) !== 0,
        execute: (op.rights & 4) !== 0,
        referenced: (op.rc & 1) !== 0,
        changed: (op.rc & 2) !== 0,
      });
      // Mapping over a larger leaf replaces all of it; over a directory, everything below.
      const affected = Math.max(shift, old);
      return flushAfterChange(r, ti, addr, affected, op.flush, op.vcpu % model.vcpus);
    }
    case 'unmap':
    case 'protect': {
      const ti = op.tree % nTrees;
      const tree = r.trees[ti]!;
      const [addr] = position(tree, op.size, op.pos);
      const old = leafShiftAt(r, tree, addr);
      if (old === 0) return null;
      const changed = op.op === 'unmap' ? tree.unmap(addr) : tree.updateLeaf(addr, op.set, op.clear & ~op.set);
      if (!changed) return `the builder found no leaf at ${hex(addr)} where the model did`;
      return flushAfterChange(r, ti, addr, old, op.flush, op.vcpu % model.vcpus);
    }
    case 'grant': {
      // More rights, R or C without a flush: L0 must notice (a PROTFAULT or R/C fault on the stale shadow entry is retried).
      const tree = r.trees[op.tree % nTrees]!;
      const [addr] = position(tree, op.size, op.pos);
      tree.updateLeaf(addr, op.set, 0);
      return null;
    }
    case 'setEntry':
    case 'clearEntry': {
      const li = op.lpid % model.lpids;
      const v = op.vcpu % model.vcpus;
      const problem = toL1(r, v);
      if (problem !== null) return problem;
      t.caller = v;
      const status = op.op === 'setEntry' ? t.l1.setEntry(LPIDS[li]!, r.trees[2 * li + op.which]!.pateDw0(), r.dw1) : t.l1.clearEntry(LPIDS[li]!);
      model.installed[li] = op.op === 'setEntry' ? op.which : null;
      return status === 0 ? null : `${op.op} of LPID ${LPIDS[li]} returned ${status}`;
    }
    case 'enter': {
      const v = op.vcpu % model.vcpus;
      const problem = toL1(r, v);
      if (problem !== null) return problem;
      const lpid = LPIDS[op.lpid % model.lpids]!;
      // Real mode, or relocation on (MSR IR | DR) in process 1 of the L2's own process table.
      writeL2State(t, v, lpid, op.reloc ? 0x30n : 0n, op.reloc ? 1n : 0n);
      const status = enterNested(t, v);
      if (status !== 0 || !t.vcpus[v]!.arch.inL2) return `H_ENTER_NESTED of LPID ${lpid} on vCPU ${v} returned ${status}`;
      model.running[v] = lpid;
      model.relocated[v] = op.reloc;
      return null;
    }
    case 'access': {
      // An L1 access while the vCPU runs L1; otherwise an L2 access (L1 enters an L2 first if it runs none).
      const v = op.vcpu % model.vcpus;
      if (model.running[v] === null) {
        if (op.l1) return l1Access(r, v, op.page, op.offset, op.kind);
        const problem = step(r, { op: 'enter', lpid: op.lpid, vcpu: v, reloc: op.reloc });
        if (problem !== null) return problem;
      }
      return l2Access(r, v, op.page, op.offset, op.kind);
    }
    case 'exit': {
      const v = op.vcpu % model.vcpus;
      return model.running[v] === null ? null : exitL2(r, v, op.hcall);
    }
    case 'remove': {
      // L0 unlinks the guest (as a RIC 2 flush of a cleared entry does); a vCPU running it keeps it until its exit.
      const g = vm.arch.nested.guests.find(LPIDS[op.lpid % model.lpids]!);
      if (g !== undefined && !vm.arch.nested.guests.remove(g)) return 'remove of a table guest returned false';
      if (g !== undefined && vm.arch.nested.guests.remove(g)) return 'a second remove of the same guest returned true';
      return null;
    }
    case 'host': {
      if (!vm.memslots.has(op.slot)) return null;
      const frames = vm.memslots.get(op.slot).frames;
      const backed: number[] = [];
      for (let i = 0; i < frames.length; i++) if (frames[i]! >= 0) backed.push(frames[i]!);
      if (backed.length === 0) return null;
      const hfn = backed[op.k % backed.length]!;
      if (op.what === 'invalidate') vm.invalidateHostRange(hfn, hfn + 1);
      else if (op.what === 'migrate') vm.migrateHostFrame(hfn);
      else vm.ageHostRange(hfn, hfn + 1);
      return null;
    }
    case 'harvest': {
      const ms = model.slots.get(op.slot);
      if (ms === undefined || !ms.logging) return null;
      const log = vm.memslots.getDirtyLog(op.slot);
      for (const page of ms.dirty) if ((log[page >>> 5]! & (1 << (page & 31))) === 0) return `page ${page} of slot ${op.slot} was written but is not logged`;
      ms.dirty.clear();
      return null;
    }
    case 'logging': {
      const ms = model.slots.get(op.slot);
      if (ms === undefined) return null;
      vm.memslots.setFlags(op.slot, (ms.readOnly ? MemslotFlags.READONLY : 0) | (op.on ? MemslotFlags.LOG_DIRTY_PAGES : 0));
      if (op.on !== ms.logging) ms.dirty.clear();
      ms.logging = op.on;
      return null;
    }
    case 'move': {
      const ms = model.slots.get(2);
      if (ms === undefined) return null;
      const base = ms.base === SLOT2_GFNS[0] ? SLOT2_GFNS[1]! : SLOT2_GFNS[0]!;
      vm.memslots.move(2, base * 4096);
      const moved = new Map<number, number>();
      for (const [a, val] of model.values) {
        const gfn = Math.floor(a / 4096);
        moved.set(gfn >= ms.base && gfn < ms.base + SLOT_PAGES ? a + (base - ms.base) * 4096 : a, val);
      }
      model.values = moved;
      ms.base = base;
      return null;
    }
    case 'recreate': {
      const ms = model.slots.get(2);
      if (ms !== undefined) {
        vm.memslots.delete(2);
        model.slots.delete(2);
        for (const a of [...model.values.keys()]) if (Math.floor(a / 4096) >= ms.base && Math.floor(a / 4096) < ms.base + SLOT_PAGES) model.values.delete(a);
      } else {
        vm.memslots.create({ id: 2, guestPhysAddr: SLOT2_GFNS[0]! * 4096, size: SLOT_PAGES * 4096 });
        model.slots.set(2, { base: SLOT2_GFNS[0]!, readOnly: false, logging: false, dirty: new Set() });
      }
      return null;
    }
    case 'zapAll':
      vm.zapAll();
      return null;
  }
}

/** A completed access at L1 real address `l1Addr`: the frame the memslot backs it with, and the value last stored there. */
function checkCompleted(r: Run, hpa: number, l1Addr: number, store: boolean, what: string): string | null {
  const { vm } = r.t;
  const gfn = Math.floor(l1Addr / 4096);
  const found = r.model.slotAt(gfn)!;
  const [id, ms] = found;
  const slot = vm.memslots.get(id);
  const backing = slot.frames[gfn - slot.baseGfn]!;
  const expected = backing >= 0 ? backing : backing === FRAME_ZERO ? vm.memslots.host.zeroFrame : -1;
  if (Math.floor(hpa / 4096) !== expected) return `${what}: reached hfn ${Math.floor(hpa / 4096)}, the memslot backs L1 page ${hex(gfn)} with ${expected}`;
  if (hpa % 4096 !== l1Addr % 4096) return `${what}: offset ${hex(hpa % 4096)}, expected ${hex(l1Addr % 4096)}`;
  const host = vm.memslots.host;
  if (store) {
    if (backing < 0) return `${what}: a store completed on the zero frame`;
    stamp = (stamp * 48271) % 0x7fff_ffff;
    host.write32(hpa, stamp, true);
    r.model.values.set(l1Addr, stamp);
    if (ms.logging) ms.dirty.add(gfn - ms.base);
    return null;
  }
  const got = host.read32(hpa, true);
  const want = r.model.values.get(l1Addr) ?? 0;
  return got === want ? null : `${what}: read ${hex(got)}, last stored ${hex(want)}`;
}

/** An exit to the VMM (the vCPU stays where it is): NO_MEMORY or READ_ONLY at the L1 real address. */
function checkVmmExit(r: Run, v: number, hpa: number, kind: number, l1Addr: number, what: string): string | null {
  const f = r.t.vcpus[v]!.fault;
  if (hpa !== TRANSLATE_FAULT || f.destination !== FaultDestination.VMM || f.kind !== kind || f.gpa !== l1Addr) {
    return `${what}: expected VMM exit kind ${kind} at ${hex(l1Addr)}, got ${hpa} destination ${f.destination} kind ${f.kind} gpa ${hex(f.gpa)}`;
  }
  return null;
}

function l1Access(r: Run, v: number, pageIndex: number, offsetIndex: number, kind: number): string | null {
  const l1Addr = L1_PAGES[pageIndex % L1_PAGES.length]! * 4096 + OFFSETS[offsetIndex]!;
  const store = (kind & Access.WRITE) !== 0;
  const what = `vCPU ${v} (L1, real mode) access ${kind} of ${hex(l1Addr)}`;
  const hpa = r.t.vcpus[v]!.translate(l1Addr, kind);
  const found = r.model.slotAt(Math.floor(l1Addr / 4096));
  if (found === undefined) return checkVmmExit(r, v, hpa, FaultKind.NO_MEMORY, l1Addr, what);
  if (store && found[1].readOnly) return checkVmmExit(r, v, hpa, FaultKind.READ_ONLY, l1Addr, what);
  if (hpa === TRANSLATE_FAULT) return `${what}: expected completion, got fault kind ${r.t.vcpus[v]!.fault.kind}`;
  return checkCompleted(r, hpa, l1Addr, store, what);
}

/**
 * An L2 access, predicted from L1's partition-table entry and tree for the
 * L2 (in L1 memory) and the memslots, in the order kvmhv_nested_page_fault
 * meets them: no translation (NOPTE); a right L1's leaf lacks (PROTFAULT,
 * or SRR1 NOEXEC_GUARD for a fetch); no memslot behind the L1 page (the
 * VMM's MMIO exit); a store to a read-only memslot (READ_ONLY exit); R, or
 * C for a store, clear in L1's leaf (the R/C fault is L1's: ATOMIC_RC);
 * else the access completes on the L1 page's host frame.
 */
function l2Access(r: Run, v: number, pageIndex: number, offsetIndex: number, kind: number): string | null {
  const { t, model } = r;
  const vcpu = t.vcpus[v]!;
  const lpid = model.running[v]!;
  const addr = L2_PAGES[pageIndex]! * 4096 + OFFSETS[offsetIndex]!;
  const store = (kind & Access.WRITE) !== 0;
  const fetch = (kind & Access.FETCH) !== 0;
  const what = `vCPU ${v} L2 ${lpid} access ${kind} of L2 real ${hex(addr)}`;
  const hpa = vcpu.translate(addr, kind);
  const dw0 = pateDw0(r, lpid);
  // No entry for the L2 in L1's table: the fault goes to L1 as the processor raised it — with relocation on, on the
  // first thing the 2-D walk reads, process 1's process-table entry at L2 real 16 (PRTB 0 in the shadow entry's dw1):
  // a load, so an HDSI whatever the access.
  if (dw0 === 0n && model.relocated[v]) return checkL1Exit(r, v, lpid, hpa, addr, false, Dsisr.NOPTE | Dsisr.PRTABLE_FAULT, what, 16);
  const leaf = walkL1Tree(t, dw0, BigInt(addr));
  const storeBit = store ? Dsisr.STORE : 0;
  if (leaf === null) return checkL1Exit(r, v, lpid, hpa, addr, fetch, fetch ? Dsisr.NOPTE : Dsisr.NOPTE | storeBit, what);
  const lo = Number(leaf.pte & 0xfffn);
  const allowed = store ? (lo & RADIX_PTE.READ_WRITE) !== 0 : fetch ? (lo & RADIX_PTE.EXECUTE) !== 0 : (lo & (RADIX_PTE.READ | RADIX_PTE.READ_WRITE)) !== 0;
  if (!allowed) return checkL1Exit(r, v, lpid, hpa, addr, fetch, fetch ? SRR1_NOEXEC_GUARD : Dsisr.PROTFAULT | storeBit, what);
  const l1Addr = Number(leaf.ra);
  const found = model.slotAt(Math.floor(l1Addr / 4096));
  if (found === undefined) return checkVmmExit(r, v, hpa, FaultKind.NO_MEMORY, l1Addr, what);
  if (store && found[1].readOnly) return checkVmmExit(r, v, hpa, FaultKind.READ_ONLY, l1Addr, what);
  if ((lo & RADIX_PTE.R) === 0 || (store && (lo & RADIX_PTE.C) === 0)) return checkL1Exit(r, v, lpid, hpa, addr, fetch, Dsisr.ATOMIC_RC | storeBit, what);
  if (hpa === TRANSLATE_FAULT) return `${what}: expected completion at L1 ${hex(l1Addr)}, got fault kind ${vcpu.fault.kind} code ${hex(vcpu.fault.code)}`;
  if (!vcpu.arch.inL2) return `${what}: completed but the vCPU left the L2`;
  return checkCompleted(r, hpa, l1Addr, store, what);
}

/** The L2's run ended with an HDSI (HISI for a fetch) for L1, and the exit wrote HDAR/HDSISR/ASDR (or SRR1's cause) back. */
function checkL1Exit(
  r: Run,
  v: number,
  lpid: number,
  hpa: number,
  addr: number,
  fetch: boolean,
  cause: number,
  what: string,
  asdrAt = addr - (addr % 4096),
): string | null {
  const vcpu = r.t.vcpus[v]!;
  const f = vcpu.fault;
  const trap = fetch ? HISI : HDSI;
  const page = asdrAt;
  r.model.running[v] = null;
  if (hpa !== TRANSLATE_FAULT || f.destination !== FaultDestination.HYPERVISOR || f.vector !== trap || f.code !== cause >>> 0) {
    return `${what}: expected ${hex(trap)} with cause ${hex(cause)}, got ${hpa} destination ${f.destination} vector ${hex(f.vector)} code ${hex(f.code)}`;
  }
  if (f.word(RadixFaultWord.ASDR) !== page) return `${what}: ASDR ${hex(f.word(RadixFaultWord.ASDR))}, expected ${hex(page)}`;
  const e = vcpu.arch.lastNestedExit;
  if (vcpu.arch.inL2 || e === null || e.l1Lpid !== lpid || e.trap !== trap || e.status !== trap || vcpu.hcallRegs.ret(0) !== trap) {
    return `${what}: H_ENTER_NESTED completed as ${JSON.stringify(e)}, r3 ${vcpu.hcallRegs.ret(0)}, inL2 ${vcpu.arch.inL2}`;
  }
  const asdr = hvState64(r.t, v, HvGuestStateField.asdr);
  const hdar = hvState64(r.t, v, HvGuestStateField.hdar);
  const hdsisr = hvState64(r.t, v, HvGuestStateField.hdsisr);
  if (asdr !== BigInt(page)) return `${what}: hv_guest_state ASDR ${hex(asdr)}`;
  if (fetch) {
    // HISI: the cause is in HSRR1, i.e. the L2's MSR image; HDAR and HDSISR are not written.
    const msr = ptRegs64(r.t, v, PtRegsField.msr);
    if (Number(msr & 0x783f_0000n) !== cause || hdar !== 0n || hdsisr !== 0n)
      return `${what}: HISI wrote MSR ${hex(msr)}, HDAR ${hex(hdar)}, HDSISR ${hex(hdsisr)}`;
  } else if (hdar !== BigInt(addr) || hdsisr !== BigInt(cause >>> 0)) {
    return `${what}: hv_guest_state HDAR ${hex(hdar)} HDSISR ${hex(hdsisr)}, expected ${hex(addr)} ${hex(cause)}`;
  }
  return null;
}

/**
 * The structure after a step: shadow leaves against L0's leaves, L1's trees
 * and the nested rmap; rmap lists without duplicates; references and
 * shadow LPIDs.
 */
function invariants(r: Run): string | null {
  const { t, model } = r;
  const { vm } = t;
  const nested = vm.arch.nested;
  const l0 = vm.arch.tree;
  if (vm.hypercalls.handlerErrors !== 0) return `an hcall handler threw: ${String(vm.hypercalls.lastHandlerError)}`;
  const live = nested.guests.allLive();
  const running = new Map<NestedGuest, number>();
  for (const [v, vcpu] of t.vcpus.entries()) {
    const run = vcpu.arch.nested;
    if ((run === null) !== (model.running[v] === null)) return `vCPU ${v}: inL2 ${run !== null}, the model says ${model.running[v]}`;
    if (run === null) continue;
    if (run.guest.l1Lpid !== model.running[v]) return `vCPU ${v} runs L2 ${run.guest.l1Lpid}, the model says ${model.running[v]}`;
    if (!live.includes(run.guest)) return `vCPU ${v} runs a released guest`;
    running.set(run.guest, (running.get(run.guest) ?? 0) + 1);
  }
  // (d) References: the table's plus one per vCPU running the guest (so 1 for an idle table guest); one shadow LPID each.
  const shadowLpids = new Set<number>();
  for (const g of live) {
    const inTable = nested.guests.find(g.l1Lpid) === g;
    const want = (inTable ? 1 : 0) + (running.get(g) ?? 0);
    if (g.released || g.refcnt !== want) return `guest ${g.l1Lpid} (shadow ${g.shadowLpid}): refcnt ${g.refcnt}, expected ${want} (in table ${inTable})`;
    shadowLpids.add(g.shadowLpid);
  }
  if (shadowLpids.size !== live.length || nested.lpids.inUse !== 1 + live.length)
    return `${live.length} live guests, ${shadowLpids.size} shadow LPIDs, ${nested.lpids.inUse} in use`;
  let tableGuests = 0;
  for (const lpid of LPIDS) if (nested.guests.find(lpid) !== undefined) tableGuests++;
  if (nested.guests.size !== tableGuests) return `the table holds ${nested.guests.size} guests, ${tableGuests} under the LPIDs in use`;
  // (c) No (LPID, L2 frame) twice in a list.
  for (const slot of vm.memslots.slots()) {
    const rm = slot.arch.nested;
    if (rm.bytes === 0) continue;
    for (let i = 0; i < slot.npages; i++) {
      const seen = new Set<string>();
      for (const [lpid, gfn] of rm.entries(i)) {
        const key = `${lpid}:${gfn}`;
        if (seen.has(key)) return `slot ${slot.id} page ${i}: rmap entry (${lpid}, ${hex(gfn)}) twice`;
        seen.add(key);
      }
    }
  }
  // (a) Every shadow leaf: L0's current leaf for the L1 page L1's tree maps it to, minus what either lacks; (c) named by that page's list.
  for (const g of live) {
    const tree = nested.shadowTree(g.shadowLpid);
    if (tree === undefined) return `guest ${g.l1Lpid} has no shadow tree`;
    const dw0 = (BigInt(g.l1GrToHrHi) << 32n) | BigInt(g.l1GrToHrLo);
    let problem: string | null = null;
    tree.forEachLeaf((l2Gfn, off) => {
      if (problem !== null) return;
      const where = `guest ${g.l1Lpid} shadow leaf of L2 frame ${hex(l2Gfn)}`;
      const leaf = walkL1Tree(t, dw0, BigInt(l2Gfn) * 4096n);
      if (leaf === null) {
        problem = `${where}: L1's tree (cached entry ${hex(dw0)}) maps nothing there`;
        return;
      }
      const gfn = Number(leaf.ra >> 12n);
      const l0Off = l0.pteOffset(gfn);
      if (!l0.isLeaf(l0Off)) {
        problem = `${where}: L1 page ${hex(gfn)} has no L0 leaf`;
        return;
      }
      if (tree.hfnAt(off) !== l0.hfnAt(l0Off)) {
        problem = `${where}: maps hfn ${tree.hfnAt(off)}, L0's leaf for L1 page ${hex(gfn)} maps ${l0.hfnAt(l0Off)}`;
        return;
      }
      const s = tree.loAt(off) & LEAF_BITS;
      const l1Lo = Number(leaf.pte & 0xfffn);
      const l0Lo = l0.loAt(l0Off);
      // RW implies read (the ISA's EAA): L1's RW lets the shadow keep L0's read bit.
      const l1Allows = l1Lo | ((l1Lo & RADIX_PTE.READ_WRITE) !== 0 ? RADIX_PTE.READ : 0);
      if ((s & ~(l1Allows & l0Lo)) !== 0) {
        problem = `${where}: bits ${hex(s)} exceed L1's ${hex(l1Lo)} and L0's ${hex(l0Lo)}`;
        return;
      }
      const slot = vm.memslots.findByGfn(gfn);
      if (slot === undefined || !slot.arch.nested.entries(gfn - slot.baseGfn).some(([l, n]) => l === g.l1Lpid && n === l2Gfn)) {
        problem = `${where}: not named by the nested rmap of L1 page ${hex(gfn)}`;
      }
    });
    if (problem !== null) return problem;
  }
  // L0's own leaves against the memslots and every TLB entry against the leaves.
  return radixInvariants({ vm } as RadixTestVm);
}

describe('nested HV against a model (fast-check)', () => {
  it('random L1 tree changes, partition-table entries, L2 runs and accesses, host events, dirty logs and memslot changes', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 2 }),
        fc.integer({ min: 1, max: 3 }),
        fc.constantFrom('invalid-rmap' as const, 'fast-zap' as const),
        fc.constantFrom(0, MemslotFlags.LOG_DIRTY_PAGES, MemslotFlags.READONLY),
        fc.array(fc.constantFrom('4k' as const, '64k' as const), { minLength: 6, maxLength: 6 }),
        fc.array(opArb, { minLength: 5, maxLength: 60, size: 'max' }),
        (nVcpus, nLpids, memslotInvalidation, slot1Flags, geometries, ops) => {
          const t = nestedL1({ vcpus: nVcpus, backendOptions: { memslotInvalidation }, arenaBytes: MiB });
          const { vm, hv } = t;
          void hv.memory.zeroFrame;
          vm.memslots.create({ id: 1, guestPhysAddr: SLOT1_GFN * 4096, size: SLOT_PAGES * 4096, flags: slot1Flags });
          vm.memslots.create({ id: 2, guestPhysAddr: SLOT2_GFNS[0]! * 4096, size: SLOT_PAGES * 4096 });
          const init = t.l1.init(8);
          if (!init.ok) throw new Error(`L1 init failed: ${JSON.stringify(init)}`);
          const model = new Model(nVcpus, nLpids, init.tableBase);
          model.slots.set(1, {
            base: SLOT1_GFN,
            readOnly: slot1Flags === MemslotFlags.READONLY,
            logging: slot1Flags === MemslotFlags.LOG_DIRTY_PAGES,
            dirty: new Set(),
          });
          model.slots.set(2, { base: SLOT2_GFNS[0]!, readOnly: false, logging: false, dirty: new Set() });
          const trees = geometries.slice(0, 2 * nLpids).map((g) => t.builder.createTree(g));
          // The L2s' own process table and process 1's tree, in L2 real [3 GiB, + 2 MiB) = L1 [2, 4) MiB (slot 0, past L1's
          // table arena), which every L1 tree maps with one 2M leaf no step touches: process 1 maps each page the L2s touch to
          // itself, read-write-execute, so with relocation on an access has the outcome of the same address in real mode.
          const l2Tables: GuestMemory = {
            view: vm.memslots.view,
            resolve: (gpa, write) => (gpa >= L2_TABLES && gpa < L2_TABLES + 2 * MiB ? vm.memslots.resolve(L1_TABLES + gpa - L2_TABLES, write) : -1),
          };
          const l2b = new RadixTreeBuilder(l2Tables, L2_TABLES, 2 * MiB);
          const prtb = l2b.createProcessTable(0);
          const proc = l2b.createTree('4k');
          for (const p of L2_PAGES) proc.map(p * 4096, p * 4096, 12, { read: true, write: true, execute: true });
          prtb.setProcess(1, proc);
          const [pHi, pLo] = prtb.pointer();
          const dw1 = (BigInt((pHi | 0x8000_0000) >>> 0) << 32n) | BigInt(pLo);
          const r: Run = { t, model, trees, dw1 };
          // Each LPID starts with tree 0 mapping its four base pages read-write-execute to slots 1 and 2, L2 2M read-write to slot 1, L2 1G read-execute to L1 0.
          for (const tree of trees) tree.map(L2_TABLES, L1_TABLES, 21, { read: true, write: true, execute: true });
          for (let li = 0; li < nLpids; li++) {
            const tree = trees[2 * li]!;
            const base = tree.pageShifts[2]!;
            for (let p = 0; p < 4; p++) tree.map(p * 2 ** base, BASE_TARGETS[p]!, base, { read: true, write: true, execute: true });
            tree.map(2 * MiB, 8 * MiB, 21, { read: true, write: true });
            tree.map(GiB, 0, 30, { read: true, execute: true });
            expect(t.l1.setEntry(LPIDS[li]!, tree.pateDw0(), dw1)).toBe(0);
          }
          for (const [i, op] of ops.entries()) {
            const problem = step(r, op) ?? invariants(r);
            if (problem !== null) throw new Error(`step ${i} ${JSON.stringify(op)}: ${problem}`);
          }
          vm.destroy();
          expect(vm.arch.nested.lpids.inUse).toBe(1);
          expect(vm.arch.nested.guests.allLive()).toEqual([]);
          expect(vm.arch.nested.guests.size).toBe(0);
          expect(hv.memory.framesInUse).toBe(1);
        },
      ),
      { numRuns: propertyRuns(250) },
    );
  });
});
