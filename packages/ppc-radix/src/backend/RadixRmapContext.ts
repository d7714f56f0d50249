import type { Memslot, TlbShootdown, TraceHook } from '@hvmmu/core';
import { RADIX_PTE } from '../format/RadixEntry.js';
import type { NestedHv } from './NestedHv.js';
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
  /** Nested rmap entries detached by an unmap (each names an L2 shadow entry, removed if it still maps the page). */
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
  /** The VM's nested HV (set by the MMU once made): where the nested rmap's entries lead. */
  nested: NestedHv | null = null;

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
   * then kvmhv_remove_nest_rmap_range: detach gfn's nested rmap list and
   * remove every L2 shadow entry it names that still maps the frame. The
   * dirty bit needs no transfer from C: this backend logs a page when it
   * sets C (see `PpcRadixMmu`). False if no leaf maps gfn.
   */
  unmapLeaf(slot: Memslot<PpcRadixTypes>, gfn: number): boolean {
    const off = this.leafOf(gfn);
    if (off < 0) return false;
    const hfn = this.tree.hfnAt(off);
    this.tree.clear(off);
    this.counters.unmaps++;
    const index = gfn - slot.baseGfn;
    if (index >= 0 && index < slot.npages) {
      this.counters.nestedDetached +=
        this.nested !== null ? this.nested.removeNestedRange(slot, index, hfn) : RadixSlotRmap.of(slot).nested.detachAll(index, ignoreNested);
    }
    // One flush for L1's leaf and every shadow entry removed with it (they all map hfn): each
    // flush scans every vCPU's TLB, so one per entry made a page named N times cost N + 1 scans.
    this.tlbs.flushHostFrame(hfn);
    return true;
  }

  /**
   * kvm_age_radix: clear R; no flush (a cached translation may keep the page
   * young unseen, as KVM's "XXX need to flush tlb here?"); then R in the L2
   * shadow entries gfn's nested rmap names (kvmhv_update_nest_rmap_rc_list).
   */
  age(slot: Memslot<PpcRadixTypes>, gfn: number): boolean {
    const off = this.leafOf(gfn);
    if (off < 0 || (this.tree.loAt(off) & RADIX_PTE.R) === 0) return false;
    this.tree.updateLo(off, RADIX_PTE.R, 0);
    this.counters.aged++;
    this.updateNested(slot, gfn, this.tree.hfnAt(off), RADIX_PTE.R);
    return true;
  }

  private updateNested(slot: Memslot<PpcRadixTypes>, gfn: number, hfn: number, clear: number): void {
    const index = gfn - slot.baseGfn;
    if (this.nested !== null && index >= 0 && index < slot.npages) this.nested.clearNestedRc(slot, index, hfn, clear);
  }

  testAge(gfn: number): boolean {
    const off = this.leafOf(gfn);
    return off >= 0 && (this.tree.loAt(off) & RADIX_PTE.R) !== 0;
  }

  /**
   * Clear C and tlbie: the next store raises the R/C fault and is logged
   * again; C goes from the L2 shadow entries the nested rmap names too
   * (kvm_radix_test_clear_dirty), so an L2's store is caught as well.
   */
  clearDirty(slot: Memslot<PpcRadixTypes>, gfn: number): boolean {
    const off = this.leafOf(gfn);
    if (off < 0 || (this.tree.loAt(off) & RADIX_PTE.C) === 0) return false;
    this.tree.updateLo(off, RADIX_PTE.C, 0);
    const hfn = this.tree.hfnAt(off);
    this.tlbs.flushHostFrame(hfn);
    this.counters.dirtyReprotects++;
    this.updateNested(slot, gfn, hfn, RADIX_PTE.C);
    return true;
  }

  warn(op: string, slot: Memslot<PpcRadixTypes>, gfn: number): void {
    this.counters.invalidSlotWarnings++;
    if (this.trace !== null) this.trace({ kind: 'rmap-invalid-slot-warning', op, slot: slot.id, gfn });
  }
}

/** Before the MMU is made there is no nested guest whose shadow entry an unmap would remove. */
function ignoreNested(): void {}
