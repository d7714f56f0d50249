import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  HostMemory,
  HvmmuError,
  MemslotTable,
  RmapOpsRegistry,
  type HvmmuErrorCode,
  type Memslot,
  type MemslotChange,
  type MemslotListener,
} from '@hvmmu/core';
import { RecordingRmapOps } from './fixtures/RecordingRmapOps.js';
import { propertyRuns } from '../../../test-support/propertyRuns.js';

/*
 * Model test of the memslot table: random sequences of create / delete /
 * move / setFlags (valid and invalid) run against the real table and against
 * a plain array of {id, base, npages, flags} that encodes KVM's rules
 * directly. After every step the two must agree on: success vs error (and
 * the error code), the slot set, lookups of sampled gfns (with the last-hit
 * cache warmed on a random gfn first), memory contents following the slots,
 * frame accounting, the listener calls, and "generation moved iff the table
 * changed".
 */

const PAGE = 4096;
const PHYS_BITS = 24;
const MAX_GFN = 2 ** (PHYS_BITS - 12); // 4096 guest frames
const LOG = 1;
const RO = 2;

interface ModelSlot {
  id: number;
  base: number;
  npages: number;
  flags: number;
  stamp: number;
}

type Op =
  | { kind: 'create'; id: number; gpa: number; size: number; flags: number }
  | { kind: 'delete'; id: number }
  | { kind: 'move'; id: number; gpa: number }
  | { kind: 'setFlags'; id: number; flags: number }
  | { kind: 'lookup'; gfn: number };

// Mostly valid values in a small area (so slots collide often), some hostile ones.
const idArb = fc.oneof({ weight: 8, arbitrary: fc.integer({ min: 0, max: 5 }) }, { weight: 1, arbitrary: fc.constantFrom(-1, 32768, 1.5, Number.NaN) });
const gpaArb = fc.oneof(
  { weight: 8, arbitrary: fc.integer({ min: 0, max: 64 }).map((g) => g * PAGE) },
  { weight: 1, arbitrary: fc.constantFrom(-PAGE, PAGE + 1, 0x800, (MAX_GFN - 4) * PAGE, MAX_GFN * PAGE, Number.NaN) },
);
const sizeArb = fc.oneof(
  { weight: 8, arbitrary: fc.integer({ min: 1, max: 12 }).map((n) => n * PAGE) },
  { weight: 1, arbitrary: fc.constantFrom(0, 100, -PAGE, PAGE + 8) },
);
const flagsArb = fc.oneof({ weight: 6, arbitrary: fc.constantFrom(0, LOG, RO, LOG | RO) }, { weight: 1, arbitrary: fc.constantFrom(4, -1, 0.5) });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('create' as const), id: idArb, gpa: gpaArb, size: sizeArb, flags: flagsArb }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('delete' as const), id: idArb }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('move' as const), id: idArb, gpa: gpaArb }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('setFlags' as const), id: idArb, flags: flagsArb }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('lookup' as const), gfn: fc.integer({ min: 0, max: 80 }) }) },
);

// ------------------------------------------------------------ the model

function validId(id: number): boolean {
  return Number.isInteger(id) && id >= 0 && id <= 32767;
}

function validFlags(flags: number): boolean {
  return Number.isInteger(flags) && flags >= 0 && (flags & ~(LOG | RO)) === 0;
}

/** Errors KVM's rules give a guest range (empty if it is acceptable). */
function rangeErrors(gpa: number, size: number): HvmmuErrorCode[] {
  if (size === 0) return ['MEMSLOT_ZERO_SIZE'];
  if (!(gpa >= 0) || !(size > 0)) return ['MEMSLOT_OUT_OF_RANGE'];
  if (gpa % PAGE !== 0 || size % PAGE !== 0) return ['MEMSLOT_UNALIGNED'];
  if (gpa / PAGE + size / PAGE > MAX_GFN) return ['MEMSLOT_OUT_OF_RANGE'];
  return [];
}

function overlaps(model: readonly ModelSlot[], base: number, npages: number, except: number): boolean {
  return model.some((s) => s.id !== except && base < s.base + s.npages && s.base < base + npages);
}

interface Expectation {
  /** Error codes the request may legitimately fail with; empty = must succeed. */
  readonly errors: HvmmuErrorCode[];
  /** Listener calls a success makes (empty for a no-op). */
  readonly calls: string[];
  readonly apply: () => void;
}

function expectOp(model: ModelSlot[], op: Exclude<Op, { kind: 'lookup' }>, nextStamp: number): Expectation {
  const none = { calls: [], apply: () => {} };
  const slot = model.find((s) => s.id === op.id);
  switch (op.kind) {
    case 'create': {
      const errors: HvmmuErrorCode[] = [];
      if (!validId(op.id)) errors.push('MEMSLOT_BAD_ID');
      else if (slot !== undefined) errors.push('MEMSLOT_EXISTS');
      if (!validFlags(op.flags)) errors.push('MEMSLOT_BAD_FLAGS');
      const range = rangeErrors(op.gpa, op.size);
      errors.push(...range);
      if (range.length === 0 && overlaps(model, op.gpa / PAGE, op.size / PAGE, -1)) errors.push('MEMSLOT_OVERLAP');
      if (errors.length > 0) return { errors, ...none };
      return {
        errors,
        calls: ['prepare:create', 'commit:create'],
        apply: () => model.push({ id: op.id, base: op.gpa / PAGE, npages: op.size / PAGE, flags: op.flags, stamp: nextStamp }),
      };
    }
    case 'delete':
      if (slot === undefined) return { errors: ['MEMSLOT_UNKNOWN'], ...none };
      return { errors: [], calls: ['flush:delete', 'commit:delete'], apply: () => model.splice(model.indexOf(slot), 1) };
    case 'move': {
      if (slot === undefined) return { errors: ['MEMSLOT_UNKNOWN'], ...none };
      const errors = rangeErrors(op.gpa, slot.npages * PAGE);
      if (errors.length === 0 && overlaps(model, op.gpa / PAGE, slot.npages, slot.id)) errors.push('MEMSLOT_OVERLAP');
      if (errors.length > 0) return { errors, ...none };
      if (op.gpa / PAGE === slot.base) return { errors, ...none }; // no change: a no-op
      return { errors, calls: ['flush:move', 'prepare:move', 'commit:move'], apply: () => (slot.base = op.gpa / PAGE) };
    }
    case 'setFlags': {
      if (slot === undefined) return { errors: ['MEMSLOT_UNKNOWN'], ...none };
      if (!validFlags(op.flags) || ((op.flags ^ slot.flags) & RO) !== 0) return { errors: ['MEMSLOT_BAD_FLAGS'], ...none };
      if (op.flags === slot.flags) return { errors: [], ...none };
      return { errors: [], calls: ['commit:flags'], apply: () => (slot.flags = op.flags) };
    }
  }
}

function modelLookup(model: readonly ModelSlot[], gfn: number): number | undefined {
  return model.find((s) => gfn >= s.base && gfn < s.base + s.npages)?.id;
}

// ------------------------------------------------------------ the system

class SequenceListener implements MemslotListener {
  calls: string[] = [];
  prepareMemslot(_slot: Memslot, change: MemslotChange): object {
    this.calls.push(`prepare:${change}`);
    return {};
  }
  flushMemslot(_slot: Memslot, change: MemslotChange): void {
    this.calls.push(`flush:${change}`);
  }
  commitMemslot(_slot: Memslot, change: MemslotChange): void {
    this.calls.push(`commit:${change}`);
  }
  invalidateGfnRange(): number {
    this.calls.push('invalidate');
    return 0;
  }
  changeGfnPte(): void {
    this.calls.push('changePte');
  }
  dirtyLogHarvested(): void {
    this.calls.push('harvest');
  }
}

function run(ops: readonly Op[]): void {
  const host = new HostMemory({ bytes: 64 * PAGE });
  const table = new MemslotTable(host, new RmapOpsRegistry([new RecordingRmapOps('normal'), new RecordingRmapOps('invalid')]), {
    name: 'model',
    guestPhysBits: PHYS_BITS,
    tlbEntries: 16,
    backendOptions: {},
  });
  const listener = new SequenceListener();
  table.addListener(listener);
  const model: ModelSlot[] = [];
  let lastLookup = 0;
  let stamp = 0x1000;

  for (const op of ops) {
    if (op.kind === 'lookup') {
      expect(table.findByGfn(op.gfn)?.id).toBe(modelLookup(model, op.gfn));
      lastLookup = op.gfn;
      continue;
    }
    const expected = expectOp(model, op, stamp);
    const generation = table.generation;
    listener.calls = [];
    let error: unknown;
    try {
      switch (op.kind) {
        case 'create':
          table.create({ id: op.id, guestPhysAddr: op.gpa, size: op.size, flags: op.flags });
          break;
        case 'delete':
          table.delete(op.id);
          break;
        case 'move':
          table.move(op.id, op.gpa);
          break;
        case 'setFlags':
          table.setFlags(op.id, op.flags);
          break;
      }
    } catch (e) {
      error = e;
    }
    const what = JSON.stringify(op);
    if (expected.errors.length > 0) {
      expect(error, `${what} should fail`).toBeInstanceOf(HvmmuError);
      expect(expected.errors, what).toContain((error as HvmmuError).code);
      expect(table.generation, `${what}: generation`).toBe(generation);
      expect(listener.calls, what).toEqual([]);
    } else {
      expect(error, `${what} should succeed`).toBeUndefined();
      expected.apply();
      if (expected.calls.length > 0) {
        expect(table.generation, `${what}: generation must move`).toBeGreaterThan(generation);
      } else {
        expect(table.generation, `${what}: no-op must not move the generation`).toBe(generation);
      }
      expect(listener.calls, what).toEqual(expected.calls);
      if (op.kind === 'create') {
        // Give the new slot's first page a stamp, to check that contents follow moves.
        table.write32(op.gpa, stamp, true);
        stamp++;
      }
    }

    // The tables agree on the slot set...
    const sorted = [...model].sort((a, b) => a.base - b.base);
    expect(table.slots().map((s) => ({ id: s.id, base: s.baseGfn, npages: s.npages, flags: s.flags }))).toEqual(
      sorted.map((s) => ({ id: s.id, base: s.base, npages: s.npages, flags: s.flags })),
    );
    expect(table.count).toBe(model.length);
    // ...on lookups, first where the last-hit cache points, then everywhere...
    for (const gfn of [lastLookup, ...Array.from({ length: 81 }, (_, i) => i), MAX_GFN - 1, MAX_GFN]) {
      expect(table.findByGfn(gfn)?.id, `lookup of gfn ${gfn} after ${what}`).toBe(modelLookup(model, gfn));
    }
    // ...on contents and memory: each live slot holds exactly its stamped page.
    for (const s of model) {
      expect(table.read32(s.base * PAGE, true)).toBe(s.stamp);
      expect(table.get(s.id).rmapOps.name).toBe('normal');
    }
    expect(table.framesInUse).toBe(model.length);
    expect(host.framesInUse).toBe(model.length);
  }
}

describe('MemslotTable against a reference model', () => {
  it('agrees on random create/delete/move/setFlags sequences, valid and invalid', () => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 60 }), (ops) => {
        run(ops);
      }),
      { numRuns: propertyRuns(300) },
    );
  });

  it('agrees on a hand-written sequence covering every change type', () => {
    run([
      { kind: 'create', id: 0, gpa: 0, size: 4 * PAGE, flags: 0 },
      { kind: 'create', id: 1, gpa: 4 * PAGE, size: 4 * PAGE, flags: RO },
      { kind: 'lookup', gfn: 5 },
      { kind: 'move', id: 1, gpa: 20 * PAGE },
      { kind: 'create', id: 2, gpa: 3 * PAGE, size: 2 * PAGE, flags: 0 }, // overlaps slot 0
      { kind: 'create', id: 2, gpa: 4 * PAGE, size: 2 * PAGE, flags: LOG },
      { kind: 'setFlags', id: 1, flags: 0 }, // READONLY is fixed
      { kind: 'setFlags', id: 1, flags: RO | LOG },
      { kind: 'setFlags', id: 1, flags: RO | LOG }, // no-op
      { kind: 'move', id: 2, gpa: 4 * PAGE }, // no-op
      { kind: 'lookup', gfn: 21 },
      { kind: 'delete', id: 1 },
      { kind: 'delete', id: 1 },
      { kind: 'move', id: 0, gpa: (MAX_GFN - 4) * PAGE },
      { kind: 'move', id: 0, gpa: (MAX_GFN - 3) * PAGE }, // would cross the top
    ]);
  });
});
