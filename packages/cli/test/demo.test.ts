import { describe, expect, it } from 'vitest';
import { FaultKind } from '@hvmmu/core';
import { runCoreDemo } from '../src/workloads/CoreDemoWorkload.js';
import { runX86Guest } from '../src/workloads/X86ShadowDemoWorkload.js';

describe('the demo behind npm start', () => {
  it('core demo: ROM writes end READ_ONLY, hypercalls get the ABI statuses, dirty log and delete behave', () => {
    const r = runCoreDemo();
    // 200 rounds × 64 pages + a 512-page sweep.
    expect(r.accesses).toBe(200 * 64 + 512);
    expect(r.romWriteFault).toBe(FaultKind.READ_ONLY);
    expect(r.unknownHcallStatus).toBe(-1000);
    expect(r.badHcallStatus).toBe(-22);
    expect(r.dirtyPagesHarvested).toBe(10);
    // Only the 64 hot pages were written; the sweep's reads mapped the shared zero frame.
    expect(r.framesFreedByDelete).toBe(64);
  });

  for (const mode of ['long4', 'pae'] as const) {
    for (const strategy of ['invalid-rmap', 'fast-zap'] as const) {
      it(`x86 ${mode} guest, ${strategy}: guest faults as scripted, nothing left mapping the deleted slot`, () => {
        const r = runX86Guest(mode, strategy, 5);
        // Per round and process: 2000 accesses + 1 write to a write-protected page + 1 unmapped read.
        expect(r.accesses).toBe(5 * 2 * 2002);
        // Exactly those two accesses fault in the guest each time.
        expect(r.guestFaults).toBe(5 * 2 * 2);
        expect(r.cr3Switches).toBe(10);
        expect(r.afterDeleteFault).toBe(FaultKind.NO_MEMORY);
        // Left after the delete: invalid-rmap drops only the data slot's leaves, so the 8 kernel
        // mappings of the level-1 tables (4 per process, in slot 0) survive; fast zap obsoletes
        // every shadow page, so nothing survives until the guest faults again.
        expect(r.rmapEntriesAfterDelete).toBe(strategy === 'invalid-rmap' ? 8 : 0);
      });
    }
  }
});
