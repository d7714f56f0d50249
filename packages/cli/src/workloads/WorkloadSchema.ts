// The JSON workload format (docs/workloads.md): a list of guest operations that any backend
// with a guest side can replay. Validated with zod; every error names the operation index and
// field (see WorkloadParser.ts for how issues become messages).
import { GuestRights, MEMSLOT_MAX_ID } from '@hvmmu/core';
import { z } from 'zod';

export const WORKLOAD_FORMAT = 'hvmmu-workload';
export const WORKLOAD_VERSION = 1;
export const PAGE_SIZE = 4096;
/**
 * Guest-physical pages from here up are the guest side's table area (the runner's memslot):
 * a workload's memslots end below it. 2^27 pages = 512 GiB of guest-physical space.
 */
export const TABLE_AREA_GFN = 2 ** 27;
/** The memslot id the runner gives the table area; workloads use 0 .. MEMSLOT_MAX_ID - 1. */
export const TABLE_AREA_SLOT = MEMSLOT_MAX_ID;
export const MAX_VCPUS = 64;

const NON_NEGATIVE = 'expected a non-negative integer';
const POSITIVE = 'expected a positive integer';

const HEX = /^0x[0-9a-f_]+$/i;

/**
 * An integer field: a JSON number, or a "0x…" string for addresses that read better in hex
 * (underscores allowed). A union rather than a preprocessing step: zod runs a number through
 * it almost as fast as through z.number(), where a preprocess or transform on every field made
 * validating 80,000 operations take seconds.
 */
function integer(min: number, message: string) {
  const number = z
    .number({ invalid_type_error: message, required_error: `missing (${message})` })
    .int(message)
    .min(min, message)
    .max(Number.MAX_SAFE_INTEGER, `${message} below 2^53`);
  const hex = z
    .string()
    .regex(HEX, message)
    .transform((text) => Number.parseInt(text.slice(2).replace(/_/g, ''), 16))
    .pipe(number);
  return number.or(hex);
}

const nonNegative = () => integer(0, NON_NEGATIVE);
const positive = () => integer(1, POSITIVE);
const count = () => positive().default(1);
const space = () => nonNegative().default(0);
/** A small integer in [0, max]: vCPU numbers and slot ids are never written in hex. */
function smallInteger(max: number, message: string) {
  return z
    .number({ invalid_type_error: message, required_error: `missing (${message})` })
    .int(message)
    .min(0, message)
    .max(max, message);
}
const vcpu = () => smallInteger(MAX_VCPUS - 1, `expected a vCPU number 0..${MAX_VCPUS - 1}`);
const slotId = () => smallInteger(TABLE_AREA_SLOT - 1, `expected a memslot id 0..${TABLE_AREA_SLOT - 1}`);

/** Rights: "r" then any of w (write), x (execute), u (user) in that order: "r", "rw", "rwxu", "ru" … */
const RIGHTS_TEXT = /^r(w?)(x?)(u?)$/;
/** Checked here, turned into GuestRights bits by `normaliseOperation` (a transform per field is slow in zod 3). */
const rights = () =>
  z
    .string({ invalid_type_error: 'expected rights as a string like "rwu"', required_error: 'missing (rights such as "rwu")' })
    .regex(RIGHTS_TEXT, 'expected rights as "r" followed by any of w, x, u in that order (e.g. "r", "rw", "rwu", "rxu")');

/** GuestRights bits of a rights string (already checked against RIGHTS_TEXT). */
export function rightsBits(text: string): number {
  let bits = GuestRights.READ;
  if (text.includes('w')) bits |= GuestRights.WRITE;
  if (text.includes('x')) bits |= GuestRights.EXEC;
  if (text.includes('u')) bits |= GuestRights.USER;
  return bits;
}

/** The rights string of GuestRights bits (the inverse of rightsBits). */
export function rightsText(bits: number): string {
  return `r${bits & GuestRights.WRITE ? 'w' : ''}${bits & GuestRights.EXEC ? 'x' : ''}${bits & GuestRights.USER ? 'u' : ''}`;
}

/** Where pages start: a virtual page number, or a byte address (page-aligned where whole pages are meant). */
const pageAddress = {
  vpn: nonNegative().optional(),
  va: nonNegative().optional(),
};

const mapOp = z.object({ op: z.literal('map'), space: space(), ...pageAddress, gfn: nonNegative(), count: count(), rights: rights().default('rwu') }).strict();
const unmapOp = z.object({ op: z.literal('unmap'), space: space(), ...pageAddress, count: count() }).strict();
const protectOp = z.object({ op: z.literal('protect'), space: space(), ...pageAddress, count: count(), rights: rights() }).strict();
const accessOp = z
  .object({
    op: z.literal('access'),
    vcpu: vcpu().default(0),
    kind: z.enum(['read', 'write', 'fetch'], { errorMap: () => ({ message: 'expected one of read, write, fetch' }) }),
    mode: z.enum(['user', 'supervisor'], { errorMap: () => ({ message: 'expected user or supervisor' }) }).default('user'),
    ...pageAddress,
    count: count(),
    /** Distance between consecutive accesses: pages with `vpn`, bytes with `va`. */
    stride: nonNegative().default(1),
    /** Passes over the whole sequence. */
    repeat: count(),
  })
  .strict();
const createSpaceOp = z.object({ op: z.literal('createSpace'), count: count() }).strict();
const switchSpaceOp = z.object({ op: z.literal('switchSpace'), vcpu: vcpu().default(0), space: nonNegative() }).strict();
const createMemslotOp = z
  .object({
    op: z.literal('createMemslot'),
    slot: slotId(),
    gfn: nonNegative(),
    pages: positive(),
    readOnly: z.boolean({ invalid_type_error: 'expected true or false' }).default(false),
    dirtyLog: z.boolean({ invalid_type_error: 'expected true or false' }).default(false),
  })
  .strict();
const deleteMemslotOp = z.object({ op: z.literal('deleteMemslot'), slot: slotId() }).strict();
const moveMemslotOp = z.object({ op: z.literal('moveMemslot'), slot: slotId(), gfn: nonNegative() }).strict();
const setDirtyLoggingOp = z
  .object({
    op: z.literal('setDirtyLogging'),
    slot: slotId(),
    enabled: z.boolean({ invalid_type_error: 'expected true or false', required_error: 'missing (true or false)' }),
  })
  .strict();
const harvestDirtyLogOp = z.object({ op: z.literal('harvestDirtyLog'), slot: slotId() }).strict();
const invalidateOp = z.object({ op: z.literal('invalidate'), gfn: nonNegative(), count: count() }).strict();
const enterNestedOp = z.object({ op: z.literal('enterNested'), vcpu: vcpu().default(0), guest: nonNegative() }).strict();
const exitNestedOp = z.object({ op: z.literal('exitNested'), vcpu: vcpu().default(0) }).strict();

export const OPERATION_NAMES = [
  'map',
  'unmap',
  'protect',
  'access',
  'createSpace',
  'switchSpace',
  'createMemslot',
  'deleteMemslot',
  'moveMemslot',
  'setDirtyLogging',
  'harvestDirtyLog',
  'invalidate',
  'enterNested',
  'exitNested',
] as const;

/** One operation, field by field (the checks across fields are `checkOperation`'s). */
export const operationSchema = z.discriminatedUnion('op', [
  mapOp,
  unmapOp,
  protectOp,
  accessOp,
  createSpaceOp,
  switchSpaceOp,
  createMemslotOp,
  deleteMemslotOp,
  moveMemslotOp,
  setDirtyLoggingOp,
  harvestDirtyLogOp,
  invalidateOp,
  enterNestedOp,
  exitNestedOp,
]);

/** One operation as zod checked it (field by field), before the checks across fields and normalising. */
export type RawOperation = z.output<typeof operationSchema>;

/** A problem of one operation found after zod: the field (relative to the operation) and what is wrong. */
export interface OperationProblem {
  readonly field: string;
  readonly message: string;
}

/** Checks across fields: one of vpn/va, alignment, ranges that must stay below the table area and 2^53. */
export function checkOperation(op: RawOperation): OperationProblem | undefined {
  if (op.op === 'map' || op.op === 'unmap' || op.op === 'protect' || op.op === 'access') {
    if ((op.vpn === undefined) === (op.va === undefined)) return { field: 'vpn', message: 'give exactly one of vpn (a page number) or va (a byte address)' };
    if (op.op !== 'access' && op.va !== undefined && op.va % PAGE_SIZE !== 0) {
      return { field: 'va', message: `expected a page-aligned address (a multiple of ${PAGE_SIZE})` };
    }
  }
  if (op.op === 'access' && !Number.isSafeInteger(op.count * op.repeat)) return { field: 'repeat', message: 'count × repeat must stay below 2^53' };
  if (op.op === 'map' && op.gfn + op.count > TABLE_AREA_GFN) {
    return { field: 'gfn', message: `the pages must end at or below gfn 0x${TABLE_AREA_GFN.toString(16)} (the guest side's table area)` };
  }
  if ((op.op === 'createMemslot' && op.gfn + op.pages > TABLE_AREA_GFN) || (op.op === 'moveMemslot' && op.gfn >= TABLE_AREA_GFN)) {
    return { field: 'gfn', message: `memslots must end at or below gfn 0x${TABLE_AREA_GFN.toString(16)} (the guest side's table area)` };
  }
  return undefined;
}

/** An access operation as the runner replays it: byte addresses, stride in bytes, Access bits resolved later. */
export interface AccessOperation {
  readonly op: 'access';
  readonly vcpu: number;
  readonly kind: 'read' | 'write' | 'fetch';
  readonly mode: 'user' | 'supervisor';
  readonly va: number;
  readonly strideBytes: number;
  readonly count: number;
  readonly repeat: number;
}

/** Page operations as the runner replays them: a first vpn and a page count. */
export interface MapOperation {
  readonly op: 'map';
  readonly space: number;
  readonly vpn: number;
  readonly gfn: number;
  readonly count: number;
  /** GuestRights bits. */
  readonly rights: number;
}
export interface UnmapOperation {
  readonly op: 'unmap';
  readonly space: number;
  readonly vpn: number;
  readonly count: number;
}
export interface ProtectOperation {
  readonly op: 'protect';
  readonly space: number;
  readonly vpn: number;
  readonly count: number;
  readonly rights: number;
}

type Normalised<K extends RawOperation['op']> = Extract<RawOperation, { op: K }>;

/** One operation after validation: addresses normalised to vpn (pages) or va plus a byte stride (accesses). */
export type WorkloadOperation =
  | MapOperation
  | UnmapOperation
  | ProtectOperation
  | AccessOperation
  | Normalised<
      | 'createSpace'
      | 'switchSpace'
      | 'createMemslot'
      | 'deleteMemslot'
      | 'moveMemslot'
      | 'setDirtyLogging'
      | 'harvestDirtyLog'
      | 'invalidate'
      | 'enterNested'
      | 'exitNested'
    >;

/** The operation as the runner replays it (after `checkOperation` found nothing). */
export function normaliseOperation(op: RawOperation): WorkloadOperation {
  switch (op.op) {
    case 'map':
      return { op: 'map', space: op.space, vpn: op.vpn ?? op.va! / PAGE_SIZE, gfn: op.gfn, count: op.count, rights: rightsBits(op.rights) };
    case 'unmap':
      return { op: 'unmap', space: op.space, vpn: op.vpn ?? op.va! / PAGE_SIZE, count: op.count };
    case 'protect':
      return { op: 'protect', space: op.space, vpn: op.vpn ?? op.va! / PAGE_SIZE, count: op.count, rights: rightsBits(op.rights) };
    case 'access': {
      const byPage = op.vpn !== undefined;
      return {
        op: 'access',
        vcpu: op.vcpu,
        kind: op.kind,
        mode: op.mode,
        va: byPage ? op.vpn! * PAGE_SIZE : op.va!,
        strideBytes: byPage ? op.stride * PAGE_SIZE : op.stride,
        count: op.count,
        repeat: op.repeat,
      };
    }
    default:
      return op;
  }
}

/** What a workload says it should produce: `hvmmu run` exits 1 when a count differs. */
const expectSchema = z
  .object({
    accesses: nonNegative().optional(),
    tlbHits: nonNegative().optional(),
    tlbMisses: nonNegative().optional(),
    guestFaults: nonNegative().optional(),
    hypervisorFaults: nonNegative().optional(),
    vmmExits: nonNegative().optional(),
  })
  .strict();
export type WorkloadExpectation = z.output<typeof expectSchema>;

export const workloadSchema = z
  .object({
    format: z.literal(WORKLOAD_FORMAT, { errorMap: () => ({ message: `expected "${WORKLOAD_FORMAT}"` }) }).default(WORKLOAD_FORMAT),
    version: z.literal(WORKLOAD_VERSION, { errorMap: () => ({ message: `expected ${WORKLOAD_VERSION} (the only version so far)` }) }),
    name: z.string({ invalid_type_error: 'expected a string' }).optional(),
    description: z.string({ invalid_type_error: 'expected a string' }).optional(),
    vcpus: integer(1, `expected a vCPU count 1..${MAX_VCPUS}`)
      .pipe(z.number().max(MAX_VCPUS, `expected a vCPU count 1..${MAX_VCPUS}`))
      .default(1),
    // Each operation is checked on its own (WorkloadParser), so one bad operation hides no other problem.
    operations: z.array(z.unknown(), { invalid_type_error: 'expected an array of operations', required_error: 'missing (an array of operations)' }),
    expect: expectSchema.optional(),
  })
  .strict();

/** A workload as written in JSON (what generators produce and files hold). */
export type WorkloadInput = Omit<z.input<typeof workloadSchema>, 'operations'> & { operations: z.input<typeof operationSchema>[] };
/** A validated workload, operations normalised (see WorkloadParser.parseWorkload). */
export type Workload = Omit<z.output<typeof workloadSchema>, 'operations'> & { readonly operations: readonly WorkloadOperation[] };
/** One operation as written in JSON. */
export type WorkloadOperationInput = WorkloadInput['operations'][number];
