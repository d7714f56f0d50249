import { MemslotTable, type HypercallHandler, type HypercallRegisters, type Vcpu } from '@hvmmu/core';
import { inject, injectable } from 'tsyringe';
import { IDENTITY_HYPERCALL_ABI, IdentityHypercall } from './IdentityHypercallAbi.js';
import { IdentityMmu } from './IdentityMmu.js';

/**
 * SET_PROTECTION_TABLE(gpa, pages): the guest points its vCPU at a protection
 * table. Validated when set, not only on later reads, as KVM PPC's
 * kvmhv_set_partition_table() (book3s_hv_nested.c) checks the size and base
 * of H_SET_PARTITION_TABLE. Checked here: the base aligned, the table inside
 * the guest physical space and wholly backed by memslots. A bad call returns
 * badParameter and changes nothing.
 */
@injectable()
export class SetProtectionTableHypercall implements HypercallHandler {
  readonly number = IdentityHypercall.SET_PROTECTION_TABLE;
  readonly name = 'SET_PROTECTION_TABLE';

  constructor(
    @inject(IdentityMmu) private readonly mmu: IdentityMmu,
    @inject(MemslotTable) private readonly memslots: MemslotTable,
  ) {}

  handle(vcpu: Vcpu, regs: HypercallRegisters): number {
    const abi = IDENTITY_HYPERCALL_ABI;
    const base = regs.arg(0);
    const pages = regs.arg(1);
    const maxGfn = this.mmu.table.maxGfn;
    if (base < 0 || pages < 0 || pages > maxGfn) return abi.badParameter;
    if (pages === 0) {
      if (base !== 0) return abi.badParameter;
    } else if (base % 4096 !== 0 || base + pages > maxGfn * 4096 || !this.isBacked(base / 4096, Math.ceil((base + pages) / 4096))) {
      return abi.badParameter;
    }
    this.mmu.translatorOf(vcpu).setProtectionTable(base, pages);
    vcpu.tlb.flushAll();
    return abi.success;
  }

  /** Memslots cover [startGfn, endGfn) without a hole. O(slots), whatever the table size. */
  private isBacked(startGfn: number, endGfn: number): boolean {
    let cursor = startGfn;
    for (const slot of this.memslots.slots()) {
      if (slot.endGfn <= cursor) continue;
      if (slot.baseGfn > cursor) return false;
      cursor = slot.endGfn;
      if (cursor >= endGfn) return true;
    }
    return false;
  }
}
