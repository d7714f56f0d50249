import type { X86Memslot } from '../X86ShadowTypes.js';
import { ROLE_DIRECT, ROLE_INVALID, ROLE_SYNC_IGNORE, roleAccess, roleHasGptes, roleLevel, ROLE_HAS_4_BYTE_GPTE } from '../shadow/PageRole.js';
import { SP_IN_USE, SP_UNSYNC, UNSYNC_BITMAP_WORDS } from '../shadow/ShadowPageTable.js';
import {
  SPTE_A,
  SPTE_D,
  SPTE_ENT_PER_PAGE,
  SPTE_HI_PKEY_MASK,
  SPTE_HI_PKEY_SHIFT,
  SPTE_HOST_WRITABLE,
  isLastSpte,
  isShadowPresent,
  spteFrame,
} from '../spte/Spte.js';
import { ACC_WRITE } from '../spte/Acc.js';
import { DESC_SPTES, PTE_LIST_DESC_WORDS } from '../rmap/PteList.js';
import { type SlotRmap, slotRmap } from '../rmap/SlotRmap.js';
import type { GuestPteContext } from './GuestPteContext.js';

import { gpteAccess, level1GpteGpa, lostPermission } from './ShadowPageRules.js';
import { SpteInstaller } from './SpteInstaller.js';

/**
 * Unsync and sync of level-1 shadow pages (mmu.c: mmu_try_to_unsync_pages,
 * kvm_mmu_sync_roots / mmu_sync_children, kvm_sync_page, FNAME(sync_spte)):
 * a guest page table that only level-1 pages shadow may be written directly
 * (its shadow pages go unsync); INVLPG, a CR3 load or a page lookup resyncs
 * them from the guest's entries.
 */
export abstract class UnsyncPages extends SpteInstaller {
  // ------------------------------------------------------- unsync / sync

  /**
   * mmu_try_to_unsync_pages: a writable spte is wanted for gfn. Refuse
   * (true) if an upper-level page shadows gfn, or if pages shadow it and
   * we are synchronizing / prefetching; otherwise mark its level-1 pages
   * unsync and allow.
   */
  protected tryUnsync(slot: X86Memslot, gfn: number, synchronizing: boolean, prefetch: boolean): boolean {
    const r = slotRmap(slot);
    const i = gfn - slot.baseGfn;
    // No page shadows gfn (the common case: one load): nothing to unsync, the bucket walk would
    // find nothing. `shadowed` counts every page `writeTrack` counts, so none is write-tracked.
    if (r.shadowed[i] === 0) return false;
    return this.tryUnsyncShadowed(r, i, gfn, synchronizing, prefetch);
  }

  /** `tryUnsync` for a gfn that some shadow page shadows (kept apart: the common case inlines without it). */
  protected tryUnsyncShadowed(r: SlotRmap, i: number, gfn: number, synchronizing: boolean, prefetch: boolean): boolean {
    if (r.writeTrack[i]! > 0) return true;
    const spt = this.spt;
    for (let sp = spt.bucketHead(gfn); sp !== 0; sp = spt.hashNext[sp]!) {
      if (spt.gfn[sp] !== gfn || this.isObsolete(sp) || !roleHasGptes(spt.role[sp]!)) continue;
      if (synchronizing) return true;
      if ((spt.flags[sp]! & SP_UNSYNC) !== 0) continue;
      if (prefetch) return true;
      this.unsyncPage(sp);
    }
    return false;
  }

  /** kvm_unsync_page: only level-1 pages can be unsync (upper levels are write-tracked). */
  protected unsyncPage(sp: number): void {
    this.stats.unsyncs++;
    this.unsyncPages++;
    this.spt.flags[sp]! |= SP_UNSYNC;
    this.markParentsUnsync(sp);
    this.emit('x86.sp.unsync', sp);
  }

  /** kvm_mmu_mark_parents_unsync: set this page's bit in every parent's unsync bitmap. */
  protected markParentsUnsync(sp: number): void {
    const spt = this.spt;
    const val = spt.parentPtes[sp]!;
    if (val === 0) return;
    if ((val & 1) === 0) {
      this.markUnsync(val >>> 1);
      return;
    }
    const w = spt.parents.words;
    for (let d = val >>> 1; d !== 0; d = w[d * PTE_LIST_DESC_WORDS]!) {
      const base = d * PTE_LIST_DESC_WORDS;
      const n = w[base + 1]!;
      for (let i = 0; i < n; i++) this.markUnsync(w[base + DESC_SPTES + i]!);
    }
  }

  /** mark_unsync: set the bit for parent entry `e`; the first unsync child propagates further up. */
  protected markUnsync(e: number): void {
    const spt = this.spt;
    const parent = Math.floor(e / SPTE_ENT_PER_PAGE);
    if (spt.testAndSetUnsyncBit(parent, e % SPTE_ENT_PER_PAGE)) return;
    if (spt.unsyncChildren[parent]!++ !== 0) return;
    this.markParentsUnsync(parent);
  }

  protected clearUnsyncChildBit(sp: number, index: number): void {
    if (!this.spt.testUnsyncBit(sp, index)) return;
    this.spt.clearUnsyncBit(sp, index);
    this.spt.unsyncChildren[sp]!--;
  }

  /** kvm_unlink_unsync_page. */
  protected unlinkUnsync(sp: number): void {
    this.spt.flags[sp]! &= ~SP_UNSYNC;
    this.unsyncPages--;
  }

  /**
   * mmu_unsync_walk: append the unsync pages below sp to `unsyncFound`,
   * clearing the bitmap bits on the way (each edge is visited once, so a
   * hostile sharing pattern cannot make this exponential).
   */
  protected collectUnsync(sp: number): void {
    const spt = this.spt;
    const level = roleLevel(spt.role[sp]!);
    for (let k = 0; k < UNSYNC_BITMAP_WORDS; k++) {
      for (;;) {
        const bits = spt.unsyncBitmap[sp * UNSYNC_BITMAP_WORDS + k]!;
        if (bits === 0) break;
        const index = k * 32 + (31 - Math.clz32(bits & -bits));
        const e = sp * SPTE_ENT_PER_PAGE + index;
        const lo = spt.sptLo[e]!;
        if (isShadowPresent(lo) && !isLastSpte(lo, level)) {
          const child = spteFrame(spt.sptHi[e]!, lo);
          if (spt.unsyncChildren[child]! > 0) this.collectUnsync(child);
          if ((spt.flags[child]! & SP_UNSYNC) !== 0) this.unsyncFound.push(child);
        }
        this.clearUnsyncChildBit(sp, index);
      }
    }
  }

  /**
   * mmu_sync_children: sync every unsync page below `parent` — write-protect
   * their gfns (one flush), clear unsync, resync each against the guest
   * table (zapping pages that cannot be synced).
   */
  syncChildren(ctx: GuestPteContext, parent: number): void {
    const start = this.unsyncFound.length;
    this.collectUnsync(parent);
    const found = this.unsyncFound.splice(start);
    if (found.length === 0) return;
    let flush = false;
    for (const sp of found) {
      if ((this.spt.flags[sp]! & SP_UNSYNC) === 0) continue;
      const slot = this.slotForGfn(this.spt.gfn[sp]!);
      if (slot !== undefined && this.writeProtectGfn(slot, this.spt.gfn[sp]!)) flush = true;
    }
    if (flush) this.flushTlbs();
    flush = false;
    for (const sp of found) {
      if ((this.spt.flags[sp]! & SP_UNSYNC) === 0 || (this.spt.role[sp]! & ROLE_INVALID) !== 0) continue;
      this.unlinkUnsync(sp);
      if (this.syncPage(ctx, sp) > 0) flush = true;
    }
    this.remoteFlushOrZap(flush);
  }

  /** kvm_sync_page: resync every entry; on failure (role mismatch) the page is zapped and -1 returned. */
  syncPage(ctx: GuestPteContext, sp: number): number {
    const spt = this.spt;
    const role = spt.role[sp]!;
    if ((role & ROLE_DIRECT) !== 0 || ((role ^ ctx.rootRole) & ~ROLE_SYNC_IGNORE) !== 0) {
      this.prepareZap(sp);
      return -1;
    }
    this.stats.syncs++;
    let flush = 0;
    const base = sp * SPTE_ENT_PER_PAGE;
    for (let i = 0; i < SPTE_ENT_PER_PAGE; i++) {
      if (spt.sptLo[base + i] !== 0) flush |= this.syncSpte(ctx, sp, i);
    }
    return flush;
  }

  /**
   * FNAME(sync_spte): re-read the gpte behind entry i of a level-1 page.
   * Not present, not accessed, reserved bits, or another gfn → drop the
   * spte; otherwise rebuild it with the new access, same frame, no new
   * write permission beyond the unsync rules. Returns 1 if a flush is needed.
   */
  syncSpte(ctx: GuestPteContext, sp: number, i: number): number {
    const spt = this.spt;
    const e = sp * SPTE_ENT_PER_PAGE + i;
    const oldLo = spt.sptLo[e]!;
    if (!isShadowPresent(oldLo)) return 0;
    const role = spt.role[sp]!;
    const fourByte = (role & ROLE_HAS_4_BYTE_GPTE) !== 0;
    const gpteGpa = level1GpteGpa(spt.gfn[sp]!, role, i);
    const view = this.memslots.view;
    const off = this.guestMem.resolve(gpteGpa, false);
    if (off < 0 || off + (fourByte ? 4 : 8) > view.byteLength) return 0;
    const glo = view.getUint32(off, true);
    const ghi = fourByte ? 0 : view.getUint32(off + 4, true);
    // prefetch_invalid_gpte: present, accessed and free of reserved bits, or dropped.
    if ((glo & 1) === 0 || (glo & SPTE_A) === 0 || (!fourByte && ctx.gpteReserved(glo, ghi))) {
      this.dropSpte(e);
      return 1;
    }
    const gfn = fourByte ? glo >>> 12 : (ghi & 0xfffff) * 0x10_0000 + (glo >>> 12);
    let access = roleAccess(role) & gpteAccess(glo, ghi, fourByte);
    if ((glo & SPTE_D) === 0) access &= ~ACC_WRITE; // protect_clean_gpte
    if (gfn !== this.getGfn(sp, i)) {
      this.dropSpte(e);
      return 1;
    }
    const oldHi = spt.sptHi[e]!;
    // SDM 4.6.2: the protection key (gpte bits 62:59) is part of the rights the leaf grants,
    // so an entry is current only if both its W/U/NX access and its key are unchanged.
    const pkey = ctx.pkeActive && !fourByte ? (ghi >>> 27) & 15 : 0;
    if (this.getAccess(sp, i) === access && (oldHi & SPTE_HI_PKEY_MASK) >>> SPTE_HI_PKEY_SHIFT === pkey) return 0;
    this.setTranslation(e, gfn, access);
    const slot = this.slotForGfn(gfn);
    if (slot === undefined) {
      this.dropSpte(e);
      return 1;
    }
    this.makeSpte(1, slot, access, gfn, spteFrame(oldHi, oldLo), oldLo, true, true, (oldLo & SPTE_HOST_WRITABLE) !== 0, pkey);
    spt.sptLo[e] = this.newLo;
    spt.sptHi[e] = this.newHi;
    return lostPermission(oldLo, oldHi, this.newLo, this.newHi) ? 1 : 0;
  }

  /** mmu_zap_unsync_children. */
  protected zapUnsyncChildren(sp: number): void {
    if (roleLevel(this.spt.role[sp]!) === 1 || this.spt.unsyncChildren[sp] === 0) return;
    const found = this.unsyncFound;
    const start = found.length;
    this.collectUnsync(sp);
    const end = found.length;
    for (let k = start; k < end; k++) {
      const child = found[k]!;
      if ((this.spt.flags[child]! & SP_IN_USE) !== 0 && (this.spt.role[child]! & ROLE_INVALID) === 0) this.prepareZap(child);
    }
    found.length = start;
  }
}
