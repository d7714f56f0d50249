/**
 * A memory access as the vCPU issues it: a small integer of flag bits, so the
 * TLB can keep one "allowed" bit per access kind (16 kinds) in a Uint16Array.
 */
export const Access = {
  READ: 0,
  /** A data write. */
  WRITE: 1 << 0,
  /** An instruction fetch. */
  FETCH: 1 << 1,
  /** Made at user privilege (x86 CPL 3, POWER MSR[PR]=1). */
  USER: 1 << 2,
  /**
   * Made by the CPU on its own behalf (descriptor-table or table-walk reads),
   * checked as a supervisor access whatever the privilege (x86 SMAP's
   * "implicit supervisor" rule).
   */
  IMPLICIT: 1 << 3,
} as const;

/** Number of distinct access kinds (bits above are not allowed). */
export const ACCESS_KINDS = 16;
export const ACCESS_MASK = ACCESS_KINDS - 1;

/** TLB permission mask allowing every access kind. */
export const PERM_ALL = 0xffff;

export function isValidAccess(access: number): boolean {
  return Number.isInteger(access) && access >= 0 && access <= ACCESS_MASK && (access & (Access.WRITE | Access.FETCH)) !== (Access.WRITE | Access.FETCH);
}

export function describeAccess(access: number): string {
  const what = (access & Access.FETCH) !== 0 ? 'fetch' : (access & Access.WRITE) !== 0 ? 'write' : 'read';
  const who = (access & Access.USER) !== 0 ? 'user' : 'supervisor';
  return `${who} ${what}${(access & Access.IMPLICIT) !== 0 ? ' (implicit)' : ''}`;
}
