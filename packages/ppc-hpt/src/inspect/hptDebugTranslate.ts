import { HvmmuError } from '@hvmmu/core';
import type { HashPageTable } from '../mmu/HashPageTable.js';
import type { HptRegisters } from '../mmu/HptRegisters.js';
import { HptAccess, HptTranslation } from '../mmu/HptTranslation.js';
import { HptWalker } from '../mmu/HptWalker.js';
import type { Slb } from '../mmu/Slb.js';

/**
 * What QEMU's `gva2gpa` answers for a hash-MMU CPU: a data load is tried,
 * then an instruction fetch, with the state's permission checks and no
 * fault. Unlike QEMU (whose debug lookup sets R), nothing is written.
 */
export function hptDebugTranslate(regs: HptRegisters, slb: Slb, hpt: HashPageTable, ea: bigint): bigint | null {
  if (typeof ea !== 'bigint' || ea < 0n || ea >= 1n << 64n)
    throw new HvmmuError('BAD_ARGUMENT', `effective address must be a 64-bit BigInt, got ${String(ea)}`);
  const walker = new HptWalker();
  const out = new HptTranslation();
  const hi = Number(ea >> 32n);
  const lo = Number(ea & 0xffff_ffffn);
  if (walker.translate(regs, slb, hpt, hi, lo, HptAccess.LOAD, out, false) || walker.translate(regs, slb, hpt, hi, lo, HptAccess.FETCH, out, false))
    return out.raBig;
  return null;
}
