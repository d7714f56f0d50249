/** What ended an access that did not complete. */
export const FaultKind = {
  NONE: 0,
  /** The guest's own tables refuse the access: an architected exception (see `vector`, `destination`). */
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
  /**
   * The host has no free frame to back the page (KVM_RUN fails with
   * -ENOMEM; the host does not crash). The guest can run on once memory is
   * freed; nothing was changed.
   */
  HOST_OUT_OF_MEMORY: 6,
} as const;
export type FaultKindValue = (typeof FaultKind)[keyof typeof FaultKind];

/** Where a fault goes. */
export const FaultDestination = {
  NONE: 0,
  /** Deliver the exception (`vector`, `words`) to the guest that made the access. */
  GUEST: 1,
  /**
   * Reflect it to that guest's hypervisor: a nested guest's access that its
   * hypervisor's tables refuse (POWER: an HDSI/HISI exit from H_ENTER_NESTED
   * with HDAR, HDSISR, ASDR).
   */
  HYPERVISOR: 2,
  /** Exit to the VMM: emulation, MMIO, no memory, host out of memory, retry limit. */
  VMM: 3,
} as const;
export type FaultDestinationValue = (typeof FaultDestination)[keyof typeof FaultDestination];

/**
 * Outcome of `Mmu.handleFault`: either the hardware tables were fixed and the
 * access is retried, or the access ends with the fault written to `FaultInfo`
 * — or the tables were fixed and the handler also wrote to `result` exactly
 * what the retried access's walk would return (it knows the entry that walk
 * reads), so the vCPU fills its TLB from that without walking again.
 */
export const FaultOutcome = {
  RETRY: 0,
  DONE: 1,
  FILLED: 2,
} as const;
export type FaultOutcomeValue = (typeof FaultOutcome)[keyof typeof FaultOutcome];

/** Architecture words a fault can carry (x86: the error code; POWER: DSISR, SRR1, DAR or HDSISR, HDAR, ASDR). */
export const FAULT_WORDS = 4;

const TWO_POW_32 = 0x1_0000_0000;
const TWO_POW_20 = 0x10_0000;

/**
 * The last fault of a vCPU, architecture-neutral. One instance per vCPU,
 * overwritten in place, so a faulting access allocates nothing.
 *
 * A backend's fault handler says what the fault is (`deliver`, `reflect`,
 * `exit`); the vCPU then records the access: its kind bits, the virtual page
 * and offset, and the byte-exact 64-bit virtual address (`vaHi`/`vaLo`).
 */
export class FaultInfo {
  kind: FaultKindValue = FaultKind.NONE;
  destination: FaultDestinationValue = FaultDestination.NONE;
  /** The architecture's exception vector (x86: 14 #PF, 13 #GP; POWER: 0x300 DSI, 0x400 ISI, 0x380/0x480 segment, 0xe00 HDSI, 0xe20 HISI). */
  vector = 0;
  /**
   * Architecture words as 64-bit hi/lo halves; what index means what is
   * the backend's (x86: 0 = #PF error code; POWER DSI: DSISR, SRR1, DAR).
   */
  readonly wordHi = new Uint32Array(FAULT_WORDS);
  readonly wordLo = new Uint32Array(FAULT_WORDS);
  /** Words set by the last fault. */
  wordCount = 0;
  /** Faulting virtual page number (virtual address >> 12) and byte offset. */
  vpn = 0;
  offset = 0;
  /** The faulting virtual address, 64 bits as two halves. */
  vaHi = 0;
  vaLo = 0;
  /** Guest physical address involved, when known (-1 otherwise). */
  gpa = -1;
  /** The access that faulted (`Access` bits). */
  access = 0;
  /**
   * The architecture word that holds the faulting address (POWER: DAR,
   * HDAR), or -1: `setAccess` fills it with the byte-exact address, which a
   * backend's fault handler, seeing only the page, cannot.
   */
  addressWord = -1;

  /** An architected exception for the guest itself, with its first word (x86: the #PF error code). */
  deliver(vector: number, code: number): void {
    this.addressWord = -1;
    this.kind = FaultKind.GUEST;
    this.destination = FaultDestination.GUEST;
    this.vector = vector;
    this.wordHi[0] = 0;
    this.wordLo[0] = code >>> 0;
    this.wordCount = 1;
    this.gpa = -1;
  }

  /** An exception for the guest's hypervisor (nested); set its words with `setWord`. */
  reflect(vector: number): void {
    this.addressWord = -1;
    this.kind = FaultKind.GUEST;
    this.destination = FaultDestination.HYPERVISOR;
    this.vector = vector;
    this.wordCount = 0;
    this.gpa = -1;
  }

  /** An exit to the VMM of `kind` (NO_MEMORY, READ_ONLY, EMULATE, HOST_OUT_OF_MEMORY, RETRY_LIMIT) at gpa (-1 if none). */
  exit(kind: FaultKindValue, gpa: number): void {
    this.addressWord = -1;
    this.kind = kind;
    this.destination = FaultDestination.VMM;
    this.vector = 0;
    this.wordCount = 0;
    this.gpa = gpa;
  }

  /** Set architecture word i (0..FAULT_WORDS-1) from halves. */
  setWord(i: number, hi: number, lo: number): void {
    this.wordHi[i] = hi >>> 0;
    this.wordLo[i] = lo >>> 0;
    if (i >= this.wordCount) this.wordCount = i + 1;
  }

  /**
   * Record the access that faulted (done by the vCPU). A backend may give
   * `gpa` as the page's base; it becomes the faulting byte's address.
   */
  setAccess(vpn: number, offset: number, access: number): void {
    if (this.gpa >= 0) this.gpa = this.gpa - (this.gpa % 4096) + offset;
    this.vpn = vpn;
    this.offset = offset;
    this.access = access;
    this.vaHi = Math.floor(vpn / TWO_POW_20);
    this.vaLo = ((vpn % TWO_POW_20) * 4096 + offset) >>> 0;
    if (this.addressWord >= 0) this.setWord(this.addressWord, this.vaHi, this.vaLo);
  }

  clear(): void {
    this.addressWord = -1;
    this.kind = FaultKind.NONE;
    this.destination = FaultDestination.NONE;
    this.vector = 0;
    this.wordCount = 0;
    this.wordLo[0] = 0;
    this.wordHi[0] = 0;
    this.gpa = -1;
  }

  /** The first architecture word's low 32 bits (x86: the #PF error code; POWER: DSISR or HDSISR). */
  get code(): number {
    return this.wordLo[0]!;
  }

  /** Word i as a number (exact below 2^53; -1 if it does not fit). */
  word(i: number): number {
    const hi = this.wordHi[i]!;
    return hi > 0x1f_ffff ? -1 : hi * TWO_POW_32 + this.wordLo[i]!;
  }

  /** Word i as a BigInt (API edge only). */
  wordBig(i: number): bigint {
    return (BigInt(this.wordHi[i]!) << 32n) | BigInt(this.wordLo[i]!);
  }

  /** Virtual address as a number (exact below 2^53). */
  get address(): number {
    return this.vpn * 4096 + this.offset;
  }

  /** Virtual address, all 64 bits (API edge only). */
  get addressBig(): bigint {
    return (BigInt(this.vaHi) << 32n) | BigInt(this.vaLo);
  }
}
