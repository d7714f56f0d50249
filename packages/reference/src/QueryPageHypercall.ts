import type { HypercallHandler, HypercallRegisters, Vcpu } from '@hvmmu/core';
import { inject, injectable } from 'tsyringe';
import { IDENTITY_HYPERCALL_ABI, IdentityHypercall } from './IdentityHypercallAbi.js';
import { IdentityMmu } from './IdentityMmu.js';

/** QUERY_PAGE(gpa): how the host backs one guest page. A gpa beyond the guest physical space is badParameter. */
@injectable()
export class QueryPageHypercall implements HypercallHandler {
  readonly number = IdentityHypercall.QUERY_PAGE;
  readonly name = 'QUERY_PAGE';

  constructor(@inject(IdentityMmu) private readonly mmu: IdentityMmu) {}

  handle(_vcpu: Vcpu, regs: HypercallRegisters): number {
    const gpa = regs.arg(0);
    if (gpa < 0 || gpa >= this.mmu.table.maxGfn * 4096) return IDENTITY_HYPERCALL_ABI.badParameter;
    const { state, slotId } = this.mmu.pageState(Math.floor(gpa / 4096));
    regs.setRet(0, state);
    regs.setRet(1, slotId);
    return IDENTITY_HYPERCALL_ABI.success;
  }
}
