import { HvmmuError, type GuestMemory } from '@hvmmu/core';
import type { RadixRegisters } from '../walk/RadixRegisters.js';
import { RadixAccess, RadixTranslation } from '../walk/RadixTranslation.js';
import { RadixWalker } from '../walk/RadixWalker.js';

/**
 * What a debugger's address lookup answers (QEMU's `gva2gpa`, through
 * ppc_cpu_get_phys_page_debug): the real address of effective address `ea`
 * under `regs`, or null when it has none. As QEMU does, a data load is
 * tried first and then an instruction fetch, with the processor's own
 * permission checks but no fault, no R/C check and no write: an address
 * only executable still answers, a page the state may not access does not.
 */
export function radixDebugTranslate(memory: GuestMemory, regs: RadixRegisters, ea: bigint): bigint | null {
  if (typeof ea !== 'bigint' || ea < 0n || ea >= 1n << 64n)
    throw new HvmmuError('BAD_ARGUMENT', `effective address must be a 64-bit BigInt, got ${String(ea)}`);
  const walker = new RadixWalker(memory);
  const out = new RadixTranslation();
  const hi = Number(ea >> 32n);
  const lo = Number(ea & 0xffff_ffffn);
  if (walker.translate(regs, hi, lo, RadixAccess.LOAD, out, false) || walker.translate(regs, hi, lo, RadixAccess.FETCH, out, false)) return out.raBig;
  return null;
}
