import { describe, expect, it } from 'vitest';
import { ACCESS_KINDS, ACCESS_MASK, Access, HvmmuError, PERM_ALL, describeAccess, hex, isValidAccess } from '@hvmmu/core';

describe('Access', () => {
  it('packs an access into 4 bits: 16 kinds, one TLB permission bit each', () => {
    expect([Access.READ, Access.WRITE, Access.FETCH, Access.USER, Access.IMPLICIT]).toEqual([0, 1, 2, 4, 8]);
    expect(ACCESS_KINDS).toBe(16);
    expect(ACCESS_MASK).toBe(15);
    expect(PERM_ALL).toBe(0xffff);
  });

  it('a write cannot also be an instruction fetch; nothing outside 0..15 is an access', () => {
    const valid = Array.from({ length: 16 }, (_, k) => k).filter(isValidAccess);
    expect(valid).toEqual([0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14]);
    for (const bad of [-1, 16, 0.5, Number.NaN]) expect(isValidAccess(bad)).toBe(false);
  });

  it('describes accesses for messages', () => {
    expect(describeAccess(Access.READ)).toBe('supervisor read');
    expect(describeAccess(Access.WRITE | Access.USER)).toBe('user write');
    expect(describeAccess(Access.FETCH | Access.USER)).toBe('user fetch');
    expect(describeAccess(Access.READ | Access.IMPLICIT)).toBe('supervisor read (implicit)');
  });
});

describe('HvmmuError', () => {
  it('carries a code, a message prefixed with it, and optional details', () => {
    const e = new HvmmuError('MEMSLOT_OVERLAP', 'overlaps memslot 3', { id: 3 });
    expect(e).toBeInstanceOf(Error);
    expect(e.name).toBe('HvmmuError');
    expect(e.code).toBe('MEMSLOT_OVERLAP');
    expect(e.message).toBe('MEMSLOT_OVERLAP: overlaps memslot 3');
    expect(e.details).toEqual({ id: 3 });
    expect(new HvmmuError('BAD_ARGUMENT', 'x').details).toBeUndefined();
    expect(hex(0x1000)).toBe('0x1000');
  });
});
