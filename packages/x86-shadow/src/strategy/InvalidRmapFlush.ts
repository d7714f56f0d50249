import { inject, injectable } from 'tsyringe';
import type { X86Memslot } from '../X86ShadowTypes.js';
import { ShadowPages } from '../mmu/ShadowPages.js';
import { roleHasGptes } from '../shadow/PageRole.js';
import { RmapWalkOp, walkSlotRmaps } from './walkSlotRmaps.js';
import type { MemslotFlushStrategy } from './MemslotFlushStrategy.js';

/**
 * The 2013 design (Xiao Guangrong's KVM patch "KVM: MMU: introduce invalid
 * rmap handlers", kvm@vger.kernel.org, never merged): the slot is already on
 * the `invalid` rmap table, so walking its rmaps with `unmap` drops every
 * leaf spte mapping the slot and clears the entries in place (the lists'
 * memory stays until the slot is freed). Shadow pages that shadow guest
 * tables living in the slot are zapped as well, since their gptes are gone
 * (without this a shadow path through a table in deleted memory would keep
 * translating). Cost grows with the slot's rmap, and only the slot's
 * mappings are lost.
 */
@injectable()
export class InvalidRmapFlush implements MemslotFlushStrategy {
  readonly name = 'invalid-rmap' as const;

  constructor(@inject(ShadowPages) private readonly pages: ShadowPages) {}

  flush(slot: X86Memslot): void {
    const flush = walkSlotRmaps(slot, slot.baseGfn, slot.baseGfn + slot.npages, RmapWalkOp.UNMAP);
    this.zapShadowedTablesIn(slot);
    this.pages.remoteFlushOrZap(flush);
  }

  /** Zap every valid page whose gptes live in the slot. */
  private zapShadowedTablesIn(slot: X86Memslot): void {
    const pages = this.pages;
    const spt = pages.spt;
    if (pages.indirectShadowPages === 0) return;
    restart: for (;;) {
      for (let sp = spt.activeHead; sp !== 0; ) {
        const next = spt.listNext[sp]!;
        if (roleHasGptes(spt.role[sp]!) && slot.containsGfn(spt.gfn[sp]!) && pages.prepareZap(sp)) continue restart;
        sp = next;
      }
      break;
    }
    pages.commitZap();
  }
}
