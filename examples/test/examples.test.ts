import { describe, expect, it } from 'vitest';
import { FaultKind } from '@hvmmu/core';
import { runSwapBackend } from '../src/swapBackend.js';
import { runPaeExample } from '../src/paeGuestShadow.js';

describe('examples', () => {
  it('swapBackend: the same VMM code reads the same bytes on both backends, and the delete removes the mapping', () => {
    const results = runSwapBackend();
    expect(results.map((r) => r.backend)).toEqual(['identity-map', 'x86-shadow']);
    for (const r of results) {
      expect(r.bytesSeen).toBe('hello from the data slot');
      expect(r.tlbHits).toBe(99); // the first access misses, the other 99 hit
      expect(r.faultAfterDelete).toBe(FaultKind.NO_MEMORY);
    }
  });

  it('paeGuestShadow: PDPTEs are cached at CR3 load (SDM 4.4.1) and the root is a special shadow page', () => {
    const r = runPaeExample();
    expect(r.before).toBe(r.frameA * 4096);
    expect(r.staleUntilReload).toBe(r.frameA * 4096);
    expect(r.afterReload).toBe(r.frameB * 4096);
    expect(r.specialShadowPages).toBeGreaterThanOrEqual(1);
    expect(r.badCr3Refused).toBe(true);
  });
});
