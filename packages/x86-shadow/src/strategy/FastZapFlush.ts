import { inject, injectable } from 'tsyringe';
import type { X86Memslot } from '../X86ShadowTypes.js';
import { ShadowPages } from '../mmu/ShadowPages.js';
import type { MemslotFlushStrategy } from './MemslotFlushStrategy.js';

/**
 * Upstream KVM's answer (arch/x86/kvm/mmu/mmu.c: kvm_arch_flush_shadow_memslot()
 * calls kvm_mmu_zap_all_fast() while KVM_X86_QUIRK_SLOT_ZAP_ALL is on, the
 * default): make every shadow page obsolete by flipping mmu_valid_gen — O(1)
 * whatever the slot size, plus one TLB generation bump per vCPU — then zap
 * the obsolete pages from the tail of the active list in batches. vCPUs
 * reload their roots on next entry. Every page is discarded, not only the
 * slot's, and must be rebuilt by faults.
 */
@injectable()
export class FastZapFlush implements MemslotFlushStrategy {
  readonly name = 'fast-zap' as const;

  constructor(@inject(ShadowPages) private readonly pages: ShadowPages) {}

  flush(_slot: X86Memslot): void {
    this.pages.zapAllFast();
  }
}
