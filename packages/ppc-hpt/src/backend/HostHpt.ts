import type { TlbShootdown } from '@hvmmu/core';
import { HashPageTable } from '../mmu/HashPageTable.js';
import { HptRevmapEntries } from '../rmap/HptRevmap.js';
import { VRMA_VSID_WORD_HI, VRMA_VSID_WORD_LO } from '../mmu/Vrma.js';
import type { HptVcpuMmu } from './HptVcpuMmu.js';

/** dword0: KVM's software bit for "the guest believes this valid, the hardware copy is not" (HPTE_V_ABSENT). */
export const HPTE_V_ABSENT_LO = 0x20;
/** dword1 storage-key bits (HPTE_R_KEY_HI in the high half, HPTE_R_KEY_LO in the low half). */
export const HPTE_R_KEY_HI_HI = 0x3000_0000;
export const HPTE_R_KEY_LO_LO = 0x0e00;
/** dword1 R and C. */
export const HPTE_R_R_LO = 0x100;
export const HPTE_R_C_LO = 0x80;

const TWO_POW_11 = 0x800;
const TWO_POW_16 = 0x1_0000;
const TWO_POW_20 = 0x10_0000;
const TWO_POW_28 = 0x1000_0000;

/**
 * The two tables of KVM HV's hash MMU (arch/powerpc/kvm/book3s_64_mmu_hv.c,
 * book3s_hv_rm_mmu.c): the guest view — what the guest entered, what
 * H_READ and the HTAB stream return — and the real HPT the hardware
 * searches, whose dword1 holds the host frame. A real entry is V (usable,
 * and then on its guest page's reverse-map ring), ABSENT (the guest view
 * has it but the host page is not mapped: unbacked yet, unmapped by the
 * host, or emulated MMIO with key 31), or empty. `linkGfn` is the guest
 * page a V entry's ring belongs to (-1 when not linked).
 */
export class HostHpt {
  // Replaced whole by an HPT resize (`replaceTables`); everything else keeps the HostHpt.
  guest: HashPageTable;
  real: HashPageTable;
  readonly rev: HptRevmapEntries;
  linkGfn: Float64Array;
  /** VRMA entries made (0: real mode through the VRMA is not set up yet). */
  vrmaEntries = 0;
  /** The vCPUs' MMUs, by vCPU id: a tlbie reaches each one's TLB through its SLB. */
  readonly vcpus: (HptVcpuMmu | undefined)[] = [];

  constructor(
    order: number,
    private readonly tlbs: TlbShootdown,
    /** The real HPT's layout: POWER8's (v2.07, as the guest's) or POWER9's (v3.0). */
    format: 'v2.07' | 'v3.0' = 'v2.07',
  ) {
    this.format = format;
    this.guest = new HashPageTable(order);
    this.real = new HashPageTable(order, undefined, format);
    this.rev = new HptRevmapEntries(this.guest);
    this.linkGfn = new Float64Array(this.guest.entries).fill(-1);
  }

  private readonly format: 'v2.07' | 'v3.0';

  /**
   * An HPT resize committed (resize_hpt_pivot): `guest` is the new guest
   * view; the real HPT is a fresh one of its order, no entry on a ring (the
   * caller emptied them), so every real entry is made again from the guest
   * view.
   */
  replaceTables(guest: HashPageTable): void {
    this.guest = guest;
    this.real = new HashPageTable(guest.order, undefined, this.format);
    this.rev.retarget(guest);
    this.linkGfn = new Float64Array(guest.entries).fill(-1);
    this.tlbs.flushAll();
  }

  get bytes(): number {
    return this.guest.bytes.byteLength + this.real.bytes.byteLength;
  }

  get rmapBytes(): number {
    return this.rev.forw.byteLength + this.rev.back.byteLength + this.linkGfn.byteLength;
  }

  realValid(ptex: number): boolean {
    return (this.real.view.getUint32(ptex * 16 + 4, false) & 1) !== 0;
  }

  realAbsent(ptex: number): boolean {
    return (this.real.view.getUint32(ptex * 16 + 4, false) & HPTE_V_ABSENT_LO) !== 0;
  }

  guestValid(ptex: number): boolean {
    return (this.guest.view.getUint32(ptex * 16 + 4, false) & 1) !== 0;
  }

  /** Real R/C bits (0x100 | 0x80) of an entry. */
  realRc(ptex: number): number {
    return this.real.view.getUint32(ptex * 16 + 12, false) & (HPTE_R_R_LO | HPTE_R_C_LO);
  }

  /** A real entry's dword0 high half in the old layout (B in bits 31:30), whatever the table's. */
  realV0Hi(ptex: number): number {
    const view = this.real.view;
    const hi = view.getUint32(ptex * 16, false);
    return this.real.isaV3 ? ((hi & 0x000f_ffff) | ((view.getUint32(ptex * 16 + 8, false) & 0x0c00_0000) << 4)) >>> 0 : hi;
  }

  /** A real entry's dword1 high half in the old layout (no B bits), whatever the table's. */
  realR1Hi(ptex: number): number {
    const hi = this.real.view.getUint32(ptex * 16 + 8, false);
    return this.real.isaV3 ? (hi & ~0x0c00_0000) >>> 0 : hi;
  }

  /**
   * Store a real entry given in the old layout: dword1 first, then dword0
   * (which publishes it), converted to v3.0 on a POWER9 table
   * (hpte_old_to_new_v / _r, as KVM stores them).
   */
  storeReal(ptex: number, v0Hi: number, v0Lo: number, r1Hi: number, r1Lo: number): void {
    if (this.real.isaV3) {
      r1Hi = ((r1Hi & ~0x0c00_0000) | ((v0Hi >>> 30) << 26)) >>> 0;
      v0Hi &= 0x000f_ffff;
    }
    const view = this.real.view;
    const at = ptex * 16;
    view.setUint32(at + 8, r1Hi >>> 0, false);
    view.setUint32(at + 12, r1Lo >>> 0, false);
    view.setUint32(at, v0Hi >>> 0, false);
    view.setUint32(at + 4, v0Lo >>> 0, false);
  }

  /** The real entry becomes ABSENT (kvmppc_unmap_hpte: V → ABSENT, the key cleared), after the TLBs forget it. */
  makeAbsent(ptex: number): void {
    this.invalidateEntry(ptex);
    const view = this.real.view;
    const at = ptex * 16;
    view.setUint32(at + 8, view.getUint32(at + 8, false) & ~HPTE_R_KEY_HI_HI, false);
    view.setUint32(at + 12, view.getUint32(at + 12, false) & ~HPTE_R_KEY_LO_LO, false);
    view.setUint32(at + 4, ((view.getUint32(at + 4, false) & ~1) | HPTE_V_ABSENT_LO) >>> 0, false);
  }

  /** The real entry is emptied (H_REMOVE), after the TLBs forget it. */
  clearReal(ptex: number): void {
    if (this.realValid(ptex)) this.invalidateEntry(ptex);
    const view = this.real.view;
    view.setUint32(ptex * 16, 0, false);
    view.setUint32(ptex * 16 + 4, 0, false);
  }

  /**
   * tlbie for a valid real entry: drop the effective page it backs from
   * every vCPU's TLB. The page is rebuilt as compute_tlbie_rb rebuilds the
   * virtual address — the VSID and the page index's upper bits from the
   * AVPN, its lower 11 bits from the hash (group index XOR the VSID's low
   * bits, complemented for the secondary hash; every supported order has at
   * least 2^11 groups) — and found in each vCPU's SLB: a TLB entry can only
   * exist for a segment the vCPU's SLB holds, because every SLB entry that
   * goes (slbie, slbia, an slbmte over it) flushes the vCPU's TLB, as the
   * processor flushes its ERAT. A large page flushes every TLB.
   */
  invalidateEntry(ptex: number): void {
    const v0Hi = this.realV0Hi(ptex);
    const v0Lo = this.real.view.getUint32(ptex * 16 + 4, false);
    if ((v0Lo & 1) === 0) return; // not valid: no TLB can hold it
    if ((v0Lo & 0x4) !== 0) {
      this.tlbs.flushAll();
      return;
    }
    if (v0Hi === VRMA_VSID_WORD_HI && v0Lo >>> 24 === VRMA_VSID_WORD_LO >>> 24) {
      // A VRMA entry backs real-mode translations, which only a vCPU in real mode holds.
      for (const mmu of this.vcpus) if (mmu?.inRealMode) mmu.vcpu.tlb.flushAll();
      return;
    }
    const oneT = (v0Hi & 0x4000_0000) !== 0;
    const group = (v0Lo & 0x2) !== 0 ? ~(ptex >>> 3) : ptex >>> 3;
    const vsidLow = oneT ? ((v0Lo >>> 24) | (v0Hi << 8)) & 0x7ff : (v0Lo >>> 12) & 0x7ff;
    // AVPN bits of the page index: EA bits 27..23 (256M) or 39..23 (1T), in dword0 bits 11..7 or 23..7.
    const upper = oneT ? (v0Lo >>> 7) & 0x1_ffff : (v0Lo >>> 7) & 0x1f;
    const pageInSegment = upper * TWO_POW_11 + ((group ^ vsidLow) & 0x7ff);
    const vsidShift = oneT ? 24 : 12;
    for (const mmu of this.vcpus) {
      if (mmu === undefined) continue;
      const slb = mmu.slb;
      for (let n = 0; n < slb.size; n++) {
        if (!slb.isValid(n) || slb.vsidHiOf(n) !== v0Hi || slb.vsidLoOf(n) >>> vsidShift !== v0Lo >>> vsidShift) continue;
        const esidHi = slb.esidHiOf(n);
        const base = oneT ? (esidHi >>> 8) * TWO_POW_28 : esidHi * TWO_POW_20 + (slb.esidLoOf(n) >>> 28) * TWO_POW_16;
        mmu.vcpu.tlb.flushPageAllContexts(base + pageInSegment);
      }
    }
  }
}
