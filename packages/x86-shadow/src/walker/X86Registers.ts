/** Architectural control bits the MMU depends on (Intel SDM vol. 3, ch. 2 and 4). */
export const CR0 = { PE: 1 << 0, WP: 1 << 16, PG: 1 << 31 } as const;
export const CR4 = {
  PSE: 1 << 4,
  PAE: 1 << 5,
  PGE: 1 << 7,
  LA57: 1 << 12,
  PCIDE: 1 << 17,
  SMEP: 1 << 20,
  SMAP: 1 << 21,
  PKE: 1 << 22,
} as const;
export const EFER = { LME: 1 << 8, LMA: 1 << 10, NXE: 1 << 11 } as const;

/** #PF error code bits (SDM 4.7). */
export const PFERR = { P: 1 << 0, W: 1 << 1, U: 1 << 2, RSVD: 1 << 3, ID: 1 << 4, PK: 1 << 5 } as const;

/** Guest paging mode, numbered by the number of table levels (0 = paging off). */
export const PagingMode = { NONE: 0, BITS32: 2, PAE: 3, LONG4: 4, LONG5: 5 } as const;
export type PagingModeValue = (typeof PagingMode)[keyof typeof PagingMode];

/**
 * The guest register state a page walk depends on. CR3 and the cached PAE
 * PDPTEs are numbers / uint32 halves (CR3 ≤ 2^52). `pdptes*` are loaded from
 * guest memory at CR3 load in PAE mode (SDM 4.4.1) and used by walks instead
 * of re-reading memory, as hardware and KVM do.
 */
export class X86Registers {
  private cr0Value = 0;
  private cr4Value = 0;
  private eferValue = 0;
  private maxPhyAddrValue = 40;
  private gbPagesValue = true;
  private amdValue = false;
  private changes = 0;
  cr3 = 0;
  /** PKRU: 2 bits per key (AD = bit 2k, WD = bit 2k+1). */
  pkru = 0;
  /** EFLAGS.AC (SMAP override for explicit supervisor accesses). */
  rflagsAc = false;
  /** Current privilege level 0..3 (user = 3); used when the caller does not pass Access.USER explicitly. */
  cpl = 0;

  get cr0(): number {
    return this.cr0Value;
  }

  set cr0(value: number) {
    this.cr0Value = value;
    this.changes++;
  }

  get cr4(): number {
    return this.cr4Value;
  }

  set cr4(value: number) {
    this.cr4Value = value;
    this.changes++;
  }

  get efer(): number {
    return this.eferValue;
  }

  set efer(value: number) {
    this.eferValue = value;
    this.changes++;
  }

  /** Guest MAXPHYADDR (CPUID 0x80000008 EAX[7:0]). */
  get maxPhyAddr(): number {
    return this.maxPhyAddrValue;
  }

  set maxPhyAddr(value: number) {
    this.maxPhyAddrValue = value;
    this.changes++;
  }

  /** CPUID exposes 1 GiB pages (PDPE1GB). */
  get gbPages(): boolean {
    return this.gbPagesValue;
  }

  set gbPages(value: boolean) {
    this.gbPagesValue = value;
    this.changes++;
  }

  /** AMD guest: bit 8 of PML4E/PML5E is reserved (KVM's nl8 rule). */
  get amd(): boolean {
    return this.amdValue;
  }

  set amd(value: boolean) {
    this.amdValue = value;
    this.changes++;
  }

  /**
   * Counts the writes to CR0, CR4, EFER, MAXPHYADDR, `gbPages` and `amd`:
   * what a walker precomputes from those stays valid while this count does
   * (`PagingContext.matches` then compares one number instead of six).
   */
  get generation(): number {
    return this.changes;
  }

  /** Cached PAE PDPTEs (valid in PAE mode after a CR3 load). */
  readonly pdpteHi = new Uint32Array(4);
  readonly pdpteLo = new Uint32Array(4);

  /** The paging mode these registers select (SDM table 4-1). */
  get pagingMode(): PagingModeValue {
    if ((this.cr0 & CR0.PG) === 0) return PagingMode.NONE;
    if ((this.cr4 & CR4.PAE) === 0) return PagingMode.BITS32;
    if ((this.efer & EFER.LMA) === 0) return PagingMode.PAE;
    return (this.cr4 & CR4.LA57) !== 0 ? PagingMode.LONG5 : PagingMode.LONG4;
  }
}
