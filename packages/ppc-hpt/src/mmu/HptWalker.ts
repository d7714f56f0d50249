import { POWER8_PAGE_SIZES, type SegmentPageSize, hptePageShift } from '../format/SegmentPageSizes.js';
import { VRMA_VSID_WORD_HI, VRMA_VSID_WORD_LO, vrmaSegment } from './Vrma.js';
import type { HashPageTable } from './HashPageTable.js';
import type { HptRegisters } from './HptRegisters.js';
import { HptCause, type HptTranslation, HptVector } from './HptTranslation.js';
import type { Slb } from './Slb.js';

const READ = 1;
const WRITE = 2;
const EXEC = 4;
/** HptAccess.STORE and .FETCH, as literals for the hot path. */
const STORE = 1;
const FETCH = 2;

/**
 * The hash MMU's translation, as the processor performs it (POWER ISA
 * v2.07 Book III 5.7; the algorithm and its faults as QEMU's
 * target/ppc/mmu-hash64.c ppc_hash64_xlate implements them):
 *
 * 1. Relocation off: real mode (EA bits 63..60 ignored; HRMOR in
 *    hypervisor state when EA bit 63 is clear; guest physical under a
 *    virtual hypervisor).
 * 2. The SLB entry for the EA's segment (256M or 1T), else a segment
 *    interrupt; a fetch from an N segment is refused.
 * 3. Hash: VSID ^ (page index in the segment) for 256M segments, VSID ^
 *    (VSID << 25) ^ page index for 1T; the primary group (hash & mask),
 *    then the secondary (~hash & mask) with H; an entry matches when B,
 *    AVPN, H and V equal the search word and its L/LP encoding is one of
 *    the segment's page sizes (else it is skipped, as the architecture
 *    says).
 * 4. Access: PP with the SLB's Ks (privileged) or Kp (problem state) key;
 *    N or G forbid fetches; AMR / IAMR bits for the HPTE's storage key.
 * 5. Seen by the guest: R set, and C on a store (a load leaves the page
 *    read-only until C is set), written back into the HPTE.
 *
 * At most 16 HPTEs are read per translation, whatever the table holds.
 */
export class HptWalker {
  /**
   * Translate effective address (eaHi, eaLo) for `access` (HptAccess).
   * The halves may be given as uint32 or int32 (`x | 0`): a caller on a hot
   * path passes int32, which V8 passes unboxed. With `guestVisible` false
   * (a debugger's look) no fault is recorded and R/C are neither checked
   * nor written.
   */
  translate(regs: HptRegisters, slb: Slb, hpt: HashPageTable, eaHi: number, eaLo: number, access: number, out: HptTranslation, guestVisible = true): boolean {
    out.reset();
    eaHi >>>= 0;
    eaLo >>>= 0;
    const relocation = access === FETCH ? regs.ir : regs.dr;
    let vHi: number;
    let vLo: number;
    let segment: SegmentPageSize;
    // Real mode of a guest under a (non-virtual) hypervisor with VRMA: the search uses the
    // VRMA segment instead of the SLB, and checks no storage keys (QEMU build_vrma_slbe).
    const vrma = !relocation && regs.vrma && !regs.hv && !regs.virtualHypervisor;
    if (!relocation && !vrma) {
      let hi = eaHi & 0x0fff_ffff;
      let lo = eaLo;
      if (regs.hv && eaHi >>> 31 === 0) {
        hi |= regs.hrmorHi;
        lo = (lo | regs.hrmorLo) >>> 0;
      }
      out.setRa(hi, lo);
      out.pageShift = 12;
      out.prot = READ | WRITE | EXEC;
      out.ok = true;
      return true;
    }
    if (vrma) {
      const sps = vrmaSegment(regs.vrmaPageShift);
      if (sps === undefined) {
        // An invalid VRMA page size: QEMU raises a machine check.
        if (guestVisible) out.vector = HptVector.MCHECK;
        return false;
      }
      vHi = VRMA_VSID_WORD_HI;
      vLo = (VRMA_VSID_WORD_LO | sps.slbEncoding) >>> 0;
      segment = sps;
    } else {
      const slot = slb.lookup(eaHi, eaLo);
      if (slot < 0) {
        if (guestVisible) {
          if (access === FETCH) {
            out.vector = HptVector.ISEG;
          } else {
            out.vector = HptVector.DSEG;
            out.darHi = eaHi;
            out.darLo = eaLo;
          }
        }
        return false;
      }
      vHi = slb.vsidHiOf(slot);
      vLo = slb.vsidLoOf(slot);
      if (access === FETCH && (vLo & 0x200) !== 0) {
        if (guestVisible) this.storageFault(regs, vrma, out, access, vHi, vLo, eaHi, eaLo, HptCause.NOEXEC_GUARD);
        return false;
      }
      segment = regs.lpcrIsl ? POWER8_PAGE_SIZES[0]! : slb.pageSize(slot)!;
    }
    const p = segment.baseShift;
    const offMask = p < 32 ? ~((1 << p) - 1) : 0;
    let hashLo: number;
    let hashHi: number;
    let avpnLo: number;
    if ((vHi & 0x4000_0000) !== 0) {
      // 1T segment: VSID = VSID word >> 24; the 40-bit offset's page index.
      const vsidLo = ((vLo >>> 24) | (vHi << 8)) >>> 0;
      const vsidHi = (vHi & 0x3fff_ffff) >>> 24;
      const epnLo = (eaLo & offMask) >>> 0;
      const epnHi = p <= 32 ? eaHi & 0xff : eaHi & 0xff & ~((1 << (p - 32)) - 1);
      const pageLo = p < 32 ? ((epnLo >>> p) | (epnHi << (32 - p))) >>> 0 : epnHi >>> (p - 32);
      const pageHi = p < 32 ? epnHi >>> p : 0;
      hashLo = (vsidLo ^ (vsidLo << 25) ^ pageLo) >>> 0;
      hashHi = (vsidHi ^ ((vsidHi << 25) | (vsidLo >>> 7)) ^ pageHi) >>> 0;
      avpnLo = ((epnLo >>> 16) | (epnHi << 16)) & 0xffff_ff80;
    } else {
      // 256M segment: VSID = VSID word >> 12; the 28-bit offset's page index.
      const vsidLo = ((vLo >>> 12) | (vHi << 20)) >>> 0;
      const vsidHi = (vHi & 0x3fff_ffff) >>> 12;
      const epnLo = (eaLo & 0x0fff_ffff & offMask) >>> 0;
      hashLo = (vsidLo ^ (p < 32 ? epnLo >>> p : 0)) >>> 0;
      hashHi = vsidHi;
      avpnLo = (epnLo >>> 16) & 0xffff_ff80;
    }
    void hashHi; // the hash mask of a supported order is below 2^32
    // The search word: B and VSID from the SLB, the AVPN from the EA, V (QEMU ppc_hash64_htab_lookup).
    const ptemHi = vHi;
    const ptemLo = ((vLo & 0xffff_f000) | avpnLo | 1) >>> 0;
    const mask = hpt.hashMask;
    let ptex: number;
    if (hpt.isaV3) {
      ptex = this.searchGroupV3(hpt, (hashLo & mask) >>> 0, ptemHi, ptemLo, segment, out);
      if (ptex < 0) ptex = this.searchGroupV3(hpt, (~hashLo & mask) >>> 0, ptemHi, (ptemLo | 2) >>> 0, segment, out);
    } else {
      ptex = this.searchGroup(hpt, (hashLo & mask) >>> 0, ptemHi, ptemLo, segment, out);
      if (ptex < 0) ptex = this.searchGroup(hpt, (~hashLo & mask) >>> 0, ptemHi, (ptemLo | 2) >>> 0, segment, out);
    }
    if (ptex < 0) {
      if (guestVisible) this.storageFault(regs, vrma, out, access, vHi, vLo, eaHi, eaLo, HptCause.NOPTE);
      return false;
    }
    const view = hpt.view;
    const r1Hi = this.foundR1Hi;
    const r1Lo = this.foundR1Lo;
    const shift = this.foundShift;
    // Access (QEMU ppc_hash64_pte_noexec_guard, _pte_prot, _amr_prot).
    const execProt = (r1Lo & 0xc) !== 0 ? READ | WRITE : READ | WRITE | EXEC;
    const key = (regs.pr ? vLo & 0x400 : vLo & 0x800) !== 0;
    // PP0 || PP (hptePp) and the 5-bit storage key (hpteKey), inline: imported helpers cost a
    // module-binding check each in V8's optimised code.
    const pp = (r1Lo & 3) | ((r1Hi & 0x8000_0000) >>> 29);
    let ppProt = 0;
    if (!key) {
      if (pp <= 2) ppProt = READ | WRITE | EXEC;
      else if (pp === 3 || pp === 6) ppProt = READ | EXEC;
    } else if (pp === 1 || pp === 3) {
      ppProt = READ | EXEC;
    } else if (pp === 2) {
      ppProt = READ | WRITE | EXEC;
    }
    const k = ((r1Hi & 0x3000_0000) >>> 25) | ((r1Lo & 0x0e00) >>> 9);
    const amrShift = 2 * (31 - k);
    const amrBits = amrShift >= 32 ? (regs.amrHi >>> (amrShift - 32)) & 3 : (regs.amrLo >>> amrShift) & 3;
    const iamrBits = amrShift >= 32 ? (regs.iamrHi >>> (amrShift - 32)) & 3 : (regs.iamrLo >>> amrShift) & 3;
    const amrProt = vrma ? READ | WRITE | EXEC : ((amrBits & 2) !== 0 ? 0 : WRITE) | ((amrBits & 1) !== 0 ? 0 : READ) | ((iamrBits & 1) !== 0 ? 0 : EXEC);
    let prot = execProt & ppProt & amrProt;
    const need = access === 0 ? READ : access === 1 ? WRITE : EXEC;
    if ((need & prot) === 0) {
      if (guestVisible) {
        let cause: number;
        if (access === FETCH) {
          cause = (execProt & EXEC) === 0 ? HptCause.NOEXEC_GUARD : (ppProt & EXEC) === 0 ? HptCause.PROTFAULT : 0;
          if ((amrProt & EXEC) === 0) cause |= HptCause.KEY;
        } else {
          cause = (need & ppProt) === 0 ? HptCause.PROTFAULT : 0;
          if ((need & amrProt) === 0) cause |= HptCause.KEY;
        }
        this.storageFault(regs, vrma, out, access, vHi, vLo, eaHi, eaLo, cause);
      }
      return false;
    }
    if (guestVisible) {
      // R always, C on a store; without C the page stays read-only so a later store comes back here.
      let lo = r1Lo | 0x100;
      if (access === STORE) lo |= 0x80;
      else if ((r1Lo & 0x80) === 0) prot &= ~WRITE;
      if (lo !== r1Lo) view.setUint32(ptex * 16 + 12, lo >>> 0, false);
    }
    // The real address: the RPN above the actual page size, the EA below it.
    const rpnHi = r1Hi & 0x0fff_ffff;
    const rpnLo = (r1Lo & 0xffff_f000) >>> 0;
    let raHi = rpnHi;
    let raLo: number;
    if (shift < 32) {
      const m = (1 << shift) - 1;
      raLo = ((rpnLo & ~m) | (eaLo & m)) >>> 0;
    } else {
      const m = (1 << (shift - 32)) - 1;
      raLo = eaLo;
      raHi = (rpnHi & ~m) | (eaHi & m);
    }
    out.setRa(raHi, raLo);
    out.pageShift = shift;
    out.prot = prot;
    out.ptex = ptex;
    out.ok = true;
    return true;
  }

  private foundShift = 0;
  private foundR1Hi = 0;
  private foundR1Lo = 0;

  /** The index of the matching HPTE in one group, or -1 (QEMU ppc_hash64_pteg_search). */
  private searchGroup(
    hpt: HashPageTable,
    group: number,
    ptemHi: number,
    ptemLo: number,
    segment: (typeof POWER8_PAGE_SIZES)[number],
    out: HptTranslation,
  ): number {
    const view = hpt.view;
    const base = group * 8;
    let at = base * 16;
    for (let i = 0; i < 8; i++, at += 16) {
      // B, AVPN, H and V must equal the search word (0xffff_ff83: QEMU HPTE64_V_COMPARE's mask, low half).
      if (view.getUint32(at, false) !== ptemHi || ((view.getUint32(at + 4, false) ^ ptemLo) & 0xffff_ff83) !== 0) continue;
      const v0Lo = view.getUint32(at + 4, false);
      const r1Hi = view.getUint32(at + 8, false);
      const r1Lo = view.getUint32(at + 12, false);
      // A 4K entry in a 4K segment needs no table look-up; everything else asks hptePageShift.
      const shift = (v0Lo & 0x4) === 0 && segment.baseShift === 12 ? 12 : hptePageShift(segment, v0Lo, r1Hi, r1Lo);
      if (shift === 0) continue;
      out.refs += i + 1;
      this.foundShift = shift;
      this.foundR1Hi = r1Hi;
      this.foundR1Lo = r1Lo;
      return base + i;
    }
    out.refs += 8;
    return -1;
  }

  /**
   * `searchGroup` on a table in the ISA v3.0 layout: each entry read as the
   * old one (QEMU converts new to old before matching). A copy rather than a
   * branch per entry in `searchGroup`: with the branch, ppc.hpt.walk fell
   * from 0.53 to 0.45.
   */
  private searchGroupV3(
    hpt: HashPageTable,
    group: number,
    ptemHi: number,
    ptemLo: number,
    segment: (typeof POWER8_PAGE_SIZES)[number],
    out: HptTranslation,
  ): number {
    const view = hpt.view;
    const base = group * 8;
    let at = base * 16;
    for (let i = 0; i < 8; i++, at += 16) {
      // B from dword1 bits 59:58 back to dword0 bits 63:62 (hpte_new_to_old_v), then the same compare.
      const v0Hi = ((view.getUint32(at, false) & 0x000f_ffff) | ((view.getUint32(at + 8, false) & 0x0c00_0000) << 4)) >>> 0;
      if (v0Hi !== ptemHi || ((view.getUint32(at + 4, false) ^ ptemLo) & 0xffff_ff83) !== 0) continue;
      const v0Lo = view.getUint32(at + 4, false);
      const r1Hi = (view.getUint32(at + 8, false) & ~0x0c00_0000) >>> 0;
      const r1Lo = view.getUint32(at + 12, false);
      // A 4K entry in a 4K segment needs no table look-up; everything else asks hptePageShift.
      const shift = (v0Lo & 0x4) === 0 && segment.baseShift === 12 ? 12 : hptePageShift(segment, v0Lo, r1Hi, r1Lo);
      if (shift === 0) continue;
      out.refs += i + 1;
      this.foundShift = shift;
      this.foundR1Hi = r1Hi;
      this.foundR1Lo = r1Lo;
      return base + i;
    }
    out.refs += 8;
    return -1;
  }

  /** DSI / ISI, or HDSI / HISI when LPCR[VPM1] sends a guest's faults to the hypervisor (QEMU ppc_hash64_set_dsi / _set_isi). */
  private storageFault(
    regs: HptRegisters,
    vrma: boolean,
    out: HptTranslation,
    access: number,
    vHi: number,
    vLo: number,
    eaHi: number,
    eaLo: number,
    cause: number,
  ): void {
    // A relocated access goes to the hypervisor with LPCR[VPM1]; a VRMA access always does (QEMU: vpm = use_vrma).
    const toHypervisor = (vrma || regs.lpcrVpm1) && !regs.hv;
    if (access === FETCH) {
      out.vector = toHypervisor ? HptVector.HISI : HptVector.ISI;
      out.cause = cause >>> 0;
    } else {
      out.vector = toHypervisor ? HptVector.HDSI : HptVector.DSI;
      out.cause = (access === STORE ? cause | HptCause.STORE : cause) >>> 0;
      out.darHi = eaHi;
      out.darLo = eaLo;
    }
    out.asdrHi = toHypervisor ? vHi : 0;
    out.asdrLo = toHypervisor ? vLo : 0;
  }
}
