import type { Memslot, TlbShootdown, TraceHook } from '@hvmmu/core';
import { RADIX_PTE } from '../format/RadixEntry.js';
import type { PartitionScopedTree } from './PartitionScopedTree.js';
import type { PpcRadixTypes } from './PpcRadixTypes.js';
import { RadixSlotRmap } from './RadixSlotRmap.js';

/** Counters the rmap tables keep (reported in the backend's stats). */
export interface RadixRmapCounters {
  /** Leaves dropped (kvmppc_unmap_pte). */
  unmaps: number;
  /** Leaves whose R was cleared by aging. */
  aged: number;
  /** Leaves whose C was cleared to re-arm dirty logging. */
  dirtyReprotects: number;
  /** Nested rmap entries detached by an unmap (no L2 shadow table exists yet to remove them from). */
  nestedDetached: number;
  /** Operations that must never reach an invalid slot (warned, nothing done). */
  invalidSlotWarnings: number;
}

/**
 * What the radix rmap tables work on: L0's partition-scoped tree, the VM's
 * TLBs and the trace hook. One per VM, shared by `normal` and `invalid`.
 */
export class RadixRmapContext {
  readonly counters: RadixRmapCounters = { unmaps: 0, aged: 0, dirtyReprotects: 0, nestedDetached: 0, invalidSlotWarnings: 0 };

  constructor(
    readonly tree: PartitionScopedTree,
    readonly tlbs: TlbShootdown,
    readonly trace: TraceHook | null,
  ) {}

  /** The pool offset of gfn's present leaf, or -1. */
  leafOf(gfn: number): number {
    const off = this.tree.pteOffset(gfn);
    return this.tree.isLeaf(off) ? off : -1;
  }

  /**
   * kvmppc_unmap_pte for L1's leaf of gfn: clear it, tlbie the page (here:
   * drop every TLB entry on its host frame, on every vCPU — a partition-scoped
   * tlbie removes the combined translations through that guest real page),
   * then kvmhv_remove_nest_rmap_range: detach gfn's nested rmap list. The
   * dirty bit needs no transfer from C: this backend logs a page when it
   * sets C (see `PpcRadixMmu`). False if no leaf maps gfn.
   */
  unmapLeaf(slot: Memslot<PpcRadixTypes>, gfn: number): boolean {
    const off = this.leafOf(gfn);
    if (off < 0) return false;
    const hfn = this.tree.hfnAt(off);
    this.tree.clear(off);
    this.tlbs.flushHostFrame(hfn);
    this.counters.unmaps++;
    const index = gfn - slot.baseGfn;
    if (index >= 0 && index < slot.npages) {
      this.counters.nestedDetached += RadixSlotRmap.of(slot).nested.detachAll(index, ignoreNested);
    }
    return true;
  }

  /** kvm_age_radix: clear R; no flush (a cached translation may keep the page young unseen, as KVM's "XXX need to flush tlb here?"). */
  age(gfn: number): boolean {
    const off = this.leafOf(gfn);
    if (off < 0 || (this.tree.loAt(off) & RADIX_PTE.R) === 0) return false;
    this.tree.updateLo(off, RADIX_PTE.R, 0);
    this.counters.aged++;
    return true;
  }

  testAge(gfn: number): boolean {
    const off = this.leafOf(gfn);
    return off >= 0 && (this.tree.loAt(off) & RADIX_PTE.R) !== 0;
  }

  /** Clear C and tlbie: the next store raises the R/C fault and is logged again. */
  clearDirty(gfn: number): boolean {
    const off = this.leafOf(gfn);
    if (off < 0 || (this.tree.loAt(off) & RADIX_PTE.C) === 0) return false;
    this.tree.updateLo(off, RADIX_PTE.C, 0);
    this.tlbs.flushHostFrame(this.tree.hfnAt(off));
    this.counters.dirtyReprotects++;
    return true;
  }

  warn(op: string, slot: Memslot<PpcRadixTypes>, gfn: number): void {
    this.counters.invalidSlotWarnings++;
    if (this.trace !== null) this.trace({ kind: 'rmap-invalid-slot-warning', op, slot: slot.id, gfn });
  }
}

/** No nested guest exists yet whose shadow entry an L1 unmap would remove. */
function ignoreNested(): void {}
