/**
 * Fault codes of the identity machine, delivered as `FaultKind.GUEST` codes.
 * The bit positions are x86's #PF error code (SDM 4.7) so that readers who
 * know one know the other; TABLE is the identity machine's own.
 */
export const IdentityFaultCode = {
  /** The page was present: the access broke its protection (clear: not present). */
  PRESENT: 1 << 0,
  /** The access was a write. */
  WRITE: 1 << 1,
  /** The access was made at user privilege. */
  USER: 1 << 2,
  /** Reserved bits set in the protection byte, or the address is beyond the guest physical width. */
  RSVD: 1 << 3,
  /** The access was an instruction fetch. */
  FETCH: 1 << 4,
  /** The protection byte itself could not be read (the table lies outside guest memory). */
  TABLE: 1 << 5,
} as const;

/** The identity machine's exception vectors (its own numbering). */
export const IdentityFaultVector = {
  /** A protection-table fault; its code is `IdentityFaultCode` bits. */
  PROTECTION: 1,
} as const;
