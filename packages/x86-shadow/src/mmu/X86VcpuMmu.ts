import { Access, ACCESS_KINDS, ACCESS_MASK, DEFAULT_CONTEXT, HvmmuError, type SoftTlb, type TranslationResult, type Translator, type Vcpu } from '@hvmmu/core';
import type { X86ShadowTypes } from '../X86ShadowTypes.js';
import { GuestWalk } from '../walker/GuestWalk.js';
import { shadowIndex32 } from '../shadow/ShadowIndex.js';
import { GuestWalker } from '../walker/GuestWalker.js';
import { loadPdptes } from '../walker/loadPdptes.js';
import { ControlWrite, controlRegisterFault, effectiveEfer, writtenCr0, type ControlWriteValue } from '../walker/ControlRegisterRules.js';
import { checkMaxPhyAddr } from '../walker/PagingContext.js';
import { booleanOperand, checkControlOperands, cr3Operand, low32, u32Operand } from '../walker/registerOperands.js';
import { CR0, CR4, EFER, PFERR, PagingMode, X86Registers, pagingModeOf, type ControlRegisters } from '../walker/X86Registers.js';
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
import { SPTE_A, SPTE_ENT_PER_PAGE, SPTE_MMU_PRESENT, SPTE_P, SPTE_PS, isLastSpte, isShadowPresent, linkSpteChild, spteFrame } from '../spte/Spte.js';
import { ACC_ALL } from '../spte/Acc.js';
import type { GuestPteContext } from './GuestPteContext.js';
import { HardwarePermissions } from './HardwarePermissions.js';
import { ShadowPages } from './ShadowPages.js';
import { REQ_FREE_OBSOLETE_ROOTS, REQ_MMU_SYNC, REQ_TLB_FLUSH, type VcpuRequestTarget } from './VcpuMmuList.js';

/** What the vCPU's current root is. */
export const ROOT_NONE = 0;
/** An ordinary, hashed root page (4/5-level guests, passthrough, 4/5-level direct roots). */
export const ROOT_NORMAL = 1;
/** A chain of special shadow pages (PAE root, with pml4/pml5 wrappers above it). */
export const ROOT_SPECIAL = 2;
/** KVM's dummy root: no memslot holds the root table, nothing can ever be mapped. */
export const ROOT_DUMMY = 3;

/** Root selectors for `freeRoots` (KVM_MMU_ROOT_CURRENT / KVM_MMU_ROOT_PREVIOUS(i)). */
export const ROOTS_CURRENT = 1;
export const ROOTS_ALL = 0xf;
/** KVM_MMU_NUM_PREV_ROOTS. */
export const NUM_PREV_ROOTS = 3;

/** Exception vectors the guest may be given. */
export const VECTOR_GP = 13;
export const VECTOR_PF = 14;

const TWO_POW_32 = 0x1_0000_0000;
const TWO_POW_20 = 0x10_0000;
const MAX_VPN = 2 ** 52 - 1;
/** CR4 bits whose change reloads the PAE PDPTEs (KVM X86_CR4_PDPTR_BITS). */
const CR4_PDPTR_BITS = CR4.PGE | CR4.PSE | CR4.PAE | CR4.SMEP;

export type { ControlRegisters };

/** The PDPTEs before a reload (compared after it); scratch, so that a control write allocates nothing. */
const savedPdpteLo = new Uint32Array(4);
const savedPdpteHi = new Uint32Array(4);

/**
 * The W, U and I/D bits of a hardware miss's code, by `access | (CPL is 3) << 4`
 * (SDM 4.7): U for a user access, made explicitly or at CPL 3 (never for an
 * implicit supervisor access).
 */
const MISS_CODES = Uint8Array.from({ length: 2 * ACCESS_KINDS }, (_, key) => {
  const access = key & ACCESS_MASK;
  const user = (access & Access.IMPLICIT) === 0 && ((access & Access.USER) !== 0 || key >= ACCESS_KINDS);
  return ((access & Access.WRITE) !== 0 ? PFERR.W : 0) | (user ? PFERR.U : 0) | ((access & Access.FETCH) !== 0 ? PFERR.ID : 0);
});

/**
 * One vCPU's MMU (KVM `vcpu->arch.root_mmu` plus the MMU side of the
 * vCPU): the guest registers, the CPU and root roles, the current root and
 * up to three previous roots cached across CR3 switches, pending requests,
 * and the hardware translator that walks the shadow table. Also the x86 API
 * of the vCPU — MOV to CR0/CR3/CR4, WRMSR EFER, WRPKRU, INVLPG — and
 * guest-visible memory accessors. Reached as `vcpu.arch`.
 */
export class X86VcpuMmu implements Translator, GuestPteContext, VcpuRequestTarget {
  /** Guest registers. Change them only through the setters (they rebuild the MMU). */
  readonly regs = new X86Registers();
  readonly walker = new GuestWalker();
  /** Scratch walk of the fault path. */
  readonly walk = new GuestWalk();
  private readonly hw = new HardwarePermissions();
  /** `hw.table`, held directly: the hardware walk reads it on every TLB refill. */
  private readonly hwTable = this.hw.table;
  /** The vCPU's TLB, held directly for the same reason (its flush count guards the caches below). */
  private readonly tlb: SoftTlb;

  /** KVM cpu_role (base word) and extended role bits; root_role. */
  cpuRole = 0;
  cpuExtRole = 0;
  rootRole = 0;
  /** Guest paging levels: 0 (paging off), 2, 3, 4, 5. */
  cpuLevel = 0;
  pkeActive = false;

  requests = 0;
  rootSp = 0;
  rootKind = ROOT_NONE;
  rootPgd = 0;
  /** Level the hardware walk starts at (the root page's level). */
  rootLevel = 0;
  readonly prevSp = new Int32Array(NUM_PREV_ROOTS);
  readonly prevPgd = new Float64Array(NUM_PREV_ROOTS);

  /** Vector of the last fault reflected to the guest (14 = #PF, 13 = #GP). */
  lastExceptionVector = 0;
  /** Value of the last successful `read` (low and high 32 bits). */
  readLo = 0;
  readHi = 0;
  /** One-entry paging-structure cache of the translator: 2 MiB region → level-1 shadow page. */
  private pscPdeLo = -1;
  private pscPdeHi = -1;
  /** Root the cache entry belongs to (0: no entry). */
  private pscRoot = 0;
  private pscSp = 0;
  private pscFlushes = -1;
  /**
   * The shadow pages above `pscSp` on its path, by level (2..rootLevel);
   * valid while the cache entry is, and for the entry `level1Miss` returns.
   */
  readonly pscPath = new Int32Array(6);
  /**
   * The last hardware miss on a not-present level-1 entry (KVM's fault path
   * re-walks the shadow table to find it; the fault handler reuses it while
   * nothing was unlinked since): entry handle (-1: none), page number, root
   * and the TLB flush count at the time.
   */
  private missE = -1;
  private missVpn = -1;
  private missRoot = 0;
  private missFlushes = -1;
  /** Level of the entry `walkShadow` returned. */
  private walkLevel = 1;

  constructor(
    readonly vcpu: Vcpu<X86ShadowTypes>,
    private readonly pages: ShadowPages,
    /** Smallest level of the hardware root (3 = as KVM shadows; 4/5 = a 64-bit host's NPT). */
    readonly hostRootLevel: number,
  ) {
    this.tlb = vcpu.tlb;
    this.computeRoles();
    this.hw.update(this.regs);
  }

  get hasDummyRoot(): boolean {
    return this.rootKind === ROOT_DUMMY;
  }

  // ======================================================== hardware side

  /**
   * The hardware walk of the shadow table from the current root (special
   * roots included): at most 5 reads, no allocation. A missing entry or a
   * leaf that refuses the access is a miss with a #PF-like code; so is any
   * pending request (the vCPU cannot enter the guest until it is serviced).
   * Sets A in the leaf it uses, as the processor does (SDM 4.8).
   */
  translate(vpn: number, access: number, out: TranslationResult): number {
    // Long mode through the paging-structure cache (SDM 4.10.3: the level-1 table last
    // reached for this 2 MiB region; every change that unlinks a table flushes the TLBs,
    // which invalidates it). A hit also proves the address canonical: the entry was filled
    // by a walk of an address with the same bits 51:32 under the same root (a paging-mode
    // change replaces the root). Kept small so the vCPU's slow path can inline it.
    if (this.cpuLevel < 4 || this.requests !== 0) return this.translateFull(vpn, access, out);
    const lo32 = vpn >>> 0;
    const hi20 = (vpn - lo32) / TWO_POW_32;
    if (!this.pscHit(lo32, hi20)) return this.translateFull(vpn, access, out);
    const e = (this.pscSp << 9) | (lo32 & 511);
    const lo = this.pages.spt.sptLo[e]!;
    if ((lo & SPTE_P) === 0) return this.entryMiss(e, lo, 1, vpn, access, out);
    return this.leaf(e, lo, 1, lo32, access, out);
  }

  /** The paging-structure cache holds the level-1 table of this 2 MiB region (see `translate`). */
  private pscHit(lo32: number, hi20: number): boolean {
    return lo32 >>> 9 === this.pscPdeLo && hi20 === this.pscPdeHi && this.rootSp === this.pscRoot && this.tlb.flushes === this.pscFlushes;
  }

  /** Present leaf `e` (value `lo`) at `level`: check `access`, set A (SDM 4.8), return the host frame. */
  private leaf(e: number, lo: number, level: number, lo32: number, access: number, out: TranslationResult): number {
    const spt = this.pages.spt;
    const hi = spt.sptHi[e]!;
    const perm = this.hardwarePerm(lo, hi);
    if (((perm >> access) & 1) === 0) return this.miss(access, out, PFERR.P);
    if ((lo & SPTE_A) === 0) spt.sptLo[e] = (lo | SPTE_A) >>> 0;
    let hfn = (hi & 0xfffff) * TWO_POW_20 + (lo >>> 12);
    if (level > 1) hfn += lo32 & ((1 << (9 * (level - 1))) - 1);
    out.hfn = hfn;
    out.perm = perm;
    return hfn;
  }

  /** `translate` in every mode and case: pending requests, canonical check, the walk from the root. */
  private translateFull(vpn: number, access: number, out: TranslationResult): number {
    if (this.requests !== 0 || this.rootSp === 0) return this.miss(access, out, 0);
    let lo32: number;
    let hi20: number;
    if (this.cpuLevel >= 4) {
      lo32 = vpn >>> 0;
      hi20 = (vpn - lo32) / TWO_POW_32;
      // SDM 3.3.7.1: a non-canonical address is #GP, never a translation.
      const top = this.cpuLevel === 5 ? hi20 >>> 12 : hi20 >>> 3;
      if (vpn > MAX_VPN || (top !== 0 && top !== (this.cpuLevel === 5 ? 0xff : 0x1ffff))) return this.nonCanonical(access, out);
    } else {
      // Linear addresses are 32 bits below long mode: use the low bits, never cache an alias.
      lo32 = vpn & 0xfffff;
      hi20 = 0;
      if (lo32 !== vpn) out.cacheable = false;
    }
    let e: number;
    let level = 1;
    if (this.pscHit(lo32, hi20)) {
      e = (this.pscSp << 9) | (lo32 & 511);
    } else {
      e = this.walkShadow(lo32, hi20);
      level = this.walkLevel;
    }
    const lo = this.pages.spt.sptLo[e]!;
    if ((lo & SPTE_P) === 0) return this.entryMiss(e, lo, level, hi20 * TWO_POW_32 + lo32, access, out);
    return this.leaf(e, lo, level, lo32, access, out);
  }

  /**
   * The hardware walk from the root (the paging-structure cache missed):
   * returns the last entry read — a leaf, or one that is not present — with
   * its level in `walkLevel`, and refills the cache (and `pscPath`) when it
   * reaches a level-1 table.
   */
  private walkShadow(lo32: number, hi20: number): number {
    // This walk rewrites the cache and `pscPath` (which a recorded miss also relies on).
    this.pscRoot = 0;
    this.missVpn = -1;
    const spt = this.pages.spt;
    const sptLo = spt.sptLo;
    const sptHi = spt.sptHi;
    let sp = this.rootSp;
    let level = this.rootLevel;
    for (;;) {
      const index = shadowIndex32(lo32, hi20, level);
      const e = (sp << 9) | index;
      const lo = sptLo[e]!;
      if (level === 1 || (lo & (SPTE_P | SPTE_PS)) !== SPTE_P) {
        this.walkLevel = level;
        return e;
      }
      this.pscPath[level] = sp;
      sp = linkSpteChild(sptHi[e]!, lo);
      level--;
      if (level === 1) {
        this.pscPdeLo = lo32 >>> 9;
        this.pscPdeHi = hi20;
        this.pscRoot = this.rootSp;
        this.pscSp = sp;
        this.pscFlushes = this.tlb.flushes;
      }
    }
  }

  /** Entry `e` (at `level`, value `lo`) is not present: remember an empty level-1 entry for the fault handler. */
  private entryMiss(e: number, lo: number, level: number, vpn: number, access: number, out: TranslationResult): number {
    if (level === 1 && (lo & SPTE_MMU_PRESENT) === 0) {
      this.missE = e;
      this.missVpn = vpn;
      this.missRoot = this.rootSp;
      this.missFlushes = this.tlb.flushes;
    }
    return this.miss(access, out, 0);
  }

  private nonCanonical(access: number, out: TranslationResult): number {
    out.cacheable = false;
    return this.miss(access, out, 0);
  }

  /** A hardware miss: the #PF-like code of `access` (plus `extra`) into `out`; returns -1. */
  private miss(access: number, out: TranslationResult, extra: number): number {
    // Small enough to inline into the vCPU's slow path with the rest of the miss.
    out.missCode = extra | MISS_CODES[access | (this.regs.cpl === 3 ? ACCESS_KINDS : 0)]!;
    return -1;
  }

  /**
   * The not-present level-1 entry the last hardware walk missed on for
   * (guest) page vpn, or -1. Valid only while that walk's path is intact:
   * same root, and no TLB flush since (every unlink and every zap of a
   * shadow page flushes the TLBs, the rule the paging-structure cache
   * relies on too). The pages of that path are then in `pscPath`.
   */
  level1Miss(vpn: number): number {
    if (this.missVpn !== vpn || this.missRoot !== this.rootSp || this.missFlushes !== this.tlb.flushes) return -1;
    return this.missE;
  }

  /** The hardware permission mask of leaf spte (lo, hi) for the current registers. */
  hardwarePerm(lo: number, hi: number): number {
    return this.hwTable[(((hi >>> 27) & 15) << 3) | ((hi >>> 31) << 2) | ((lo >>> 1) & 3)]!;
  }

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
  private computeRoles(): boolean {
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
  private buildSpecialRoot(): number {
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
  private freeObsoleteRoots(): void {
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
  private rootUsable(sp: number, pgd: number, pgdOfSp: number, role: number): boolean {
    return sp !== 0 && ((role & ROLE_DIRECT) !== 0 || pgd === pgdOfSp) && this.pages.spt.role[sp] === role;
  }

  /**
   * kvm_mmu_new_pgd / fast_pgd_switch: on a CR3 switch keep or reuse a
   * cached root (the cache rotates LRU-style); special and dummy roots are
   * never cached and are freed. On a miss the current root is freed and a
   * new one is built on next entry.
   */
  private newPgd(pgd: number): void {
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

  // ========================================================= x86 vCPU API

  /*
   * The control-register writes. A value is a 32-bit pattern: an integer in
   * [-2^31, 2^32), so `CR0.PE | CR0.PG` (negative in JavaScript) is fine;
   * anything else is host misuse (HvmmuError BAD_ARGUMENT). A write the
   * processor refuses with #GP (ControlRegisterRules.ts) returns false and
   * changes nothing: registers, roots, TLB, statistics.
   */

  /** MOV to CR0 (reserved bits of 31:0 are ignored, as by the processor). Returns false on #GP. */
  setCr0(cr0: number): boolean {
    this.vcpu.checkAlive();
    const r = this.regs;
    return this.setControl(ControlWrite.CR0, u32Operand('CR0', cr0), r.cr3, r.cr4, r.efer);
  }

  /** MOV to CR3 (PAE paging loads the PDPTEs; #GP if one is reserved). Syncs the root and flushes this TLB. */
  setCr3(cr3: number): boolean {
    this.vcpu.checkAlive();
    if (!Number.isSafeInteger(cr3) || cr3 < 0 || cr3 > MAX_VPN * 4096 + 4095) {
      throw new HvmmuError('BAD_ARGUMENT', `CR3 must be an integer in [0, 2^64) below 2^53, got ${String(cr3)}`);
    }
    const r = this.regs;
    return this.setControl(ControlWrite.CR3, r.cr0, cr3, r.cr4, r.efer);
  }

  /** MOV to CR4. Returns false on #GP. */
  setCr4(cr4: number): boolean {
    this.vcpu.checkAlive();
    const r = this.regs;
    return this.setControl(ControlWrite.CR4, r.cr0, r.cr3, u32Operand('CR4', cr4), r.efer);
  }

  /** WRMSR IA32_EFER (LMA is read-only: the processor sets it from LME and CR0.PG). Returns false on #GP. */
  setEfer(efer: number): boolean {
    this.vcpu.checkAlive();
    const r = this.regs;
    return this.setControl(ControlWrite.EFER, r.cr0, r.cr3, r.cr4, u32Operand('EFER', efer));
  }

  /**
   * Load CR0, CR3, CR4 and EFER at once (a mode switch as firmware or a
   * test sets it up; KVM_SET_SREGS). Only what must hold of any register
   * state is checked, not what a single MOV may change (so this may switch
   * between 4- and 5-level paging, or turn long mode on in one step).
   * Numbers as for the setters, or bigints with the full 64-bit values.
   * Returns false and changes nothing if the set is illegal (bits 63:32 of
   * CR0, CR4 or EFER included) or a PAE PDPTE is reserved.
   */
  loadControlRegisters(values: ControlRegisters): boolean {
    this.vcpu.checkAlive();
    if (checkControlOperands(values)) return false;
    return this.setControl(ControlWrite.LOAD, low32(values.cr0), cr3Operand('CR3', values.cr3), low32(values.cr4), low32(values.efer));
  }

  /** WRPKRU. */
  setPkru(pkru: number): void {
    this.vcpu.checkAlive();
    const value = u32Operand('PKRU', pkru);
    if (value === this.regs.pkru) return;
    this.regs.pkru = value;
    this.permissionsChanged();
  }

  /** EFLAGS.AC (the SMAP override for explicit supervisor accesses). */
  setRflagsAc(ac: boolean): void {
    this.vcpu.checkAlive();
    if (booleanOperand('EFLAGS.AC', ac) === this.regs.rflagsAc) return;
    this.regs.rflagsAc = ac;
    this.permissionsChanged();
  }

  /** Current privilege level (3 makes explicit accesses user accesses). */
  setCpl(cpl: number): void {
    this.vcpu.checkAlive();
    if (!Number.isInteger(cpl) || cpl < 0 || cpl > 3) throw new HvmmuError('BAD_ARGUMENT', `CPL must be 0..3, got ${String(cpl)}`);
    if (cpl === this.regs.cpl) return;
    this.regs.cpl = cpl;
    this.permissionsChanged();
  }

  /**
   * Guest CPUID fields the walker depends on (MAXPHYADDR, 1 GiB pages,
   * AMD's reserved PML4E bit 8). KVM resets the MMU on a CPUID update; here
   * every shadow page is zapped too, since reserved-bit rules changed.
   * Every field is checked before anything changes.
   */
  setCpuid(cpuid: { maxPhyAddr?: number; gbPages?: boolean; amd?: boolean }): void {
    this.vcpu.checkAlive();
    if (typeof cpuid !== 'object' || cpuid === null) throw new HvmmuError('BAD_ARGUMENT', 'setCpuid takes an object');
    const maxPhyAddr = cpuid.maxPhyAddr ?? this.regs.maxPhyAddr;
    checkMaxPhyAddr(maxPhyAddr);
    const gbPages = booleanOperand('gbPages', cpuid.gbPages ?? this.regs.gbPages);
    const amd = booleanOperand('amd', cpuid.amd ?? this.regs.amd);
    this.regs.maxPhyAddr = maxPhyAddr;
    this.regs.gbPages = gbPages;
    this.regs.amd = amd;
    this.freeRoots(ROOTS_ALL);
    this.pages.zapAll();
    this.vcpu.tlb.flushAll();
  }

  /**
   * INVLPG: drop this vCPU's TLB entry for the page and resync the entry of
   * every unsync page on its path in the current and cached roots (KVM
   * kvm_mmu_invlpg). A non-canonical address is a no-op.
   */
  invlpg(va: number): void {
    this.vcpu.checkAlive();
    if (!Number.isSafeInteger(va) || va < 0) throw new HvmmuError('BAD_ARGUMENT', `INVLPG address must be a non-negative safe integer, got ${va}`);
    this.invlpgPage(Math.floor(va / 4096));
  }

  /** INVLPG by virtual page number (for 57-bit / upper-half addresses). */
  invlpgPage(vpn: number): void {
    this.vcpu.checkAlive();
    if (!Number.isSafeInteger(vpn) || vpn < 0) throw new HvmmuError('BAD_ARGUMENT', `virtual page must be a non-negative safe integer, got ${vpn}`);
    this.pages.stats.invlpgs++;
    this.vcpu.tlb.flushPage(DEFAULT_CONTEXT, vpn);
    if (this.cpuLevel >= 4) {
      const hi20 = Math.floor(vpn / TWO_POW_32);
      const top = this.cpuLevel === 5 ? hi20 >>> 12 : hi20 >>> 3;
      if (vpn > MAX_VPN || (top !== 0 && top !== (this.cpuLevel === 5 ? 0xff : 0x1ffff))) return;
    } else {
      vpn &= 0xfffff;
    }
    this.enterGuest(false);
    let flush = false;
    if (this.rootKind === ROOT_NORMAL || this.rootKind === ROOT_SPECIAL) {
      flush = this.invalidateInRoot(this.rootSp, vpn) || flush;
    }
    for (let i = 0; i < NUM_PREV_ROOTS; i++) {
      if (this.prevSp[i] !== 0) flush = this.invalidateInRoot(this.prevSp[i]!, vpn) || flush;
    }
    this.pages.remoteFlushOrZap(flush);
  }

  /** Invalidate vpn in the current root only (a reflected #PF does this: kvm_inject_emulated_page_fault). */
  invalidateCurrent(vpn: number): void {
    this.vcpu.tlb.flushPage(DEFAULT_CONTEXT, vpn);
    if (this.rootKind !== ROOT_NORMAL && this.rootKind !== ROOT_SPECIAL) return;
    this.pages.remoteFlushOrZap(this.invalidateInRoot(this.rootSp, this.cpuLevel >= 4 ? vpn : vpn & 0xfffff));
  }

  /** __kvm_mmu_invalidate_addr: walk toward vpn, resyncing entries of unsync pages, while unsync children remain. */
  private invalidateInRoot(root: number, vpn: number): boolean {
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

  /**
   * The common path of every control-register write (uint32 cr0/cr4/efer,
   * cr3 a number): drop CR0's reserved bits and derive EFER.LMA, check the
   * SDM's #GP rules for `write` (refused → false before anything changes),
   * load the PAE PDPTEs when PAE paging is (re)entered or CR3 is loaded (a
   * reserved one → false, nothing changed; a changed one frees the root),
   * rebuild the roles (a change resets the MMU: every root freed), switch
   * roots on a CR3 change, and on a CR3 load sync the root and flush this
   * vCPU's TLB.
   */
  private setControl(write: ControlWriteValue, cr0: number, cr3: number, cr4: number, efer: number): boolean {
    const regs = this.regs;
    cr0 = writtenCr0(cr0);
    efer = effectiveEfer(efer, cr0);
    if (controlRegisterFault(regs, write, cr0, cr3, cr4, efer) !== null) return false;
    const cr3Write = write === ControlWrite.CR3 || write === ControlWrite.LOAD;
    const oldCr0 = regs.cr0;
    const oldCr3 = regs.cr3;
    const oldCr4 = regs.cr4;
    const oldMode = regs.pagingMode;
    let pdpteChanged = false;
    if (
      pagingModeOf(cr0, cr4, efer) === PagingMode.PAE &&
      (cr3Write || oldMode !== PagingMode.PAE || ((cr4 ^ oldCr4) & CR4_PDPTR_BITS) !== 0 || ((cr0 ^ oldCr0) & CR0.PG) !== 0)
    ) {
      // loadPdptes reads the PDPT at regs.cr3 and leaves the PDPTEs alone when it fails:
      // give it the new CR3, and on failure put the old one back (#GP, nothing changed).
      savedPdpteLo.set(regs.pdpteLo);
      savedPdpteHi.set(regs.pdpteHi);
      regs.cr3 = cr3;
      if (!loadPdptes(regs, this.pages.memslots)) {
        regs.cr3 = oldCr3;
        return false;
      }
      for (let i = 0; i < 4; i++) {
        if (regs.pdpteLo[i] !== savedPdpteLo[i] || regs.pdpteHi[i] !== savedPdpteHi[i]) pdpteChanged = true;
      }
    }
    // Only a changed value counts as a write (X86Registers.generation): a CR3 load keeps the walker's masks.
    if (cr0 !== oldCr0) regs.cr0 = cr0;
    regs.cr3 = cr3;
    if (cr4 !== oldCr4) regs.cr4 = cr4;
    if (efer !== regs.efer) regs.efer = efer;
    if (this.computeRoles()) {
      // kvm_mmu_reset_context: every root of the old MMU role goes.
      this.freeRoots(ROOTS_ALL);
    } else {
      if (pdpteChanged) this.freeRoots(ROOTS_CURRENT);
      if (cr3 !== oldCr3) this.newPgd(cr3);
    }
    this.hw.update(regs);
    this.requests |= REQ_TLB_FLUSH | (cr3Write ? REQ_MMU_SYNC : 0);
    this.enterGuest(false);
    return true;
  }

  /** Inputs of the hardware permission check changed: recompute it and drop this TLB (it caches decisions). */
  private permissionsChanged(): void {
    this.hw.update(this.regs);
    this.vcpu.tlb.flushAll();
  }

  // ================================================ guest-visible accesses

  /**
   * Read `size` (1, 2, 4 or 8) bytes at virtual address va as the guest
   * does (through the TLB and the MMU; core's guest-virtual access, little-
   * endian as x86 is). Returns true with the value in `readLo`/`readHi`, or
   * false with the fault in `vcpu.fault`.
   */
  read(va: number, size: number, access: number = Access.READ): boolean {
    if (!this.vcpu.read(va, size, true, access)) return false;
    this.readLo = this.vcpu.valueLo;
    this.readHi = this.vcpu.valueHi;
    return true;
  }

  /**
   * Write `size` bytes (little-endian value lo/hi) at va as the guest does.
   * A write the hardware refuses but the guest's tables allow — to a
   * write-protected guest page table — is emulated by the MMU (the bytes are
   * stored, then the shadow pages of the written gfn are updated:
   * kvm_mmu_track_write). Returns false with the fault in `vcpu.fault` for a
   * guest fault, MMIO/holes (NO_MEMORY) and read-only memory (READ_ONLY). A
   * write crossing a page checks both pages before writing either.
   */
  write(va: number, size: number, lo: number, hi: number = 0, access: number = Access.WRITE): boolean {
    return this.vcpu.write(va, size, hi, lo, true, access);
  }
}
