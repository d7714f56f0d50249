import { describe, expect, it } from 'vitest';
import { HostMemory } from '@hvmmu/core';

describe('HostMemory (smoke)', () => {
  it('allocates distinct zeroed frames and accounts them', () => {
    const mem = new HostMemory({ bytes: 4 * 4096 });
    const a = mem.allocFrame();
    const b = mem.allocFrame();
    expect(a).not.toBe(b);
    expect(mem.framesInUse).toBe(2);
    mem.write32(b * 4096, 0xdeadbeef, false);
    expect(mem.read8(b * 4096)).toBe(0xde);
    mem.freeFrame(b);
    expect(mem.framesInUse).toBe(1);
  });
});
