import { describe, expect, it } from 'vitest';
import { FlatGuestMemory, type GuestMemory } from '@hvmmu/core';
import { expectHvmmuError } from './fixtures/assertions.js';

describe('FlatGuestMemory', () => {
  it('resolves gpa to the same offset in an ArrayBuffer image', () => {
    const image = new ArrayBuffer(0x2000);
    new DataView(image).setUint32(0x1ff8, 0x11223344, true);
    const mem: GuestMemory = new FlatGuestMemory(image);
    expect(mem.resolve(0, false)).toBe(0);
    expect(mem.resolve(0x1ff8, false)).toBe(0x1ff8);
    expect(mem.resolve(0x1ff8, true)).toBe(0x1ff8);
    expect(mem.view.getUint32(mem.resolve(0x1ff8, false), true)).toBe(0x11223344);
  });

  it('indexes a typed array window relative to its first byte', () => {
    const backing = new Uint8Array(0x3000);
    backing[0x1000 + 0x10] = 0xab;
    const mem = new FlatGuestMemory(backing.subarray(0x1000, 0x2000));
    expect(mem.view.byteLength).toBe(0x1000);
    expect(mem.view.getUint8(mem.resolve(0x10, false))).toBe(0xab);
    expect(mem.resolve(0x1000, false)).toBe(-1);
  });

  it('accepts a SharedArrayBuffer image', () => {
    const sab = new SharedArrayBuffer(0x1000);
    new Uint8Array(sab)[5] = 9;
    const mem = new FlatGuestMemory(sab);
    expect(mem.view.getUint8(mem.resolve(5, false))).toBe(9);
  });

  it('returns -1 for every gpa outside the image, never throwing', () => {
    const mem = new FlatGuestMemory(new ArrayBuffer(0x1000));
    for (const gpa of [0x1000, 0x1001, 2 ** 52, -1, -0x1000, Number.NaN, Number.POSITIVE_INFINITY, 0.5, 4095.5]) {
      expect(mem.resolve(gpa, false)).toBe(-1);
      expect(mem.resolve(gpa, true)).toBe(-1);
    }
  });

  it('a read-only image refuses every write resolve and allows reads', () => {
    const mem = new FlatGuestMemory(new Uint8Array(0x1000), { readOnly: true });
    expect(mem.resolve(0x10, false)).toBe(0x10);
    expect(mem.resolve(0x10, true)).toBe(-1);
    expect(mem.resolve(0, true)).toBe(-1);
  });

  it('a ragged tail shorter than 8 bytes is not resolvable, so an aligned 8-byte read never runs off the view', () => {
    const mem = new FlatGuestMemory(new ArrayBuffer(0x100c)); // 0x1008..0x100b is a 4-byte tail
    const at = mem.resolve(0x1000, false);
    expect(at).toBe(0x1000);
    expect(mem.view.getUint32(at + 4, true)).toBe(0); // the last whole 8 bytes
    expect(mem.resolve(0x1008, false)).toBe(-1);
    expect(mem.resolve(0x100b, false)).toBe(-1);
  });

  it('refuses something that is not a buffer or a view with BAD_ARGUMENT', () => {
    for (const bad of [42, null, {}, [1, 2, 3], 'image']) {
      expectHvmmuError(() => new FlatGuestMemory(bad as unknown as ArrayBuffer), 'BAD_ARGUMENT');
    }
  });
});
