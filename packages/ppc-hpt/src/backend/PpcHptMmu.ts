import {
  FaultKind,
  FaultOutcome,
  FRAME_ZERO,
  GFN_HOST_OUT_OF_MEMORY,
  HvmmuError,
  HypercallRegisters,
  MemslotFlags,
  MemslotInvalidation,
  MemslotTable,
  TlbShootdown,
  TRACE_HOOK,
  VM_CONFIG,
  type FaultInfo,
  type FaultOutcomeValue,
  type MappingLeaf,
  type Memslot,
  type MemslotChange,
  type Mmu,
  type MmuSnapshot,
  type RmapRecord,
  type TraceHook,
  type Vcpu,
  type VmConfig,
} from '@hvmmu/core';
import { inject, injectable } from 'tsyringe';
import { hptePageShifts } from '../format/HptePageSizes.js';
import { HptHypercalls, PaprStatus, type HptEntryObserver } from '../hcall/HptHypercalls.js';
import { HptVector } from '../mmu/HptTranslation.js';
import { forEachVrmaEntry, VRMA_VSID_WORD_HI } from '../mmu/Vrma.js';
import { HptResize, ResizeStatus } from '../mmu/HptResize.js';
import { HPT_MAX_SUPPORTED_ORDER, HPT_MIN_ORDER } from '../mmu/HashPageTable.js';
import { HptSlotRmap } from '../rmap/HptRevmap.js';
import { HPTE_R_KEY_HI_HI, HPTE_R_KEY_LO_LO, HPTE_V_ABSENT_LO, HostHpt } from './HostHpt.js';
import { HostHptStore } from './HostHptStore.js';
import { HptRmapContext } from './HptRmapContext.js';
import { HptMiss, HptVcpuMmu, type HptTranslatorCounters } from './HptVcpuMmu.js';
import type { PpcHptStats, PpcHptTypes } from './PpcHptTypes.js';

/** POWER8 has 32 SLB entries. */
export const HPT_SLB_SIZE = 32;

const TWO_POW_20 = 0x10_0000;

/**
 * Fault words of the HPT backend: word 0 is DSISR (data) or the SRR1
 * cause bits (instruction), so `fault.code` is the cause either way; word 1
 * is the SRR1 cause bits of an instruction interrupt; word 2 is DAR (data
 * and data-segment interrupts).
 */
export const HptFaultWord = { CAUSE: 0, SRR1: 1, DAR: 2 } as const;

/**
 * KVM HV's hash MMU for one VM (`vm.arch`): the guest view and the real
 * HPT (`HostHpt`), the PAPR hash-table hcalls on them (`hcalls`), the
 * reverse map from guest pages to real entries behind the core's rmap
 * strategy tables, and the host side — the page fault that makes an ABSENT
 * entry valid (kvmppc_book3s_hv_page_fault), MMU-notifier invalidation,
 * aging, the C-bit dirty log and memslot delete/move
 * (arch/powerpc/kvm/book3s_64_mmu_hv.c).
 *
 * Host frames are core's 4 KiB frames, so, as KVM on a host with 4 KiB
 * pages, H_ENTER refuses a 64K or 16M page backed by a memslot
 * (H_PARAMETER: the host mapping is smaller than the page); such pages
 * work for emulated MMIO (no memslot), which never becomes valid.
 */
@injectable()
export class PpcHptMmu implements Mmu<PpcHptTypes>, HptEntryObserver {
  readonly backendId = 'ppc-hpt';
  readonly arch: PpcHptMmu = this;
  readonly hpt: HostHpt;
  /** The hash-table hcalls, on this VM's tables (made anew when a resize replaces them). */
  get hcalls(): HptHypercalls {
    return this.hashHcalls;
  }
  /**
   * The guest view for the HTAB stream (`KvmHtabReader` / `KvmHtabWriter`,
   * QEMU's section): writes go through H_ENTER / H_REMOVE. A resize makes a
   * new one: a migration in progress starts again over the new table, as
   * QEMU restarts the HTAB stream after a resize.
   */
  get htab(): HostHptStore {
    return this.htabStore;
  }
  private hashHcalls: HptHypercalls;
  private htabStore: HostHptStore;
  /** H_RESIZE_HPT_PREPARE / _COMMIT state (the pending order). */
  private readonly resizer: HptResize;
  readonly memslotInvalidation: PpcHptTypes['options']['memslotInvalidation'];
  private readonly rmapSlots = new Set<Memslot<PpcHptTypes>>();
  private readonly counters: HptTranslatorCounters = { searches: 0, searchRefs: 0 };
  private hostFaults = 0;
  private guestFaults = 0;
  private vmmExits = 0;
  private resizes = 0;

  constructor(
    @inject(MemslotTable) private readonly memslots: MemslotTable<PpcHptTypes>,
    @inject(TlbShootdown) private readonly tlbs: TlbShootdown,
    @inject(HptRmapContext) private readonly rmapContext: HptRmapContext,
    @inject(VM_CONFIG) config: VmConfig<PpcHptTypes['options']>,
    @inject(TRACE_HOOK) private readonly trace: TraceHook | null,
  ) {
    this.hpt = rmapContext.hpt;
    this.hashHcalls = new HptHypercalls(this.hpt.guest, this);
    this.htabStore = new HostHptStore(this);
    this.resizer = new HptResize(this.hpt.guest, HPT_MAX_SUPPORTED_ORDER);
    this.memslotInvalidation = config.backendOptions.memslotInvalidation;
    this.realMode = config.backendOptions.realMode;
  }

  readonly realMode: PpcHptTypes['options']['realMode'];

  // ------------------------------------------------------------ vCPUs

  attachVcpu(vcpu: Vcpu<PpcHptTypes>): HptVcpuMmu {
    const mmu = new HptVcpuMmu(vcpu, this.hpt, this.memslots, this.counters, HPT_SLB_SIZE, this.realMode);
    this.hpt.vcpus[vcpu.id] = mmu;
    return mmu;
  }

  detachVcpu(vcpu: Vcpu<PpcHptTypes>): void {
    this.hpt.vcpus[vcpu.id] = undefined;
  }

  // ------------------------------------------------------------ the hcalls' host side

  /** kvmppc_do_h_enter's host checks: a memslot-backed page must fit the 4 KiB host pages. */
  checkEnter(_v0Hi: number, v0Lo: number, r1Hi: number, r1Lo: number): number {
    const shift = hptePageShifts(v0Lo, r1Lo) & 0xff;
    if (shift === 12) return PaprStatus.H_SUCCESS;
    const gfn = alignedGfn(r1Hi, r1Lo, shift);
    return this.memslots.findByGfn(gfn) === undefined ? PaprStatus.H_SUCCESS : PaprStatus.H_PARAMETER;
  }

  /**
   * Entry `ptex` of the guest view changed: bring the real entry in line.
   * The same guest page still mapped (H_PROTECT, H_CLEAR_REF/MOD): the
   * real entry takes the new PP, N and key, never more than the host
   * allows, and keeps only the R/C the guest view still has; otherwise the
   * old real entry goes (off its ring, out of the TLBs) and the new one is
   * made as kvmppc_do_h_enter makes it: valid if the host page is mapped,
   * ABSENT if not yet, ABSENT with key 31 for emulated MMIO.
   */
  changed(ptex: number): void {
    const hpt = this.hpt;
    const g = hpt.guest.view;
    const at = ptex * 16;
    const wasValid = hpt.realValid(ptex);
    const oldGfn = hpt.linkGfn[ptex]!;
    if (!hpt.guestValid(ptex)) {
      this.dropReal(ptex, wasValid, oldGfn);
      hpt.clearReal(ptex);
      return;
    }
    const g0Hi = g.getUint32(at, false);
    const g0Lo = g.getUint32(at + 4, false);
    const g1Hi = g.getUint32(at + 8, false);
    const g1Lo = g.getUint32(at + 12, false);
    const shift = hptePageShifts(g0Lo, g1Lo) & 0xff;
    const gfn = alignedGfn(g1Hi, g1Lo, shift);
    const slot = shift === 12 ? this.memslots.findByGfn(gfn) : undefined;
    if (wasValid && oldGfn === gfn && slot !== undefined) {
      hpt.invalidateEntry(ptex);
      const frameHi = hpt.realR1Hi(ptex) & 0x0fff_ffff;
      const frameLo = hpt.real.view.getUint32(at + 12, false) >>> 12;
      const rc = hpt.realRc(ptex) & g1Lo;
      this.storeValid(ptex, slot, gfn, g0Hi, g0Lo, g1Hi, (g1Lo & ~0x180) | rc, frameHi * TWO_POW_20 + frameLo);
      return;
    }
    this.dropReal(ptex, wasValid, oldGfn);
    if (slot === undefined) {
      // Emulated MMIO (no memslot, or a page larger than the host's): ABSENT with key 31 (kvmppc_do_h_enter).
      hpt.clearReal(ptex);
      hpt.storeReal(ptex, g0Hi, ((g0Lo & ~1) | HPTE_V_ABSENT_LO) >>> 0, g1Hi | HPTE_R_KEY_HI_HI, g1Lo | HPTE_R_KEY_LO_LO);
      return;
    }
    const frame = slot.frameAt(gfn - slot.baseGfn);
    const hfn = frame >= 0 ? frame : frame === FRAME_ZERO ? this.memslots.gfnToHfn(slot, gfn, false) : -1;
    if (hfn < 0) {
      // The host page is not mapped yet: ABSENT, the key cleared; the first access faults it in.
      hpt.clearReal(ptex);
      hpt.storeReal(ptex, g0Hi, ((g0Lo & ~1) | HPTE_V_ABSENT_LO) >>> 0, g1Hi & ~HPTE_R_KEY_HI_HI, g1Lo & ~HPTE_R_KEY_LO_LO);
      return;
    }
    // R/C only where the page's rmap word has them (kvmppc_do_h_enter).
    const rc = g1Lo & slot.arch.hi[gfn - slot.baseGfn]! & 0x180;
    this.storeValid(ptex, slot, gfn, g0Hi, g0Lo, g1Hi, (g1Lo & ~0x180) | rc, hfn);
    slot.rmapOps.add(slot, gfn, ptex);
  }

  /** The old real entry leaves its ring (R/C kept) and the TLBs. */
  private dropReal(ptex: number, wasValid: boolean, oldGfn: number): void {
    if (!wasValid) return;
    this.hpt.invalidateEntry(ptex);
    const slot = oldGfn < 0 ? undefined : this.memslots.findByGfn(oldGfn);
    if (slot !== undefined) slot.rmapOps.remove(slot, oldGfn, ptex);
    else this.hpt.linkGfn[ptex] = -1;
    // Not valid any more; what replaces it is stored by the caller.
    const view = this.hpt.real.view;
    view.setUint32(ptex * 16 + 4, view.getUint32(ptex * 16 + 4, false) & ~1, false);
  }

  /**
   * A valid real entry for host frame `hfn` (kvmppc_book3s_hv_page_fault):
   * the guest's dword1 with the host frame as RPN, WIMG forced to M unless
   * it already is (hpte_cache_flags_ok), made read-only (hpte_make_readonly)
   * where the host page is not writable — the zero frame, a read-only slot.
   */
  private storeValid(ptex: number, slot: Memslot<PpcHptTypes>, gfn: number, g0Hi: number, g0Lo: number, g1Hi: number, g1Lo: number, hfn: number): void {
    let hi = (g1Hi & ~(0x4000_0000 | 0x0fff_ffff)) | Math.floor(hfn / TWO_POW_20);
    let lo = ((hfn % TWO_POW_20) * 4096 + (g1Lo & 0xfff)) >>> 0;
    if ((lo & 0x78) !== 0x10) lo = (lo & ~0x68) | 0x10;
    const writable = !slot.readOnly && slot.frameAt(gfn - slot.baseGfn) >= 0;
    // hpte_make_readonly, for the PP values that allow a store (0, 1, 2): 0 becomes PP_RXXX, 1 and 2
    // PP_RXRX. The others allow none already; KVM would also turn the reserved 4, 5 and 7 into
    // PP_RXXX (a supervisor read the ISA's table refuses), which hvmmu does not.
    if (!writable && (hi & 0x8000_0000) === 0 && (lo & 3) !== 3) {
      if ((lo & 3) === 0) {
        lo = (lo & ~3) | 2; // PP_RXXX: PP0 with PP = 2
        hi |= 0x8000_0000;
      } else {
        lo |= 3; // PP_RXRX
      }
    }
    this.hpt.storeReal(ptex, g0Hi, ((g0Lo & ~HPTE_V_ABSENT_LO) | 1) >>> 0, hi >>> 0, lo >>> 0);
  }

  // ------------------------------------------------------------ resizing

  /**
   * H_RESIZE_HPT_PREPARE(flags, shift): ready a table of order `shift` (0
   * cancels). QEMU's limit on the order: the one its RAM would get, plus one
   * (spapr_hpt_shift_for_ramsize), so a guest cannot make the host allocate
   * more than twice what its memory warrants; above it H_RESOURCE.
   */
  resizePrepare(flagsHi: number, flagsLo: number, shift: number): number {
    if (shift > this.maxResizeOrder()) return ResizeStatus.H_RESOURCE;
    return this.resizer.prepare(flagsHi, flagsLo, shift);
  }

  /**
   * H_RESIZE_HPT_COMMIT(flags, shift): the guest view's bolted entries move
   * by KVM's rehash (the others are dropped: the guest faults them back, as
   * after resize_hpt_rehash), every real entry leaves its ring first (R/C
   * kept), then the real HPT is made again from the new guest view.
   */
  resizeCommit(flagsHi: number, flagsLo: number, shift: number): number {
    const old = this.resizer.current;
    const status = this.resizer.commit(flagsHi, flagsLo, shift);
    if (status !== ResizeStatus.H_SUCCESS || this.resizer.current === old) return status;
    for (const slot of this.rmapSlots) {
      const rmap = slot.arch;
      for (let i = 0; i < slot.npages; i++) if (rmap.present(i)) this.rmapContext.unmapAll(slot, slot.baseGfn + i);
    }
    const next = this.resizer.current;
    this.hpt.replaceTables(next);
    this.hpt.vrmaEntries = 0;
    this.hashHcalls = new HptHypercalls(next, this);
    this.htabStore = new HostHptStore(this);
    for (let i = 0; i < next.entries; i++) {
      if (!next.isValid(i)) continue;
      this.changed(i);
      // A moved VRMA entry keeps the VRMA set up.
      if (next.view.getUint32(i * 16, false) === VRMA_VSID_WORD_HI) this.hpt.vrmaEntries++;
    }
    this.resizes++;
    return status;
  }

  /** The largest order a resize may ask for: QEMU's order for the guest's memory, plus one. */
  private maxResizeOrder(): number {
    let bytes = 0;
    for (const slot of this.memslots.slots()) bytes += slot.npages * 4096;
    const forRam = Math.max(HPT_MIN_ORDER, Math.ceil(Math.log2(Math.max(bytes, 1))) - 7);
    return Math.min(HPT_MAX_SUPPORTED_ORDER, forRam + 1);
  }

  // ------------------------------------------------------------ faults

  handleFault(vcpu: Vcpu<PpcHptTypes>, _vpn: number, access: number, missCode: number, fault: FaultInfo): FaultOutcomeValue {
    const mmu = vcpu.arch;
    if (missCode === HptMiss.GUEST) return this.deliver(mmu, fault);
    if (missCode === HptMiss.VRMA_SETUP) return this.setupVrma(fault);
    const write = (access & 1) !== 0;
    let gfn: number;
    let ptex = -1;
    if (missCode === HptMiss.HOST) {
      ptex = mmu.hostMissPtex;
      const g = this.hpt.guest.view;
      const g1Lo = g.getUint32(ptex * 16 + 12, false);
      const shift = hptePageShifts(g.getUint32(ptex * 16 + 4, false), g1Lo) & 0xff;
      gfn = alignedGfn(g.getUint32(ptex * 16 + 8, false), g1Lo, shift);
      if (shift !== 12) return this.exit(fault, FaultKind.NO_MEMORY, gfn);
    } else {
      gfn = mmu.realModeGfn;
      if (gfn < 0) return this.exit(fault, FaultKind.NO_MEMORY, -1);
    }
    const slot = this.memslots.findByGfn(gfn);
    if (slot === undefined) return this.exit(fault, FaultKind.NO_MEMORY, gfn);
    if (write && slot.readOnly) return this.exit(fault, FaultKind.READ_ONLY, gfn);
    // A write to the zero frame gives the page its own frame; core first invalidates what maps the zero frame.
    const hfn = this.memslots.gfnToHfn(slot, gfn, write);
    if (hfn === GFN_HOST_OUT_OF_MEMORY) return this.exit(fault, FaultKind.HOST_OUT_OF_MEMORY, gfn);
    if (hfn < 0) return this.exit(fault, FaultKind.NO_MEMORY, gfn);
    this.hostFaults++;
    if (ptex >= 0) {
      const hpt = this.hpt;
      const g = hpt.guest.view;
      const at = ptex * 16;
      const wasValid = hpt.realValid(ptex);
      if (wasValid) hpt.invalidateEntry(ptex);
      // R/C only where the page's rmap word still has them harvested (KVM: r &= rcbits | ~(R|C)):
      // a C the dirty log took must not come back with the mapping.
      const rc = wasValid ? hpt.realRc(ptex) : g.getUint32(at + 12, false) & slot.arch.hi[gfn - slot.baseGfn]! & 0x180;
      this.storeValid(
        ptex,
        slot,
        gfn,
        g.getUint32(at, false),
        g.getUint32(at + 4, false),
        g.getUint32(at + 8, false),
        (g.getUint32(at + 12, false) & ~0x180) | rc,
        hfn,
      );
      if (!wasValid || hpt.linkGfn[ptex] !== gfn) slot.rmapOps.add(slot, gfn, ptex);
    }
    if (this.trace !== null) this.trace({ kind: 'hpt-host-fault', vcpu: vcpu.id, gfn, ptex, write });
    return FaultOutcome.RETRY;
  }

  /**
   * kvmppc_hv_setup_htab_rma: the VRMA's bolted entries over the memslot at
   * guest physical 0, entered with H_EXACT as kvmppc_map_vrma does (4K
   * pages: the host pages backing it), stopping at the first refused. No
   * memslot at 0: the vCPU cannot run (KVM fails KVM_RUN), an exit.
   */
  private setupVrma(fault: FaultInfo): FaultOutcomeValue {
    const slot = this.memslots.findByGfn(0);
    if (slot === undefined) return this.exit(fault, FaultKind.NO_MEMORY, 0);
    const regs = new HypercallRegisters();
    const made = forEachVrmaEntry(this.hpt.guest.hashMask, slot.npages * 4096, 12, (ptex, v0Hi, v0Lo, r1Hi, r1Lo) => {
      regs.clear();
      regs.setArgHalves(0, 0x80, 0).setArg(1, ptex).setArgHalves(2, v0Hi, v0Lo).setArgHalves(3, r1Hi, r1Lo);
      return this.hcalls.enter(regs) === PaprStatus.H_SUCCESS;
    });
    // At least one entry, so a retry cannot come back here (a full group is KVM's "map_vrma failed").
    this.hpt.vrmaEntries = Math.max(1, made);
    if (this.trace !== null) this.trace({ kind: 'hpt-vrma-setup', entries: made });
    return FaultOutcome.RETRY;
  }

  private deliver(mmu: HptVcpuMmu, fault: FaultInfo): FaultOutcomeValue {
    const r = mmu.result;
    this.guestFaults++;
    // A VRMA miss the guest has no entry for is reflected as the plain DSI/ISI (kvmppc_hpte_hv_fault).
    const vector = r.vector === HptVector.HDSI ? HptVector.DSI : r.vector === HptVector.HISI ? HptVector.ISI : r.vector;
    const instruction = vector === HptVector.ISI || vector === HptVector.ISEG;
    fault.deliver(vector, r.cause);
    if (instruction) {
      fault.setWord(HptFaultWord.SRR1, 0, r.cause);
    } else {
      fault.setWord(HptFaultWord.SRR1, 0, 0);
      fault.setWord(HptFaultWord.DAR, r.darHi, r.darLo);
      // The walk saw the page; the vCPU fills in the byte.
      fault.addressWord = HptFaultWord.DAR;
    }
    return FaultOutcome.DONE;
  }

  private exit(fault: FaultInfo, kind: (typeof FaultKind)[keyof typeof FaultKind], gfn: number): FaultOutcomeValue {
    this.vmmExits++;
    fault.exit(kind, gfn < 0 ? -1 : gfn * 4096);
    return FaultOutcome.DONE;
  }

  // ------------------------------------------------------------ memslot hooks

  prepareMemslot(slot: Memslot<PpcHptTypes>, _change: MemslotChange): HptSlotRmap {
    this.rmapSlots.add(slot);
    return new HptSlotRmap(slot.npages, this.hpt.rev);
  }

  flushMemslot(slot: Memslot<PpcHptTypes>, _change: MemslotChange): void {
    this.flushRealModeTlbs();
    if (this.memslotInvalidation === MemslotInvalidation.FAST_ZAP) {
      this.zapAll();
      return;
    }
    // kvmppc_core_flush_memslot_hv: every page through the (now invalid) rmap table.
    const rmap = slot.arch;
    for (let i = 0; i < slot.npages; i++) if (rmap.present(i)) slot.rmapOps.unmap(slot, slot.baseGfn + i);
  }

  commitMemslot(slot: Memslot<PpcHptTypes>, change: MemslotChange, oldFlags: number): void {
    if (change === 'delete') {
      this.rmapSlots.delete(slot);
      return;
    }
    if (change === 'flags' && (oldFlags & MemslotFlags.LOG_DIRTY_PAGES) === 0 && slot.dirtyLogging) {
      // Logging on: clear the host's C everywhere, so each page's next store is seen.
      for (let i = 0; i < slot.npages; i++) slot.rmapOps.harvestDirty(slot, slot.baseGfn + i);
    }
  }

  invalidateGfnRange(slot: Memslot<PpcHptTypes>, startGfn: number, endGfn: number): number {
    this.flushRealModeTlbs();
    let dropped = 0;
    const lo = Math.max(startGfn, slot.baseGfn);
    const hi = Math.min(endGfn, slot.endGfn);
    for (let gfn = lo; gfn < hi; gfn++) if (slot.arch.present(gfn - slot.baseGfn) && slot.rmapOps.unmap(slot, gfn)) dropped++;
    return dropped;
  }

  /** KVM HV's change_pte (kvm_set_spte_hva_hv) unmaps: the next access faults the new page in. */
  changeGfnPte(slot: Memslot<PpcHptTypes>, gfn: number, _hfn: number): void {
    this.flushRealModeTlbs();
    slot.rmapOps.unmap(slot, gfn);
  }

  dirtyLogHarvested(slot: Memslot<PpcHptTypes>, harvested: Uint32Array): void {
    for (let word = 0; word < harvested.length; word++) {
      let bits = harvested[word]!;
      while (bits !== 0) {
        const bit = 31 - Math.clz32(bits);
        bits &= ~(1 << bit);
        const index = word * 32 + bit;
        if (index < slot.npages) slot.rmapOps.harvestDirty(slot, slot.baseGfn + index);
      }
    }
  }

  ageGfnRange(slot: Memslot<PpcHptTypes>, startGfn: number, endGfn: number): boolean {
    let young = false;
    const lo = Math.max(startGfn, slot.baseGfn);
    const hi = Math.min(endGfn, slot.endGfn);
    for (let gfn = lo; gfn < hi; gfn++) if (slot.rmapOps.age(slot, gfn)) young = true;
    return young;
  }

  testAgeGfnRange(slot: Memslot<PpcHptTypes>, startGfn: number, endGfn: number): boolean {
    const lo = Math.max(startGfn, slot.baseGfn);
    const hi = Math.min(endGfn, slot.endGfn);
    for (let gfn = lo; gfn < hi; gfn++) if (slot.rmapOps.testAge(slot, gfn)) return true;
    return false;
  }

  /** Every valid real entry becomes ABSENT (the next access of each faults it in again). */
  zapAll(): void {
    for (const slot of this.rmapSlots) {
      const rmap = slot.arch;
      for (let i = 0; i < slot.npages; i++) if (rmap.present(i)) this.rmapContext.unmapAll(slot, slot.baseGfn + i);
    }
    this.tlbs.flushAll();
  }

  private flushRealModeTlbs(): void {
    for (const mmu of this.hpt.vcpus) if (mmu?.inRealMode) mmu.vcpu.tlb.flushAll();
  }

  // ------------------------------------------------------------ stats and inspection

  stats(): PpcHptStats {
    const hpt = this.hpt;
    let guestEntries = 0;
    let realValid = 0;
    let realAbsent = 0;
    for (let i = 0; i < hpt.guest.entries; i++) {
      if (hpt.guestValid(i)) guestEntries++;
      if (hpt.realValid(i)) realValid++;
      else if (hpt.realAbsent(i)) realAbsent++;
    }
    let slotBytes = 0;
    for (const slot of this.rmapSlots) slotBytes += slot.arch.hi.byteLength + slot.arch.lo.byteLength;
    return {
      hptGuestEntries: guestEntries,
      hptRealValid: realValid,
      hptRealAbsent: realAbsent,
      hptTableBytes: hpt.bytes,
      hptRmapBytes: hpt.rmapBytes + slotBytes,
      hptHostFaults: this.hostFaults,
      hptGuestFaults: this.guestFaults,
      hptVrmaEntries: this.hpt.vrmaEntries,
      hptResizes: this.resizes,
      hptVmmExits: this.vmmExits,
      hptSearchRefs: this.counters.searchRefs,
      hptSearches: this.counters.searches,
      hptHostUnmaps: this.rmapContext.counters.hostUnmaps,
      hptInvalidSlotWarnings: this.rmapContext.counters.invalidSlotWarnings,
    };
  }

  /** Every valid real entry (a leaf), every ring member, and each vCPU's MSR bits (for the conformance suite). */
  inspect(): MmuSnapshot {
    const hpt = this.hpt;
    const leaves: MappingLeaf[] = [];
    const r = hpt.real.view;
    for (let i = 0; i < hpt.real.entries; i++) {
      if (!hpt.realValid(i)) continue;
      const gfn = hpt.linkGfn[i]!;
      const slot = gfn < 0 ? undefined : this.memslots.findByGfn(gfn);
      const hi = hpt.realR1Hi(i);
      const lo = r.getUint32(i * 16 + 12, false);
      const pp = (lo & 3) | ((hi >>> 29) & 4);
      leaves.push({
        entry: i,
        slotId: slot?.id ?? -1,
        gfn,
        level: 1,
        pages: 1,
        hfn: (hi & 0x0fff_ffff) * TWO_POW_20 + (lo >>> 12),
        // Writable without the MMU seeing it: PP allows a store and C is set (without C, a store
        // walks again, sets C and is logged — KVM HV's dirty log is the C bit).
        writable: pp !== 3 && pp !== 6 && pp !== 1 && (lo & 0x80) !== 0,
      });
    }
    const rmap: RmapRecord[] = [];
    for (const slot of this.rmapSlots) {
      const slotRmap = slot.arch;
      for (let i = 0; i < slot.npages; i++) {
        if (!slotRmap.present(i)) continue;
        for (const ptex of slotRmap.chain(i)) rmap.push({ slotId: slot.id, gfn: slot.baseGfn + i, level: 1, entry: ptex });
      }
    }
    const registers = this.hpt.vcpus.map((m): Readonly<Record<string, number>> => (m === undefined ? {} : { ir: m.regs.ir ? 1 : 0, dr: m.regs.dr ? 1 : 0 }));
    return { leaves, rmap, registers };
  }

  /** @internal Misuse guard for the guest side. */
  requireVcpu(id: number): HptVcpuMmu {
    const mmu = this.hpt.vcpus[id];
    if (mmu === undefined) throw new HvmmuError('VCPU_BAD_ID', `vCPU ${id} is not attached to this HPT MMU`);
    return mmu;
  }
}

/** The guest page an HPTE's RPN names, aligned down to its page size. */
function alignedGfn(r1Hi: number, r1Lo: number, shift: number): number {
  const gfn = (r1Hi & 0x0fff_ffff) * TWO_POW_20 + (r1Lo >>> 12);
  const pages = 2 ** (shift - 12);
  return gfn - (gfn % pages);
}
