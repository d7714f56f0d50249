/** What ended an access that did not complete. */
export const FaultKind = {
  NONE: 0,
  /** The guest's own tables refuse the access: deliver `code` to the guest (x86 #PF error code, POWER DSISR…). */
  GUEST: 1,
  /** No memory backs the guest physical address (MMIO or a hole): the VMM must emulate. */
  NO_MEMORY: 2,
  /** A write to read-only guest memory (ROM slot): the VMM must emulate. */
  READ_ONLY: 3,
  /** The fault handler kept asking for a retry; bounded so a hostile guest cannot spin the host. */
  RETRY_LIMIT: 4,
  /**
   * The access is legal for the guest but cannot complete in hardware: the
   * MMU keeps the page write-protected (it holds guest page tables) and the
   * write must be emulated at `gpa` (KVM's RET_PF_EMULATE), then resumed.
   */
  EMULATE: 5,
} as const;
export type FaultKindValue = (typeof FaultKind)[keyof typeof FaultKind];

/**
 * Outcome of `Mmu.handleFault`: either the hardware tables were fixed and the
 * access is retried, or the access ends with the fault written to `FaultInfo`.
 */
export const FaultOutcome = {
  RETRY: 0,
  DONE: 1,
} as const;
export type FaultOutcomeValue = (typeof FaultOutcome)[keyof typeof FaultOutcome];

/**
 * The last fault of a vCPU. One instance per vCPU, overwritten in place, so a
 * faulting access allocates nothing.
 */
export class FaultInfo {
  kind: FaultKindValue = FaultKind.NONE;
  /** Architected fault code (x86: the #PF error code). */
  code = 0;
  /** Faulting virtual page number and byte offset (a 57-bit VA does not fit a number). */
  vpn = 0;
  offset = 0;
  /** Guest physical address involved, when known (-1 otherwise). */
  gpa = -1;
  /** The access that faulted (`Access` bits). */
  access = 0;

  set(kind: FaultKindValue, code: number, vpn: number, offset: number, access: number, gpa: number): void {
    this.kind = kind;
    this.code = code;
    this.vpn = vpn;
    this.offset = offset;
    this.access = access;
    this.gpa = gpa;
  }

  clear(): void {
    this.kind = FaultKind.NONE;
    this.code = 0;
    this.gpa = -1;
  }

  /** Virtual address as a number (exact below 2^53). */
  get address(): number {
    return this.vpn * 4096 + this.offset;
  }
}
