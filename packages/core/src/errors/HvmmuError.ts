/**
 * Every failure the host API reports is an `HvmmuError` with a stable `code`.
 *
 * Guest mistakes never become exceptions (they get the architected answer: a
 * page fault, an hcall status); these errors are for the embedding program
 * misusing the host API, e.g. overlapping memslots or an out-of-range host
 * address.
 */
export type HvmmuErrorCode =
  | 'HOST_OUT_OF_BOUNDS'
  | 'HOST_UNALIGNED'
  | 'HOST_OUT_OF_MEMORY'
  | 'HOST_BAD_FRAME'
  | 'HOST_BAD_SIZE'
  | 'MEMSLOT_BAD_ID'
  | 'MEMSLOT_EXISTS'
  | 'MEMSLOT_UNKNOWN'
  | 'MEMSLOT_UNALIGNED'
  | 'MEMSLOT_ZERO_SIZE'
  | 'MEMSLOT_OVERLAP'
  | 'MEMSLOT_OUT_OF_RANGE'
  | 'MEMSLOT_BAD_FLAGS'
  | 'MEMSLOT_READONLY'
  | 'GUEST_NO_MEMORY'
  | 'RMAP_UNKNOWN_STRATEGY'
  | 'RMAP_DUPLICATE_STRATEGY'
  | 'HCALL_DUPLICATE'
  | 'HCALL_BAD_REGISTER'
  | 'BACKEND_INVALID'
  | 'BACKEND_MISSING_BINDING'
  | 'VM_DESTROYED'
  | 'VCPU_BAD_ID'
  | 'TLB_BAD_SIZE'
  | 'TLB_BAD_CONTEXT'
  | 'BACKEND_UNKNOWN_OPTION'
  | 'BACKEND_BAD_OPTION'
  | 'HCALL_NO_ABI'
  | 'HCALL_ABI_MISMATCH'
  | 'BAD_ARGUMENT'
  | 'UNSUPPORTED_BY_BACKEND'
  /** A migration or table stream record is malformed or lies (bounds, lengths, framing); nothing of it was applied. */
  | 'STREAM_INVALID';

export class HvmmuError extends Error {
  readonly code: HvmmuErrorCode;
  readonly details: Readonly<Record<string, number | string | boolean>> | undefined;

  constructor(code: HvmmuErrorCode, message: string, details?: Readonly<Record<string, number | string | boolean>>) {
    super(`${code}: ${message}`);
    this.name = 'HvmmuError';
    this.code = code;
    this.details = details;
  }
}

/** Hex formatting for error messages (addresses are numbers ≤ 2^53). */
export function hex(value: number): string {
  return '0x' + value.toString(16);
}
