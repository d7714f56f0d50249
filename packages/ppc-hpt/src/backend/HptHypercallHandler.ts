import type { HypercallHandler, HypercallRegisters, Vcpu } from '@hvmmu/core';
import { HptHcall } from '../hcall/HptHypercalls.js';
import type { PpcHptMmu } from './PpcHptMmu.js';

/** The hash-table hcalls this backend serves, by number. */
export const HPT_HCALLS: readonly { readonly number: number; readonly name: string }[] = [
  { number: HptHcall.H_REMOVE, name: 'H_REMOVE' },
  { number: HptHcall.H_ENTER, name: 'H_ENTER' },
  { number: HptHcall.H_READ, name: 'H_READ' },
  { number: HptHcall.H_CLEAR_MOD, name: 'H_CLEAR_MOD' },
  { number: HptHcall.H_CLEAR_REF, name: 'H_CLEAR_REF' },
  { number: HptHcall.H_PROTECT, name: 'H_PROTECT' },
  { number: HptHcall.H_BULK_REMOVE, name: 'H_BULK_REMOVE' },
];

/** One hash-table hcall as the VM's dispatcher sees it: the VM's `HptHypercalls` on its tables. */
export class HptHypercallHandler implements HypercallHandler {
  constructor(
    readonly number: number,
    readonly name: string,
    private readonly mmu: PpcHptMmu,
  ) {}

  handle(_vcpu: Vcpu, regs: HypercallRegisters): number {
    const h = this.mmu.hcalls;
    switch (this.number) {
      case HptHcall.H_REMOVE:
        return h.remove(regs);
      case HptHcall.H_ENTER:
        return h.enter(regs);
      case HptHcall.H_READ:
        return h.read(regs);
      case HptHcall.H_CLEAR_MOD:
        return h.clearRc(regs, 0x80);
      case HptHcall.H_CLEAR_REF:
        return h.clearRc(regs, 0x100);
      case HptHcall.H_PROTECT:
        return h.protect(regs);
      default:
        return h.bulkRemove(regs);
    }
  }
}
