import { DEFAULT_CONTEXT } from '@hvmmu/core';
import { shadowIndex32 } from '../shadow/ShadowIndex.js';
import { CR0, CR4, EFER, PagingMode } from '../walker/X86Registers.js';
import {
  ROLE_ACCESS_SHIFT,
  ROLE_CR0_WP,
  ROLE_CR4_PKE,
  ROLE_DIRECT,
  ROLE_EFER_NX,
  ROLE_HAS_4_BYTE_GPTE,
  ROLE_PASSTHROUGH,
  ROLE_SMAP_ANDNOT_WP,
  ROLE_SMEP_ANDNOT_WP,
  roleLevel,
  roleWithLevel,
} from '../shadow/PageRole.js';
import { SP_UNSYNC } from '../shadow/ShadowPageTable.js';
import { SPTE_ENT_PER_PAGE, isLastSpte, isShadowPresent, spteFrame } from '../spte/Spte.js';
import { ACC_ALL } from '../spte/Acc.js';
import type { GuestPteContext } from './GuestPteContext.js';
import { REQ_FREE_OBSOLETE_ROOTS, REQ_MMU_SYNC, REQ_TLB_FLUSH, type VcpuRequestTarget } from './VcpuMmuList.js';

import { NUM_PREV_ROOTS, ROOTS_CURRENT, ROOT_DUMMY, ROOT_NONE, ROOT_NORMAL, ROOT_SPECIAL } from './RootKind.js';
import { ShadowTranslator } from './ShadowTranslator.js';

const TWO_POW_32 = 0x1_0000_0000;

/**
 * One vCPU's roots and roles (KVM `vcpu->arch.root_mmu`): the CPU role the
 * guest registers give, the root role, the current root and up to three
 * previous roots cached across CR3 switches (kvm_mmu_new_pgd's fast switch),
 * special roots for PAE and for a host with more levels than the guest,
 * pending requests serviced before guest entry, and the per-address
 * invalidation INVLPG and a reflected #PF do (kvm_mmu_invalidate_addr).
 */
export abstract class VcpuRoots extends ShadowTranslator implements GuestPteContext, VcpuRequestTarget {
  // ======================================================== guest context

  gpteReserved(lo: number, hi: number): boolean {
    const ctx = this.walker.prepare(this.regs);
    const r = ((lo >>> 4) & 8) | 1;
    return ((lo & ctx.rsvdLo[r]!) | (hi & ctx.rsvdHi[r]!)) !== 0;
  }

  /** Root table gfn of the current guest mode (KVM `(cr3 & PT_BASE_ADDR_MASK) >> 12`; the PDPT for PAE). */
  rootGfn(): number {
    const cr3 = this.regs.cr3;
    if (this.cpuLevel === 2) return (cr3 & 0xfffff000) >>> 12;
    if (this.cpuLevel === 3) return (cr3 & 0xffffffe0) >>> 12;
    return Math.floor(cr3 / 4096) % 2 ** 40;
  }

  // ================================================================ roles

  /**
   * kvm_calc_cpu_role + kvm_init_shadow_mmu: the CPU role from the
   * registers, and the root role (level = max(guest levels, host root
   * level), EFER.NX forced on, passthrough for a 4-level guest under a
   * 5-level host root). Returns true if anything changed.
   */
  protected computeRoles(): boolean {
    const r = this.regs;
    const mode = r.pagingMode;
    let base: number;
    let ext = 1;
    if (mode === PagingMode.NONE) {
      base = ROLE_DIRECT | (ACC_ALL << ROLE_ACCESS_SHIFT);
    } else {
      const wp = (r.cr0 & CR0.WP) !== 0;
      const smep = (r.cr4 & CR4.SMEP) !== 0;
      const smap = (r.cr4 & CR4.SMAP) !== 0;
      base = mode | (ACC_ALL << ROLE_ACCESS_SHIFT);
      if ((r.efer & EFER.NXE) !== 0) base |= ROLE_EFER_NX;
      if (wp) base |= ROLE_CR0_WP;
      if (smep && !wp) base |= ROLE_SMEP_ANDNOT_WP;
      if (smap && !wp) base |= ROLE_SMAP_ANDNOT_WP;
      if ((r.cr4 & CR4.PAE) === 0) base |= ROLE_HAS_4_BYTE_GPTE;
      const lma = (r.efer & EFER.LMA) !== 0;
      if ((r.cr4 & CR4.PSE) !== 0) ext |= 2;
      if (lma && (r.cr4 & CR4.PKE) !== 0) ext |= 4;
      if (smap) ext |= 8;
      if (smep) ext |= 16;
      if (lma && (r.cr4 & CR4.LA57) !== 0) ext |= 32;
      if (lma) ext |= 64;
    }
    const pke = (ext & 4) !== 0;
    const rootLevel = Math.max(mode, this.hostRootLevel);
    let root = (roleWithLevel(base, rootLevel) | ROLE_EFER_NX | (pke ? ROLE_CR4_PKE : 0)) >>> 0;
    if (mode === PagingMode.LONG4 && rootLevel === 5) root = (root | ROLE_PASSTHROUGH) >>> 0;
    base >>>= 0;
    const changed = base !== this.cpuRole || ext !== this.cpuExtRole || root !== this.rootRole;
    this.cpuRole = base;
    this.cpuExtRole = ext;
    this.rootRole = root;
    this.cpuLevel = mode;
    this.pkeActive = pke;
    return changed;
  }

  // ================================================================ roots

  /**
   * kvm_mmu_load: build the root for the current role — an ordinary root
   * page at the CR3 gfn for 4/5-level guests (passthrough under a 5-level
   * host), a special chain (pml5 → pml4 → PAE page) otherwise, or the dummy
   * root when no memslot holds the root table — then sync it and flush
   * this vCPU's TLB.
   */
  loadRoot(): void {
    if (this.rootKind !== ROOT_NONE) return;
    const pages = this.pages;
    pages.makePagesAvailable();
    const role = this.rootRole;
    this.rootLevel = roleLevel(role);
    if ((role & ROLE_DIRECT) !== 0) {
      this.rootPgd = 0;
      if (this.rootLevel >= 4) {
        this.rootSp = pages.allocRoot(this, 0, role);
        this.rootKind = ROOT_NORMAL;
      } else {
        this.rootSp = this.buildSpecialRoot();
        this.rootKind = ROOT_SPECIAL;
      }
    } else {
      const gfn = this.rootGfn();
      this.rootPgd = this.regs.cr3;
      if (pages.memslots.findByGfn(gfn) === undefined) {
        this.rootSp = 0;
        this.rootKind = ROOT_DUMMY;
        return;
      }
      if (this.cpuLevel >= 4) {
        this.rootSp = pages.allocRoot(this, gfn, role);
        this.rootKind = ROOT_NORMAL;
      } else {
        this.rootSp = this.buildSpecialRoot();
        this.rootKind = ROOT_SPECIAL;
      }
    }
    this.syncRoots();
    this.vcpu.tlb.flushAll();
  }

  /**
   * The special pages of a root for a guest with fewer than 4 levels (Lai
   * Jiangshan's 2022 special-root series; mmu.c mmu_alloc_shadow_roots()
   * builds the same shape from bare pages): the PAE page, wrapped by
   * pml4/pml5 special pages when the hardware root must have 4/5 levels;
   * each wrapper's entry 0 is linked with the ordinary link logic. The PAE
   * page's four entries are filled on demand by the fault path (the level-2
   * pages are ordinary, hashed pages).
   */
  protected buildSpecialRoot(): number {
    const pages = this.pages;
    let top = pages.allocSpecialPage(roleWithLevel(this.rootRole, 3), this.rootLevel === 3);
    for (let level = 4; level <= this.rootLevel; level++) {
      const wrapper = pages.allocSpecialPage(roleWithLevel(this.rootRole, level), false);
      pages.linkShadowPage(wrapper * SPTE_ENT_PER_PAGE, top);
      top = wrapper;
    }
    return top;
  }

  /** kvm_mmu_free_roots: `mask` bit 0 = current, bits 1..3 = previous roots. */
  freeRoots(mask: number): void {
    const pages = this.pages;
    for (let i = 0; i < NUM_PREV_ROOTS; i++) {
      if ((mask & (2 << i)) !== 0 && this.prevSp[i] !== 0) {
        pages.freeRoot(this.prevSp[i]!);
        this.prevSp[i] = 0;
        this.prevPgd[i] = 0;
      }
    }
    if ((mask & ROOTS_CURRENT) !== 0) {
      if (this.rootKind === ROOT_NORMAL) pages.freeRoot(this.rootSp);
      else if (this.rootKind === ROOT_SPECIAL) pages.freeSpecialRoot(this.rootSp);
      this.rootSp = 0;
      this.rootKind = ROOT_NONE;
    }
    pages.commitZap();
  }

  /** kvm_mmu_free_obsolete_roots: dummy roots count as obsolete; special ones by generation. */
  protected freeObsoleteRoots(): void {
    const pages = this.pages;
    let mask = 0;
    if (this.rootKind === ROOT_DUMMY || ((this.rootKind === ROOT_NORMAL || this.rootKind === ROOT_SPECIAL) && pages.isObsolete(this.rootSp))) {
      mask |= ROOTS_CURRENT;
    }
    for (let i = 0; i < NUM_PREV_ROOTS; i++) {
      if (this.prevSp[i] !== 0 && pages.isObsolete(this.prevSp[i]!)) mask |= 2 << i;
    }
    if (mask !== 0) this.freeRoots(mask);
  }

  /** kvm_mmu_sync_roots: sync the unsync pages reachable from the current root. */
  syncRoots(): void {
    if ((this.rootRole & ROLE_DIRECT) !== 0) return;
    if (this.rootKind !== ROOT_NORMAL && this.rootKind !== ROOT_SPECIAL) return;
    const spt = this.pages.spt;
    const sp = this.rootSp;
    if (spt.unsyncChildren[sp]! > 0 || (spt.flags[sp]! & SP_UNSYNC) !== 0) this.pages.syncChildren(this, sp);
  }

  /**
   * Service pending requests, as KVM does before entering the guest, and
   * (with `load`) make sure a root is loaded. Bounded: a request raised
   * while servicing (a root zapped by a sync) is serviced on the next round.
   */
  enterGuest(load: boolean): void {
    for (let round = 0; round < 4 && this.requests !== 0; round++) {
      const req = this.requests;
      this.requests = 0;
      if ((req & REQ_FREE_OBSOLETE_ROOTS) !== 0) this.freeObsoleteRoots();
      if ((req & REQ_MMU_SYNC) !== 0) this.syncRoots();
      if ((req & REQ_TLB_FLUSH) !== 0) this.vcpu.tlb.flushAll();
    }
    if (load) {
      if (this.rootKind === ROOT_DUMMY && this.pages.memslots.findByGfn(this.rootGfn()) !== undefined) {
        // Memory appeared at the root gfn: the dummy root is obsolete.
        this.freeRoots(ROOTS_CURRENT);
      }
      this.loadRoot();
    }
  }

  /** Whether `sp` may serve as root for (pgd, role) (KVM is_root_usable; invalid pages never match their role). */
  protected rootUsable(sp: number, pgd: number, pgdOfSp: number, role: number): boolean {
    return sp !== 0 && ((role & ROLE_DIRECT) !== 0 || pgd === pgdOfSp) && this.pages.spt.role[sp] === role;
  }

  /**
   * kvm_mmu_new_pgd / fast_pgd_switch: on a CR3 switch keep or reuse a
   * cached root (the cache rotates LRU-style); special and dummy roots are
   * never cached and are freed. On a miss the current root is freed and a
   * new one is built on next entry.
   */
  protected newPgd(pgd: number): void {
    const role = this.rootRole;
    if (this.rootKind === ROOT_SPECIAL || this.rootKind === ROOT_DUMMY) this.freeRoots(ROOTS_CURRENT);
    let found = false;
    if (this.rootKind === ROOT_NORMAL) {
      if (this.rootUsable(this.rootSp, pgd, this.rootPgd, role)) {
        found = true;
      } else {
        for (let i = 0; i < NUM_PREV_ROOTS && !found; i++) {
          const sp = this.prevSp[i]!;
          const p = this.prevPgd[i]!;
          this.prevSp[i] = this.rootSp;
          this.prevPgd[i] = this.rootPgd;
          this.rootSp = sp;
          this.rootPgd = p;
          this.rootKind = sp === 0 ? ROOT_NONE : ROOT_NORMAL;
          found = this.rootUsable(sp, pgd, p, role);
        }
        if (!found) this.freeRoots(ROOTS_CURRENT);
      }
    } else {
      for (let i = 0; i < NUM_PREV_ROOTS; i++) {
        if (!this.rootUsable(this.prevSp[i]!, pgd, this.prevPgd[i]!, role)) continue;
        this.rootSp = this.prevSp[i]!;
        this.rootPgd = this.prevPgd[i]!;
        this.rootKind = ROOT_NORMAL;
        for (let j = i; j < NUM_PREV_ROOTS - 1; j++) {
          this.prevSp[j] = this.prevSp[j + 1]!;
          this.prevPgd[j] = this.prevPgd[j + 1]!;
        }
        this.prevSp[NUM_PREV_ROOTS - 1] = 0;
        this.prevPgd[NUM_PREV_ROOTS - 1] = 0;
        found = true;
        break;
      }
    }
    if (found) {
      this.pages.stats.prevRootHits++;
      this.rootLevel = roleLevel(this.pages.spt.role[this.rootSp]!);
      this.pages.spt.clearWriteFlooding(this.rootSp);
    }
  }

  /** Invalidate vpn in the current root only (a reflected #PF does this: kvm_inject_emulated_page_fault). */
  invalidateCurrent(vpn: number): void {
    this.vcpu.tlb.flushPage(DEFAULT_CONTEXT, vpn);
    if (this.rootKind !== ROOT_NORMAL && this.rootKind !== ROOT_SPECIAL) return;
    this.pages.remoteFlushOrZap(this.invalidateInRoot(this.rootSp, this.cpuLevel >= 4 ? vpn : vpn & 0xfffff));
  }

  /** __kvm_mmu_invalidate_addr: walk toward vpn, resyncing entries of unsync pages, while unsync children remain. */
  protected invalidateInRoot(root: number, vpn: number): boolean {
    const pages = this.pages;
    const spt = pages.spt;
    const lo32 = vpn >>> 0;
    const hi20 = (vpn - lo32) / TWO_POW_32;
    let sp = root;
    let level = roleLevel(spt.role[sp]!);
    let flush = false;
    for (;;) {
      const index = shadowIndex32(lo32, hi20, level);
      if ((spt.flags[sp]! & SP_UNSYNC) !== 0 && pages.syncSpte(this, sp, index) > 0) flush = true;
      if (spt.unsyncChildren[sp] === 0) break;
      const e = sp * SPTE_ENT_PER_PAGE + index;
      const lo = spt.sptLo[e]!;
      if (!isShadowPresent(lo) || isLastSpte(lo, level)) break;
      sp = spteFrame(spt.sptHi[e]!, lo);
      level--;
    }
    return flush;
  }
}
