import { HvmmuError } from '@hvmmu/core';

/** Lowest / highest MAXPHYADDR a guest CPUID can report (SDM 4.1.4: at most 52). */
export const MIN_MAXPHYADDR = 32;
export const MAX_MAXPHYADDR = 52;

/** Throws `HvmmuError` unless `maxPhyAddr` is a MAXPHYADDR a guest CPUID can report (host misuse). */
export function checkMaxPhyAddr(maxPhyAddr: number): void {
  if (!Number.isInteger(maxPhyAddr) || maxPhyAddr < MIN_MAXPHYADDR || maxPhyAddr > MAX_MAXPHYADDR) {
    throw new HvmmuError('BAD_ARGUMENT', `guest MAXPHYADDR must be an integer in ${MIN_MAXPHYADDR}..${MAX_MAXPHYADDR}, got ${String(maxPhyAddr)}`);
  }
}
