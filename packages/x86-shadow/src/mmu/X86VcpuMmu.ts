import { Access, DEFAULT_CONTEXT, HvmmuError, type Vcpu } from '@hvmmu/core';
import type { X86ShadowTypes } from '../X86ShadowTypes.js';
import { loadPdptes } from '../walker/loadPdptes.js';
import { ControlWrite, controlRegisterFault, effectiveEfer, writtenCr0, type ControlWriteValue } from '../walker/ControlRegisterRules.js';
import { checkMaxPhyAddr } from '../walker/PagingContext.js';
import { booleanOperand, checkControlOperands, cr3Operand, low32, u32Operand } from '../walker/registerOperands.js';
import { CR0, CR4, PagingMode, pagingModeOf, type ControlRegisters } from '../walker/X86Registers.js';
import { ShadowPages } from './ShadowPages.js';
import { REQ_MMU_SYNC, REQ_TLB_FLUSH } from './VcpuMmuList.js';

import { NUM_PREV_ROOTS, ROOTS_ALL, ROOTS_CURRENT, ROOT_NORMAL, ROOT_SPECIAL } from './RootKind.js';
import { VcpuRoots } from './VcpuRoots.js';

export { NUM_PREV_ROOTS, ROOTS_ALL, ROOTS_CURRENT, ROOT_DUMMY, ROOT_NONE, ROOT_NORMAL, ROOT_SPECIAL } from './RootKind.js';

/** Exception vectors the guest may be given. */
export const VECTOR_GP = 13;
export const VECTOR_PF = 14;

const TWO_POW_32 = 0x1_0000_0000;
const MAX_VPN = 2 ** 52 - 1;
/** CR4 bits whose change reloads the PAE PDPTEs (KVM X86_CR4_PDPTR_BITS). */
const CR4_PDPTR_BITS = CR4.PGE | CR4.PSE | CR4.PAE | CR4.SMEP;

export type { ControlRegisters };

/** The PDPTEs before a reload (compared after it); scratch, so that a control write allocates nothing. */
const savedPdpteLo = new Uint32Array(4);
const savedPdpteHi = new Uint32Array(4);

/**
 * One vCPU's MMU (KVM `vcpu->arch.root_mmu` plus the MMU side of the
 * vCPU): the guest registers, the CPU and root roles, the current root and
 * up to three previous roots cached across CR3 switches, pending requests,
 * and the hardware translator that walks the shadow table. Also the x86 API
 * of the vCPU — MOV to CR0/CR3/CR4, WRMSR EFER, WRPKRU, INVLPG — and
 * guest-visible memory accessors. Reached as `vcpu.arch`.
 */
export class X86VcpuMmu extends VcpuRoots {
  /** Vector of the last fault reflected to the guest (14 = #PF, 13 = #GP). */
  lastExceptionVector = 0;
  /** Value of the last successful `read` (low and high 32 bits). */
  readLo = 0;
  readHi = 0;

  constructor(vcpu: Vcpu<X86ShadowTypes>, pages: ShadowPages, hostRootLevel: number) {
    super(vcpu, pages, hostRootLevel);
    this.computeRoles();
    this.hw.update(this.regs);
  }

  // ========================================================= x86 vCPU API

  /*
   * The control-register writes. A value is a 32-bit pattern: an integer in
   * [-2^31, 2^32), so `CR0.PE | CR0.PG` (negative in JavaScript) is fine;
   * anything else is host misuse (HvmmuError BAD_ARGUMENT). A write the
   * processor refuses with #GP (ControlRegisterRules.ts) returns false and
   * changes nothing: registers, roots, TLB, statistics.
   */

  /** MOV to CR0 (reserved bits of 31:0 are ignored, as by the processor). Returns false on #GP. */
  setCr0(cr0: number): boolean {
    this.vcpu.checkAlive();
    const r = this.regs;
    return this.setControl(ControlWrite.CR0, u32Operand('CR0', cr0), r.cr3, r.cr4, r.efer);
  }

  /** MOV to CR3 (PAE paging loads the PDPTEs; #GP if one is reserved). Syncs the root and flushes this TLB. */
  setCr3(cr3: number): boolean {
    this.vcpu.checkAlive();
    if (!Number.isSafeInteger(cr3) || cr3 < 0 || cr3 > MAX_VPN * 4096 + 4095) {
      throw new HvmmuError('BAD_ARGUMENT', `CR3 must be an integer in [0, 2^64) below 2^53, got ${String(cr3)}`);
    }
    const r = this.regs;
    return this.setControl(ControlWrite.CR3, r.cr0, cr3, r.cr4, r.efer);
  }

  /** MOV to CR4. Returns false on #GP. */
  setCr4(cr4: number): boolean {
    this.vcpu.checkAlive();
    const r = this.regs;
    return this.setControl(ControlWrite.CR4, r.cr0, r.cr3, u32Operand('CR4', cr4), r.efer);
  }

  /** WRMSR IA32_EFER (LMA is read-only: the processor sets it from LME and CR0.PG). Returns false on #GP. */
  setEfer(efer: number): boolean {
    this.vcpu.checkAlive();
    const r = this.regs;
    return this.setControl(ControlWrite.EFER, r.cr0, r.cr3, r.cr4, u32Operand('EFER', efer));
  }

  /**
   * Load CR0, CR3, CR4 and EFER at once (a mode switch as firmware or a
   * test sets it up; KVM_SET_SREGS). Only what must hold of any register
   * state is checked, not what a single MOV may change (so this may switch
   * between 4- and 5-level paging, or turn long mode on in one step).
   * Numbers as for the setters, or bigints with the full 64-bit values.
   * Returns false and changes nothing if the set is illegal (bits 63:32 of
   * CR0, CR4 or EFER included) or a PAE PDPTE is reserved.
   */
  loadControlRegisters(values: ControlRegisters): boolean {
    this.vcpu.checkAlive();
    if (checkControlOperands(values)) return false;
    return this.setControl(ControlWrite.LOAD, low32(values.cr0), cr3Operand('CR3', values.cr3), low32(values.cr4), low32(values.efer));
  }

  /** WRPKRU. */
  setPkru(pkru: number): void {
    this.vcpu.checkAlive();
    const value = u32Operand('PKRU', pkru);
    if (value === this.regs.pkru) return;
    this.regs.pkru = value;
    this.permissionsChanged();
  }

  /** EFLAGS.AC (the SMAP override for explicit supervisor accesses). */
  setRflagsAc(ac: boolean): void {
    this.vcpu.checkAlive();
    if (booleanOperand('EFLAGS.AC', ac) === this.regs.rflagsAc) return;
    this.regs.rflagsAc = ac;
    this.permissionsChanged();
  }

  /** Current privilege level (3 makes explicit accesses user accesses). */
  setCpl(cpl: number): void {
    this.vcpu.checkAlive();
    if (!Number.isInteger(cpl) || cpl < 0 || cpl > 3) throw new HvmmuError('BAD_ARGUMENT', `CPL must be 0..3, got ${String(cpl)}`);
    if (cpl === this.regs.cpl) return;
    this.regs.cpl = cpl;
    this.permissionsChanged();
  }

  /**
   * Guest CPUID fields the walker depends on (MAXPHYADDR, 1 GiB pages,
   * AMD's reserved PML4E bit 8). KVM resets the MMU on a CPUID update; here
   * every shadow page is zapped too, since reserved-bit rules changed.
   * Every field is checked before anything changes.
   */
  setCpuid(cpuid: { maxPhyAddr?: number; gbPages?: boolean; amd?: boolean }): void {
    this.vcpu.checkAlive();
    if (typeof cpuid !== 'object' || cpuid === null) throw new HvmmuError('BAD_ARGUMENT', 'setCpuid takes an object');
    const maxPhyAddr = cpuid.maxPhyAddr ?? this.regs.maxPhyAddr;
    checkMaxPhyAddr(maxPhyAddr);
    const gbPages = booleanOperand('gbPages', cpuid.gbPages ?? this.regs.gbPages);
    const amd = booleanOperand('amd', cpuid.amd ?? this.regs.amd);
    this.regs.maxPhyAddr = maxPhyAddr;
    this.regs.gbPages = gbPages;
    this.regs.amd = amd;
    this.freeRoots(ROOTS_ALL);
    this.pages.zapAll();
    this.vcpu.tlb.flushAll();
  }

  /**
   * INVLPG: drop this vCPU's TLB entry for the page and resync the entry of
   * every unsync page on its path in the current and cached roots (KVM
   * kvm_mmu_invlpg). A non-canonical address is a no-op.
   */
  invlpg(va: number): void {
    this.vcpu.checkAlive();
    if (!Number.isSafeInteger(va) || va < 0) throw new HvmmuError('BAD_ARGUMENT', `INVLPG address must be a non-negative safe integer, got ${va}`);
    this.invlpgPage(Math.floor(va / 4096));
  }

  /** INVLPG by virtual page number (for 57-bit / upper-half addresses). */
  invlpgPage(vpn: number): void {
    this.vcpu.checkAlive();
    if (!Number.isSafeInteger(vpn) || vpn < 0) throw new HvmmuError('BAD_ARGUMENT', `virtual page must be a non-negative safe integer, got ${vpn}`);
    this.pages.stats.invlpgs++;
    this.vcpu.tlb.flushPage(DEFAULT_CONTEXT, vpn);
    if (this.cpuLevel >= 4) {
      const hi20 = Math.floor(vpn / TWO_POW_32);
      const top = this.cpuLevel === 5 ? hi20 >>> 12 : hi20 >>> 3;
      if (vpn > MAX_VPN || (top !== 0 && top !== (this.cpuLevel === 5 ? 0xff : 0x1ffff))) return;
    } else {
      vpn &= 0xfffff;
    }
    this.enterGuest(false);
    let flush = false;
    if (this.rootKind === ROOT_NORMAL || this.rootKind === ROOT_SPECIAL) {
      flush = this.invalidateInRoot(this.rootSp, vpn) || flush;
    }
    for (let i = 0; i < NUM_PREV_ROOTS; i++) {
      if (this.prevSp[i] !== 0) flush = this.invalidateInRoot(this.prevSp[i]!, vpn) || flush;
    }
    this.pages.remoteFlushOrZap(flush);
  }

  /**
   * The common path of every control-register write (uint32 cr0/cr4/efer,
   * cr3 a number): drop CR0's reserved bits and derive EFER.LMA, check the
   * SDM's #GP rules for `write` (refused → false before anything changes),
   * load the PAE PDPTEs when PAE paging is (re)entered or CR3 is loaded (a
   * reserved one → false, nothing changed; a changed one frees the root),
   * rebuild the roles (a change resets the MMU: every root freed), switch
   * roots on a CR3 change, and on a CR3 load sync the root and flush this
   * vCPU's TLB.
   */
  private setControl(write: ControlWriteValue, cr0: number, cr3: number, cr4: number, efer: number): boolean {
    const regs = this.regs;
    cr0 = writtenCr0(cr0);
    efer = effectiveEfer(efer, cr0);
    if (controlRegisterFault(regs, write, cr0, cr3, cr4, efer) !== null) return false;
    const cr3Write = write === ControlWrite.CR3 || write === ControlWrite.LOAD;
    const oldCr0 = regs.cr0;
    const oldCr3 = regs.cr3;
    const oldCr4 = regs.cr4;
    const oldMode = regs.pagingMode;
    let pdpteChanged = false;
    if (
      pagingModeOf(cr0, cr4, efer) === PagingMode.PAE &&
      (cr3Write || oldMode !== PagingMode.PAE || ((cr4 ^ oldCr4) & CR4_PDPTR_BITS) !== 0 || ((cr0 ^ oldCr0) & CR0.PG) !== 0)
    ) {
      // loadPdptes reads the PDPT at regs.cr3 and leaves the PDPTEs alone when it fails:
      // give it the new CR3, and on failure put the old one back (#GP, nothing changed).
      savedPdpteLo.set(regs.pdpteLo);
      savedPdpteHi.set(regs.pdpteHi);
      regs.cr3 = cr3;
      if (!loadPdptes(regs, this.pages.memslots)) {
        regs.cr3 = oldCr3;
        return false;
      }
      for (let i = 0; i < 4; i++) {
        if (regs.pdpteLo[i] !== savedPdpteLo[i] || regs.pdpteHi[i] !== savedPdpteHi[i]) pdpteChanged = true;
      }
    }
    // Only a changed value counts as a write (X86Registers.generation): a CR3 load keeps the walker's masks.
    if (cr0 !== oldCr0) regs.cr0 = cr0;
    regs.cr3 = cr3;
    if (cr4 !== oldCr4) regs.cr4 = cr4;
    if (efer !== regs.efer) regs.efer = efer;
    if (this.computeRoles()) {
      // kvm_mmu_reset_context: every root of the old MMU role goes.
      this.freeRoots(ROOTS_ALL);
    } else {
      if (pdpteChanged) this.freeRoots(ROOTS_CURRENT);
      if (cr3 !== oldCr3) this.newPgd(cr3);
    }
    this.hw.update(regs);
    this.requests |= REQ_TLB_FLUSH | (cr3Write ? REQ_MMU_SYNC : 0);
    this.enterGuest(false);
    return true;
  }

  /** Inputs of the hardware permission check changed: recompute it and drop this TLB (it caches decisions). */
  private permissionsChanged(): void {
    this.hw.update(this.regs);
    this.vcpu.tlb.flushAll();
  }

  // ================================================ guest-visible accesses

  /**
   * Read `size` (1, 2, 4 or 8) bytes at virtual address va as the guest
   * does (through the TLB and the MMU; core's guest-virtual access, little-
   * endian as x86 is). Returns true with the value in `readLo`/`readHi`, or
   * false with the fault in `vcpu.fault`.
   */
  read(va: number, size: number, access: number = Access.READ): boolean {
    if (!this.vcpu.read(va, size, true, access)) return false;
    this.readLo = this.vcpu.valueLo;
    this.readHi = this.vcpu.valueHi;
    return true;
  }

  /**
   * Write `size` bytes (little-endian value lo/hi) at va as the guest does.
   * A write the hardware refuses but the guest's tables allow — to a
   * write-protected guest page table — is emulated by the MMU (the bytes are
   * stored, then the shadow pages of the written gfn are updated:
   * kvm_mmu_track_write). Returns false with the fault in `vcpu.fault` for a
   * guest fault, MMIO/holes (NO_MEMORY) and read-only memory (READ_ONLY). A
   * write crossing a page checks both pages before writing either.
   */
  write(va: number, size: number, lo: number, hi: number = 0, access: number = Access.WRITE): boolean {
    return this.vcpu.write(va, size, hi, lo, true, access);
  }
}
