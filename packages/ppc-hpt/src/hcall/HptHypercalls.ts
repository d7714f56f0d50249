import type { HypercallRegisters } from '@hvmmu/core';
import { hptePageShifts } from '../format/HptePageSizes.js';
import type { HashPageTable } from '../mmu/HashPageTable.js';

/** PAPR hcall numbers for the HPT (Linux arch/powerpc/include/asm/hvcall.h). */
export const HptHcall = {
  H_REMOVE: 0x04,
  H_ENTER: 0x08,
  H_READ: 0x0c,
  H_CLEAR_MOD: 0x10,
  H_CLEAR_REF: 0x14,
  H_PROTECT: 0x18,
  H_BULK_REMOVE: 0x124,
} as const;

/** PAPR return codes (hvcall.h). */
export const PaprStatus = {
  H_SUCCESS: 0,
  H_HARDWARE: -1,
  H_FUNCTION: -2,
  H_PARAMETER: -4,
  H_PTEG_FULL: -6,
  H_NOT_FOUND: -7,
} as const;

/** Flag bits (PAPR bit n is 1 << (63 - n)), as 32-bit halves. */
const H_EXACT_HI = 0x80; // bit 24
const H_READ_4_HI = 0x20; // bit 26
const H_AVPN_LO = 0x8000_0000; // bit 32
const H_ANDCOND_LO = 0x4000_0000; // bit 33

/**
 * What a hypervisor that keeps a real HPT beside the guest view (KVM HV)
 * adds to the hcalls: H_ENTER's host-side checks, and the news that an
 * entry of the guest view changed, so it can bring the real entry, its
 * reverse map and the TLBs in line.
 */
export interface HptEntryObserver {
  /**
   * H_ENTER's checks that depend on the host (kvmppc_do_h_enter: the page
   * must fit a memslot aligned to its size, and a host page at least as
   * large): a PAPR status, H_SUCCESS to go on. Called before anything changes.
   */
  checkEnter(v0Hi: number, v0Lo: number, r1Hi: number, r1Lo: number): number;
  /** Entry `ptex` of the guest view was written, removed, re-protected or had R or C cleared. */
  changed(ptex: number): void;
}

const NO_OBSERVER: HptEntryObserver = { checkEnter: () => PaprStatus.H_SUCCESS, changed: () => {} };

/**
 * The hash-table hcalls of a PAPR guest, on the table the guest sees (a
 * virtual hypervisor's table is the guest view: QEMU TCG; KVM keeps a real
 * table beside it, which a backend updates through an `HptEntryObserver`). Arguments
 * are r4.. in `regs.arg*`, outputs r4.. in `regs.ret*`, the status is
 * returned (r3). Semantics, checks and return codes as KVM's
 * book3s_hv_rm_mmu.c (kvmppc_do_h_enter, kvmppc_do_h_remove, kvmppc_h_read,
 * kvmppc_h_protect, kvmppc_h_bulk_remove, kvmppc_h_clear_ref/_mod): every
 * argument is checked before anything changes; each change marks the entry
 * modified for the HTAB stream and tells the observer.
 */
export class HptHypercalls {
  constructor(
    readonly hpt: HashPageTable,
    private readonly observer: HptEntryObserver = NO_OBSERVER,
  ) {}

  /** ptex as an index, or -1 when it is past the table (r4 is 64 bits). */
  private index(regs: HypercallRegisters, arg: number): number {
    const hi = regs.argHi[arg]!;
    const lo = regs.argLo[arg]!;
    return hi === 0 && lo < this.hpt.entries ? lo : -1;
  }

  private valid(i: number): boolean {
    return (this.hpt.view.getUint32(i * 16 + 4, false) & 1) !== 0;
  }

  /** H_ENTER(flags, ptex, dword0, dword1): r4 = the index used. */
  enter(regs: HypercallRegisters): number {
    const v0Hi = regs.argHi[2]!;
    let v0Lo = regs.argLo[2]!;
    const r1Hi = regs.argHi[3]!;
    const r1Lo = regs.argLo[3]!;
    if (hptePageShifts(v0Lo, r1Lo) === 0) return PaprStatus.H_PARAMETER;
    const host = this.observer.checkEnter(v0Hi, v0Lo, r1Hi, r1Lo);
    if (host !== PaprStatus.H_SUCCESS) return host;
    let ptex = this.index(regs, 1);
    if (ptex < 0) return PaprStatus.H_PARAMETER;
    if ((regs.argHi[0]! & H_EXACT_HI) === 0) {
      ptex &= ~7;
      let slot = 0;
      while (slot < 8 && this.valid(ptex + slot)) slot++;
      if (slot === 8) return PaprStatus.H_PTEG_FULL;
      ptex += slot;
    } else if (this.valid(ptex)) {
      return PaprStatus.H_PTEG_FULL;
    }
    // The hypervisor's dword0 bits (HVLOCK 0x40, ABSENT 0x20) are never the guest's; V is set here.
    v0Lo = ((v0Lo & ~0x61) | 1) >>> 0;
    const view = this.hpt.view;
    // dword1 first, then dword0 with V (the order KVM stores them in).
    view.setUint32(ptex * 16 + 8, r1Hi & ~0x4000_0000, false); // bit 62: KVM's HPTE_GR_MODIFIED, never the guest's
    view.setUint32(ptex * 16 + 12, r1Lo, false);
    view.setUint32(ptex * 16, v0Hi, false);
    view.setUint32(ptex * 16 + 4, v0Lo, false);
    this.hpt.markModified(ptex);
    this.observer.changed(ptex);
    regs.setRetHalves(0, 0, ptex);
    return PaprStatus.H_SUCCESS;
  }

  /** The entry matches the H_AVPN / H_ANDCOND condition in `flagsLo` against the AVPN word. */
  private matches(_regs: HypercallRegisters, ptex: number, flagsLo: number, avpnHi: number, avpnLo: number): boolean {
    const view = this.hpt.view;
    const hi = view.getUint32(ptex * 16, false);
    const lo = view.getUint32(ptex * 16 + 4, false);
    if ((flagsLo & H_AVPN_LO) !== 0 && (hi !== avpnHi || (lo & ~0x7f) >>> 0 !== (avpnLo & ~0x7f) >>> 0)) return false;
    if ((flagsLo & H_ANDCOND_LO) !== 0 && ((hi & avpnHi) !== 0 || (lo & avpnLo) !== 0)) return false;
    return true;
  }

  /** H_REMOVE(flags, ptex, avpn): r4 = old dword0, r5 = old dword1. */
  remove(regs: HypercallRegisters): number {
    const ptex = this.index(regs, 1);
    if (ptex < 0) return PaprStatus.H_PARAMETER;
    if (!this.valid(ptex) || !this.matches(regs, ptex, regs.argLo[0]!, regs.argHi[2]!, regs.argLo[2]!)) return PaprStatus.H_NOT_FOUND;
    this.removeAt(ptex, regs, 0);
    return PaprStatus.H_SUCCESS;
  }

  private removeAt(ptex: number, regs: HypercallRegisters, out: number): [number, number] {
    const view = this.hpt.view;
    const at = ptex * 16;
    regs.setRetHalves(out, view.getUint32(at, false), view.getUint32(at + 4, false) & ~0x60);
    const r1Hi = view.getUint32(at + 8, false);
    const r1Lo = view.getUint32(at + 12, false);
    regs.setRetHalves(out + 1, r1Hi & ~0x4000_0000, r1Lo);
    // dword0 := 0; dword1 is left as it was (KVM).
    view.setUint32(at, 0, false);
    view.setUint32(at + 4, 0, false);
    this.hpt.markModified(ptex);
    this.observer.changed(ptex);
    return [r1Hi, r1Lo];
  }

  /** H_READ(flags, ptex): r4/r5, or r4..r11 for the four entries of ptex & ~3 with H_READ_4. */
  read(regs: HypercallRegisters): number {
    let ptex = this.index(regs, 1);
    if (ptex < 0) return PaprStatus.H_PARAMETER;
    let n = 1;
    if ((regs.argHi[0]! & H_READ_4_HI) !== 0) {
      ptex &= ~3;
      n = 4;
    }
    if (regs.count < 2 * n) return PaprStatus.H_PARAMETER;
    const view = this.hpt.view;
    for (let k = 0; k < n; k++) {
      const at = (ptex + k) * 16;
      regs.setRetHalves(2 * k, view.getUint32(at, false), view.getUint32(at + 4, false) & ~0x60);
      regs.setRetHalves(2 * k + 1, view.getUint32(at + 8, false) & ~0x4000_0000, view.getUint32(at + 12, false));
    }
    return PaprStatus.H_SUCCESS;
  }

  /** H_PROTECT(flags, ptex, avpn): new PP0, PP, N and key from the flags. */
  protect(regs: HypercallRegisters): number {
    const ptex = this.index(regs, 1);
    if (ptex < 0) return PaprStatus.H_PARAMETER;
    const flagsLo = regs.argLo[0]!;
    if (!this.valid(ptex) || ((flagsLo & H_AVPN_LO) !== 0 && !this.matches(regs, ptex, H_AVPN_LO, regs.argHi[2]!, regs.argLo[2]!)))
      return PaprStatus.H_NOT_FOUND;
    const view = this.hpt.view;
    const at = ptex * 16;
    // PP0 from flags bit 8 (<< 55), KEY_HI from flags bits 13..12 (<< 48), PP, N, KEY_LO in place.
    const newHi = ((flagsLo & 0x100) << 23) | ((flagsLo & 0x3000) << 16);
    const newLo = flagsLo & (0x3 | 0x4 | 0xe00);
    const hi = ((view.getUint32(at + 8, false) & ~(0x8000_0000 | 0x3000_0000)) | newHi) >>> 0;
    const lo = ((view.getUint32(at + 12, false) & ~(0x3 | 0x4 | 0xe00)) | newLo) >>> 0;
    view.setUint32(at + 8, hi, false);
    view.setUint32(at + 12, lo, false);
    this.hpt.markModified(ptex);
    this.observer.changed(ptex);
    return PaprStatus.H_SUCCESS;
  }

  /** H_CLEAR_REF / H_CLEAR_MOD(flags, ptex): r4 = dword1 before; R (0x100) or C (0x80) cleared. */
  clearRc(regs: HypercallRegisters, bit: 0x100 | 0x80): number {
    const ptex = this.index(regs, 1);
    if (ptex < 0) return PaprStatus.H_PARAMETER;
    if (!this.valid(ptex)) return PaprStatus.H_NOT_FOUND;
    const view = this.hpt.view;
    const at = ptex * 16 + 8;
    const hi = view.getUint32(at, false);
    const lo = view.getUint32(at + 4, false);
    regs.setRetHalves(0, hi & ~0x4000_0000, lo);
    if ((lo & bit) !== 0) {
      view.setUint32(at + 4, (lo & ~bit) >>> 0, false);
      this.hpt.markModified(ptex);
      this.observer.changed(ptex);
    }
    return PaprStatus.H_SUCCESS;
  }

  /**
   * H_BULK_REMOVE: up to four (TS, AVPN) pairs in r4..r11, each TS rewritten
   * in place with the response: type 3 ends the list; a malformed request
   * (type ≠ 1, match 3, ptex past the table) is answered "parameter error"
   * and the call returns H_PARAMETER at once; otherwise "not found" or
   * success with the entry's R and C (KVM kvmppc_h_bulk_remove).
   */
  bulkRemove(regs: HypercallRegisters): number {
    for (let k = 0; k < 4 && 2 * k + 1 < regs.count; k++) {
      const tsHi = regs.argHi[2 * k]!;
      const tsLo = regs.argLo[2 * k]!;
      const type = tsHi >>> 30;
      if (type === 3) break;
      const match = (tsHi >>> 24) & 3;
      // ptex in bits 55..0: the high half's low 24 bits must be 0 for any real table.
      const ptex = (tsHi & 0xff_ffff) === 0 && tsLo < this.hpt.entries ? tsLo : -1;
      if (type !== 1 || match === 3 || ptex < 0) {
        regs.setArgHalves(2 * k, (((0xa0 | match) << 24) | (tsHi & 0xff_ffff)) >>> 0, tsLo);
        return PaprStatus.H_PARAMETER;
      }
      const flagsLo = match === 2 ? H_AVPN_LO : match === 1 ? H_ANDCOND_LO : 0;
      if (!this.valid(ptex) || !this.matches(regs, ptex, flagsLo, regs.argHi[2 * k + 1]!, regs.argLo[2 * k + 1]!)) {
        regs.setArgHalves(2 * k, (((0x90 | match) << 24) | (tsHi & 0xff_ffff)) >>> 0, tsLo);
        continue;
      }
      const view = this.hpt.view;
      const r1Lo = view.getUint32(ptex * 16 + 12, false);
      view.setUint32(ptex * 16, 0, false);
      view.setUint32(ptex * 16 + 4, 0, false);
      this.hpt.markModified(ptex);
      this.observer.changed(ptex);
      // R and C of the entry removed, shifted left 51: bits 59 and 58 of TS.
      const rc = ((r1Lo & 0x100) !== 0 ? 0x0800_0000 : 0) | ((r1Lo & 0x80) !== 0 ? 0x0400_0000 : 0);
      regs.setArgHalves(2 * k, (((0x80 | match) << 24) | rc | (tsHi & 0xff_ffff)) >>> 0, tsLo);
    }
    return PaprStatus.H_SUCCESS;
  }
}
