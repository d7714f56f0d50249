import type { HypercallHandler, HypercallRegisters, Vcpu } from '@hvmmu/core';
import { HptHcall, PaprStatus } from '../hcall/HptHypercalls.js';

/** hvcall.h: H_RESIZE_HPT_PREPARE, H_RESIZE_HPT_COMMIT (flags in r4, shift in r5). */
export const HPT_RESIZE_PREPARE = 0x36c;
export const HPT_RESIZE_COMMIT = 0x370;
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
  { number: HPT_RESIZE_PREPARE, name: 'H_RESIZE_HPT_PREPARE' },
  { number: HPT_RESIZE_COMMIT, name: 'H_RESIZE_HPT_COMMIT' },
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
      case HPT_RESIZE_PREPARE:
      case HPT_RESIZE_COMMIT: {
        // The shift is a 64-bit register: anything above 2^32 is simply out of range.
        const shift = regs.argHi[1] === 0 ? regs.argLo[1]! : -1;
        if (shift < 0) return PaprStatus.H_PARAMETER;
        return this.number === HPT_RESIZE_PREPARE
          ? this.mmu.resizePrepare(regs.argHi[0]!, regs.argLo[0]!, shift)
          : this.mmu.resizeCommit(regs.argHi[0]!, regs.argLo[0]!, shift);
      }
      default:
        return h.bulkRemove(regs);
    }
  }
}
