import { RMAP_NORMAL, type Memslot } from '@hvmmu/core';
import { RMAP_CHANGED_HI, RMAP_REFERENCED_HI } from '../rmap/HptRevmap.js';
import { HPTE_R_C_LO, HPTE_R_R_LO } from './HostHpt.js';
import type { HptRmapContext } from './HptRmapContext.js';
import type { HptRmapOps } from './HptRmapOps.js';
import type { PpcHptTypes } from './PpcHptTypes.js';

/**
 * The `normal` rmap table: KVM HV's handlers on a live slot
 * (book3s_64_mmu_hv.c kvm_unmap_rmapp, kvm_age_rmapp, kvm_test_age_rmapp,
 * kvm_test_clear_dirty_npages). Clearing R or C in a real entry is a
 * tlbie in KVM (kvmppc_clear_ref_hpte, kvmppc_invalidate_hpte): here the
 * entry's page leaves every TLB, so the next access walks and sets the bit
 * again. R and C the guest view lacked are added to it and the entry marked
 * modified for the HTAB stream (note_hpte_modification).
 */
export class HptNormalRmapOps implements HptRmapOps {
  readonly name: string = RMAP_NORMAL;

  constructor(protected readonly context: HptRmapContext) {}

  add(slot: Memslot<PpcHptTypes>, gfn: number, ptex: number): void {
    slot.arch.add(gfn - slot.baseGfn, ptex);
    this.context.hpt.linkGfn[ptex] = gfn;
  }

  remove(slot: Memslot<PpcHptTypes>, gfn: number, ptex: number): void {
    this.context.unlink(slot, gfn, ptex);
  }

  unmap(slot: Memslot<PpcHptTypes>, gfn: number): boolean {
    return this.context.unmapAll(slot, gfn);
  }

  age(slot: Memslot<PpcHptTypes>, gfn: number): boolean {
    return this.clearBit(slot, gfn, HPTE_R_R_LO, RMAP_REFERENCED_HI);
  }

  testAge(slot: Memslot<PpcHptTypes>, gfn: number): boolean {
    const rmap = slot.arch;
    const page = gfn - slot.baseGfn;
    if ((rmap.hi[page]! & RMAP_REFERENCED_HI) !== 0) return true;
    const { hpt } = this.context;
    if (!rmap.present(page)) return false;
    const head = rmap.lo[page]!;
    let ptex = head;
    for (let n = 0; n < hpt.guest.entries; n++) {
      if ((hpt.realRc(ptex) & HPTE_R_R_LO) !== 0) return true;
      ptex = hpt.rev.forw[ptex]!;
      if (ptex === head) break;
    }
    return false;
  }

  harvestDirty(slot: Memslot<PpcHptTypes>, gfn: number): boolean {
    return this.clearBit(slot, gfn, HPTE_R_C_LO, RMAP_CHANGED_HI);
  }

  /** Take the rmap word's harvested bit and clear `bit` in every real entry on the ring (a tlbie each). */
  private clearBit(slot: Memslot<PpcHptTypes>, gfn: number, bit: number, rmapBit: typeof RMAP_REFERENCED_HI | typeof RMAP_CHANGED_HI): boolean {
    const rmap = slot.arch;
    const page = gfn - slot.baseGfn;
    let any = rmap.takeRc(page, rmapBit);
    if (!rmap.present(page)) return any;
    const { hpt } = this.context;
    const view = hpt.real.view;
    const head = rmap.lo[page]!;
    let ptex = head;
    for (let n = 0; n < hpt.guest.entries; n++) {
      const at = ptex * 16 + 12;
      const lo = view.getUint32(at, false);
      if ((lo & bit) !== 0) {
        hpt.invalidateEntry(ptex);
        view.setUint32(at, (lo & ~bit) >>> 0, false);
        const guestLo = hpt.guest.view.getUint32(at, false);
        if ((guestLo & bit) === 0) {
          hpt.guest.view.setUint32(at, (guestLo | bit) >>> 0, false);
          hpt.guest.markModified(ptex);
        }
        any = true;
      }
      ptex = hpt.rev.forw[ptex]!;
      if (ptex === head) break;
    }
    return any;
  }
}
