import { HvmmuError } from '@hvmmu/core';
import type { ControlRegisters } from './X86Registers.js';

/*
 * Register values as the embedding program hands them over. A number is a
 * 32-bit pattern: any integer in [-2^31, 2^32), since OR-ing bit constants
 * in JavaScript gives a signed int32 (`CR0.PE | CR0.PG` < 0) that means the
 * same bits as its unsigned value. A bigint (accepted only at the API edges
 * that say so, never on a hot path) is a full 64-bit register value in
 * [0, 2^64). Anything else is host misuse: HvmmuError BAD_ARGUMENT.
 */

const TWO_POW_32 = 0x1_0000_0000;
const TWO_POW_64 = 1n << 64n;

/** Is `value` a 32-bit pattern (an integer in [-2^31, 2^32))? */
function isU32Pattern(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= -0x8000_0000 && value < TWO_POW_32;
}

function describe(value: unknown): string {
  if (typeof value === 'bigint') return `${value}n`;
  return typeof value === 'number' ? String(value) : value === null ? 'null' : typeof value;
}

/** A 32-bit register operand as uint32 (throws HvmmuError BAD_ARGUMENT unless a 32-bit pattern). */
export function u32Operand(name: string, value: number): number {
  if (!isU32Pattern(value)) {
    throw new HvmmuError('BAD_ARGUMENT', `${name} must be an integer in [-2^31, 2^32) (a 32-bit pattern), got ${describe(value)}`);
  }
  return value >>> 0;
}

/** Throws HvmmuError BAD_ARGUMENT unless `value` is a 32-bit pattern number or a bigint in [0, 2^64). */
export function checkRegister64(name: string, value: number | bigint): void {
  if (typeof value === 'bigint' ? value < 0n || value >= TWO_POW_64 : !isU32Pattern(value)) {
    throw new HvmmuError('BAD_ARGUMENT', `${name} must be an integer in [-2^31, 2^32) or a bigint in [0, 2^64), got ${describe(value)}`);
  }
}

/** Bits 31:0 of a value `checkRegister64` accepted, as uint32. */
export function low32(value: number | bigint): number {
  return typeof value === 'bigint' ? Number(value & 0xffff_ffffn) : value >>> 0;
}

/** Whether any of bits 63:32 of a value `checkRegister64` accepted is set (never for a number). */
export function hasHigh32(value: number | bigint): boolean {
  return typeof value === 'bigint' && value >= 0x1_0000_0000n;
}

/**
 * A CR3 operand: a non-negative safe integer, or a bigint in [0, 2^64).
 * Returns it as a number; a bigint of 2^53 or more comes back as a number
 * ≥ 2^53, which every CR3 check refuses (no MAXPHYADDR exceeds 52).
 */
export function cr3Operand(name: string, value: number | bigint): number {
  if (typeof value === 'bigint') {
    if (value < 0n || value >= TWO_POW_64) {
      throw new HvmmuError('BAD_ARGUMENT', `${name} must be a bigint in [0, 2^64), got ${describe(value)}`);
    }
    return Number(value);
  }
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new HvmmuError('BAD_ARGUMENT', `${name} must be a non-negative safe integer or a bigint, got ${describe(value)}`);
  }
  return value;
}

/**
 * Checks the four values of a whole register set (HvmmuError BAD_ARGUMENT
 * on host misuse) and returns whether CR0, CR4 or EFER sets any of bits
 * 63:32, which all three reserve (SDM Vol. 3A §2.2.1, §2.5: #GP).
 */
export function checkControlOperands(values: ControlRegisters): boolean {
  if (typeof values !== 'object' || values === null) {
    throw new HvmmuError('BAD_ARGUMENT', `control registers must be an object { cr0, cr3, cr4, efer }, got ${describe(values)}`);
  }
  checkRegister64('CR0', values.cr0);
  checkRegister64('CR4', values.cr4);
  checkRegister64('EFER', values.efer);
  cr3Operand('CR3', values.cr3);
  return hasHigh32(values.cr0) || hasHigh32(values.cr4) || hasHigh32(values.efer);
}

/** A boolean operand (throws HvmmuError BAD_ARGUMENT for anything else, 'yes' and 1 included). */
export function booleanOperand(name: string, value: boolean): boolean {
  if (typeof value !== 'boolean') throw new HvmmuError('BAD_ARGUMENT', `${name} must be a boolean, got ${describe(value)}`);
  return value;
}
