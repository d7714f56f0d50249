import { DEFAULT_CONTEXT, type TlbShootdown, type TraceHook } from '@hvmmu/core';
import type { IdentityRmapOps } from './IdentityRmapOps.js';
import type { HostStageTable } from './HostStageTable.js';
import type { IdentitySlotRmap } from './IdentitySlotRmap.js';

/** Counters the rmap tables keep (reported by the MMU's stats). */
export interface IdentityRmapCounters {
  /** Entries dropped through an rmap (unmap, zap on set_pte, invalid-slot teardown). */
  drops: number;
  /** Entries that lost write access (dirty-log arming). */
  writeProtects: number;
  /** Operations that must never reach an invalid slot (add, write-protect: they warn, as in the 2013 KVM invalid-rmap patch). */
  invalidSlotWarnings: number;
}

/**
 * What an identity rmap table works on: the VM's host-stage table, its vCPUs'
 * TLBs and the trace hook. One per VM, shared by the `normal` and `invalid`
 * tables (and by any table a test substitutes).
 */
export class IdentityRmapContext {
  readonly counters: IdentityRmapCounters = { drops: 0, writeProtects: 0, invalidSlotWarnings: 0 };

  constructor(
    readonly table: HostStageTable,
    readonly tlbs: TlbShootdown,
    readonly trace: TraceHook | null,
  ) {}

  /**
   * Drop the entry at rmap page `index` (gfn): clear the table entry and the
   * rmap head, then shoot the page down in every vCPU's TLB. Identity paging
   * makes the virtual page equal to gfn, in the one translation context, so
   * one page flush per vCPU is exact.
   */
  dropEntry(rmap: IdentitySlotRmap, index: number, gfn: number): boolean {
    const entry = rmap.entryAt(index);
    if (entry < 0) return false;
    this.table.clear(entry);
    rmap.clear(index);
    this.tlbs.flushPage(DEFAULT_CONTEXT, gfn);
    this.counters.drops++;
    return true;
  }
}

/** How a VM builds one of its identity rmap tables; lets a caller substitute its own strategy. */
export type IdentityRmapOpsClass = new (context: IdentityRmapContext) => IdentityRmapOps;
