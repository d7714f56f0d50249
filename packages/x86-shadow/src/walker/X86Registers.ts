import { HvmmuError } from '@hvmmu/core';
import { CR0, CR4, EFER } from './ControlBits.js';
import { ControlFault, ControlWrite, controlRegisterFault, effectiveEfer, writtenCr0 } from './ControlRegisterRules.js';
import { checkMaxPhyAddr } from './MaxPhyAddr.js';
import { booleanOperand, checkControlOperands, checkRegister64, cr3Operand, hasHigh32, low32, u32Operand } from './registerOperands.js';

export { CR0, CR4, EFER };

/** #PF error code bits (SDM 4.7). */
export const PFERR = { P: 0x01, W: 0x02, U: 0x04, RSVD: 0x08, ID: 0x10, PK: 0x20 } as const;

/** Guest paging mode, numbered by the number of table levels (0 = paging off). */
export const PagingMode = { NONE: 0, BITS32: 2, PAE: 3, LONG4: 4, LONG5: 5 } as const;
export type PagingModeValue = (typeof PagingMode)[keyof typeof PagingMode];

/** The paging mode CR0, CR4 and EFER select (SDM table 4-1). */
export function pagingModeOf(cr0: number, cr4: number, efer: number): PagingModeValue {
  if ((cr0 & CR0.PG) === 0) return PagingMode.NONE;
  if ((cr4 & CR4.PAE) === 0) return PagingMode.BITS32;
  if ((efer & EFER.LMA) === 0) return PagingMode.PAE;
  return (cr4 & CR4.LA57) !== 0 ? PagingMode.LONG5 : PagingMode.LONG4;
}

/**
 * CR0, CR3, CR4 and EFER as the embedding program gives them: numbers (a
 * 32-bit pattern; CR3 a non-negative safe integer) or, at the API edges
 * that take this type, bigints holding the full 64-bit register.
 */
export interface ControlRegisters<T extends number | bigint = number | bigint> {
  readonly cr0: T;
  readonly cr3: T;
  readonly cr4: T;
  readonly efer: T;
}

/** A whole register set for `X86Registers.from`; the optional fields default as in `new X86Registers()`. */
export interface RegisterValues extends ControlRegisters {
  readonly pkru?: number | bigint;
  readonly cpl?: number;
  readonly rflagsAc?: boolean;
  readonly maxPhyAddr?: number;
  readonly gbPages?: boolean;
  readonly amd?: boolean;
}

/**
 * The guest register state a page walk depends on. CR3 and the cached PAE
 * PDPTEs are numbers / uint32 halves (CR3 ≤ 2^52). `pdptes*` are loaded from
 * guest memory at CR3 load in PAE mode (SDM 4.4.1) and used by walks instead
 * of re-reading memory, as hardware and KVM do. The fields take any value
 * (the walker's tests build every state, legal or not); the checked ways in
 * are `X86Registers.from` and the vCPU's setters (`X86VcpuMmu.setCr0`, …).
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
    return pagingModeOf(this.cr0, this.cr4, this.efer);
  }

  /**
   * A register set from values, checked as the vCPU's setters check them
   * (host misuse and a state no processor can be in both throw HvmmuError
   * BAD_ARGUMENT; the SDM rule is in the message and in `details.fault`).
   * The checks are those of a whole-state load (`ControlWrite.LOAD`, as
   * KVM_SET_SREGS): CR0's reserved bits 31:0 are dropped, EFER.LMA is
   * derived from CR0.PG and EFER.LME. Numbers or bigints for the register
   * values; a bigint may set bits 63:32, which CR0, CR4 and EFER reserve.
   * In PAE mode the PDPTEs are not loaded: call `loadPdptes(regs, mem)`.
   */
  static from(values: RegisterValues): X86Registers {
    const highBits = checkControlOperands(values);
    const cr3 = cr3Operand('CR3', values.cr3);
    const pkru = values.pkru === undefined ? 0 : pkruOperand(values.pkru);
    const cpl = values.cpl ?? 0;
    if (!Number.isInteger(cpl) || cpl < 0 || cpl > 3) throw new HvmmuError('BAD_ARGUMENT', `CPL must be 0..3, got ${String(cpl)}`);
    const rflagsAc = booleanOperand('rflagsAc', values.rflagsAc ?? false);
    const maxPhyAddr = values.maxPhyAddr ?? 40;
    checkMaxPhyAddr(maxPhyAddr);
    const gbPages = booleanOperand('gbPages', values.gbPages ?? true);
    const amd = booleanOperand('amd', values.amd ?? false);

    const regs = new X86Registers();
    regs.maxPhyAddr = maxPhyAddr;
    regs.gbPages = gbPages;
    regs.amd = amd;
    const cr0 = writtenCr0(low32(values.cr0));
    const cr4 = low32(values.cr4);
    const efer = effectiveEfer(low32(values.efer), cr0);
    const fault = highBits ? ControlFault.HIGH_BITS : controlRegisterFault(regs, ControlWrite.LOAD, cr0, cr3, cr4, efer);
    if (fault !== null) throw new HvmmuError('BAD_ARGUMENT', `illegal register set: ${fault} (#GP)`, { fault });
    regs.cr0 = cr0;
    regs.cr3 = cr3;
    regs.cr4 = cr4;
    regs.efer = efer;
    regs.pkru = pkru;
    regs.cpl = cpl;
    regs.rflagsAc = rflagsAc;
    return regs;
  }
}

/** PKRU is 32 bits: a 32-bit pattern, or a bigint below 2^32. */
function pkruOperand(value: number | bigint): number {
  if (typeof value !== 'bigint') return u32Operand('PKRU', value);
  checkRegister64('PKRU', value);
  if (hasHigh32(value)) throw new HvmmuError('BAD_ARGUMENT', `PKRU is a 32-bit register, got ${value}n`);
  return low32(value);
}
