import { Access, ACCESS_KINDS, ACCESS_MASK, type SoftTlb, type TranslationResult, type Translator, type Vcpu } from '@hvmmu/core';
import type { X86ShadowTypes } from '../X86ShadowTypes.js';
import { GuestWalk } from '../walker/GuestWalk.js';
import { shadowIndex32 } from '../shadow/ShadowIndex.js';
import { GuestWalker } from '../walker/GuestWalker.js';
import { PFERR, X86Registers } from '../walker/X86Registers.js';
import { SPTE_A, SPTE_MMU_PRESENT, SPTE_P, SPTE_PS, linkSpteChild } from '../spte/Spte.js';
import { HardwarePermissions } from './HardwarePermissions.js';
import { ShadowPages } from './ShadowPages.js';

import { ROOT_DUMMY, ROOT_NONE, NUM_PREV_ROOTS } from './RootKind.js';

const TWO_POW_32 = 0x1_0000_0000;
const TWO_POW_20 = 0x10_0000;
const MAX_VPN = 2 ** 52 - 1;

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
 * The hardware side of one vCPU's MMU: the state the "CPU" walks with (the
 * current root, the guest registers the permission check reads, pending
 * requests, a paging-structure cache) and the walk of the shadow table on a
 * TLB miss (`translate`). It never edits the guest's tables; a miss goes to
 * the MMU's fault handler. The roots and roles that fill this state are in
 * `VcpuRoots`, the x86 register API in `X86VcpuMmu`.
 */
export abstract class ShadowTranslator implements Translator {
  /** Guest registers. Change them only through the setters (they rebuild the MMU). */
  readonly regs = new X86Registers();
  readonly walker = new GuestWalker();
  /** Scratch walk of the fault path. */
  readonly walk = new GuestWalk();
  protected readonly hw = new HardwarePermissions();
  /** `hw.table`, held directly: the hardware walk reads it on every TLB refill. */
  protected readonly hwTable = this.hw.table;
  /** The vCPU's TLB, held directly for the same reason (its flush count guards the caches below). */
  protected readonly tlb: SoftTlb;

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

  /** One-entry paging-structure cache of the translator: 2 MiB region → level-1 shadow page. */
  protected pscPdeLo = -1;
  protected pscPdeHi = -1;
  /** Root the cache entry belongs to (0: no entry). */
  protected pscRoot = 0;
  protected pscSp = 0;
  protected pscFlushes = -1;
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
  protected missE = -1;
  protected missVpn = -1;
  protected missRoot = 0;
  protected missFlushes = -1;
  /** Level of the entry `walkShadow` returned. */
  protected walkLevel = 1;

  constructor(
    readonly vcpu: Vcpu<X86ShadowTypes>,
    protected readonly pages: ShadowPages,
    /** Smallest level of the hardware root (3 = as KVM shadows; 4/5 = a 64-bit host's NPT). */
    readonly hostRootLevel: number,
  ) {
    this.tlb = vcpu.tlb;
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
  protected pscHit(lo32: number, hi20: number): boolean {
    return lo32 >>> 9 === this.pscPdeLo && hi20 === this.pscPdeHi && this.rootSp === this.pscRoot && this.tlb.flushes === this.pscFlushes;
  }

  /** Present leaf `e` (value `lo`) at `level`: check `access`, set A (SDM 4.8), return the host frame. */
  protected leaf(e: number, lo: number, level: number, lo32: number, access: number, out: TranslationResult): number {
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
  protected translateFull(vpn: number, access: number, out: TranslationResult): number {
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
  protected walkShadow(lo32: number, hi20: number): number {
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
  protected entryMiss(e: number, lo: number, level: number, vpn: number, access: number, out: TranslationResult): number {
    if (level === 1 && (lo & SPTE_MMU_PRESENT) === 0) {
      this.missE = e;
      this.missVpn = vpn;
      this.missRoot = this.rootSp;
      this.missFlushes = this.tlb.flushes;
    }
    return this.miss(access, out, 0);
  }

  protected nonCanonical(access: number, out: TranslationResult): number {
    out.cacheable = false;
    return this.miss(access, out, 0);
  }

  /** A hardware miss: the #PF-like code of `access` (plus `extra`) into `out`; returns -1. */
  protected miss(access: number, out: TranslationResult, extra: number): number {
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
}
