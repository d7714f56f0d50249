import type { X86Memslot } from '../X86ShadowTypes.js';
import { roleHasGptes, roleLevel, ROLE_HAS_4_BYTE_GPTE, roleQuadrant } from '../shadow/PageRole.js';
import { SPTE_ENT_PER_PAGE } from '../spte/Spte.js';
import { slotRmap } from '../rmap/SlotRmap.js';
import type { GuestPteContext } from './GuestPteContext.js';

import { writeMisaligned } from './ShadowPageRules.js';
import { UnsyncPages } from './UnsyncPages.js';

/**
 * Write tracking of shadowed guest tables (KVM's gfn_write_track and
 * kvm_mmu_track_write): a gfn an upper-level shadow page shadows is
 * write-protected; a guest write to it is emulated and zaps or updates the
 * shadow entries it touched, with write-flooding and misaligned-write
 * detection.
 */
export abstract class WriteTracking extends UnsyncPages {
  /** account_shadowed: count the page and write-protect its gfn (and write-track it for upper levels). */
  protected accountShadowed(sp: number): void {
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
  protected unaccountShadowed(sp: number): void {
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
  protected detectWriteFlooding(sp: number, level: number): boolean {
    if (level === 1) return false;
    return this.spt.countFloodingWrite(sp) >= 3;
  }
}
