import { HvmmuError } from '@hvmmu/core';

/**
 * The processor state a radix translation depends on (POWER ISA v3.0 Book
 * III: MSR, LPIDR, PIDR, PTCR, AMR, IAMR, HRMOR). Mutable and reused: a vCPU
 * holds one and changes fields as the guest writes its registers. 64-bit
 * registers are kept as high and low 32-bit halves.
 */
export class RadixRegisters {
  /** MSR[HV]: hypervisor state. */
  hv = false;
  /** MSR[PR]: problem (user) state. */
  pr = false;
  /** MSR[IR]: instruction relocation. */
  ir = true;
  /** MSR[DR]: data relocation. */
  dr = true;
  /** LPIDR, the partition the translation runs in (32 bits). */
  lpidr = 0;
  /** PIDR, the process (32 bits). */
  pidr = 0;
  /** PTCR: partition-table base and size (used unless `virtualHypervisor`). */
  ptcrHi = 0;
  ptcrLo = 0;
  /** AMR and IAMR, high halves: only key 0 (bits 63..62) applies to radix (QEMU ppc_radix64_get_prot_amr). */
  amrHi = 0;
  iamrHi = 0;
  /** HRMOR, added to hypervisor real-mode addresses whose EA bit 63 is clear. */
  hrmorHi = 0;
  hrmorLo = 0;
  /**
   * True when a virtual hypervisor supplies the partition-table entry and
   * translates guest real addresses flatly (QEMU's pseries machine, or KVM's
   * view of a pseries guest): `pate*` below is the entry, partition-scoped
   * translation is the identity, and LPIDR/PTCR are not used.
   */
  virtualHypervisor = false;
  /** The partition-table entry a virtual hypervisor supplies (dw0 and dw1 halves). */
  pate0Hi = 0;
  pate0Lo = 0;
  pate1Hi = 0;
  pate1Lo = 0;

  /** Set a 64-bit register pair from a BigInt or a safe-integer number (API edge). */
  static halves(value: bigint | number, what: string): [number, number] {
    let v: bigint;
    if (typeof value === 'bigint') v = value;
    else if (Number.isSafeInteger(value) && value >= 0) v = BigInt(value);
    else throw new HvmmuError('BAD_ARGUMENT', `${what} must be a 64-bit unsigned value (number or BigInt), got ${String(value)}`);
    if (v < 0n || v >= 1n << 64n) throw new HvmmuError('BAD_ARGUMENT', `${what} must be a 64-bit unsigned value, got ${v}`);
    return [Number(v >> 32n), Number(v & 0xffff_ffffn)];
  }

  setPtcr(value: bigint | number): this {
    [this.ptcrHi, this.ptcrLo] = RadixRegisters.halves(value, 'PTCR');
    return this;
  }

  /** Run under a virtual hypervisor that supplies this partition-table entry (see `virtualHypervisor`). */
  setVirtualHypervisorPate(dw0: bigint | number, dw1: bigint | number): this {
    const [a, b] = RadixRegisters.halves(dw0, 'PATE dw0');
    const [c, d] = RadixRegisters.halves(dw1, 'PATE dw1');
    this.virtualHypervisor = true;
    this.pate0Hi = a;
    this.pate0Lo = b;
    this.pate1Hi = c;
    this.pate1Lo = d;
    return this;
  }

  setAmr(value: bigint | number): this {
    this.amrHi = RadixRegisters.halves(value, 'AMR')[0];
    return this;
  }

  setIamr(value: bigint | number): this {
    this.iamrHi = RadixRegisters.halves(value, 'IAMR')[0];
    return this;
  }

  copyFrom(other: RadixRegisters): this {
    this.hv = other.hv;
    this.pr = other.pr;
    this.ir = other.ir;
    this.dr = other.dr;
    this.lpidr = other.lpidr;
    this.pidr = other.pidr;
    this.ptcrHi = other.ptcrHi;
    this.ptcrLo = other.ptcrLo;
    this.amrHi = other.amrHi;
    this.iamrHi = other.iamrHi;
    this.hrmorHi = other.hrmorHi;
    this.hrmorLo = other.hrmorLo;
    this.virtualHypervisor = other.virtualHypervisor;
    this.pate0Hi = other.pate0Hi;
    this.pate0Lo = other.pate0Lo;
    this.pate1Hi = other.pate1Hi;
    this.pate1Lo = other.pate1Lo;
    return this;
  }
}
