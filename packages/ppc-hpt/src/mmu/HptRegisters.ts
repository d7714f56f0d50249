import { HvmmuError } from '@hvmmu/core';

/**
 * The processor state a hash translation depends on (POWER ISA v2.07 Book
 * III: MSR, AMR, IAMR, LPCR, HRMOR). 64-bit registers as halves.
 */
export class HptRegisters {
  /** MSR[HV]. */
  hv = false;
  /** MSR[PR]: problem state; selects the SLB's Kp key instead of Ks. */
  pr = false;
  /** MSR[IR], MSR[DR]: relocation. */
  ir = true;
  dr = true;
  /** AMR / IAMR: two bits per storage key 0..31, key 0 in bits 63..62 (virtual page class key protection). */
  amrHi = 0;
  amrLo = 0;
  iamrHi = 0;
  iamrLo = 0;
  /** LPCR[ISL]: ignore the SLB's page size, translate with 4K pages. */
  lpcrIsl = false;
  /** LPCR[VPM1]: a relocated guest's storage faults go to the hypervisor (HDSI/HISI). */
  lpcrVpm1 = false;
  /** HRMOR, added to hypervisor real-mode addresses whose EA bit 63 is clear. */
  hrmorHi = 0;
  hrmorLo = 0;
  /** True under a virtual hypervisor (QEMU's pseries, KVM for its guest): real mode is guest physical. */
  virtualHypervisor = false;
  /**
   * Real mode of a guest goes through the virtual real-mode area (LPCR[VPM0]
   * on POWER8; always on POWER9): the HPT's VRMA entries, searched under
   * the VRMA segment, translate it.
   */
  vrma = false;
  /** The VRMA page size (LPCR[VRMASD] on POWER8): 12, 16 or 24. */
  vrmaPageShift = 24;

  setAmr(value: bigint): this {
    [this.amrHi, this.amrLo] = halves(value, 'AMR');
    return this;
  }

  setIamr(value: bigint): this {
    [this.iamrHi, this.iamrLo] = halves(value, 'IAMR');
    return this;
  }
}

function halves(v: bigint, what: string): [number, number] {
  if (typeof v !== 'bigint' || v < 0n || v >= 1n << 64n) throw new HvmmuError('BAD_ARGUMENT', `${what} must be a 64-bit BigInt, got ${String(v)}`);
  return [Number(v >> 32n), Number(v & 0xffff_ffffn)];
}
