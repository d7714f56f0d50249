import { describe, expect, it } from 'vitest';
import { HOST_PAGE_SIZE, HostMemory } from '@hvmmu/core';
import { expectHvmmuError, firstDifference } from './fixtures/assertions.js';

const PAGE = 4096;

function bytesAt(mem: HostMemory, hpa: number, n: number): number[] {
  return [...mem.bytes.subarray(hpa, hpa + n)];
}

describe('HostMemory construction', () => {
  it('splits the buffer into 4 KiB frames, all free', () => {
    const mem = new HostMemory({ bytes: 8 * PAGE });
    expect(HOST_PAGE_SIZE).toBe(4096);
    expect(mem.byteLength).toBe(8 * PAGE);
    expect(mem.frameCount).toBe(8);
    expect(mem.framesFree).toBe(8);
    expect(mem.framesInUse).toBe(0);
    expect(mem.buffer).toBeInstanceOf(ArrayBuffer);
    expect(mem.view.byteLength).toBe(8 * PAGE);
  });

  it.each([0, -PAGE, 1, PAGE - 1, PAGE + 1, 1.5 * PAGE, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53])(
    'rejects a pool of %s bytes with HOST_BAD_SIZE',
    (bytes) => {
      expectHvmmuError(() => new HostMemory({ bytes }), 'HOST_BAD_SIZE');
    },
  );

  it('reports an allocation the engine refuses as HOST_OUT_OF_MEMORY, not a RangeError', () => {
    // 4 PiB: a multiple of 4 KiB that no host can back.
    const error = expectHvmmuError(() => new HostMemory({ bytes: 2 ** 52 }), 'HOST_OUT_OF_MEMORY');
    expect(error.details).toEqual({ bytes: 2 ** 52 });
  });

  it('backs the pool with a SharedArrayBuffer when asked, visible to other views of it', () => {
    const mem = new HostMemory({ bytes: 2 * PAGE, shared: true });
    expect(mem.buffer).toBeInstanceOf(SharedArrayBuffer);
    const other = new Int32Array(mem.buffer as SharedArrayBuffer);
    mem.write32(PAGE + 8, 0x01020304, true);
    expect(Atomics.load(other, (PAGE + 8) / 4)).toBe(0x01020304);
    Atomics.store(other, 0, -1);
    expect(mem.read32(0, true)).toBe(0xffffffff);
  });
});

describe('HostMemory frame allocation', () => {
  it('hands out every frame exactly once, then throws HOST_OUT_OF_MEMORY and changes nothing', () => {
    const mem = new HostMemory({ bytes: 16 * PAGE });
    const seen = new Set<number>();
    for (let i = 0; i < 16; i++) {
      const hfn = mem.allocFrame();
      expect(hfn).toBeGreaterThanOrEqual(0);
      expect(hfn).toBeLessThan(16);
      expect(mem.isAllocated(hfn)).toBe(true);
      seen.add(hfn);
      expect(mem.framesInUse).toBe(i + 1);
      expect(mem.framesFree).toBe(15 - i);
    }
    expect(seen.size).toBe(16);
    expectHvmmuError(() => mem.allocFrame(), 'HOST_OUT_OF_MEMORY');
    expect(mem.framesInUse).toBe(16);
    expect(mem.framesFree).toBe(0);
  });

  it('reuses the most recently freed frame first (a free stack: O(1) alloc and free)', () => {
    const mem = new HostMemory({ bytes: 8 * PAGE });
    const frames = [mem.allocFrame(), mem.allocFrame(), mem.allocFrame()];
    mem.freeFrame(frames[0]!);
    mem.freeFrame(frames[2]!);
    expect(mem.allocFrame()).toBe(frames[2]);
    expect(mem.allocFrame()).toBe(frames[0]);
    expect(mem.framesInUse).toBe(3);
  });

  it('keeps the accounting exact over many alloc/free cycles of a large pool', () => {
    const mem = new HostMemory({ bytes: 4096 * PAGE });
    const held: number[] = [];
    for (let round = 0; round < 4; round++) {
      while (mem.framesFree > 0) held.push(mem.allocFrame());
      expect(mem.framesInUse).toBe(4096);
      expect(new Set(held).size).toBe(4096);
      for (let i = held.length - 1; i >= 0; i -= 2) mem.freeFrame(held.splice(i, 1)[0]!);
      expect(mem.framesInUse).toBe(held.length);
      while (held.length > 0) mem.freeFrame(held.pop()!);
      expect(mem.framesInUse).toBe(0);
    }
  });

  it('zeroes a frame when it is allocated, and only that frame', () => {
    const mem = new HostMemory({ bytes: 4 * PAGE });
    const a = mem.allocFrame();
    const b = mem.allocFrame();
    mem.bytes.fill(0xa5, a * PAGE, (a + 1) * PAGE);
    mem.bytes.fill(0x5a, b * PAGE, (b + 1) * PAGE);
    mem.freeFrame(a);
    const again = mem.allocFrame();
    expect(again).toBe(a);
    expect(mem.bytes.subarray(a * PAGE, (a + 1) * PAGE).every((x) => x === 0)).toBe(true);
    expect(mem.bytes.subarray(b * PAGE, (b + 1) * PAGE).every((x) => x === 0x5a)).toBe(true);
  });

  it('detects a double free and other bad frees with HOST_BAD_FRAME, leaving the pool unchanged', () => {
    const mem = new HostMemory({ bytes: 4 * PAGE });
    const a = mem.allocFrame();
    mem.allocFrame();
    mem.freeFrame(a);
    const before = { inUse: mem.framesInUse, free: mem.framesFree };
    expectHvmmuError(() => mem.freeFrame(a), 'HOST_BAD_FRAME');
    for (const bad of [3, -1, 4, 1.5, Number.NaN, 2 ** 40]) {
      expectHvmmuError(() => mem.freeFrame(bad), 'HOST_BAD_FRAME');
    }
    expect({ inUse: mem.framesInUse, free: mem.framesFree }).toEqual(before);
    // A double free must not put the frame on the free stack twice.
    const x = mem.allocFrame();
    const y = mem.allocFrame();
    const z = mem.allocFrame();
    expect(new Set([x, y, z]).size).toBe(3);
    expectHvmmuError(() => mem.allocFrame(), 'HOST_OUT_OF_MEMORY');
  });

  it('isAllocated is false for anything that is not a live frame number', () => {
    const mem = new HostMemory({ bytes: 2 * PAGE });
    const a = mem.allocFrame();
    expect(mem.isAllocated(a)).toBe(true);
    expect(mem.isAllocated(1 - a)).toBe(false);
    for (const bad of [-1, 2, 0.5, Number.NaN]) expect(mem.isAllocated(bad)).toBe(false);
  });
});

describe('HostMemory zero frame', () => {
  it('is allocated on first use, stable, all zeros and counted in framesInUse', () => {
    const mem = new HostMemory({ bytes: 4 * PAGE });
    expect(mem.framesInUse).toBe(0);
    const z = mem.zeroFrame;
    expect(mem.framesInUse).toBe(1);
    expect(mem.zeroFrame).toBe(z);
    expect(mem.framesInUse).toBe(1);
    expect(mem.isAllocated(z)).toBe(true);
    expect(mem.bytes.subarray(z * PAGE, (z + 1) * PAGE).every((x) => x === 0)).toBe(true);
    expect(mem.allocFrame()).not.toBe(z);
  });

  it('can never be freed (a reused zero frame would leak data into every untouched page)', () => {
    const mem = new HostMemory({ bytes: 4 * PAGE });
    const z = mem.zeroFrame;
    expectHvmmuError(() => mem.freeFrame(z), 'HOST_BAD_FRAME');
    expect(mem.isAllocated(z)).toBe(true);
    expect(mem.framesInUse).toBe(1);
  });

  it('throws HOST_OUT_OF_MEMORY if the pool is exhausted before its first use', () => {
    const mem = new HostMemory({ bytes: PAGE });
    mem.allocFrame();
    expectHvmmuError(() => mem.zeroFrame, 'HOST_OUT_OF_MEMORY');
    expect(mem.framesInUse).toBe(1);
  });
});

describe('HostMemory accessors', () => {
  it('8-bit', () => {
    const mem = new HostMemory({ bytes: PAGE });
    mem.write8(5, 0xab);
    expect(bytesAt(mem, 4, 3)).toEqual([0, 0xab, 0]);
    expect(mem.read8(5)).toBe(0xab);
    // A value wider than the store is host misuse, never silently truncated.
    expectHvmmuError(() => mem.write8(6, 0x1ff), 'BAD_ARGUMENT');
    expect(mem.read8(6)).toBe(0);
    mem.write8(6, -1); // the two's-complement form of 0xff fits
    expect(mem.read8(6)).toBe(0xff);
  });

  it('16-bit little- and big-endian against hand-computed bytes', () => {
    const mem = new HostMemory({ bytes: PAGE });
    mem.write16(0, 0x1122, true);
    expect(bytesAt(mem, 0, 2)).toEqual([0x22, 0x11]);
    mem.write16(2, 0x1122, false);
    expect(bytesAt(mem, 2, 2)).toEqual([0x11, 0x22]);
    expect(mem.read16(0, true)).toBe(0x1122);
    expect(mem.read16(0, false)).toBe(0x2211);
    expect(mem.read16(2, false)).toBe(0x1122);
    // unaligned access works (hardware allows it on both architectures)
    mem.write16(7, 0xbeef, false);
    expect(bytesAt(mem, 7, 2)).toEqual([0xbe, 0xef]);
  });

  it('32-bit little- and big-endian against hand-computed bytes', () => {
    const mem = new HostMemory({ bytes: PAGE });
    mem.write32(0x10, 0x11223344, false);
    expect(bytesAt(mem, 0x10, 4)).toEqual([0x11, 0x22, 0x33, 0x44]);
    mem.write32(0x20, 0x11223344, true);
    expect(bytesAt(mem, 0x20, 4)).toEqual([0x44, 0x33, 0x22, 0x11]);
    expect(mem.read32(0x10, false)).toBe(0x11223344);
    expect(mem.read32(0x10, true)).toBe(0x44332211);
    mem.write32(0x30, 0xdeadbeef, true);
    expect(bytesAt(mem, 0x30, 4)).toEqual([0xef, 0xbe, 0xad, 0xde]);
    expect(mem.read32(0x30, true)).toBe(0xdeadbeef); // unsigned, never negative
    mem.write32(0x40, -1, false); // a signed value is stored as its 32-bit pattern
    expect(bytesAt(mem, 0x40, 4)).toEqual([0xff, 0xff, 0xff, 0xff]);
    expect(mem.read32(0x40, false)).toBe(0xffffffff);
  });

  it('64-bit as two halves, little- and big-endian, including bit 63', () => {
    const mem = new HostMemory({ bytes: PAGE });
    mem.write64Halves(0, 0x01234567, 0x89abcdef, true);
    expect(bytesAt(mem, 0, 8)).toEqual([0xef, 0xcd, 0xab, 0x89, 0x67, 0x45, 0x23, 0x01]);
    mem.write64Halves(8, 0x01234567, 0x89abcdef, false);
    expect(bytesAt(mem, 8, 8)).toEqual([0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef]);
    expect(mem.read64Hi(0, true)).toBe(0x01234567);
    expect(mem.read64Lo(0, true)).toBe(0x89abcdef);
    expect(mem.read64Hi(8, false)).toBe(0x01234567);
    expect(mem.read64Lo(8, false)).toBe(0x89abcdef);
    // A PowerPC HPTE dword with the valid bit (bit 63 in LE numbering) set.
    mem.write64Halves(16, 0x80000000, 0x00000001, false);
    expect(bytesAt(mem, 16, 8)).toEqual([0x80, 0, 0, 0, 0, 0, 0, 0x01]);
    expect(mem.read64Hi(16, false)).toBe(0x80000000);
    expect(mem.read64Lo(16, false)).toBe(1);
    // An x86 PTE with NX (bit 63) set, little-endian.
    mem.write64Halves(24, 0x80000000, 0x00001067, true);
    expect(bytesAt(mem, 24, 8)).toEqual([0x67, 0x10, 0, 0, 0, 0, 0, 0x80]);
  });

  it('64-bit as a number up to 2^53 - 1', () => {
    const mem = new HostMemory({ bytes: PAGE });
    mem.write64(0, 2 ** 53 - 1, true);
    expect(bytesAt(mem, 0, 8)).toEqual([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1f, 0x00]);
    expect(mem.read64(0, true)).toBe(2 ** 53 - 1);
    mem.write64(8, 0x1_0000_0000, false);
    expect(bytesAt(mem, 8, 8)).toEqual([0, 0, 0, 0x01, 0, 0, 0, 0]);
    expect(mem.read64(8, false)).toBe(0x1_0000_0000);
    mem.write64(16, 0x12_3456_789a, true);
    expect(bytesAt(mem, 16, 8)).toEqual([0x9a, 0x78, 0x56, 0x34, 0x12, 0, 0, 0]);
    expect(mem.read64(16, true)).toBe(0x12_3456_789a);
  });

  it('refuses 64-bit numbers outside [0, 2^53) with BAD_ARGUMENT and writes nothing', () => {
    const mem = new HostMemory({ bytes: PAGE });
    mem.bytes.fill(0x77, 0, 8);
    for (const bad of [2 ** 53, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      expectHvmmuError(() => mem.write64(0, bad, true), 'BAD_ARGUMENT');
    }
    expect(bytesAt(mem, 0, 8)).toEqual(Array(8).fill(0x77));
  });

  it('read64 of a value above 2^53 throws BAD_ARGUMENT (read it as halves instead)', () => {
    const mem = new HostMemory({ bytes: PAGE });
    mem.write64Halves(0, 0x0020_0000, 0, true); // exactly 2^53
    expectHvmmuError(() => mem.read64(0, true), 'BAD_ARGUMENT');
    mem.write64Halves(8, 0x001f_ffff, 0xffff_ffff, true); // 2^53 - 1
    expect(mem.read64(8, true)).toBe(2 ** 53 - 1);
  });

  it('copies byte ranges in and out', () => {
    const mem = new HostMemory({ bytes: 2 * PAGE });
    const data = Uint8Array.from({ length: 100 }, (_, i) => (i * 7) & 0xff);
    mem.writeBytes(PAGE - 50, data); // straddles the frame boundary: host memory is flat
    const out = new Uint8Array(100);
    mem.readBytes(PAGE - 50, out);
    expect([...out]).toEqual([...data]);
    expect(mem.read8(PAGE - 50 + 99)).toBe((99 * 7) & 0xff);
  });
});

describe('HostMemory bounds', () => {
  const SIZE = 2 * PAGE;

  it('allows accesses that end exactly at the end of the pool', () => {
    const mem = new HostMemory({ bytes: SIZE });
    mem.write8(SIZE - 1, 1);
    mem.write16(SIZE - 2, 0x0201, true);
    mem.write32(SIZE - 4, 0x04030201, true);
    mem.write64Halves(SIZE - 8, 0x08070605, 0x04030201, true);
    expect(bytesAt(mem, SIZE - 8, 8)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(mem.read8(0)).toBe(0);
  });

  const cases: Array<[string, (mem: HostMemory) => unknown]> = [
    ['read8 at -1', (m) => m.read8(-1)],
    ['read8 at the end', (m) => m.read8(SIZE)],
    ['write8 at -1', (m) => m.write8(-1, 1)],
    ['write8 at the end', (m) => m.write8(SIZE, 1)],
    ['read16 straddling the end', (m) => m.read16(SIZE - 1, true)],
    ['write16 straddling the end', (m) => m.write16(SIZE - 1, 0xffff, false)],
    ['read32 straddling the end', (m) => m.read32(SIZE - 3, true)],
    ['write32 straddling the end', (m) => m.write32(SIZE - 3, 0xffffffff, true)],
    ['write32 at -2', (m) => m.write32(-2, 0xffffffff, true)],
    ['read64Hi straddling the end', (m) => m.read64Hi(SIZE - 7, true)],
    ['read64Lo straddling the end', (m) => m.read64Lo(SIZE - 4, false)],
    ['read64 straddling the end', (m) => m.read64(SIZE - 4, false)],
    ['write64Halves straddling the end', (m) => m.write64Halves(SIZE - 4, 0xffffffff, 0xffffffff, true)],
    ['write64 straddling the end', (m) => m.write64(SIZE - 1, 1, true)],
    ['write64 at -8', (m) => m.write64(-8, 1, true)],
    ['a fractional address', (m) => m.read32(1.5, true)],
    ['a NaN address', (m) => m.write8(Number.NaN, 1)],
    ['an address far past the end', (m) => m.read8(2 ** 40)],
    ['readBytes past the end', (m) => m.readBytes(SIZE - 4, new Uint8Array(8))],
    ['writeBytes past the end', (m) => m.writeBytes(SIZE - 4, new Uint8Array(8).fill(0xff))],
    ['writeBytes at -1', (m) => m.writeBytes(-1, new Uint8Array(2).fill(0xff))],
  ];

  it.each(cases)('%s throws HOST_OUT_OF_BOUNDS and changes no byte', (_name, access) => {
    const mem = new HostMemory({ bytes: SIZE });
    const before = mem.bytes.slice();
    const error = expectHvmmuError(() => access(mem), 'HOST_OUT_OF_BOUNDS');
    expect(error.details).toHaveProperty('hpa');
    expect(error.details).toHaveProperty('size');
    expect(firstDifference(mem.bytes, before)).toBe(-1);
  });
});
