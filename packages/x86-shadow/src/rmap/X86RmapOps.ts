import type { Memslot, RmapOps } from '@hvmmu/core';

/**
 * Core's rmap table plus the one operation x86 needs in two flavours: KVM's
 * `rmap_write_protect(rmap_head, pt_protect)`. With `ptProtect` the entries
 * also lose MMU-writable (a guest page table lives there: writes must be
 * emulated); without it only W is cleared and the fault path may restore it
 * (dirty logging). Core's `writeProtect` is the `ptProtect` form.
 */
export interface X86RmapOps extends RmapOps {
  clearWritable(slot: Memslot, gfn: number, level: number, ptProtect: boolean): boolean;
}

/** KVM RMAP_RECYCLE_THRESHOLD: an rmap list longer than this is zapped whole. */
export const RMAP_RECYCLE_THRESHOLD = 1000;
