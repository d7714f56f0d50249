import { inject, injectable } from 'tsyringe';
import {
  Access,
  FaultKind,
  FaultOutcome,
  GFN_HOST_OUT_OF_MEMORY,
  MemslotTable,
  TlbShootdown,
  VM_CONFIG,
  type FaultInfo,
  type FaultOutcomeValue,
  type MemslotChange,
  type Mmu,
  type Vcpu,
  type VmConfig,
} from '@hvmmu/core';
import type { X86ShadowTypes } from '../X86ShadowTypes.js';
import type { X86ShadowStats } from '../mmu/X86ShadowStats.js';
import type { X86Memslot } from '../X86ShadowTypes.js';
import { CR0, CR4, PFERR } from '../walker/X86Registers.js';
import { MAX_VPN } from '../walker/GuestWalker.js';
import { ROLE_DIRECT, ROLE_HAS_4_BYTE_GPTE, ROLE_INVALID, childRole, roleAccess } from '../shadow/PageRole.js';
import { SP_SPECIAL } from '../shadow/ShadowPageTable.js';
import { shadowIndex, shadowIndex32 } from '../shadow/ShadowIndex.js';
import { SPTE_ENT_PER_PAGE, SPTE_MMU_PRESENT, SPTE_PS, isLastSpte, isShadowPresent, linkSpteChild, spteFrame } from '../spte/Spte.js';
import { ACC_ALL, ACC_EXEC, ACC_USER, ACC_WRITE } from '../spte/Acc.js';
import { RMAP_LEVELS, SlotRmap, pagesPerLevel, slotRmap } from '../rmap/SlotRmap.js';
import { MEMSLOT_FLUSH_STRATEGY, type MemslotFlushStrategy } from '../strategy/MemslotFlushStrategy.js';
import { ShadowMmuStats } from '../shadow/ShadowMmuStats.js';
import { MIN_ALLOC_MMU_PAGES, PERMILLE_MMU_PAGES, SET_SPTE_EMULATE, SET_SPTE_SPURIOUS, ShadowPages } from '../mmu/ShadowPages.js';
import { REQ_FREE_OBSOLETE_ROOTS, VcpuMmuList } from '../mmu/VcpuMmuList.js';
import { ROOT_NORMAL, ROOT_SPECIAL, VECTOR_GP, VECTOR_PF, X86VcpuMmu } from '../mmu/X86VcpuMmu.js';
import { RmapWalkOp, walkSlotRmaps } from '../strategy/walkSlotRmaps.js';

/** Backend id. */
export const X86_SHADOW_BACKEND_ID = 'x86-shadow';

/** Result of `fetch` besides the SET_SPTE_* codes: the walk went stale, retry. */
const FETCH_RETRY = -1;
/** `firstTouch` did not apply: take the general path. */
const FIRST_TOUCH_NOT_TAKEN = -1;

/**
 * The x86 shadow MMU of one VM (the hypervisor side). It resolves the
 * translator's misses the way KVM's FNAME(page_fault) does — walk the guest
 * table (setting A/D), reflect a guest fault with its exact error code, or
 * resolve gfn → host frame through the memslots and build the shadow path
 * level by level (FNAME(fetch)) with permissions = guest ∧ host — and
 * handles the host side: memslot changes (with the injected flush
 * strategy), notifier invalidation, aging, change_pte and dirty logging.
 */
@injectable()
export class X86ShadowMmu implements Mmu<X86ShadowTypes> {
  readonly backendId = X86_SHADOW_BACKEND_ID;
  /** `vm.arch`: the MMU itself (shadow pages, the flush strategy, `findLeaf`). */
  readonly arch: X86ShadowMmu = this;
  private readonly hostRootLevel: number;
  private readonly fixedMaxPages: boolean;

  constructor(
    @inject(ShadowPages) readonly pages: ShadowPages,
    @inject(MemslotTable) private readonly memslots: MemslotTable<X86ShadowTypes>,
    @inject(TlbShootdown) private readonly tlbs: TlbShootdown,
    @inject(ShadowMmuStats) private readonly counters: ShadowMmuStats,
    @inject(VcpuMmuList) private readonly vcpus: VcpuMmuList,
    @inject(MEMSLOT_FLUSH_STRATEGY) readonly flushStrategy: MemslotFlushStrategy,
    @inject(VM_CONFIG) config: VmConfig<X86ShadowTypes['options']>,
  ) {
    this.hostRootLevel = config.backendOptions.hostRootLevel;
    this.fixedMaxPages = config.backendOptions.maxShadowPages !== undefined;
  }

  // ================================================================ vCPUs

  attachVcpu(vcpu: Vcpu<X86ShadowTypes>): X86VcpuMmu {
    const x = new X86VcpuMmu(vcpu, this.pages, this.hostRootLevel);
    this.vcpus.add(x);
    return x;
  }

  detachVcpu(vcpu: Vcpu<X86ShadowTypes>): void {
    const x = vcpu.arch;
    x.freeRoots(0xf);
    this.vcpus.remove(x);
  }

  /** A guest write the fault path answered with EMULATE (kvm_page_track_write → kvm_mmu_track_write). */
  emulateWrite(vcpu: Vcpu<X86ShadowTypes>, gpa: number, data: Uint8Array, from: number, len: number): boolean {
    return this.pages.emulateWrite(vcpu.arch, gpa, data, from, len);
  }

  // ========================================================== page faults

  handleFault(vcpu: Vcpu<X86ShadowTypes>, vpn: number, access: number, missCode: number, fault: FaultInfo): FaultOutcomeValue {
    const x = vcpu.arch;
    // Requests pending or no usable root: service them first (KVM does so before entering the guest).
    if (x.requests !== 0 || (x.rootKind !== ROOT_NORMAL && x.rootKind !== ROOT_SPECIAL)) x.enterGuest(true);
    const regs = x.regs;
    const longMode = x.cpuLevel >= 4;
    if (longMode && vpn > MAX_VPN) {
      // Beyond a 64-bit address: cannot be canonical.
      return this.reflectGp(x, fault);
    }
    // The common first touch: the hardware walk just missed on an empty level-1 entry
    // whose path is intact (see `firstTouch`).
    if (longMode && (missCode & PFERR.P) === 0) {
      const missE = x.level1Miss(vpn);
      if (missE >= 0) {
        const r = this.firstTouch(x, missE, vpn, access, fault);
        if (r !== FIRST_TOUCH_NOT_TAKEN) return r;
      }
    }
    const gvpn = longMode ? vpn : vpn & 0xfffff;
    const walk = x.walk;
    const guestMem = this.pages.guestMem;
    const writesBefore = guestMem.writeResolves;
    if (!x.walker.walk(regs, guestMem, gvpn, access, walk, true)) {
      if (walk.nonCanonical) return this.reflectGp(x, fault);
      const code = walk.errorCode;
      x.lastExceptionVector = VECTOR_PF;
      fault.deliver(VECTOR_PF, code);
      this.counters.guestFaults++;
      // A #PF invalidates the faulting address (kvm_inject_emulated_page_fault).
      if ((code & PFERR.P) !== 0 && (code & PFERR.RSVD) === 0) x.invalidateCurrent(vpn);
      return FaultOutcome.DONE;
    }

    const gfn = walk.gfn;
    const write = (access & Access.WRITE) !== 0;
    const slot = this.memslots.findByGfn(gfn);
    const user = (access & Access.IMPLICIT) === 0 && ((access & Access.USER) !== 0 || regs.cpl === 3);
    if (slot === undefined) {
      fault.exit(FaultKind.NO_MEMORY, gfn * 4096);
      this.counters.vmmFaults++;
      return FaultOutcome.DONE;
    }
    // page_fault_handle_page_track: a write to a present mapping of a write-tracked gfn.
    if (write && (missCode & PFERR.P) !== 0 && this.pages.isWriteTracked(slot, gfn)) {
      fault.exit(FaultKind.EMULATE, gfn * 4096);
      return FaultOutcome.DONE;
    }

    let pteAccess = walk.pteAccess;
    if (x.cpuLevel === 0) pteAccess = ACC_ALL;
    // CR0.WP=0 emulation (mmu.rst): a supervisor write to a read-only gpte is
    // mapped U=0/W=1 (NX too with SMEP); a user access flips it back.
    if (write && (pteAccess & ACC_WRITE) === 0 && x.cpuLevel !== 0 && (regs.cr0 & CR0.WP) === 0 && !user) {
      if ((pteAccess & ACC_USER) !== 0 && ((regs.cr4 & CR4.SMAP) !== 0 || x.pkeActive)) {
        // Flipping a user page to supervisor would hide it from SMAP and protection keys,
        // which still apply to the guest's other supervisor accesses: emulate instead.
        fault.exit(FaultKind.EMULATE, gfn * 4096);
        return FaultOutcome.DONE;
      }
      pteAccess = (pteAccess | ACC_WRITE) & ~ACC_USER;
      if ((regs.cr4 & CR4.SMEP) !== 0) pteAccess &= ~ACC_EXEC;
    }

    // Notifier-retry protocol: snapshot the sequence before resolving the host frame.
    const seq = this.memslots.invalidationSeq;
    const hfn = this.memslots.gfnToHfn(slot, gfn, write);
    if (hfn === GFN_HOST_OUT_OF_MEMORY) {
      fault.exit(FaultKind.HOST_OUT_OF_MEMORY, gfn * 4096);
      this.counters.vmmFaults++;
      return FaultOutcome.DONE;
    }
    if (hfn < 0) {
      fault.exit(write && slot.readOnly ? FaultKind.READ_ONLY : FaultKind.NO_MEMORY, gfn * 4096);
      this.counters.vmmFaults++;
      return FaultOutcome.DONE;
    }
    if (this.memslots.invalidationSeq !== seq || x.requests !== 0) {
      this.counters.invalidationRetries++;
      return FaultOutcome.RETRY;
    }
    const hostWritable = !slot.readOnly && hfn !== this.memslots.host.zeroFrame;
    this.pages.makePagesAvailable();
    if (x.requests !== 0) return FaultOutcome.RETRY;

    // Nothing but the walk's own A/D updates can write guest memory between the walk and
    // the fetch (one thread, no emulation on this path; gfnToHfn only gives a written
    // zero-frame page a private copy, and a page table the walk read was not on the zero
    // frame): a walk that wrote nothing leaves every gpte it read in place.
    const walkWroteNothing = guestMem.writeResolves === writesBefore;
    const r = this.fetch(x, gvpn, pteAccess, write, gfn, hfn, hostWritable, slot, walkWroteNothing);
    if (r === FETCH_RETRY) return FaultOutcome.RETRY;
    this.counters.shadowFaults++;
    if (r === SET_SPTE_EMULATE) {
      fault.exit(FaultKind.EMULATE, gfn * 4096);
      return FaultOutcome.DONE;
    }
    if (r === SET_SPTE_SPURIOUS && write && !this.leafAllows(x, gvpn, access)) {
      // The spte cannot change and the hardware still refuses (e.g. a
      // protection-key WD check under CR0.WP=0): emulate rather than loop.
      fault.exit(FaultKind.EMULATE, gfn * 4096);
      return FaultOutcome.DONE;
    }
    return FaultOutcome.RETRY;
  }

  /**
   * The common first touch in straight-line code. The hardware walk missed on
   * the empty level-1 entry `missE` of an intact shadow path (no TLB flush
   * since, so no link on it was dropped), in an indirect page with 8-byte
   * gptes: that page shadows the guest page table at its gfn, reached
   * through guest entries that cannot have changed since the path was built
   * (each upper-level table it passes is shadowed, hence write-protected,
   * and a write to one zaps the link below it), with A already set and the
   * access the page's role records. So only the leaf gpte is read
   * (`GuestWalker.walkLeaf`, as FNAME(sync_spte) rebuilds a leaf), and
   * FNAME(fetch)'s shadow walk reduces to clearing write flooding on the
   * path. Taken for a 4 KiB leaf with A (and D for a write) set that allows
   * the access without a CR0.WP flip, a page that already has its own host
   * frame, a current root and room in the shadow-page budget; every step is
   * the general path's in that case (no write tracking on a not-present
   * fault, no notifier race in a plain frame lookup, no gpte to re-read, no
   * shadow page to create). Anything else returns FIRST_TOUCH_NOT_TAKEN
   * having changed nothing, and the general path starts with a full walk.
   */
  private firstTouch(x: X86VcpuMmu, missE: number, vpn: number, access: number, fault: FaultInfo): FaultOutcomeValue | typeof FIRST_TOUCH_NOT_TAKEN {
    const pages = this.pages;
    const spt = pages.spt;
    const sp = missE >>> 9;
    const role = spt.role[sp]!;
    if (
      (role & (ROLE_DIRECT | ROLE_HAS_4_BYTE_GPTE)) !== 0 ||
      (spt.sptLo[missE]! & SPTE_MMU_PRESENT) !== 0 ||
      pages.isObsolete(x.rootSp) ||
      !pages.hasFreePages()
    ) {
      return FIRST_TOUCH_NOT_TAKEN;
    }
    const walker = x.walker;
    const gfn = walker.walkLeaf(x.regs, pages.guestMem, vpn, access, spt.gfn[sp]!, roleAccess(role));
    if (gfn < 0) return FIRST_TOUCH_NOT_TAKEN;
    const pteAccess = walker.leafAccess;
    const write = (access & Access.WRITE) !== 0;
    if (write && (pteAccess & ACC_WRITE) === 0) return FIRST_TOUCH_NOT_TAKEN;
    const slot = this.memslots.findByGfn(gfn);
    if (slot === undefined || slot.invalid || (write && slot.readOnly)) return FIRST_TOUCH_NOT_TAKEN;
    // A frame number in `frames` is the page's own (the zero frame is never stored there):
    // host-writable unless the slot is read-only.
    const hfn = slot.frames[gfn - slot.baseGfn]!;
    if (hfn < 0) return FIRST_TOUCH_NOT_TAKEN;
    // FNAME(fetch)'s shadow walk over present links only clears write flooding (special
    // pages are never counted: not hashed, their count stays 0).
    spt.clearPathFlooding(x.pscPath, x.rootLevel, sp);
    const r = pages.setNewLeaf(missE, pteAccess, write, gfn, hfn, !slot.readOnly, slot, x.pkeActive ? walker.leafPkey : 0);
    this.counters.shadowFaults++;
    if (r === SET_SPTE_EMULATE) {
      fault.exit(FaultKind.EMULATE, gfn * 4096);
      return FaultOutcome.DONE;
    }
    return FaultOutcome.RETRY;
  }

  private reflectGp(x: X86VcpuMmu, fault: FaultInfo): FaultOutcomeValue {
    x.lastExceptionVector = VECTOR_GP;
    fault.deliver(VECTOR_GP, 0);
    this.counters.guestFaults++;
    return FaultOutcome.DONE;
  }

  /** Whether the hardware now allows `access` at gvpn (the leaf the fetch installed). */
  private leafAllows(x: X86VcpuMmu, gvpn: number, access: number): boolean {
    const e = this.findLeaf(x, gvpn);
    if (e < 0) return false;
    const spt = this.pages.spt;
    return ((x.hardwarePerm(spt.sptLo[e]!, spt.sptHi[e]!) >> access) & 1) !== 0;
  }

  /** The leaf spte for gvpn under the current root, or -1. */
  findLeaf(x: X86VcpuMmu, gvpn: number): number {
    if (x.rootKind !== ROOT_NORMAL && x.rootKind !== ROOT_SPECIAL) return -1;
    const spt = this.pages.spt;
    let sp = x.rootSp;
    let level = x.rootLevel;
    for (;;) {
      const e = sp * SPTE_ENT_PER_PAGE + shadowIndex(gvpn, level);
      const lo = spt.sptLo[e]!;
      if (!isShadowPresent(lo)) return -1;
      if (isLastSpte(lo, level)) return e;
      sp = spteFrame(spt.sptHi[e]!, lo);
      level--;
    }
  }

  /**
   * FNAME(fetch): for each shadow level above the guest leaf, get (or
   * create) the indirect page shadowing the guest table of the level below,
   * sync its unsync children, re-check the gpte it was reached through,
   * and link it; below the guest leaf (a large guest page, or paging off)
   * create direct pages down to 4 KiB (a direct page of other access is
   * unlinked first); then install the leaf. Host frames are 4 KiB, so every
   * leaf is 4 KiB (KVM maps huge only over huge host pages).
   */
  private fetch(
    x: X86VcpuMmu,
    gvpn: number,
    pteAccess: number,
    write: boolean,
    gfn: number,
    hfn: number,
    hostWritable: boolean,
    slot: X86Memslot,
    walkWroteNothing: boolean,
  ): number {
    const pages = this.pages;
    const spt = pages.spt;
    const walk = x.walk;
    if (x.rootKind !== ROOT_NORMAL && x.rootKind !== ROOT_SPECIAL) return FETCH_RETRY;
    if (pages.isObsolete(x.rootSp)) return FETCH_RETRY;
    const direct = (x.rootRole & ROLE_DIRECT) !== 0;
    // Index bits as int32s: lo32 = vpn bits 31:0, hi20 = vpn bits 51:32.
    const lo32 = gvpn >>> 0;
    const hi20 = ((gvpn - lo32) / 0x1_0000_0000) | 0;
    let sp = x.rootSp;
    let level = x.rootLevel;
    if (!direct) {
      // The top-level gpte must still be there (for PAE the PDPTE is cached: check the PDE).
      // KVM re-reads it because its walk ran without mmu_lock; here only the walk's own
      // A/D writes can have moved it (a self-referencing table), so a walk that wrote
      // nothing needs no re-read.
      const top = x.cpuLevel === 3 ? 2 : x.cpuLevel;
      if (!walkWroteNothing && this.gpteChanged(x, top)) return FETCH_RETRY;
      const guestLevel = walk.level;
      while (level > guestLevel) {
        // for_each_shadow_entry: follow the links that exist, clearing write flooding on the way.
        const flags = spt.flags;
        const sptLo = spt.sptLo;
        let e = 0;
        let lo = 0;
        for (;;) {
          if ((flags[sp]! & SP_SPECIAL) === 0) spt.clearWriteFlooding(sp);
          e = (sp << 9) | shadowIndex32(lo32, hi20, level);
          lo = sptLo[e]!;
          if ((lo & SPTE_MMU_PRESENT) === 0 || (lo & SPTE_PS) !== 0) break;
          sp = linkSpteChild(spt.sptHi[e]!, lo);
          if (--level === guestLevel) break;
        }
        if (level === guestLevel) break;
        // A missing child (or a large leaf to replace): find or create it.
        if ((flags[sp]! & SP_SPECIAL) !== 0 && level > 3) {
          // A wrapper's entry 0 is linked when the root is built; never empty.
          return FETCH_RETRY;
        }
        const index = e & 511;
        const childLevel = level - 1;
        const tableGfn = walk.tableGfn[childLevel]!;
        const access = walk.ptAccess[childLevel]!;
        const child = pages.getShadowPage(x, tableGfn, childRole(spt.role[sp]!, index, false, access));
        if (spt.unsyncChildren[child]! > 0) pages.syncChildren(x, child);
        if (this.gpteChanged(x, childLevel)) return FETCH_RETRY;
        if ((spt.role[sp]! & ROLE_INVALID) !== 0 || x.requests !== 0) return FETCH_RETRY;
        pages.linkShadowPage(e, child);
        sp = child;
        level--;
      }
    }
    const directAccess = direct ? ACC_ALL : pteAccess;
    while (level > 1) {
      // KVM's second shadow walk clears the count of every page from the guest leaf's level down.
      if (!direct) spt.clearWriteFlooding(sp);
      const index = shadowIndex32(lo32, hi20, level);
      const e = (sp << 9) | index;
      let lo = spt.sptLo[e]!;
      if (isShadowPresent(lo) && !isLastSpte(lo, level)) {
        const child = linkSpteChild(spt.sptHi[e]!, lo);
        if (roleAccess(spt.role[child]!) !== directAccess) {
          // validate_direct_spte: a direct page built for other access is unlinked first.
          pages.dropParentPte(child, e);
          pages.flushTlbs();
          lo = 0;
        } else {
          sp = child;
          level--;
          continue;
        }
      }
      const span = pagesPerLevel(level);
      const baseGfn = gfn - (gfn % span);
      const child = pages.getShadowPage(x, baseGfn, childRole(spt.role[sp]!, index, true, directAccess));
      if ((spt.role[sp]! & ROLE_INVALID) !== 0 || x.requests !== 0) return FETCH_RETRY;
      pages.linkShadowPage(e, child);
      sp = child;
      level--;
    }
    if (!direct) spt.clearWriteFlooding(sp);
    const e = (sp << 9) | (lo32 & 511);
    const pkey = x.pkeActive ? walk.pkey : 0;
    return pages.setSpte(e, pteAccess, write, gfn, hfn, hostWritable, false, slot, pkey);
  }

  /** FNAME(gpte_changed): the gpte the walk used at `level` no longer holds the value read. */
  private gpteChanged(x: X86VcpuMmu, level: number): boolean {
    const walk = x.walk;
    if (level < 1 || level > walk.maxLevel) return false;
    const view = this.memslots.view;
    const off = this.pages.guestMem.resolve(walk.pteGpa[level]!, false);
    if (off < 0) return true;
    if (x.cpuLevel === 2) return view.getUint32(off, true) !== walk.pteLo[level];
    return view.getUint32(off, true) !== walk.pteLo[level] || view.getUint32(off + 4, true) !== walk.pteHi[level];
  }

  // ============================================================ memslots

  prepareMemslot(slot: X86Memslot, _change: MemslotChange): SlotRmap {
    return new SlotRmap(slot.baseGfn, slot.npages);
  }

  flushMemslot(slot: X86Memslot, _change: MemslotChange): void {
    this.counters.memslotFlushes++;
    this.pages.flushingSlot = slot;
    try {
      this.flushStrategy.flush(slot);
    } finally {
      this.pages.flushingSlot = null;
    }
  }

  commitMemslot(slot: X86Memslot, change: MemslotChange, oldFlags: number): void {
    switch (change) {
      case 'create':
        // A dummy root counts as obsolete once memory may have appeared under it.
        for (const v of this.vcpus.list) if (v.hasDummyRoot) v.requests |= REQ_FREE_OBSOLETE_ROOTS;
        break;
      case 'delete':
        // The slot's rmap memory (and, under invalid-rmap, its skip-marked lists) goes with it.
        slot.arch.release();
        break;
      case 'flags':
        this.applyDirtyLogFlags(slot, oldFlags);
        break;
      case 'move':
        break;
    }
    if (!this.fixedMaxPages) {
      let pages = 0;
      for (const s of this.memslots.slots()) pages += s.npages;
      this.pages.maxPages = Math.max(MIN_ALLOC_MMU_PAGES, Math.floor((pages * PERMILLE_MMU_PAGES) / 1000));
    }
  }

  /**
   * kvm_mmu_slot_apply_flags: dirty logging on → write-protect the whole
   * slot (W only: MMU-writable stays so a write fault restores W and logs the
   * page) and flush; off → larger mappings could come back, but host frames
   * are 4 KiB so there is nothing to collapse.
   */
  private applyDirtyLogFlags(slot: X86Memslot, oldFlags: number): void {
    if (!slot.dirtyLogging || (oldFlags & 1) !== 0 || slot.readOnly) return;
    const flush = walkSlotRmaps(slot, slot.baseGfn, slot.baseGfn + slot.npages, RmapWalkOp.CLEAR_WRITABLE);
    if (flush) this.tlbs.flushAll();
  }

  /** KVM_GET_DIRTY_LOG's re-arm (kvm_mmu_write_protect_pt_masked): write-protect the harvested 4 KiB pages. */
  dirtyLogHarvested(slot: X86Memslot, harvested: Uint32Array): void {
    const ops = slot.rmapOps;
    let flush = false;
    for (let w = 0; w < harvested.length; w++) {
      let bits = harvested[w]!;
      while (bits !== 0) {
        const bit = 31 - Math.clz32(bits & -bits);
        bits &= bits - 1;
        const i = w * 32 + bit;
        if (i < slot.npages && ops.clearWritable(slot, slot.baseGfn + i, 1, false)) flush = true;
      }
    }
    if (flush) this.tlbs.flushAll();
  }

  // ====================================================== host-side hooks

  /** kvm_unmap_gfn_range (MMU notifier invalidate_range_start): drop every mapping, flush. */
  invalidateGfnRange(slot: X86Memslot, startGfn: number, endGfn: number): number {
    const r = slotRmap(slot);
    if (!r.allocated) return 0;
    const before = r.entries;
    const flush = walkSlotRmaps(slot, startGfn, endGfn, RmapWalkOp.UNMAP);
    if (flush) this.tlbs.flushAll();
    return before - r.entries;
  }

  /** change_pte (kvm_set_spte_gfn): re-point the gfn's sptes read-only at the new frame. */
  changeGfnPte(slot: X86Memslot, gfn: number, hfn: number): void {
    const ops = slot.rmapOps;
    let flush = false;
    for (let level = 1; level <= RMAP_LEVELS; level++) {
      if (ops.setPte(slot, gfn, level, hfn, false)) flush = true;
    }
    if (flush) this.tlbs.flushAll();
  }

  /** clear_flush_young: clear A in every spte of the range; flush if any was young. */
  ageGfnRange(slot: X86Memslot, startGfn: number, endGfn: number): boolean {
    const young = walkSlotRmaps(slot, startGfn, endGfn, RmapWalkOp.AGE);
    if (young) this.tlbs.flushAll();
    return young;
  }

  testAgeGfnRange(slot: X86Memslot, startGfn: number, endGfn: number): boolean {
    return walkSlotRmaps(slot, startGfn, endGfn, RmapWalkOp.TEST_AGE);
  }

  zapAll(): void {
    this.pages.zapAll();
  }

  // ================================================================ stats

  stats(): X86ShadowStats {
    const pages = this.pages;
    const spt = pages.spt;
    let rmapEntries = 0;
    let rmapBytes = 0;
    for (const s of this.memslots.slots()) {
      rmapEntries += s.arch.entries;
      rmapBytes += s.arch.byteLength;
    }
    const c = this.counters;
    return {
      shadowPages: pages.usedPages,
      specialShadowPages: c.specialPagesAllocated - c.specialPagesFreed,
      indirectShadowPages: pages.indirectShadowPages,
      unsyncPages: pages.unsyncPages,
      maxShadowPages: pages.maxPages,
      rmapEntries,
      rmapBytes,
      shadowTableBytes: spt.byteLength,
      hostBytes: spt.byteLength + rmapBytes,
      mmuValidGen: pages.validGen,
      shadowFaults: c.shadowFaults,
      guestFaults: c.guestFaults,
      vmmFaults: c.vmmFaults,
      emulatedWrites: c.emulatedWrites,
      zappedPages: c.zappedPages,
      sptesDropped: c.sptesDropped,
      mmuFlooded: c.flooded,
      pdeZapped: c.pdeZapped,
      unsyncs: c.unsyncs,
      syncs: c.syncs,
      mmuCacheMisses: c.mmuCacheMisses,
      hashCollisions: c.hashCollisions,
      rmapRecycles: c.rmapRecycles,
      invalidRmapWarnings: c.invalidRmapWarnings,
      fastZaps: c.fastZaps,
      obsoletePagesZapped: c.obsoletePagesZapped,
      zapBatches: c.zapBatches,
      memslotFlushes: c.memslotFlushes,
      rootsLoaded: c.rootsLoaded,
      rootsFreed: c.rootsFreed,
      prevRootHits: c.prevRootHits,
      pagesReclaimed: c.pagesReclaimed,
      invalidationRetries: c.invalidationRetries,
      invlpgs: c.invlpgs,
    };
  }
}
