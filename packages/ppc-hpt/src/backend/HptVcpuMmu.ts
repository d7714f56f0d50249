import { Access, HvmmuError, type MemslotTable, type TranslationResult, type Translator, type Vcpu } from '@hvmmu/core';
import { HptRegisters } from '../mmu/HptRegisters.js';
import { HptTranslation, HptVector } from '../mmu/HptTranslation.js';
import { HptWalker } from '../mmu/HptWalker.js';
import { Slb } from '../mmu/Slb.js';
import { HPTE_R_C_LO, HPTE_R_R_LO, type HostHpt } from './HostHpt.js';
import type { PpcHptTypes } from './PpcHptTypes.js';

/** Miss codes the translator gives the MMU's fault handler. */
export const HptMiss = {
  /** The guest's own tables refuse the access: deliver `result`'s interrupt. */
  GUEST: 1,
  /** The guest view allows it but the real entry is ABSENT or host-read-only (kvmppc_hpte_hv_fault → page fault). */
  HOST: 2,
  /** Relocation is off, the real address is guest physical, and its host frame is not mapped yet. */
  REAL_MODE: 3,
  /** Relocation is off and the VRMA is not set up yet (KVM does it before the guest first runs). */
  VRMA_SETUP: 4,
} as const;

/** Counters the translators share with the MMU's stats. */
export interface HptTranslatorCounters {
  searches: number;
  searchRefs: number;
}

/** TLB permission masks by allowed protection (PAGE_READ 1 | WRITE 2 | EXEC 4) × 2 + problem state: the access kinds (`Access` values 0..15) of that privilege the protection allows. */
const PERM_BY_PROT = (() => {
  const table = new Uint16Array(16);
  for (let prot = 0; prot < 8; prot++) {
    for (let problem = 0; problem < 2; problem++) {
      let mask = 0;
      for (let k = 0; k < 16; k++) {
        if ((k & (Access.WRITE | Access.FETCH)) === (Access.WRITE | Access.FETCH)) continue;
        const kindProblem = (k & Access.USER) !== 0 && (k & Access.IMPLICIT) === 0 ? 1 : 0;
        if (kindProblem !== problem) continue;
        const need = (k & Access.FETCH) !== 0 ? 4 : (k & Access.WRITE) !== 0 ? 2 : 1;
        if ((prot & need) !== 0) mask |= 1 << k;
      }
      table[prot * 2 + problem] = mask;
    }
  }
  return table;
})();
/** Read and execute, either privilege. */
const PERM_READ_EXEC = PERM_BY_PROT[5 * 2]! | PERM_BY_PROT[5 * 2 + 1]!;

const TWO_POW_20 = 0x10_0000;

/**
 * One vCPU's hash MMU as the hardware runs it (`vcpu.arch`): its registers
 * (MSR[IR/DR], AMR, IAMR, LPCR bits), its SLB, and the translation of a
 * TLB miss — the search of the real HPT (POWER ISA v2.07 Book III 5.7.7),
 * which sets R and C in the real entry as the processor does. A search
 * that fails is looked at as KVM HV's kvmppc_hpte_hv_fault does: if the
 * guest view has an entry allowing the access, the real one is ABSENT or
 * host-read-only and the MMU resolves it (`HptMiss.HOST`); otherwise the
 * guest's own interrupt, with the cause from the guest view, is delivered.
 * R and C set in a real entry are added to the guest view (KVM shows real
 * R/C in H_READ and the HTAB stream), and a store — which sets C, KVM HV's
 * dirty log — marks its page dirty in a dirty-logging memslot.
 *
 * MSR[PR] is taken from each access (`Access.USER` without
 * `Access.IMPLICIT`), so the TLB keeps user and supervisor permissions
 * apart. Change registers through the setters here, which flush the TLB;
 * after writing `regs` directly, call `vcpu.tlb.flushAll()`.
 */
export class HptVcpuMmu implements Translator {
  readonly regs = new HptRegisters();
  /** The guest's SLB; write it through slbmte / slbie / slbia here. */
  readonly slb: Slb;
  /** The last search: on a guest fault its interrupt and registers. */
  readonly result = new HptTranslation();
  /** The guest-view entry of the last HOST miss. */
  hostMissPtex = -1;
  /** The guest-physical page of the last REAL_MODE miss (-1: beyond 2^53). */
  realModeGfn = -1;
  private readonly walker = new HptWalker();
  private readonly probe = new HptTranslation();

  constructor(
    readonly vcpu: Vcpu<PpcHptTypes>,
    private readonly hpt: HostHpt,
    private readonly memslots: MemslotTable<PpcHptTypes>,
    private readonly counters: HptTranslatorCounters,
    slbSize: number,
    realMode: 'vrma' | 'guest-physical',
  ) {
    this.slb = new Slb(slbSize);
    if (realMode === 'vrma') {
      // KVM HV: real mode through the VRMA, 4K pages (the host pages backing the RMA).
      this.regs.vrma = true;
      this.regs.vrmaPageShift = 12;
    } else {
      // A virtual hypervisor: real-mode addresses are guest physical.
      this.regs.virtualHypervisor = true;
    }
  }

  /** slbmte RS, RB (halves). False, nothing written, where the processor raises a program interrupt. Replacing a valid entry flushes the TLB. */
  slbmte(rbHi: number, rbLo: number, rsHi: number, rsLo: number): boolean {
    const slot = rbLo & 0xfff;
    const replacing = slot < this.slb.size && this.slb.isValid(slot);
    if (!this.slb.slbmte(rbHi, rbLo, rsHi, rsLo)) return false;
    if (replacing) this.vcpu.tlb.flushAll();
    return true;
  }

  /** slbie: the segment's entry goes, and with it the TLB's translations (the ERAT flush). */
  slbie(eaHi: number, eaLo: number): void {
    this.slb.slbie(eaHi, eaLo);
    this.vcpu.tlb.flushAll();
  }

  /** slbia: every entry but slot 0 goes. */
  slbia(): void {
    this.slb.slbia();
    this.vcpu.tlb.flushAll();
  }

  /** MSR[IR] and MSR[DR]: relocation on or off for fetches and data. */
  setRelocation(ir: boolean, dr: boolean): void {
    if (typeof ir !== 'boolean' || typeof dr !== 'boolean') throw new HvmmuError('BAD_ARGUMENT', 'setRelocation takes two booleans (MSR[IR], MSR[DR])');
    this.regs.ir = ir;
    this.regs.dr = dr;
    this.vcpu.tlb.flushAll();
  }

  /** AMR and IAMR (storage-key protection), as BigInts. */
  setKeys(amr: bigint, iamr: bigint): void {
    this.regs.setAmr(amr).setIamr(iamr);
    this.vcpu.tlb.flushAll();
  }

  /** True while either relocation is off (its TLB entries are real-mode ones). */
  get inRealMode(): boolean {
    return !this.regs.ir || !this.regs.dr;
  }

  translate(vpn: number, access: number, out: TranslationResult): number {
    const regs = this.regs;
    const kind = access & 3; // HptAccess: LOAD 0, STORE 1, FETCH 2
    const problem = (access & 0xc) === Access.USER;
    regs.pr = problem;
    const eaHi = Math.floor(vpn / TWO_POW_20);
    const eaLo = ((vpn % TWO_POW_20) * 4096) >>> 0;
    const r = this.result;
    const hpt = this.hpt;
    if (regs.vrma && hpt.vrmaEntries === 0 && !(kind === 2 ? regs.ir : regs.dr)) {
      out.missCode = HptMiss.VRMA_SETUP;
      return -1;
    }
    const ok = this.walker.translate(regs, this.slb, hpt.real, eaHi, eaLo, kind, r, true);
    if (ok && r.ptex < 0) return this.realMode(r.ra, kind, out);
    this.counters.searches++;
    this.counters.searchRefs += r.refs;
    if (ok) {
      const ptex = r.ptex;
      const realLo = hpt.real.view.getUint32(ptex * 16 + 12, false);
      const guestLo = hpt.guest.view.getUint32(ptex * 16 + 12, false);
      const fresh = realLo & (HPTE_R_R_LO | HPTE_R_C_LO) & ~guestLo;
      if (fresh !== 0) {
        hpt.guest.view.setUint32(ptex * 16 + 12, (guestLo | fresh) >>> 0, false);
        hpt.guest.markModified(ptex);
      }
      // A store sets C: the page is dirty (KVM HV's dirty log is the C bit, harvested later).
      if (kind === 1) this.markDirty(hpt.linkGfn[ptex]!);
      out.perm = PERM_BY_PROT[r.prot * 2 + (problem ? 1 : 0)]!;
      out.cacheable = true;
      return r.ra / 4096;
    }
    const v = r.vector;
    // A relocated search misses with DSI/ISI; a VRMA one with HDSI/HISI (a real-mode access's
    // fault goes to the hypervisor, which reflects a DSI/ISI when the guest has no entry either).
    if (v === HptVector.DSI || v === HptVector.ISI || v === HptVector.HDSI || v === HptVector.HISI) {
      // kvmppc_hpte_hv_fault: does the guest view allow it? Then the real entry is the host's business.
      if (this.walker.translate(regs, this.slb, hpt.guest, eaHi, eaLo, kind, this.probe, false)) {
        this.hostMissPtex = this.probe.ptex;
        out.missCode = HptMiss.HOST;
        return -1;
      }
      // The guest's answer: its view's search, guest-visible (nothing is written when it fails).
      this.walker.translate(regs, this.slb, hpt.guest, eaHi, eaLo, kind, r, true);
    }
    out.missCode = HptMiss.GUEST;
    return -1;
  }

  /** Relocation off: the real address is guest physical (a pseries guest's real mode); its frame from the memslots. */
  private realMode(ra: number, kind: number, out: TranslationResult): number {
    const gfn = ra < 0 ? -1 : Math.floor(ra / 4096);
    const slot = gfn < 0 ? undefined : this.memslots.findByGfn(gfn);
    this.realModeGfn = gfn;
    out.missCode = HptMiss.REAL_MODE;
    if (slot === undefined) return -1;
    if (kind === 1) {
      const frame = slot.frameAt(gfn - slot.baseGfn);
      if (slot.readOnly || frame < 0) return -1;
      // With no HPTE to carry C, a logged page's stores are not cached: each one is logged here.
      out.cacheable = !slot.dirtyLogging;
      if (slot.dirtyLogging) slot.markDirty(gfn);
      out.perm = 0xffff;
      return frame;
    }
    const hfn = this.memslots.gfnToHfn(slot, gfn, false);
    if (hfn < 0) return -1;
    const writable = slot.frameAt(gfn - slot.baseGfn) >= 0 && !slot.readOnly && !slot.dirtyLogging;
    out.perm = writable ? 0xffff : PERM_READ_EXEC;
    out.cacheable = true;
    return hfn;
  }

  private markDirty(gfn: number): void {
    const slot = gfn < 0 ? undefined : this.memslots.findByGfn(gfn);
    if (slot?.dirtyLogging) slot.markDirty(gfn);
  }
}
