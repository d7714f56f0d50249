import { Access, ACCESS_KINDS, isValidAccess } from '@hvmmu/core';
import { IdentityFaultCode } from './IdentityFaultCode.js';

/**
 * The identity machine's guest-stage protection: with paging off, guest
 * virtual = guest physical, and a guest may optionally point its vCPU at a
 * protection table in its own memory (one byte per guest page, like a
 * one-level page table without addresses). The "hardware" reads the byte on
 * every TLB miss, so a guest that changes a byte must invalidate that page
 * in its TLB, as with any page table.
 */
export const ProtectionBits = {
  /** Present and readable. */
  PRESENT: 1 << 0,
  WRITE: 1 << 1,
  EXEC: 1 << 2,
  USER: 1 << 3,
} as const;

/** Bits 4..7 are reserved; a byte with any of them set faults with RSVD. */
export const PROTECTION_RESERVED = 0xf0;
/** What a page is granted when the vCPU has no protection table (paging off). */
export const PROTECTION_ALL = ProtectionBits.PRESENT | ProtectionBits.WRITE | ProtectionBits.EXEC | ProtectionBits.USER;

/** A user-privilege access (IMPLICIT accesses are checked as supervisor, as x86 SMAP does). */
function isUserAccess(access: number): boolean {
  return (access & Access.USER) !== 0 && (access & Access.IMPLICIT) === 0;
}

/** The access-kind bits of a fault code (W, U, I/D). */
export function accessFaultBits(access: number): number {
  return (
    ((access & Access.WRITE) !== 0 ? IdentityFaultCode.WRITE : 0) |
    (isUserAccess(access) ? IdentityFaultCode.USER : 0) |
    ((access & Access.FETCH) !== 0 ? IdentityFaultCode.FETCH : 0)
  );
}

/** True if a present protection byte `prot` (no reserved bits) allows `access`. */
export function protectionAllows(prot: number, access: number): boolean {
  if ((prot & ProtectionBits.PRESENT) === 0) return false;
  if ((access & Access.WRITE) !== 0 && (prot & ProtectionBits.WRITE) === 0) return false;
  if ((access & Access.FETCH) !== 0 && (prot & ProtectionBits.EXEC) === 0) return false;
  return !isUserAccess(access) || (prot & ProtectionBits.USER) !== 0;
}

/**
 * TLB permission masks, precomputed: index (prot << 1) | hostWritable gives
 * one bit per access kind both stages allow, so a TLB fill is one table read.
 */
export const PERM_BY_PROTECTION: Uint16Array = (() => {
  const table = new Uint16Array(32);
  for (let prot = 0; prot < 16; prot++) {
    for (let hostWritable = 0; hostWritable < 2; hostWritable++) {
      let mask = 0;
      for (let access = 0; access < ACCESS_KINDS; access++) {
        if (!isValidAccess(access) || !protectionAllows(prot, access)) continue;
        if ((access & Access.WRITE) !== 0 && hostWritable === 0) continue;
        mask |= 1 << access;
      }
      table[(prot << 1) | hostWritable] = mask;
    }
  }
  return table;
})();
