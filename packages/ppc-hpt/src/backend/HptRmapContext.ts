import type { Memslot, TraceHook } from '@hvmmu/core';
import type { HptSlotRmap } from '../rmap/HptRevmap.js';
import { HPTE_R_C_LO, HPTE_R_R_LO, type HostHpt } from './HostHpt.js';
import type { PpcHptTypes } from './PpcHptTypes.js';

/** Counters the rmap tables keep, read into the backend's stats. */
export interface HptRmapCounters {
  hostUnmaps: number;
  invalidSlotWarnings: number;
}

/** What both rmap tables work on: the two tables, the counters, the trace hook. */
export class HptRmapContext {
  readonly counters: HptRmapCounters = { hostUnmaps: 0, invalidSlotWarnings: 0 };

  constructor(
    readonly hpt: HostHpt,
    readonly trace: TraceHook | null,
  ) {}

  /** Unlink `ptex` from gfn's ring, keeping its real R/C; C marks the page dirty (kvmppc_update_dirty_map). */
  unlink(slot: Memslot<PpcHptTypes>, gfn: number, ptex: number): void {
    const rc = this.hpt.realRc(ptex);
    const changed = slot.arch.remove(gfn - slot.baseGfn, ptex, (rc & HPTE_R_R_LO) !== 0, (rc & HPTE_R_C_LO) !== 0);
    if (changed && slot.dirtyLogging) slot.markDirty(gfn);
    this.hpt.linkGfn[ptex] = -1;
  }

  /** kvm_unmap_rmapp: every entry on gfn's ring becomes ABSENT and leaves the ring. */
  unmapAll(slot: Memslot<PpcHptTypes>, gfn: number): boolean {
    const rmap: HptSlotRmap = slot.arch;
    const page = gfn - slot.baseGfn;
    let any = false;
    // Each step takes the head off the ring: at most one step per HPTE.
    for (let n = 0; n < this.hpt.guest.entries && rmap.present(page); n++) {
      const ptex = rmap.lo[page]!;
      this.hpt.makeAbsent(ptex);
      this.unlink(slot, gfn, ptex);
      this.counters.hostUnmaps++;
      any = true;
    }
    return any;
  }
}
