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

/** 1 for each access kind that exists: 0..15 except a write that is also a fetch. */
const VALID_KINDS = (() => {
  const kinds = new Uint8Array(ACCESS_KINDS);
  for (let k = 0; k < ACCESS_KINDS; k++) kinds[k] = (k & (Access.WRITE | Access.FETCH)) !== (Access.WRITE | Access.FETCH) ? 1 : 0;
  return kinds;
})();

/**
 * True for an access kind that exists. A table lookup, small enough for V8 to
 * inline into the TLB miss path: a non-integer, negative or too large number
 * indexes nothing in a typed array and reads undefined.
 */
export function isValidAccess(access: number): boolean {
  return typeof access === 'number' && VALID_KINDS[access] === 1;
}

export function describeAccess(access: number): string {
  const what = (access & Access.FETCH) !== 0 ? 'fetch' : (access & Access.WRITE) !== 0 ? 'write' : 'read';
  const who = (access & Access.USER) !== 0 ? 'user' : 'supervisor';
  return `${who} ${what}${(access & Access.IMPLICIT) !== 0 ? ' (implicit)' : ''}`;
}
