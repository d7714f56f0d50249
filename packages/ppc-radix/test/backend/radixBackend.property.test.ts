import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Access, FaultKind, FRAME_ZERO, GuestRights, MemslotFlags, TRANSLATE_FAULT, type Memslot, type Vcpu } from '@hvmmu/core';
import { Dsisr, SRR1_NOEXEC_GUARD, type PpcRadixTypes } from '@hvmmu/ppc-radix';
import { propertyRuns } from '../../../../test-support/propertyRuns.js';
import { radixInvariants as invariants } from './helpers/radixInvariants.js';
import { radixTestVm, type RadixTestVm } from './helpers/radixVm.js';

/**
 * Random life cycles of a radix guest against a plain model: the guest's
 * mappings per PID, the memslots and what was written where. Every access
 * is predicted (guest fault with its DSISR/SRR1, MMIO exit, read-only exit,
 * or the frame the memslot backs the page with and the value last written),
 * and after every step L0's partition-scoped leaves and every vCPU's TLB are
 * checked against the memslots.
 */

const VPN = 0x10_0000;
const VPNS = 6;
/** gfns the guest maps: slot 1's, slot 2's (at either base) and holes. */
const GFNS = [...range(0x140, 4), ...range(0x160, 4), ...range(0x180, 4), 0x9000];
const ACCESSES = [Access.READ, Access.WRITE, Access.FETCH, Access.READ | Access.USER, Access.WRITE | Access.USER, Access.FETCH | Access.USER];
const SLOT2_BASES = [0x160, 0x180];

function range(base: number, n: number): number[] {
  return Array.from({ length: n }, (_, i) => base + i);
}

type Op =
  | { op: 'map'; pid: number; vpn: number; gfn: number; rights: number }
  | { op: 'unmap'; pid: number; vpn: number }
  | { op: 'access'; vcpu: number; vpn: number; access: number }
  | { op: 'real'; vcpu: number; gfn: number; write: boolean }
  | { op: 'activate'; vcpu: number; pid: number }
  | { op: 'invalidate'; slot: number; page: number }
  | { op: 'migrate'; slot: number; page: number }
  | { op: 'age'; slot: number; page: number }
  | { op: 'harvest'; slot: number }
  | { op: 'logging'; slot: number; on: boolean }
  | { op: 'move' }
  | { op: 'recreate' }
  | { op: 'zapAll' };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({ op: fc.constant('map' as const), pid: fc.nat(1), vpn: fc.nat(VPNS - 1), gfn: fc.constantFrom(...GFNS), rights: fc.nat(7) }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('unmap' as const), pid: fc.nat(1), vpn: fc.nat(VPNS - 1) }) },
  { weight: 8, arbitrary: fc.record({ op: fc.constant('access' as const), vcpu: fc.nat(1), vpn: fc.nat(VPNS - 1), access: fc.constantFrom(...ACCESSES) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('real' as const), vcpu: fc.nat(1), gfn: fc.constantFrom(...GFNS), write: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('activate' as const), vcpu: fc.nat(1), pid: fc.nat(1) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('invalidate' as const), slot: fc.integer({ min: 1, max: 2 }), page: fc.nat(3) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('migrate' as const), slot: fc.integer({ min: 1, max: 2 }), page: fc.nat(3) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('age' as const), slot: fc.integer({ min: 1, max: 2 }), page: fc.nat(3) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('harvest' as const), slot: fc.integer({ min: 1, max: 2 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('logging' as const), slot: fc.integer({ min: 1, max: 2 }), on: fc.boolean() }) },
  { weight: 1, arbitrary: fc.constant({ op: 'move' as const }) },
  { weight: 1, arbitrary: fc.constant({ op: 'recreate' as const }) },
  { weight: 1, arbitrary: fc.constant({ op: 'zapAll' as const }) },
);

interface ModelSlot {
  base: number;
  readonly readOnly: boolean;
  logging: boolean;
  values: Map<number, number>;
  dirty: Set<number>;
}

class Model {
  readonly mappings = new Map<string, { gfn: number; rights: number }>();
  readonly slots = new Map<number, ModelSlot>();
  readonly pidOf = [0, 0];

  slotAt(gfn: number): [number, ModelSlot] | undefined {
    for (const [id, s] of this.slots) if (gfn >= s.base && gfn < s.base + 16) return [id, s];
    return undefined;
  }
}

function allows(rights: number, access: number): boolean {
  if ((access & Access.WRITE) !== 0 && (rights & GuestRights.WRITE) === 0) return false;
  if ((access & Access.FETCH) !== 0 && (rights & GuestRights.EXEC) === 0) return false;
  return (access & Access.USER) === 0 || (rights & GuestRights.USER) !== 0;
}

let stamp = 1;

/** Do a completed access's store or load against the model; returns a violation or null. */
function checkCompleted(t: RadixTestVm, slot: Memslot<PpcRadixTypes>, ms: ModelSlot, gfn: number, hpa: number, write: boolean, what: string): string | null {
  const backing = slot.frames[gfn - slot.baseGfn]!;
  const host = t.vm.memslots.host;
  const expected = backing >= 0 ? backing : backing === FRAME_ZERO ? host.zeroFrame : -1;
  if (Math.floor(hpa / 4096) !== expected) return `${what}: hfn ${Math.floor(hpa / 4096)}, slot backs it with ${expected}`;
  if (write) {
    if (backing < 0) return `${what}: a store completed without a private frame`;
    stamp = (stamp * 48271) % 0x7fff_ffff;
    host.write32(hpa, stamp, true);
    ms.values.set(gfn - ms.base, stamp);
    if (ms.logging) ms.dirty.add(gfn - ms.base);
    return null;
  }
  const got = host.read32(hpa, true);
  const want = ms.values.get(gfn - ms.base) ?? 0;
  return got === want ? null : `${what}: read ${got}, last written ${want}`;
}

function step(t: RadixTestVm, model: Model, op: Op): string | null {
  const { vm, guest } = t;
  const vcpus = vm.vcpus;
  switch (op.op) {
    case 'map':
      guest.map(op.pid, VPN + op.vpn, op.gfn, op.rights);
      model.mappings.set(`${op.pid}:${op.vpn}`, { gfn: op.gfn, rights: op.rights });
      return null;
    case 'unmap':
      guest.unmap(op.pid, VPN + op.vpn);
      model.mappings.delete(`${op.pid}:${op.vpn}`);
      return null;
    case 'activate':
      guest.activate(vcpus[op.vcpu]!, op.pid);
      model.pidOf[op.vcpu] = op.pid;
      return null;
    case 'access': {
      const vcpu = vcpus[op.vcpu]!;
      const what = `vCPU ${op.vcpu} PID ${model.pidOf[op.vcpu]} access ${op.access} of vpn +${op.vpn}`;
      const hpa = vcpu.translate((VPN + op.vpn) * 4096 + 0x40, op.access);
      const m = model.mappings.get(`${model.pidOf[op.vcpu]}:${op.vpn}`);
      const write = (op.access & Access.WRITE) !== 0;
      const fetch = (op.access & Access.FETCH) !== 0;
      if (m === undefined || !allows(m.rights, op.access)) {
        const present = m !== undefined;
        const code = fetch ? (present ? SRR1_NOEXEC_GUARD : Dsisr.NOPTE) : (present ? Dsisr.PROTFAULT : Dsisr.NOPTE) | (write ? Dsisr.STORE : 0);
        if (hpa !== TRANSLATE_FAULT || vcpu.fault.kind !== FaultKind.GUEST || vcpu.fault.code >>> 0 !== code >>> 0) {
          return `${what}: expected guest fault 0x${(code >>> 0).toString(16)}, got ${hpa} kind ${vcpu.fault.kind} code 0x${(vcpu.fault.code >>> 0).toString(16)}`;
        }
        return null;
      }
      return checkBacked(t, model, vcpu, m.gfn, hpa, write, what);
    }
    case 'real': {
      const vcpu = vcpus[op.vcpu]!;
      vcpu.arch.setRelocation(false, false);
      const hpa = vcpu.translate(op.gfn * 4096 + 0x40, op.write ? Access.WRITE : Access.READ);
      const result = checkBacked(t, model, vcpu, op.gfn, hpa, op.write, `vCPU ${op.vcpu} real-mode access of gfn 0x${op.gfn.toString(16)}`);
      vcpu.arch.setRelocation(true, true);
      return result;
    }
    case 'invalidate':
    case 'migrate':
    case 'age': {
      if (!vm.memslots.has(op.slot)) return null;
      const hfn = vm.memslots.get(op.slot).frames[op.page]!;
      if (hfn < 0) return null;
      if (op.op === 'invalidate') vm.invalidateHostRange(hfn, hfn + 1);
      else if (op.op === 'migrate') vm.migrateHostFrame(hfn);
      else vm.ageHostRange(hfn, hfn + 1);
      if (op.op === 'age') return null;
      for (const v of vcpus)
        for (let i = 0; i < v.tlb.size; i++) if (v.tlb.tags[i] !== -1 && v.tlb.frames[i] === hfn) return `${op.op}: a TLB still caches hfn ${hfn}`;
      return null;
    }
    case 'harvest': {
      const ms = model.slots.get(op.slot);
      if (ms === undefined || !ms.logging) return null;
      const log = vm.memslots.getDirtyLog(op.slot);
      for (const page of ms.dirty)
        if ((log[page >>> 5]! & (1 << (page & 31))) === 0) return `page ${page} of slot ${op.slot} was written but is not in the dirty log`;
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
      const base = ms.base === SLOT2_BASES[0] ? SLOT2_BASES[1]! : SLOT2_BASES[0]!;
      vm.memslots.move(2, base * 4096);
      ms.base = base;
      return null;
    }
    case 'recreate': {
      if (model.slots.has(2)) {
        vm.memslots.delete(2);
        model.slots.delete(2);
      } else {
        vm.memslots.create({ id: 2, guestPhysAddr: SLOT2_BASES[0]! * 4096, size: 16 * 4096 });
        model.slots.set(2, { base: SLOT2_BASES[0]!, readOnly: false, logging: false, values: new Map(), dirty: new Set() });
      }
      return null;
    }
    case 'zapAll':
      vm.zapAll();
      return null;
  }
}

function checkBacked(t: RadixTestVm, model: Model, vcpu: Vcpu<PpcRadixTypes>, gfn: number, hpa: number, write: boolean, what: string): string | null {
  const found = model.slotAt(gfn);
  if (found === undefined) {
    return hpa === TRANSLATE_FAULT && vcpu.fault.kind === FaultKind.NO_MEMORY && Math.floor(vcpu.fault.gpa / 4096) === gfn
      ? null
      : `${what}: expected NO_MEMORY at gfn 0x${gfn.toString(16)}, got ${hpa} kind ${vcpu.fault.kind}`;
  }
  const [id, ms] = found;
  if (write && ms.readOnly) {
    return hpa === TRANSLATE_FAULT && vcpu.fault.kind === FaultKind.READ_ONLY ? null : `${what}: expected READ_ONLY, got ${hpa} kind ${vcpu.fault.kind}`;
  }
  if (hpa === TRANSLATE_FAULT) return `${what}: expected completion, got kind ${vcpu.fault.kind} code 0x${(vcpu.fault.code >>> 0).toString(16)}`;
  return checkCompleted(t, t.vm.memslots.get(id), ms, gfn, hpa, write, what);
}

describe('the radix backend against a model (fast-check)', () => {
  it('random maps, accesses, PID and mode switches, host events, dirty logs and memslot changes agree with the model', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(0, MemslotFlags.LOG_DIRTY_PAGES, MemslotFlags.READONLY),
        fc.constantFrom('invalid-rmap' as const, 'fast-zap' as const),
        fc.array(opArb, { maxLength: 60 }),
        (slot1Flags, memslotInvalidation, ops) => {
          const t = radixTestVm({ backendOptions: { memslotInvalidation } });
          const { vm, hv } = t;
          // Replace the helper's data slot with the model's two.
          vm.memslots.delete(1);
          vm.memslots.create({ id: 1, guestPhysAddr: 0x140 * 4096, size: 16 * 4096, flags: slot1Flags });
          vm.memslots.create({ id: 2, guestPhysAddr: 0x160 * 4096, size: 16 * 4096 });
          const v1 = vm.createVcpu();
          t.guest.activate(v1, 0);
          const pid1 = t.guest.createSpace();
          expect(pid1).toBe(1);
          const model = new Model();
          model.slots.set(1, {
            base: 0x140,
            readOnly: slot1Flags === MemslotFlags.READONLY,
            logging: slot1Flags === MemslotFlags.LOG_DIRTY_PAGES,
            values: new Map(),
            dirty: new Set(),
          });
          model.slots.set(2, { base: 0x160, readOnly: false, logging: false, values: new Map(), dirty: new Set() });
          for (const [i, op] of ops.entries()) {
            const problem = step(t, model, op) ?? invariants(t);
            if (problem !== null) throw new Error(`step ${i} ${JSON.stringify(op)}: ${problem}`);
          }
          hv.destroyVm(vm);
          expect(hv.memory.framesInUse).toBe(1);
        },
      ),
      {
        numRuns: propertyRuns(150),
        examples: [
          // Dirty logging's second round: a store after a harvest is an R/C fault that must log the page again.
          [
            MemslotFlags.LOG_DIRTY_PAGES,
            'invalid-rmap',
            [
              { op: 'map', pid: 0, vpn: 0, gfn: 0x140, rights: GuestRights.WRITE },
              { op: 'access', vcpu: 0, vpn: 0, access: Access.WRITE },
              { op: 'harvest', slot: 1 },
              { op: 'access', vcpu: 0, vpn: 0, access: Access.WRITE },
              { op: 'harvest', slot: 1 },
            ],
          ],
        ],
      },
    );
  });
});

describe('the radix backend under hostile guest tables (fast-check)', () => {
  it('random words in the process table and trees: every access gets an architected answer, nothing throws, work stays bounded', () => {
    const KINDS = [...ACCESSES, Access.READ | Access.IMPLICIT];
    const entryArb = fc.oneof(
      // Anything at all.
      fc.tuple(fc.nat(0xffff_ffff), fc.nat(0xffff_ffff)),
      // A directory entry to a random table with a random NLS.
      fc.tuple(
        fc.nat(0xff).map((h) => (0x8000_0000 | h) >>> 0),
        fc.nat(0xffff_ffff),
      ),
      // A leaf with random RPN and flags.
      fc.tuple(
        fc.nat(0xff).map((h) => (0xc000_0000 | h) >>> 0),
        fc.nat(0xffff_ffff),
      ),
      // A leaf in guest memory.
      fc.tuple(
        fc.constant(0xc000_0000),
        fc.nat(0x1ff).map((g) => (g * 4096) | 0x18f),
      ),
    );
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(40 * 512 - 1), entryArb), { minLength: 1, maxLength: 24 }),
        fc.array(
          fc.tuple(
            fc.oneof(
              fc.nat(VPNS - 1).map((v) => VPN + v),
              fc.nat(2 ** 52 - 1),
            ),
            fc.constantFrom(...KINDS),
            fc.nat(1),
          ),
          { maxLength: 30 },
        ),
        (writes, accesses) => {
          const t = radixTestVm();
          const { vm, guest } = t;
          const v1 = vm.createVcpu();
          guest.activate(v1, 0);
          for (let i = 0; i < VPNS; i++) guest.map(0, VPN + i, 0x100 + i, GuestRights.WRITE | GuestRights.EXEC);
          // Random entries among the table pages the guest uses (the process table, the root, the trees).
          for (const [index, [hi, lo]] of writes) vm.memslots.write64Halves((index % (guest.tablePages * 512)) * 8, hi, lo, false);
          vm.arch.guestTlbiePid(0, 2);
          for (const [vpn, access, which] of accesses) {
            const vcpu = vm.vcpus[which]!;
            const hpa = vcpu.translatePage(vpn, access);
            if (hpa === TRANSLATE_FAULT) {
              const kind = vcpu.fault.kind;
              if (kind !== FaultKind.GUEST && kind !== FaultKind.NO_MEMORY && kind !== FaultKind.READ_ONLY) {
                throw new Error(`access ${access} of vpn 0x${vpn.toString(16)} ended with fault kind ${kind}`);
              }
            } else {
              // A completed access reaches a frame some memslot backs a page with (or the zero frame).
              const hfn = hpa;
              if (hfn !== vm.memslots.host.zeroFrame && vm.memslots.gfnOfHostFrame(hfn) < 0)
                throw new Error(`access reached hfn ${hfn}, which backs no guest page`);
            }
            const problem = invariants(t);
            if (problem !== null) throw new Error(problem);
          }
          t.hv.destroyVm(vm);
          expect(t.hv.memory.framesInUse).toBe(1);
        },
      ),
      { numRuns: propertyRuns(150) },
    );
  });
});
