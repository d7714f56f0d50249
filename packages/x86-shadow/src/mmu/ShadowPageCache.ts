import { MemslotTable, TlbShootdown, type TraceHook, type VmConfig } from '@hvmmu/core';
import type { X86Memslot, X86ShadowTypes } from '../X86ShadowTypes.js';
import { ROLE_DIRECT, ROLE_INVALID, ROLE_PASSTHROUGH, roleHasGptes, roleLevel, describeRole } from '../shadow/PageRole.js';
import { SP_HASHED, SP_IN_USE, SP_ON_ACTIVE_LIST, SP_SPECIAL, SP_UNSYNC, ShadowPageTable } from '../shadow/ShadowPageTable.js';
import { NONLEAF_SPTE_FLAGS, PAE_ROOT_SPTE_FLAGS, SPTE_ENT_PER_PAGE, isLastSpte, isShadowPresent, spteFrame, spteHi, spteLo } from '../spte/Spte.js';
import { DESC_SPTES, PTE_LIST_DESC_WORDS } from '../rmap/PteList.js';
import { RMAP_LEVELS, pagesPerLevel } from '../rmap/SlotRmap.js';
import type { X86RmapOps } from '../rmap/X86RmapOps.js';
import type { GuestPteContext } from './GuestPteContext.js';
import { GuestPhysMemory } from '@hvmmu/core';
import { ShadowMmuStats } from '../shadow/ShadowMmuStats.js';
import { REQ_FREE_OBSOLETE_ROOTS, VcpuMmuList } from './VcpuMmuList.js';

import { BATCH_ZAP_PAGES, MIN_ALLOC_MMU_PAGES, MIN_FREE_MMU_PAGES, REFILL_PAGES, SP_PAE_ROOT_TABLE, SP_ZAP_QUEUED } from './ShadowPageRules.js';

/**
 * The shadow-page cache of KVM's mmu.c on `ShadowPageTable`: lookup and
 * creation by (gfn, role) (kvm_mmu_get_shadow_page), link / unlink with
 * parent pointers, rmap bookkeeping of leaves, prepare-zap / commit-zap,
 * reclaim, zap-all, the fast zap by generation, and roots. Every function
 * keeps KVM's shadow-MMU invariants and flushes every vCPU's TLB whenever an
 * spte is dropped or loses a permission (the flush is deferred to
 * `commitZap` / `remoteFlushOrZap` within one operation).
 *
 * The layers above it, one concern per file: `SpteInstaller` (make_spte,
 * mmu_set_spte), `UnsyncPages` (unsync and sync), `WriteTracking` (shadowed
 * guest tables and emulated writes to them); `ShadowPages` is the whole.
 */
export abstract class ShadowPageCache {
  /** KVM mmu_valid_gen: toggles 0 ↔ 1 on each fast zap (at most one stale generation exists). */
  validGen = 0;
  /** Monotonic generation handed to the TLBs on each fast zap. */
  tlbGeneration = 0;
  /** The slot being flushed: hidden from lookups but its rmaps must still be reachable. */
  flushingSlot: X86Memslot | null = null;
  /** KVM indirect_shadow_pages: valid pages that shadow guest tables. */
  indirectShadowPages = 0;
  /** KVM n_used_mmu_pages: ordinary pages not yet on the pending-free list. */
  usedPages = 0;
  /** KVM n_max_mmu_pages (soft limit). */
  maxPages = MIN_ALLOC_MMU_PAGES;
  /** Unsync pages right now. */
  unsyncPages = 0;
  /** Guest memory as walks and resyncs read it (fast read path over the memslots). */
  readonly guestMem: GuestPhysMemory;
  /**
   * An spte was dropped (leaf or link) without a TLB flush yet: every
   * top-level operation ends with `commitZap` / `remoteFlushOrZap`, which
   * flush then, so no translation outlives the entry it came from.
   */
  protected flushPending = false;
  /** Pages prepared for zapping, freed by `commitZap` after one TLB flush (KVM invalid_list). */
  protected readonly zapList: number[] = [];
  protected readonly unsyncFound: number[] = [];
  /** Results of `makeSpte`. */
  protected newLo = 0;
  protected newHi = 0;
  protected wrprot = false;

  constructor(
    readonly spt: ShadowPageTable,
    readonly memslots: MemslotTable<X86ShadowTypes>,
    readonly tlbs: TlbShootdown,
    readonly stats: ShadowMmuStats,
    private readonly vcpus: VcpuMmuList,
    config: VmConfig<X86ShadowTypes['options']>,
    private readonly trace: TraceHook | null,
  ) {
    const max = config.backendOptions.maxShadowPages;
    if (max !== undefined) this.maxPages = max;
    this.guestMem = new GuestPhysMemory(memslots as unknown as MemslotTable);
  }

  // Implemented by the layers above (see the class comment).
  abstract syncPage(ctx: GuestPteContext, sp: number): number;
  protected abstract markUnsync(e: number): void;
  protected abstract unlinkUnsync(sp: number): void;
  protected abstract zapUnsyncChildren(sp: number): void;
  protected abstract accountShadowed(sp: number): void;
  protected abstract unaccountShadowed(sp: number): void;

  // ------------------------------------------------------------ helpers

  /** KVM is_obsolete_sp: invalid, or created under another mmu_valid_gen. */
  isObsolete(sp: number): boolean {
    return (this.spt.role[sp]! & ROLE_INVALID) !== 0 || this.spt.gen[sp] !== this.validGen;
  }

  isSpecial(sp: number): boolean {
    return (this.spt.flags[sp]! & SP_SPECIAL) !== 0;
  }

  /** The slot holding gfn, including the slot whose deletion is being flushed. */
  slotForGfn(gfn: number): X86Memslot | undefined {
    const slot = this.memslots.findByGfn(gfn);
    if (slot !== undefined) return slot;
    const f = this.flushingSlot;
    return f !== null && f.containsGfn(gfn) ? f : undefined;
  }

  /** KVM kvm_mmu_page_get_gfn: the gfn entry i of sp maps (leaf) or covers. */
  getGfn(sp: number, index: number): number {
    const role = this.spt.role[sp]!;
    if ((role & ROLE_PASSTHROUGH) !== 0) return this.spt.gfn[sp]!;
    if ((role & ROLE_DIRECT) !== 0) return this.spt.gfn[sp]! + index * pagesPerLevel(role & 0xf);
    return Math.floor(this.spt.translation[sp * SPTE_ENT_PER_PAGE + index]! / 8);
  }

  /** KVM kvm_mmu_page_get_access: the ACC bits the leaf entry was built from. */
  getAccess(sp: number, index: number): number {
    return this.spt.translation[sp * SPTE_ENT_PER_PAGE + index]! % 8;
  }

  protected setTranslation(e: number, gfn: number, access: number): void {
    this.spt.translation[e] = gfn * 8 + access;
  }

  protected emit(kind: string, sp: number): void {
    if (this.trace !== null) {
      this.trace({ kind, sp, gfn: this.spt.gfn[sp]!, role: describeRole(this.spt.role[sp]!) });
    }
  }

  // --------------------------------------------------- lookup / create

  /**
   * __kvm_mmu_get_shadow_page: find the valid page for (gfn, role) or
   * create it. A found unsync page is synced first (and rebuilt if the sync
   * fails); an unsync page of another role at gfn is zapped when an
   * upper-level page is wanted (the new page write-protects the gfn).
   */
  getShadowPage(ctx: GuestPteContext, gfn: number, role: number): number {
    const spt = this.spt;
    let found = 0;
    for (let sp = spt.bucketHead(gfn); sp !== 0; ) {
      const next = spt.hashNext[sp]!;
      if (!this.isObsolete(sp)) {
        if (spt.gfn[sp] !== gfn) {
          this.stats.hashCollisions++;
        } else if (spt.role[sp] !== role) {
          if ((role & 0xf) > 1 && (spt.flags[sp]! & SP_UNSYNC) !== 0) this.prepareZap(sp);
        } else {
          if ((role & ROLE_DIRECT) === 0) {
            if ((spt.flags[sp]! & SP_UNSYNC) !== 0) {
              const r = this.syncPage(ctx, sp);
              if (r < 0) break;
              if (r > 0) this.flushTlbs();
            }
            spt.clearWriteFlooding(sp);
          }
          found = sp;
          break;
        }
      }
      sp = next;
    }
    this.commitZap();
    if (found !== 0) return found;

    this.stats.mmuCacheMisses++;
    const sp = spt.alloc();
    spt.role[sp] = role;
    spt.gfn[sp] = gfn;
    spt.gen[sp] = this.validGen;
    spt.listAddHead(sp);
    this.usedPages++;
    spt.hashAdd(sp);
    if (roleHasGptes(role)) this.accountShadowed(sp);
    this.emit('x86.sp.create', sp);
    return sp;
  }

  /**
   * A special shadow page (Lai Jiangshan's 2022 KVM series "KVM: X86/MMU:
   * Use one-off special shadow page for special roots", not merged; upstream
   * keeps bare pae_root/pml4_root/pml5_root pages): gfn 0, stamped with the
   * current generation, never hashed, never on the active list, not
   * accounted, not write-protected. Freed only with its root
   * (`freeSpecialRoot`).
   */
  allocSpecialPage(role: number, paeRootTable: boolean): number {
    const sp = this.spt.alloc();
    this.spt.role[sp] = role;
    this.spt.gfn[sp] = 0;
    this.spt.gen[sp] = this.validGen;
    this.spt.flags[sp]! |= SP_SPECIAL | (paeRootTable ? SP_PAE_ROOT_TABLE : 0);
    this.stats.specialPagesAllocated++;
    this.emit('x86.sp.special-alloc', sp);
    return sp;
  }

  /**
   * kvm_mmu_slot_gfn_write_protect (pt_protect): clear W and MMU-writable
   * on every spte mapping gfn at every level. Returns whether a flush is
   * needed (the caller flushes).
   */
  writeProtectGfn(slot: X86Memslot, gfn: number): boolean {
    const ops = slot.rmapOps as X86RmapOps;
    let flush = false;
    for (let level = 1; level <= RMAP_LEVELS; level++) {
      if (ops.clearWritable(slot, gfn, level, true)) flush = true;
    }
    return flush;
  }

  // --------------------------------------------------------- link / unlink

  /**
   * link_shadow_page: point parent entry `e` at `child` (a large leaf there
   * is dropped first), record the parent pointer, and propagate the child's
   * unsync state to the parent path.
   */
  linkShadowPage(e: number, child: number): void {
    const spt = this.spt;
    const old = spt.sptLo[e]!;
    if (isShadowPresent(old)) {
      this.dropSpte(e);
      this.flushTlbs();
    }
    const parent = Math.floor(e / SPTE_ENT_PER_PAGE);
    const flags = (spt.flags[parent]! & SP_PAE_ROOT_TABLE) !== 0 ? PAE_ROOT_SPTE_FLAGS : NONLEAF_SPTE_FLAGS;
    spt.sptLo[e] = spteLo(child, flags);
    spt.sptHi[e] = spteHi(child, 0);
    spt.parents.add(spt.parentPtes, child, e);
    if (spt.unsyncChildren[child]! > 0 || (spt.flags[child]! & SP_UNSYNC) !== 0) this.markUnsync(e);
  }

  /** drop_parent_pte: forget parent entry `e` of child and clear it. */
  dropParentPte(child: number, e: number): void {
    const spt = this.spt;
    if (!spt.parents.remove(spt.parentPtes, child, e)) {
      throw new Error(`internal: parent_ptes of shadow page ${child} does not hold entry ${e}`);
    }
    spt.sptLo[e] = 0;
    spt.sptHi[e] = 0;
    this.flushPending = true;
  }

  /** Flush every vCPU's TLB (kvm_flush_remote_tlbs). */
  flushTlbs(): void {
    this.flushPending = false;
    this.tlbs.flushAll();
  }

  /** drop_spte: clear a leaf and remove it from its rmap. */
  dropSpte(e: number): void {
    const spt = this.spt;
    const lo = spt.sptLo[e]!;
    spt.sptLo[e] = 0;
    spt.sptHi[e] = 0;
    if (isShadowPresent(lo)) {
      this.rmapRemove(e);
      this.stats.sptesDropped++;
      this.flushPending = true;
    }
  }

  /** mmu_page_zap_pte: drop a leaf, or unlink a child page. Returns whether something was present. */
  zapPte(sp: number, e: number): boolean {
    const lo = this.spt.sptLo[e]!;
    if (!isShadowPresent(lo)) return false;
    if (isLastSpte(lo, roleLevel(this.spt.role[sp]!))) this.dropSpte(e);
    else this.dropParentPte(spteFrame(this.spt.sptHi[e]!, lo), e);
    return true;
  }

  // -------------------------------------------------------------- rmap

  /** rmap_add: record what leaf `e` shadows and add it to the gfn's rmap. */
  protected rmapAdd(slot: X86Memslot, e: number, gfn: number, access: number): void {
    this.setTranslation(e, gfn, access);
    const level = roleLevel(this.spt.role[e >>> 9]!);
    slot.rmapOps.add(slot, gfn, level, e);
  }

  /** rmap_remove: find gfn and slot from the page, remove `e` from that rmap. */
  protected rmapRemove(e: number): void {
    const sp = Math.floor(e / SPTE_ENT_PER_PAGE);
    const gfn = this.getGfn(sp, e % SPTE_ENT_PER_PAGE);
    const slot = this.slotForGfn(gfn);
    if (slot === undefined) return;
    slot.rmapOps.remove(slot, gfn, roleLevel(this.spt.role[sp]!), e);
  }

  // -------------------------------------------------------------- zapping

  /**
   * __kvm_mmu_prepare_zap_page: zap unsync descendants, unlink every child
   * and parent, unaccount, clear unsync, and either queue the page for
   * freeing (no root references) or take it off the active list and ask
   * every vCPU to drop obsolete roots. Marks it invalid. Returns true if
   * other pages were zapped (the active list is "unstable").
   */
  prepareZap(sp: number): boolean {
    const spt = this.spt;
    if ((spt.flags[sp]! & SP_SPECIAL) !== 0) {
      throw new Error(`internal: special shadow page ${sp} cannot be zapped like a normal page`);
    }
    if ((spt.flags[sp]! & SP_ZAP_QUEUED) !== 0) return false;
    this.stats.zappedPages++;
    const before = this.zapList.length;
    this.zapUnsyncChildren(sp);
    const base = sp * SPTE_ENT_PER_PAGE;
    for (let i = 0; i < SPTE_ENT_PER_PAGE; i++) {
      if (spt.sptLo[base + i] !== 0) this.zapPte(sp, base + i);
    }
    this.unlinkParents(sp);
    const unstable = this.zapList.length > before;
    const role = spt.role[sp]!;
    if ((role & ROLE_INVALID) === 0 && roleHasGptes(role)) this.unaccountShadowed(sp);
    if ((spt.flags[sp]! & SP_UNSYNC) !== 0) this.unlinkUnsync(sp);
    let zappedRoot = false;
    if (spt.rootCount[sp] === 0) {
      spt.listDel(sp);
      spt.flags[sp]! |= SP_ZAP_QUEUED;
      this.zapList.push(sp);
      this.usedPages--;
    } else {
      spt.listDel(sp);
      zappedRoot = !this.isObsolete(sp);
    }
    spt.role[sp] = (role | ROLE_INVALID) >>> 0;
    if (zappedRoot) this.vcpus.requestAll(REQ_FREE_OBSOLETE_ROOTS);
    this.emit('x86.sp.zap', sp);
    return unstable;
  }

  /** kvm_mmu_unlink_parents. */
  protected unlinkParents(sp: number): void {
    const spt = this.spt;
    for (;;) {
      const val = spt.parentPtes[sp]!;
      if (val === 0) return;
      const e = (val & 1) === 0 ? val >>> 1 : spt.parents.words[(val >>> 1) * PTE_LIST_DESC_WORDS + DESC_SPTES]!;
      this.dropParentPte(sp, e);
    }
  }

  /**
   * kvm_mmu_commit_zap_page: one TLB flush on every vCPU, then free every
   * queued page (each must be invalid with no root references).
   */
  commitZap(): void {
    const list = this.zapList;
    if (list.length === 0) {
      if (this.flushPending) this.flushTlbs();
      return;
    }
    this.flushTlbs();
    const spt = this.spt;
    for (const sp of list) {
      if ((spt.role[sp]! & ROLE_INVALID) === 0 || spt.rootCount[sp] !== 0) {
        throw new Error(`internal: freeing shadow page ${sp} that is valid or still a root`);
      }
      spt.flags[sp]! &= ~SP_ZAP_QUEUED;
      spt.hashDel(sp);
      spt.listDel(sp);
      spt.free(sp);
    }
    list.length = 0;
  }

  /** kvm_mmu_remote_flush_or_zap. */
  remoteFlushOrZap(flush: boolean): void {
    if (this.zapList.length > 0) this.commitZap();
    else if (flush || this.flushPending) this.flushTlbs();
  }

  /** kvm_mmu_zap_oldest_mmu_pages: zap up to n of the oldest pages that are not roots. */
  zapOldest(n: number): number {
    const spt = this.spt;
    let zapped = 0;
    restart: for (;;) {
      for (let sp = spt.activeTail; sp !== 0; ) {
        const prev = spt.listPrev[sp]!;
        if (spt.rootCount[sp]! > 0) {
          sp = prev;
          continue;
        }
        const before = this.zapList.length;
        const unstable = this.prepareZap(sp);
        zapped += this.zapList.length - before;
        if (zapped >= n) break restart;
        if (unstable) continue restart;
        sp = prev;
      }
      break;
    }
    this.commitZap();
    this.stats.pagesReclaimed += zapped;
    return zapped;
  }

  /** make_mmu_pages_available: keep at least MIN_FREE_MMU_PAGES under the (soft) budget. */
  makePagesAvailable(): void {
    if (this.hasFreePages()) return;
    this.zapOldest(REFILL_PAGES - Math.max(0, this.maxPages - this.usedPages));
  }

  /** At least KVM_MIN_FREE_MMU_PAGES left under the budget: make_mmu_pages_available has nothing to do. */
  hasFreePages(): boolean {
    return this.maxPages - this.usedPages >= MIN_FREE_MMU_PAGES;
  }

  /** kvm_mmu_zap_all: zap every page on the active list. */
  zapAll(): void {
    const spt = this.spt;
    restart: for (;;) {
      for (let sp = spt.activeHead; sp !== 0; ) {
        const next = spt.listNext[sp]!;
        if (this.prepareZap(sp)) continue restart;
        sp = next;
      }
      break;
    }
    this.commitZap();
  }

  /**
   * kvm_mmu_zap_all_fast: flip mmu_valid_gen so every existing page is
   * obsolete, ask every vCPU to free obsolete roots (they reload on next
   * entry), drop every TLB entry by generation, then zap the obsolete pages
   * from the tail of the FIFO active list in batches. Special pages are not
   * on the list: their obsolete children are unlinked from them through the
   * children's parent pointers.
   */
  zapAllFast(): void {
    this.invalidateAllFast();
    this.zapObsoletePages();
  }

  /**
   * The O(1)-per-vCPU half of the fast zap: make every page obsolete, post
   * the free-obsolete-roots request, drop every TLB entry by generation.
   * Nothing can translate through an obsolete page afterwards; the pages
   * themselves are reclaimed by `zapObsoletePages`.
   */
  invalidateAllFast(): void {
    this.validGen ^= 1;
    this.stats.fastZaps++;
    this.vcpus.requestAll(REQ_FREE_OBSOLETE_ROOTS);
    this.tlbs.setGeneration(++this.tlbGeneration);
  }

  /** kvm_zap_obsolete_pages. */
  zapObsoletePages(): void {
    const spt = this.spt;
    let batch = 0;
    restart: for (;;) {
      for (let sp = spt.activeTail; sp !== 0; ) {
        const prev = spt.listPrev[sp]!;
        // No obsolete page sits in front of a newer one: the list is FIFO.
        if (!this.isObsolete(sp)) break restart;
        if ((spt.role[sp]! & ROLE_INVALID) !== 0) {
          sp = prev;
          continue;
        }
        if (batch >= BATCH_ZAP_PAGES) {
          // Where KVM may drop mmu_lock and yield (cond_resched_rwlock_write).
          this.stats.zapBatches++;
          batch = 0;
        }
        const before = this.zapList.length;
        const unstable = this.prepareZap(sp);
        const n = this.zapList.length - before;
        batch += n;
        this.stats.obsoletePagesZapped += n;
        if (unstable) continue restart;
        sp = prev;
      }
      break;
    }
    this.commitZap();
  }

  // ----------------------------------------------------------------- roots

  /** mmu_alloc_root: the page for (gfn, role) pinned as a root. */
  allocRoot(ctx: GuestPteContext, gfn: number, role: number): number {
    const sp = this.getShadowPage(ctx, gfn, role);
    this.spt.rootCount[sp]!++;
    this.stats.rootsLoaded++;
    return sp;
  }

  /** mmu_free_root_page: drop a root reference; an invalid page with none left is zapped (commit by caller). */
  freeRoot(sp: number): void {
    const spt = this.spt;
    if (sp === 0 || (spt.flags[sp]! & SP_IN_USE) === 0) return;
    this.stats.rootsFreed++;
    if (spt.rootCount[sp]! > 0) spt.rootCount[sp]!--;
    if (spt.rootCount[sp] === 0 && (spt.role[sp]! & ROLE_INVALID) !== 0) this.prepareZap(sp);
  }

  /**
   * mmu_free_special_root_page (from that 2022 series; upstream
   * kvm_mmu_free_roots() frees the bare pae_root entries): walk down from
   * the pml5/pml4 wrapper through entry 0, unlinking and freeing each
   * special page, then disconnect the 4 PAE entries (the level-2 pages stay
   * cached like any unparented page) and free the PAE page.
   */
  freeSpecialRoot(top: number): void {
    const spt = this.spt;
    let sp = top;
    this.stats.rootsFreed++;
    while (roleLevel(spt.role[sp]!) > 3) {
      const e = sp * SPTE_ENT_PER_PAGE;
      const lo = spt.sptLo[e]!;
      const hi = spt.sptHi[e]!;
      this.zapPte(sp, e);
      this.freeSpecialPage(sp);
      if (!isShadowPresent(lo)) return;
      sp = spteFrame(hi, lo);
    }
    for (let i = 0; i < 4; i++) this.zapPte(sp, sp * SPTE_ENT_PER_PAGE + i);
    this.freeSpecialPage(sp);
  }

  protected freeSpecialPage(sp: number): void {
    const spt = this.spt;
    if ((spt.flags[sp]! & (SP_SPECIAL | SP_HASHED | SP_ON_ACTIVE_LIST)) !== SP_SPECIAL || spt.parentPtes[sp] !== 0) {
      throw new Error(`internal: special shadow page ${sp} is linked where it must not be`);
    }
    const base = sp * SPTE_ENT_PER_PAGE;
    for (let i = 0; i < SPTE_ENT_PER_PAGE; i++) {
      if (spt.sptLo[base + i] !== 0) throw new Error(`internal: special shadow page ${sp} freed with entry ${i} present`);
    }
    this.emit('x86.sp.special-free', sp);
    spt.free(sp);
    this.stats.specialPagesFreed++;
  }
}
