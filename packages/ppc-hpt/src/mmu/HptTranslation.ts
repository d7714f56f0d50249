/** What a translation is for (QEMU MMUAccessType): a load, a store or an instruction fetch. */
export const HptAccess = { LOAD: 0, STORE: 1, FETCH: 2 } as const;

/** Interrupts a hash translation raises (POWER ISA v2.07 Book III 6.5). */
export const HptVector = { MCHECK: 0x200, DSI: 0x300, DSEG: 0x380, ISI: 0x400, ISEG: 0x480, HDSI: 0xe00, HISI: 0xe20 } as const;

/** DSISR / SRR1 cause bits (QEMU target/ppc/cpu.h; Linux asm/reg.h). */
export const HptCause = {
  NOPTE: 0x4000_0000,
  PROTFAULT: 0x0800_0000,
  STORE: 0x0200_0000,
  /** Virtual page class key (AMR / IAMR) violation: DSISR[AMR], SRR1[IAMR]. */
  KEY: 0x0020_0000,
  /** SRR1: fetch from a no-execute segment or page, or guarded storage. */
  NOEXEC_GUARD: 0x1000_0000,
} as const;

/**
 * The result of one hash translation, reused (nothing allocated per
 * access): on success the real address, the actual page size, the access
 * allowed and the HPTE used; on a fault the interrupt and its registers.
 */
export class HptTranslation {
  ok = false;
  raHi = 0;
  raLo = 0;
  /** Real address as a number, -1 at or above 2^53. */
  ra = -1;
  pageShift = 0;
  /** PAGE_READ 1 | PAGE_WRITE 2 | PAGE_EXEC 4. */
  prot = 0;
  /** Index of the HPTE that translated, or -1. */
  ptex = -1;
  /** HPTEs read by the search. */
  refs = 0;
  /** The interrupt when `ok` is false (0 for a debugger's look, which records none). */
  vector = 0;
  /** DSISR / HDSISR, or SRR1 / HSRR1 cause bits. */
  cause = 0;
  darHi = 0;
  darLo = 0;
  /** ASDR of an HDSI/HISI: the SLB VSID word of the segment (QEMU ppc_hash64_set_dsi). */
  asdrHi = 0;
  asdrLo = 0;

  get raBig(): bigint {
    return (BigInt(this.raHi) << 32n) | BigInt(this.raLo);
  }

  /** @internal */
  setRa(hi: number, lo: number): void {
    this.raHi = hi >>> 0;
    this.raLo = lo >>> 0;
    this.ra = this.raHi < 0x20_0000 ? this.raHi * 0x1_0000_0000 + this.raLo : -1;
  }

  /** @internal Start a translation: the fault fields are meaningful only when `ok` is false. */
  reset(): void {
    this.ok = false;
    this.ptex = -1;
    this.refs = 0;
    this.vector = 0;
    this.cause = 0;
  }
}
