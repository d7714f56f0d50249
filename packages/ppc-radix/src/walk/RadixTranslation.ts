import { UINT32_FIELD } from '../format/Uint32Field.js';
const TWO_POW_32 = 0x1_0000_0000;

/** What a translation is for (QEMU MMUAccessType): a load, a store or an instruction fetch. */
export const RadixAccess = {
  LOAD: 0,
  STORE: 1,
  FETCH: 2,
} as const;
export type RadixAccessValue = (typeof RadixAccess)[keyof typeof RadixAccess];

/**
 * The result of one radix translation, reused across translations (nothing
 * is allocated per access). On success: the real address, the page size and
 * the access allowed. On a fault: the interrupt and its registers, as the
 * processor would set them (POWER ISA v3.0 Book III 7.5; QEMU
 * ppc_radix64_raise_si / raise_hsi / raise_segi).
 */
export class RadixTranslation {
  ok = false;
  /** Real address (host real after a partition-scoped step), halves; `ra` as a number, -1 at or above 2^53. */
  raHi = 0;
  raLo = UINT32_FIELD;
  ra = -1;
  /** log2 of the effective page size: the smaller of the process- and partition-scoped pages. */
  pageShift = 0;
  /** `RadixProt` bits allowed (the AND of both scopes; R/C policy may remove WRITE). */
  prot = 0;
  /** Guest real address the process-scoped step produced (= ra without a partition-scoped step). */
  guestRaHi = 0;
  guestRaLo = UINT32_FIELD;
  /** Process-scoped leaf: its value and real address (-1 if none); for software R/C handling. */
  processPteHi = UINT32_FIELD;
  processPteLo = UINT32_FIELD;
  processPteAddr = -1;
  /** Partition-scoped leaf of the final address: value and real address (-1 if none). */
  partitionPteHi = UINT32_FIELD;
  partitionPteLo = UINT32_FIELD;
  partitionPteAddr = -1;
  /** Table entries read (process table and partition table entries included). */
  refs = 0;

  /** On a fault: `RadixVector` (DSI, ISI, DSEG, ISEG, HDSI, HISI). */
  vector = 0;
  /** DSISR (DSI), HDSISR (HDSI) or the SRR1 / HSRR1 cause bits (ISI, HISI). */
  cause = 0;
  /** DAR / HDAR: the effective address (data interrupts). */
  darHi = UINT32_FIELD;
  darLo = UINT32_FIELD;
  /** ASDR (HDSI, HISI): the guest real address whose partition-scoped translation failed. */
  asdrHi = UINT32_FIELD;
  asdrLo = UINT32_FIELD;
  /**
   * HDSI/HISI with NOPTE at the bottom level of the partition-scoped tree:
   * the real address of the invalid leaf entry (where a hypervisor's fault
   * handler can put the leaf without walking again); -1 otherwise.
   */
  partitionMissAddr = -1;

  /** True when the fault goes to the hypervisor (HDSI, HISI): in a nested setup, reflected to L1. */
  get toHypervisor(): boolean {
    return this.vector === 0xe00 || this.vector === 0xe20;
  }

  /** The real address as a BigInt (API edge). */
  get raBig(): bigint {
    return (BigInt(this.raHi) << 32n) | BigInt(this.raLo);
  }

  /** DAR / HDAR as a BigInt. */
  get darBig(): bigint {
    return (BigInt(this.darHi) << 32n) | BigInt(this.darLo);
  }

  /** ASDR as a BigInt. */
  get asdrBig(): bigint {
    return (BigInt(this.asdrHi) << 32n) | BigInt(this.asdrLo);
  }

  /** @internal */
  setRa(hi: number, lo: number): void {
    this.raHi = hi >>> 0;
    this.raLo = lo >>> 0;
    this.ra = this.raHi < 0x20_0000 ? this.raHi * TWO_POW_32 + this.raLo : -1;
  }

  /** @internal */
  reset(): void {
    this.ok = false;
    this.ra = -1;
    this.raHi = 0;
    this.raLo = 0;
    this.pageShift = 0;
    this.prot = 0;
    this.processPteAddr = -1;
    this.partitionPteAddr = -1;
    this.refs = 0;
    this.vector = 0;
    this.cause = 0;
    this.darHi = 0;
    this.darLo = 0;
    this.asdrHi = 0;
    this.asdrLo = 0;
    this.partitionMissAddr = -1;
  }
}
