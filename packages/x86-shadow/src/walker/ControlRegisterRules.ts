import { CR0, CR4, EFER } from './ControlBits.js';
import type { X86Registers } from './X86Registers.js';

/**
 * When MOV to CR0/CR3/CR4 and WRMSR IA32_EFER raise #GP (Intel SDM Vol. 2B
 * "MOV—Move to/from Control Registers", Vol. 2C "WRMSR", Vol. 3A §2.2.1,
 * §2.5, §4.1.2, §4.10.1), as KVM checks them (arch/x86/kvm/x86.c: kvm_is_valid_cr0,
 * kvm_set_cr0, kvm_set_cr4, set_efer, kvm_is_valid_sregs). Pure functions
 * of the current registers and the values written; no allocation.
 */

/** Which write is checked: an instruction, or a whole register set loaded at once (KVM_SET_SREGS, a VM entry). */
export const ControlWrite = { CR0: 0, CR3: 1, CR4: 2, EFER: 3, LOAD: 4 } as const;
export type ControlWriteValue = (typeof ControlWrite)[keyof typeof ControlWrite];

/** Why a write is refused (the SDM condition). */
export const ControlFault = {
  HIGH_BITS: 'bits 63:32 of CR0, CR4 or EFER set',
  NW_WITHOUT_CD: 'CR0.NW=1 with CR0.CD=0',
  PG_WITHOUT_PE: 'CR0.PG=1 with CR0.PE=0',
  CR4_RESERVED: 'a reserved CR4 bit set',
  EFER_RESERVED: 'a reserved EFER bit set',
  LONG_MODE_WITHOUT_PAE: 'IA-32e mode (CR0.PG=1, EFER.LME=1) with CR4.PAE=0',
  PCIDE_WITHOUT_LONG_MODE: 'CR4.PCIDE=1 outside IA-32e mode',
  CET_WITHOUT_WP: 'CR4.CET=1 with CR0.WP=0',
  CR3_RESERVED: 'CR3 bits above MAXPHYADDR (IA-32e mode) or above 31 (otherwise)',
  LA57_CHANGED: 'CR4.LA57 changed in IA-32e mode',
  PCIDE_WITH_PCID: 'CR4.PCIDE set while CR3[11:0] is not 0',
  LME_CHANGED: 'EFER.LME changed while CR0.PG=1',
} as const;
export type ControlFaultValue = (typeof ControlFault)[keyof typeof ControlFault];

/**
 * CR0 bits a write can set (SDM Vol. 3A §2.5). Setting another bit of 31:0
 * is no #GP (Vol. 2B MOV CR lists none for CR0[31:0]): it is ignored and
 * reads as 0, as KVM's kvm_set_cr0 stores it ("Write to CR0 reserved bits
 * are ignored, even on Intel").
 */
export const CR0_DEFINED = (CR0.PE | CR0.MP | CR0.EM | CR0.TS | CR0.ET | CR0.NE | CR0.WP | CR0.AM | CR0.NW | CR0.CD | CR0.PG) >>> 0;

/** CR4 bits of 31:0 that are not reserved (SDM Vol. 3A §2.5, Figure 2-7). */
export const CR4_DEFINED =
  (CR4.VME |
    CR4.PVI |
    CR4.TSD |
    CR4.DE |
    CR4.PSE |
    CR4.PAE |
    CR4.MCE |
    CR4.PGE |
    CR4.PCE |
    CR4.OSFXSR |
    CR4.OSXMMEXCPT |
    CR4.UMIP |
    CR4.LA57 |
    CR4.VMXE |
    CR4.SMXE |
    CR4.FSGSBASE |
    CR4.PCIDE |
    CR4.OSXSAVE |
    CR4.KL |
    CR4.SMEP |
    CR4.SMAP |
    CR4.PKE |
    CR4.CET |
    CR4.PKS |
    CR4.UINTR |
    CR4.LASS |
    CR4.LAM_SUP) >>>
  0;

/** EFER bits an Intel processor defines (SDM Vol. 3A §2.2.1, Table 2-1: 7:1, 9 and 63:12 reserved). */
export const EFER_DEFINED_INTEL = (EFER.SCE | EFER.LME | EFER.LMA | EFER.NXE) >>> 0;
/** ... and an AMD one (AMD APM Vol. 2 §3.1.7 adds SVME, LMSLE, FFXSR, TCE). */
export const EFER_DEFINED_AMD = (EFER_DEFINED_INTEL | EFER.SVME | EFER.LMSLE | EFER.FFXSR | EFER.TCE) >>> 0;

const TWO_POW_32 = 0x1_0000_0000;

/** CR0 as a MOV stores it: reserved bits of 31:0 dropped (SDM Vol. 3A §2.5; KVM kvm_set_cr0 does the same). */
export function writtenCr0(cr0: number): number {
  return (cr0 & CR0_DEFINED) >>> 0;
}

/**
 * EFER as the processor holds it: LMA is read-only, set exactly when paging
 * is on with LME=1 (SDM Vol. 3A §2.2.1, §4.1.2); the written LMA is ignored
 * (KVM set_efer keeps its own).
 */
export function effectiveEfer(efer: number, cr0: number): number {
  const lma = (cr0 & CR0.PG) !== 0 && (efer & EFER.LME) !== 0;
  return ((efer & ~EFER.LMA) | (lma ? EFER.LMA : 0)) >>> 0;
}

/**
 * The #GP `write` raises when `regs` hold the current state and the
 * registers are to become (cr0, cr3, cr4, efer) — uint32 values (cr3 a
 * number), cr0 as `writtenCr0` leaves it — or null if it is legal. A LOAD
 * checks only what must hold of any register state; an instruction also
 * checks the SDM's rules on what it may change. MAXPHYADDR and the vendor
 * come from `regs`. PAE PDPTEs are checked by the caller (they need memory).
 */
export function controlRegisterFault(
  regs: X86Registers,
  write: ControlWriteValue,
  cr0: number,
  cr3: number,
  cr4: number,
  efer: number,
): ControlFaultValue | null {
  // Vol. 2B MOV CR, #GP: "invalid bit combinations in CR0".
  if ((cr0 & CR0.NW) !== 0 && (cr0 & CR0.CD) === 0) return ControlFault.NW_WITHOUT_CD;
  if ((cr0 & CR0.PG) !== 0 && (cr0 & CR0.PE) === 0) return ControlFault.PG_WITHOUT_PE;
  // Vol. 2B MOV CR, #GP: "a 1 to any reserved bit in CR4".
  if ((cr4 & ~CR4_DEFINED) !== 0) return ControlFault.CR4_RESERVED;
  // Vol. 2C WRMSR, #GP: setting a reserved MSR bit; which EFER bits exist depends on the vendor.
  if ((efer & ~(regs.amd ? EFER_DEFINED_AMD : EFER_DEFINED_INTEL)) !== 0) return ControlFault.EFER_RESERVED;
  const lma = (cr0 & CR0.PG) !== 0 && (efer & EFER.LME) !== 0;
  // §4.1.2: IA-32e paging needs PAE; setting PG with LME=1 and PAE=0, or clearing PAE in it, is #GP.
  if (lma && (cr4 & CR4.PAE) === 0) return ControlFault.LONG_MODE_WITHOUT_PAE;
  // §4.10.1: the processor keeps IA32_EFER.LMA = 1 whenever CR4.PCIDE = 1, so setting PCIDE
  // outside IA-32e mode and clearing CR0.PG while PCIDE=1 are #GP (Vol. 2B MOV CR).
  if ((cr4 & CR4.PCIDE) !== 0 && !lma) return ControlFault.PCIDE_WITHOUT_LONG_MODE;
  // §2.5 (CR4.CET): CET can be set only while CR0.WP=1, and WP cannot be cleared while CET=1.
  if ((cr4 & CR4.CET) !== 0 && (cr0 & CR0.WP) === 0) return ControlFault.CET_WITHOUT_WP;
  // §4.5 / Vol. 2B MOV CR: CR3 bits MAXPHYADDR..63 are reserved in IA-32e mode; below it
  // CR3 is a 32-bit register here.
  if (cr3 >= (lma ? 2 ** regs.maxPhyAddr : TWO_POW_32)) return ControlFault.CR3_RESERVED;

  if (write === ControlWrite.CR4) {
    const inLongMode = (regs.efer & EFER.LMA) !== 0;
    // §2.5 (CR4.LA57): the bit cannot be changed in IA-32e mode (KVM kvm_set_cr4).
    if (inLongMode && ((cr4 ^ regs.cr4) & CR4.LA57) !== 0) return ControlFault.LA57_CHANGED;
    // §4.10.1 / Vol. 2B MOV CR: PCIDE may go 0 → 1 only while CR3[11:0] = 000H.
    if ((cr4 & ~regs.cr4 & CR4.PCIDE) !== 0 && cr3 % 4096 !== 0) return ControlFault.PCIDE_WITH_PCID;
  } else if (write === ControlWrite.EFER) {
    // §4.1.2: "IA32_EFER.LME cannot be modified while paging is enabled" (WRMSR #GP; KVM set_efer).
    if ((regs.cr0 & CR0.PG) !== 0 && ((efer ^ regs.efer) & EFER.LME) !== 0) return ControlFault.LME_CHANGED;
  }
  return null;
}
