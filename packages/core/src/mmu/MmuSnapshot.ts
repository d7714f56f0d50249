/**
 * What a backend shows of its hardware-side mappings (for the conformance suite and inspection tools)
 * and rmaps, so the suite can check them against memslots, TLBs and each
 * other without knowing the architecture.
 */

/**
 * One leaf mapping of the tables the "hardware" walks (a shadow PTE, a
 * host-stage entry, an HPTE) that points at a host frame. Entries that map no
 * frame (x86 MMIO sptes, access-tracked or not-present markers) are not leaves.
 */
export interface MappingLeaf {
  /** The backend's handle for the entry; the same number its rmap records (e.g. a shadow-PTE index). */
  readonly entry: number;
  /** Memslot the mapping was built through (the slot whose rmap must hold it). */
  readonly slotId: number;
  /** First guest frame mapped. */
  readonly gfn: number;
  /** rmap level (1 = 4 KiB; higher levels are the backend's large mappings). */
  readonly level: number;
  /** 4 KiB pages the leaf maps: gfn + k → hfn + k for k < pages. */
  readonly pages: number;
  /** First host frame mapped. */
  readonly hfn: number;
  /** The guest may write through this leaf without a fault. */
  readonly writable: boolean;
}

/** One rmap entry: rmap head (slot, gfn, level) holds `entry`. */
export interface RmapRecord {
  readonly slotId: number;
  readonly gfn: number;
  readonly level: number;
  readonly entry: number;
}

export interface MmuSnapshot {
  /** Every present leaf, in any order. */
  readonly leaves: readonly MappingLeaf[];
  /**
   * Every rmap entry of every slot the backend still keeps rmaps for
   * (including a slot in the middle of deletion), in any order.
   */
  readonly rmap: readonly RmapRecord[];
  /**
   * Per vCPU, the guest-visible register state translation depends on
   * (x86: CR0, CR3, CR4, EFER), by vCPU id. Compared before and after hostile
   * guest actions, which must not change it.
   */
  readonly registers: readonly Readonly<Record<string, number>>[];
}
