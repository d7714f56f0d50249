import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { GuestRights } from '@hvmmu/core';
import { WorkloadInputError } from '../src/workloads/WorkloadInputError.js';
import { parseWorkload, readWorkloadFile } from '../src/workloads/WorkloadParser.js';
import { rightsBits, rightsText, type WorkloadInput } from '../src/workloads/WorkloadSchema.js';

/** The problems parseWorkload reports for `value` (none: it is valid). */
function problems(value: unknown): readonly string[] {
  try {
    parseWorkload(value, 'w.json');
    return [];
  } catch (error) {
    if (error instanceof WorkloadInputError) return error.problems;
    throw error;
  }
}

function withOps(...operations: unknown[]): unknown {
  return { version: 1, operations };
}

describe('the workload format (zod): every error names the operation index and the field', () => {
  it('a valid workload is normalised: defaults filled, va turned into vpn, strides into bytes, rights into GuestRights bits', () => {
    const input: WorkloadInput = {
      version: 1,
      name: 'tiny',
      operations: [
        { op: 'createMemslot', slot: 0, gfn: 0, pages: 16 },
        { op: 'map', va: '0x40_0000', gfn: 0, count: 4 },
        { op: 'protect', vpn: 0x400, rights: 'rxu' },
        { op: 'access', kind: 'write', vpn: 0x400, count: 4, stride: 1, repeat: 3 },
        { op: 'access', kind: 'fetch', mode: 'supervisor', va: 0x40_0010, count: 8, stride: 64 },
      ],
    };
    const w = parseWorkload(input, 'tiny.json');
    expect(w.vcpus).toBe(1);
    expect(w.format).toBe('hvmmu-workload');
    expect(w.operations[1]).toEqual({ op: 'map', space: 0, vpn: 0x400, gfn: 0, count: 4, rights: GuestRights.READ | GuestRights.WRITE | GuestRights.USER });
    expect(w.operations[2]).toEqual({ op: 'protect', space: 0, vpn: 0x400, count: 1, rights: GuestRights.EXEC | GuestRights.USER });
    expect(w.operations[3]).toEqual({ op: 'access', vcpu: 0, kind: 'write', mode: 'user', va: 0x40_0000, strideBytes: 4096, count: 4, repeat: 3 });
    expect(w.operations[4]).toEqual({ op: 'access', vcpu: 0, kind: 'fetch', mode: 'supervisor', va: 0x40_0010, strideBytes: 64, count: 8, repeat: 1 });
    expect(w.operations[0]).toEqual({ op: 'createMemslot', slot: 0, gfn: 0, pages: 16, readOnly: false, dirtyLog: false });
  });

  it('names the index and field of each bad value', () => {
    const ops = [
      { op: 'createMemslot', slot: 0, gfn: 0, pages: 16 },
      { op: 'map', vpn: 1, gfn: -1 },
      { op: 'map', vpn: 1, gfn: 1.5 },
      { op: 'map', vpn: 1, gfn: 'twelve' },
      { op: 'access', kind: 'jump', vpn: 1 },
      { op: 'access', kind: 'read', mode: 'kernel', vpn: 1, count: 0 },
      { op: 'map', vpn: 1, gfn: 2, rights: 'wr' },
      { op: 'frobnicate' },
      { op: 'unmap', vpn: 1, cnt: 4 },
      { op: 'map', vpn: 1 },
      { op: 'switchSpace', space: 1, vcpu: 64 },
      { op: 'setDirtyLogging', slot: 0, enabled: 'yes' },
      { op: 'createMemslot', slot: 32767, gfn: 0, pages: 1 },
      'map',
    ];
    expect(problems(withOps(...ops))).toEqual([
      'operations[1].gfn: expected a non-negative integer',
      'operations[2].gfn: expected a non-negative integer',
      'operations[3].gfn: expected a non-negative integer',
      'operations[4].kind: expected one of read, write, fetch',
      'operations[5].mode: expected user or supervisor',
      'operations[5].count: expected a positive integer',
      'operations[6].rights: expected rights as "r" followed by any of w, x, u in that order (e.g. "r", "rw", "rwu", "rxu")',
      'operations[7].op: expected one of map, unmap, protect, access, createSpace, switchSpace, createMemslot, deleteMemslot, moveMemslot, setDirtyLogging, harvestDirtyLog, invalidate, enterNested, exitNested',
      'operations[8].cnt: unknown field',
      'operations[9].gfn: missing (expected a non-negative integer)',
      'operations[10].vcpu: expected a vCPU number 0..63',
      'operations[11].enabled: expected true or false',
      'operations[12].slot: expected a memslot id 0..32766',
      'operations[13]: expected object, got string',
    ]);
  });

  it('checks across fields: exactly one of vpn and va, page-aligned va for pages, ranges below the table area and 2^53', () => {
    expect(
      problems(
        withOps(
          { op: 'map', gfn: 0 },
          { op: 'map', vpn: 1, va: 4096, gfn: 0 },
          { op: 'unmap', va: 4097 },
          { op: 'map', vpn: 1, gfn: 2 ** 27 - 1, count: 2 },
          { op: 'createMemslot', slot: 1, gfn: 2 ** 27, pages: 1 },
          { op: 'access', kind: 'read', vpn: 0, count: 2 ** 30, repeat: 2 ** 30 },
          { op: 'access', kind: 'read', va: 4097, count: 2 },
          { op: 'map', vpn: 2 ** 53, gfn: 0 },
        ),
      ),
    ).toEqual([
      'operations[0].vpn: give exactly one of vpn (a page number) or va (a byte address)',
      'operations[1].vpn: give exactly one of vpn (a page number) or va (a byte address)',
      'operations[2].va: expected a page-aligned address (a multiple of 4096)',
      "operations[3].gfn: the pages must end at or below gfn 0x8000000 (the guest side's table area)",
      "operations[4].gfn: memslots must end at or below gfn 0x8000000 (the guest side's table area)",
      'operations[5].repeat: count × repeat must stay below 2^53',
      'operations[7].vpn: expected a non-negative integer below 2^53',
    ]);
  });

  it('checks the top level: version, vcpus, operations, expect, unknown fields', () => {
    expect(problems({ operations: [] })).toEqual(['version: expected 1 (the only version so far)']);
    expect(problems({ version: 2, operations: [] })).toEqual(['version: expected 1 (the only version so far)']);
    expect(problems({ version: 1 })).toEqual(['operations: missing (an array of operations)']);
    expect(problems({ version: 1, operations: {} })).toEqual(['operations: expected an array of operations']);
    expect(problems({ version: 1, vcpus: 0, operations: [] })).toEqual(['vcpus: expected a vCPU count 1..64']);
    expect(problems({ version: 1, operations: [], expect: { misses: 1 } })).toEqual(['expect.misses: unknown field']);
    expect(problems({ version: 1, operations: [], format: 'other' })).toEqual(['format: expected "hvmmu-workload"']);
    expect(problems({ version: 1, operations: [], extra: true })).toEqual(['extra: unknown field']);
    expect(problems(null)).toEqual(['(the workload): expected object, got null']);
  });

  it('a file: named in every message, with the line and column of bad JSON', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hvmmu-workload-'));
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, '{\n  "version": 1,\n  "operations": [\n    { "op": "map", "vpn": 1, "gfn": -3 }\n  ]\n}\n');
    expect(() => readWorkloadFile(bad)).toThrow(`${bad}: operations[0].gfn: expected a non-negative integer`);
    const broken = join(dir, 'broken.json');
    writeFileSync(broken, '{\n  "version": 1,\n  "operations": [,]\n}\n');
    expect(() => readWorkloadFile(broken)).toThrow(/broken\.json: not valid JSON: .*\(line 3, column 18\)/);
    expect(() => readWorkloadFile(join(dir, 'missing.json'))).toThrow(/missing\.json: no such file/);
    expect(() => readWorkloadFile(dir)).toThrow(`${dir}: is a directory, not a workload file`);
  });

  it('many problems: the first 20 and a count of the rest', () => {
    const p = problems(withOps(...Array.from({ length: 30 }, () => ({ op: 'map', vpn: -1, gfn: 0 }))));
    expect(p).toHaveLength(21);
    expect(p[20]).toBe('… and 10 more');
  });

  it('rights strings and GuestRights bits convert both ways', () => {
    for (const text of ['r', 'rw', 'rx', 'ru', 'rwx', 'rwu', 'rxu', 'rwxu']) expect(rightsText(rightsBits(text))).toBe(text);
  });
});
