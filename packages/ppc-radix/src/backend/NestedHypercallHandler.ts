import type { HypercallAbi, HypercallHandler, HypercallRegisters, Vcpu } from '@hvmmu/core';
import { NestedHcall } from '../nested/L1NestedHost.js';
import { NestedHcallStatus } from './NestedHv.js';
import type { PpcRadixMmu } from './PpcRadixMmu.js';
import type { PpcRadixTypes } from './PpcRadixTypes.js';

/** PAPR's hypercall convention (Linux arch/powerpc/include/asm/hvcall.h): r3 the status, arguments in r4... */
export const RADIX_PAPR_ABI: HypercallAbi = {
  name: 'papr',
  success: NestedHcallStatus.H_SUCCESS,
  unknownFunction: NestedHcallStatus.H_FUNCTION,
  badParameter: NestedHcallStatus.H_PARAMETER,
  hardwareError: -1,
};

/** The nested-HV hcalls this backend serves, by number. */
export const NESTED_HCALLS: readonly { readonly number: number; readonly name: string }[] = [
  { number: NestedHcall.H_SET_PARTITION_TABLE, name: 'H_SET_PARTITION_TABLE' },
  { number: NestedHcall.H_ENTER_NESTED, name: 'H_ENTER_NESTED' },
  { number: NestedHcall.H_TLB_INVALIDATE, name: 'H_TLB_INVALIDATE' },
  { number: NestedHcall.H_COPY_TOFROM_GUEST, name: 'H_COPY_TOFROM_GUEST' },
];

/** One nested-HV hcall (kvmppc_pseries_do_hcall's nested cases), routed to the VM's `NestedHv`. */
export class NestedHypercallHandler implements HypercallHandler {
  constructor(
    readonly number: number,
    readonly name: string,
    private readonly mmu: PpcRadixMmu,
  ) {}

  handle(vcpu: Vcpu, regs: HypercallRegisters): number {
    const nested = this.mmu.nested;
    switch (this.number) {
      case NestedHcall.H_SET_PARTITION_TABLE:
        return nested.setPartitionTable(regs);
      case NestedHcall.H_ENTER_NESTED:
        return nested.enterNested((vcpu as Vcpu<PpcRadixTypes>).arch, regs);
      case NestedHcall.H_TLB_INVALIDATE:
        return nested.tlbInvalidate(regs);
      default:
        return nested.copyToFromGuest(regs);
    }
  }
}
