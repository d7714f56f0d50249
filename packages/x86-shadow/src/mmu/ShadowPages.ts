import { inject, injectable } from 'tsyringe';
import { MemslotTable, TlbShootdown, TRACE_HOOK, VM_CONFIG, type TraceHook, type VmConfig } from '@hvmmu/core';
import type { X86Memslot, X86ShadowTypes } from '../X86ShadowTypes.js';
import {
  ROLE_DIRECT,
  ROLE_INVALID,
  ROLE_PASSTHROUGH,
  ROLE_SYNC_IGNORE,
  roleAccess,
  roleHasGptes,
  roleLevel,
  describeRole,
  ROLE_HAS_4_BYTE_GPTE,
  roleQuadrant,
} from '../shadow/PageRole.js';
import { SP_HASHED, SP_IN_USE, SP_ON_ACTIVE_LIST, SP_SPECIAL, SP_UNSYNC, ShadowPageTable, UNSYNC_BITMAP_WORDS } from '../shadow/ShadowPageTable.js';
import {
  NONLEAF_SPTE_FLAGS,
  PAE_ROOT_SPTE_FLAGS,
  SPTE_A,
  SPTE_D,
  SPTE_ENT_PER_PAGE,
  SPTE_HI_NX,
  SPTE_HI_PKEY_MASK,
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
import { DESC_SPTES, PTE_LIST_DESC_WORDS } from '../rmap/PteList.js';
import { RMAP_LEVELS, type SlotRmap, pagesPerLevel, slotRmap } from '../rmap/SlotRmap.js';
import type { X86RmapOps } from '../rmap/X86RmapOps.js';
import type { GuestPteContext } from './GuestPteContext.js';
import { GuestPhysMemory } from '@hvmmu/core';
import { ShadowMmuStats } from '../shadow/ShadowMmuStats.js';
import { REQ_FREE_OBSOLETE_ROOTS, VcpuMmuList } from './VcpuMmuList.js';

/** Extra flag: a level-3 special page used as the hardware's PAE root (its entries are PDPTEs). */
export const SP_PAE_ROOT_TABLE = 1 << 5;
/** Extra flag: the page is on the pending-free (invalid) list. */
export const SP_ZAP_QUEUED = 1 << 6;

/** KVM BATCH_ZAP_PAGES: lock-break interval when zapping obsolete pages. */
export const BATCH_ZAP_PAGES = 10;
/** KVM_MIN_FREE_MMU_PAGES / KVM_REFILL_PAGES / KVM_MIN_ALLOC_MMU_PAGES. */
export const MIN_FREE_MMU_PAGES = 5;
export const REFILL_PAGES = 25;
export const MIN_ALLOC_MMU_PAGES = 64;
/** KVM_PERMILLE_MMU_PAGES: default shadow-page budget is 2% of guest pages. */
export const PERMILLE_MMU_PAGES = 20;

/** Outcome of `setSpte` (KVM RET_PF_*). */
export const SET_SPTE_FIXED = 0;
export const SET_SPTE_SPURIOUS = 1;
export const SET_SPTE_EMULATE = 2;

/**
 * The shadow-page life cycle of KVM's mmu.c on `ShadowPageTable`: lookup
 * and creation by (gfn, role), accounting and write protection of shadowed
 * guest tables, link / unlink with parent pointers, unsync and sync,
 * make_spte / mmu_set_spte with rmap bookkeeping, emulated-write handling,
 * prepare-zap / commit-zap, reclaim, zap-all and the fast zap by
 * generation. Every function keeps KVM's shadow-MMU invariants (as checked
 * by test/shadow/helpers/invariants.ts)
 * and flushes every vCPU's TLB whenever an spte is dropped or loses a
 * permission.
 */
@injectable()
export class ShadowPages {
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
  private flushPending = false;
  /** Pages prepared for zapping, freed by `commitZap` after one TLB flush (KVM invalid_list). */
  private readonly zapList: number[] = [];
  private readonly unsyncFound: number[] = [];
  /** Results of `makeSpte`. */
  private newLo = 0;
  private newHi = 0;
  private wrprot = false;

  constructor(
    @inject(ShadowPageTable) readonly spt: ShadowPageTable,
    @inject(MemslotTable) readonly memslots: MemslotTable<X86ShadowTypes>,
    @inject(TlbShootdown) readonly tlbs: TlbShootdown,
    @inject(ShadowMmuStats) readonly stats: ShadowMmuStats,
    @inject(VcpuMmuList) private readonly vcpus: VcpuMmuList,
    @inject(VM_CONFIG) config: VmConfig<X86ShadowTypes['options']>,
    @inject(TRACE_HOOK) private readonly trace: TraceHook | null,
  ) {
    const max = config.backendOptions.maxShadowPages;
    if (max !== undefined) this.maxPages = max;
    this.guestMem = new GuestPhysMemory(memslots as unknown as MemslotTable);
  }

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

  private setTranslation(e: number, gfn: number, access: number): void {
    this.spt.translation[e] = gfn * 8 + access;
  }

  private emit(kind: string, sp: number): void {
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

  /** account_shadowed: count the page and write-protect its gfn (and write-track it for upper levels). */
  private accountShadowed(sp: number): void {
    this.indirectShadowPages++;
    const gfn = this.spt.gfn[sp]!;
    const slot = this.slotForGfn(gfn);
    if (slot === undefined) return;
    const r = slotRmap(slot);
    r.shadowed[gfn - slot.baseGfn]!++;
    if (roleLevel(this.spt.role[sp]!) > 1) r.writeTrack[gfn - slot.baseGfn]!++;
    if (this.writeProtectGfn(slot, gfn)) this.flushTlbs();
  }

  /** unaccount_shadowed: reverse the counters; write access comes back lazily on the next fault. */
  private unaccountShadowed(sp: number): void {
    this.indirectShadowPages--;
    const gfn = this.spt.gfn[sp]!;
    const slot = this.slotForGfn(gfn);
    if (slot === undefined || slot.arch === undefined) return;
    const r = slotRmap(slot);
    const i = gfn - slot.baseGfn;
    if (r.shadowed[i]! > 0) r.shadowed[i]!--;
    if (roleLevel(this.spt.role[sp]!) > 1 && r.writeTrack[i]! > 0) r.writeTrack[i]!--;
  }

  /** kvm_gfn_is_write_tracked: an upper-level page shadows gfn. */
  isWriteTracked(slot: X86Memslot, gfn: number): boolean {
    return slotRmap(slot).writeTrack[gfn - slot.baseGfn]! > 0;
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
  private rmapAdd(slot: X86Memslot, e: number, gfn: number, access: number): void {
    this.setTranslation(e, gfn, access);
    const level = roleLevel(this.spt.role[e >>> 9]!);
    slot.rmapOps.add(slot, gfn, level, e);
  }

  /** rmap_remove: find gfn and slot from the page, remove `e` from that rmap. */
  private rmapRemove(e: number): void {
    const sp = Math.floor(e / SPTE_ENT_PER_PAGE);
    const gfn = this.getGfn(sp, e % SPTE_ENT_PER_PAGE);
    const slot = this.slotForGfn(gfn);
    if (slot === undefined) return;
    slot.rmapOps.remove(slot, gfn, roleLevel(this.spt.role[sp]!), e);
  }

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
  private makeSpte(
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

  // ------------------------------------------------------- unsync / sync

  /**
   * mmu_try_to_unsync_pages: a writable spte is wanted for gfn. Refuse
   * (true) if an upper-level page shadows gfn, or if pages shadow it and
   * we are synchronizing / prefetching; otherwise mark its level-1 pages
   * unsync and allow.
   */
  private tryUnsync(slot: X86Memslot, gfn: number, synchronizing: boolean, prefetch: boolean): boolean {
    const r = slotRmap(slot);
    const i = gfn - slot.baseGfn;
    // No page shadows gfn (the common case: one load): nothing to unsync, the bucket walk would
    // find nothing. `shadowed` counts every page `writeTrack` counts, so none is write-tracked.
    if (r.shadowed[i] === 0) return false;
    return this.tryUnsyncShadowed(r, i, gfn, synchronizing, prefetch);
  }

  /** `tryUnsync` for a gfn that some shadow page shadows (kept apart: the common case inlines without it). */
  private tryUnsyncShadowed(r: SlotRmap, i: number, gfn: number, synchronizing: boolean, prefetch: boolean): boolean {
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
  private unsyncPage(sp: number): void {
    this.stats.unsyncs++;
    this.unsyncPages++;
    this.spt.flags[sp]! |= SP_UNSYNC;
    this.markParentsUnsync(sp);
    this.emit('x86.sp.unsync', sp);
  }

  /** kvm_mmu_mark_parents_unsync: set this page's bit in every parent's unsync bitmap. */
  private markParentsUnsync(sp: number): void {
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
  private markUnsync(e: number): void {
    const spt = this.spt;
    const parent = Math.floor(e / SPTE_ENT_PER_PAGE);
    if (spt.testAndSetUnsyncBit(parent, e % SPTE_ENT_PER_PAGE)) return;
    if (spt.unsyncChildren[parent]!++ !== 0) return;
    this.markParentsUnsync(parent);
  }

  private clearUnsyncChildBit(sp: number, index: number): void {
    if (!this.spt.testUnsyncBit(sp, index)) return;
    this.spt.clearUnsyncBit(sp, index);
    this.spt.unsyncChildren[sp]!--;
  }

  /** kvm_unlink_unsync_page. */
  private unlinkUnsync(sp: number): void {
    this.spt.flags[sp]! &= ~SP_UNSYNC;
    this.unsyncPages--;
  }

  /**
   * mmu_unsync_walk: append the unsync pages below sp to `unsyncFound`,
   * clearing the bitmap bits on the way (each edge is visited once, so a
   * hostile sharing pattern cannot make this exponential).
   */
  private collectUnsync(sp: number): void {
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

  // ------------------------------------------------------ emulated writes

  /**
   * Emulate a guest write the hardware could not do (FaultKind.EMULATE):
   * store `len` bytes of `data` from `from` at gpa (one page; the memslot
   * table marks the page dirty), then update the shadow pages of the
   * written gfn (kvm_page_track_write → kvm_mmu_track_write). Returns false,
   * changing nothing, if no writable memory backs gpa.
   */
  emulateWrite(ctx: GuestPteContext, gpa: number, data: Uint8Array, from: number, len: number): boolean {
    const off = this.memslots.resolve(gpa, true);
    if (off < 0 || off + len > this.memslots.view.byteLength) return false;
    this.memslots.host.bytes.set(data.subarray(from, from + len), off);
    this.stats.emulatedWrites++;
    this.trackWrite(ctx, gpa, len);
    return true;
  }

  /**
   * kvm_mmu_track_write: the guest wrote `bytes` at gpa (emulated, because
   * the gfn is write-protected). For each page shadowing that gfn: a
   * misaligned write or write flooding (≥ 3 emulated writes to an upper-level
   * table since it was last used) zaps the page; otherwise the 1 spte (2 for
   * a 4-byte PDE) the write touched is zapped and re-faulted later.
   */
  trackWrite(ctx: GuestPteContext, gpa: number, bytes: number): void {
    if (this.indirectShadowPages === 0) return;
    // A 4-byte write by a PAE guest is widened to the containing 8-byte gpte.
    if (ctx.cpuLevel === 3 && bytes === 4) {
      gpa -= gpa % 8;
      bytes = 8;
    }
    const gfn = Math.floor(gpa / 4096);
    const offset = gpa - gfn * 4096;
    const spt = this.spt;
    let flush = false;
    for (let sp = spt.bucketHead(gfn); sp !== 0; sp = spt.hashNext[sp]!) {
      if (spt.gfn[sp] !== gfn || this.isObsolete(sp) || !roleHasGptes(spt.role[sp]!)) continue;
      const role = spt.role[sp]!;
      const level = roleLevel(role);
      if (writeMisaligned(role, offset, bytes) || this.detectWriteFlooding(sp, level)) {
        this.prepareZap(sp);
        this.stats.flooded++;
        continue;
      }
      // get_written_sptes: 4-byte gptes map to 8-byte sptes; a 4-byte PDE covers two 2 MiB sptes.
      let pageOffset = offset;
      let n = 1;
      if ((role & ROLE_HAS_4_BYTE_GPTE) !== 0) {
        pageOffset *= 2;
        if (level === 2) {
          pageOffset = (pageOffset - (pageOffset % 8)) * 2;
          n = 2;
        }
        const quadrant = Math.floor(pageOffset / 4096);
        pageOffset %= 4096;
        if (quadrant !== roleQuadrant(role)) continue;
      }
      const e0 = sp * SPTE_ENT_PER_PAGE + Math.floor(pageOffset / 8);
      for (let k = 0; k < n; k++) {
        if (this.zapPte(sp, e0 + k)) {
          flush = true;
          if (level > 1) this.stats.pdeZapped++;
        }
      }
    }
    this.remoteFlushOrZap(flush);
  }

  /** detect_write_flooding: level-1 pages never flood (they go unsync instead). */
  private detectWriteFlooding(sp: number, level: number): boolean {
    if (level === 1) return false;
    return this.spt.countFloodingWrite(sp) >= 3;
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

  /** mmu_zap_unsync_children. */
  private zapUnsyncChildren(sp: number): void {
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

  /** kvm_mmu_unlink_parents. */
  private unlinkParents(sp: number): void {
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

  private freeSpecialPage(sp: number): void {
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

/** The gpa of the gpte behind entry i of a level-1 page (FNAME(get_level1_sp_gpa)). */
export function level1GpteGpa(gfn: number, role: number, i: number): number {
  if ((role & ROLE_HAS_4_BYTE_GPTE) !== 0) return gfn * 4096 + (roleQuadrant(role) * SPTE_ENT_PER_PAGE + i) * 4;
  return gfn * 4096 + i * 8;
}

/** FNAME(gpte_access): W and U from the entry, X unless XD (4-byte entries have no XD). */
export function gpteAccess(lo: number, hi: number, fourByte: boolean): number {
  const x = fourByte || (hi & 0x8000_0000) === 0 ? ACC_EXEC : 0;
  return (lo & (ACC_WRITE | ACC_USER)) | x;
}

/**
 * detect_write_misaligned: a write smaller than 4 bytes or spanning two
 * gptes (a 1-byte write at a gpte-aligned offset is allowed: guests clear
 * status bits with byte operations).
 */
export function writeMisaligned(role: number, offset: number, bytes: number): boolean {
  const pteSize = (role & ROLE_HAS_4_BYTE_GPTE) !== 0 ? 4 : 8;
  if (offset % pteSize === 0 && bytes === 1) return false;
  const misaligned = Math.floor(offset / pteSize) !== Math.floor((offset + bytes - 1) / pteSize);
  return misaligned || bytes < 4;
}

/**
 * True if the new spte grants less than the old one (W, U or X lost, or
 * another frame / key): the hardware TLBs must then be flushed.
 */
export function lostPermission(oldLo: number, oldHi: number, newLo: number, newHi: number): boolean {
  if (!isShadowPresent(oldLo)) return false;
  if (!isShadowPresent(newLo)) return true;
  if ((oldLo & ~newLo & (SPTE_W | SPTE_U | SPTE_P)) !== 0) return true;
  if ((newHi & ~oldHi & SPTE_HI_NX) !== 0) return true;
  if (((oldHi ^ newHi) & SPTE_HI_PKEY_MASK) !== 0) return true;
  return spteFrame(oldHi, oldLo) !== spteFrame(newHi, newLo);
}
