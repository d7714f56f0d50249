import { describe, expect, it } from 'vitest';
import { FaultKind } from '@hvmmu/core';
import { runSwapBackend } from '../src/swapBackend.js';
import { runPaeExample } from '../src/paeGuestShadow.js';
import { runHptLiveMigration } from '../src/hptLiveMigration.js';
import { runNestedRadixL2 } from '../src/nestedRadixL2.js';

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

  it('hptLiveMigration: passes shrink as the guest settles, the last one makes the destination exact, every page reachable there', async () => {
    const r = await runHptLiveMigration();
    // The first pass carries every entry of the order-18 table (16384), in records of one valid entry and its invalid run.
    expect(r.passes[0]!.entries).toBe(16384);
    const later = r.passes.slice(1).map((p) => p.entries);
    for (let k = 1; k < later.length; k++) expect(later[k]!).toBeLessThan(later[k - 1]!);
    expect(later.length).toBeGreaterThanOrEqual(3);
    expect(r.identical).toBe(true);
    expect(r.reachable).toBe(r.mapped);
  });

  it('nestedRadixL2: L0 resolves the L2’s first touches alone; a host invalidation under the running L2 drops its shadow entry through the nested rmap, and the next access faults it back', () => {
    const r = runNestedRadixL2();
    // 8 data pages and the L2 kernel's 5 table pages (process table, root, PUD, PMD, PTE): each one L2 fault, one shadow entry.
    expect(r.firstTouchFaults).toBe(13);
    expect(r.shadowInserts).toBe(13);
    expect(r.reflectedToL1).toBe(0);
    // The victim page's nested rmap entry: L1's LPID 3 for the L2, L2 real frame 0x403 (4 MiB + 3 pages).
    expect(r.rmapEntry).toEqual([3, 0x403]);
    expect(r.shadowLeavesAfter).toBe(r.shadowLeavesBefore - 1);
    expect(r.stillInL2).toBe(true);
    expect([r.refaults, r.l0Instantiations, r.reinserts]).toEqual([1, 1, 1]);
    expect(r.sameFrame).toBe(true);
    expect(r.bytesKept).toBe(true);
    expect(r.lines).toHaveLength(7);
  });
});
