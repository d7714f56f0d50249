import type { X86Memslot } from '../X86ShadowTypes.js';
import { roleLevel } from '../shadow/PageRole.js';
import {
  SPTE_A,
  SPTE_D,
  SPTE_HI_NX,
  SPTE_HI_PKEY_SHIFT,
  SPTE_HOST_WRITABLE,
  SPTE_MMU_PRESENT,
  SPTE_MMU_WRITABLE,
  SPTE_P,
  SPTE_PS,
  SPTE_U,
  SPTE_W,
  isLastSpte,
  isShadowPresent,
  linkSpteChild,
  spteFrame,
  spteHi,
  spteLo,
} from '../spte/Spte.js';
import { ACC_EXEC, ACC_USER, ACC_WRITE } from '../spte/Acc.js';

import { SET_SPTE_EMULATE, SET_SPTE_FIXED, SET_SPTE_SPURIOUS, lostPermission } from './ShadowPageRules.js';
import { ShadowPageCache } from './ShadowPageCache.js';

/**
 * Building and installing leaf sptes: make_spte (arch/x86/kvm/mmu/spte.c), in
 * one place, and mmu_set_spte with its rmap bookkeeping, plus the fault
 * path's straight-line install of a new level-1 leaf.
 */
export abstract class SpteInstaller extends ShadowPageCache {
  /** mmu_try_to_unsync_pages (UnsyncPages): true if gfn must stay write-protected. */
  protected abstract tryUnsync(slot: X86Memslot, gfn: number, synchronizing: boolean, prefetch: boolean): boolean;

  // ------------------------------------------------------ make / set spte

  /**
   * make_spte (spte.c) into `newLo/newHi/wrprot`: present, A unless a
   * prefetch, NX unless ACC_EXEC, U with ACC_USER, host-writable if the host
   * page may be written (else no W), W + MMU-writable with ACC_WRITE unless
   * the gfn holds shadowed guest tables that cannot go unsync (then
   * `wrprot`), D on writable sptes, and the gfn marked dirty when a writable
   * spte is created in a dirty-logged slot. hvmmu also copies the guest
   * leaf's protection key into bits 59..62 (the hardware reads it there).
   */
  protected makeSpte(
    level: number,
    slot: X86Memslot,
    pteAccess: number,
    gfn: number,
    hfn: number,
    oldLo: number,
    prefetch: boolean,
    synchronizing: boolean,
    hostWritable: boolean,
    pkey: number,
  ): void {
    let lo = SPTE_MMU_PRESENT | SPTE_P;
    let hi = pkey << SPTE_HI_PKEY_SHIFT;
    this.wrprot = false;
    if (!prefetch || synchronizing) lo |= SPTE_A;
    if ((pteAccess & ACC_EXEC) === 0) hi |= SPTE_HI_NX;
    if ((pteAccess & ACC_USER) !== 0) lo |= SPTE_U;
    if (level > 1) lo |= SPTE_PS;
    if (hostWritable) lo |= SPTE_HOST_WRITABLE;
    else pteAccess &= ~ACC_WRITE;
    let out = false;
    if ((pteAccess & ACC_WRITE) !== 0) {
      lo |= SPTE_W | SPTE_MMU_WRITABLE;
      // A writable old spte means the relevant pages are already unsync and the gfn already dirty.
      if ((oldLo & SPTE_W) !== 0) out = true;
      else if (this.tryUnsync(slot, gfn, synchronizing, prefetch)) {
        this.wrprot = true;
        pteAccess &= ~ACC_WRITE;
        lo &= ~(SPTE_W | SPTE_MMU_WRITABLE);
      }
    }
    // Hardware would set D on the first write through a writable spte; KVM sets it up front.
    if ((lo & SPTE_W) !== 0) lo |= SPTE_D;
    if ((lo & SPTE_W) !== 0 && slot.dirtyBitmap !== null && !out) slot.markDirty(gfn);
    this.newLo = spteLo(hfn, lo);
    this.newHi = spteHi(hfn, hi);
  }

  /**
   * mmu_set_spte: install a leaf at `e` mapping gfn → hfn with `pteAccess`.
   * Replacing a different frame drops the old spte first; an unchanged
   * spte is SPURIOUS; a write fault whose spte had to stay write-protected
   * must be EMULATEd.
   */
  setSpte(
    e: number,
    pteAccess: number,
    writeFault: boolean,
    gfn: number,
    hfn: number,
    hostWritable: boolean,
    prefetch: boolean,
    slot: X86Memslot,
    pkey: number,
  ): number {
    const spt = this.spt;
    // Entry handles are below 2^31 (ShadowPageTable): page and index by int32 shifts.
    const sp = e >>> 9;
    const level = roleLevel(spt.role[sp]!);
    let flush = false;
    let wasRmapped = false;
    const oldLo = spt.sptLo[e]!;
    if (isShadowPresent(oldLo)) {
      if (!isLastSpte(oldLo, level)) {
        this.dropParentPte(linkSpteChild(spt.sptHi[e]!, oldLo), e);
        flush = true;
      } else if (spteFrame(spt.sptHi[e]!, oldLo) !== hfn || this.getGfn(sp, e & 511) !== gfn) {
        // Another frame, or another gfn on the same frame (two untouched pages share the zero
        // frame): the old mapping and its rmap entry go first, so the rmap stays keyed right.
        this.dropSpte(e);
        flush = true;
      } else {
        wasRmapped = true;
      }
    }
    const curLo = spt.sptLo[e]!;
    const curHi = spt.sptHi[e]!;
    this.makeSpte(level, slot, pteAccess, gfn, hfn, curLo, prefetch, false, hostWritable, pkey);
    let ret = SET_SPTE_FIXED;
    if (this.newLo === curLo && this.newHi === curHi) {
      ret = SET_SPTE_SPURIOUS;
    } else {
      if (isShadowPresent(curLo) && lostPermission(curLo, curHi, this.newLo, this.newHi)) flush = true;
      spt.sptLo[e] = this.newLo;
      spt.sptHi[e] = this.newHi;
    }
    if (this.wrprot && writeFault) ret = SET_SPTE_EMULATE;
    if (flush || this.flushPending) this.flushTlbs();
    if (!wasRmapped) this.rmapAdd(slot, e, gfn, pteAccess);
    else this.setTranslation(e, gfn, pteAccess);
    return ret;
  }

  /**
   * `setSpte` for the fault path's common case: entry `e` of a level-1
   * page is not present (the hardware walk just missed on it), not a
   * prefetch. The spte is built by the one make_spte (`makeSpte`); what is
   * left out is setSpte's handling of a present old entry (replacement,
   * spurious, lost permission), which cannot arise from an empty one, and its
   * rmap lookup for an existing mapping.
   */
  setNewLeaf(e: number, pteAccess: number, writeFault: boolean, gfn: number, hfn: number, hostWritable: boolean, slot: X86Memslot, pkey: number): number {
    this.makeSpte(1, slot, pteAccess, gfn, hfn, 0, false, false, hostWritable, pkey);
    const spt = this.spt;
    spt.sptLo[e] = this.newLo;
    spt.sptHi[e] = this.newHi;
    if (this.flushPending) this.flushTlbs();
    // rmap_add records the access the fault asked for, before make_spte's reductions.
    spt.translation[e] = gfn * 8 + pteAccess;
    slot.rmapOps.add(slot, gfn, 1, e);
    return this.wrprot && writeFault ? SET_SPTE_EMULATE : SET_SPTE_FIXED;
  }
}
