import { Access, ACCESS_KINDS } from '@hvmmu/core';
import { CR0, CR4, EFER, type X86Registers } from '../walker/X86Registers.js';

/** Index of `HardwarePermissions.table`: (pkey << 3) | (NX << 2) | (U << 1) | W of a leaf spte. */
export function hardwarePermIndex(w: number, u: number, nx: number, pkey: number): number {
  return (pkey << 3) | (nx << 2) | (u << 1) | w;
}

/**
 * What the processor allows through a shadow leaf, per core `Access` kind,
 * as a TLB permission mask (bit a set = access kind a allowed).
 *
 * Under shadow paging KVM runs the guest with CR0.WP=1, EFER.NX=1 and the
 * guest's CR4.SMEP/SMAP/PKE (cleared while paging is off), so the hardware
 * applies SDM 4.6 to the spte bits: writes need W (supervisor writes too,
 * WP=1), user accesses need U, fetches fault on NX, SMEP blocks supervisor
 * fetches from U pages, SMAP blocks supervisor data accesses to U pages
 * unless EFLAGS.AC=1 on an explicit access, and protection keys (the
 * leaf's key, PKRU AD/WD) restrict data accesses to U pages. The table is
 * recomputed whenever one of those inputs changes, so a translation costs
 * one table read.
 */
export class HardwarePermissions {
  /** 16 keys × 8 (W, U, NX) combinations. */
  readonly table = new Uint16Array(128);

  update(regs: X86Registers): void {
    const paging = (regs.cr0 & CR0.PG) !== 0;
    const smep = paging && (regs.cr4 & CR4.SMEP) !== 0;
    const smap = paging && (regs.cr4 & CR4.SMAP) !== 0;
    const pke = paging && (regs.efer & EFER.LMA) !== 0 && (regs.cr4 & CR4.PKE) !== 0;
    const cplUser = regs.cpl === 3;
    const ac = regs.rflagsAc;
    for (let index = 0; index < 128; index++) {
      const w = (index & 1) !== 0;
      const u = (index & 2) !== 0;
      const nx = (index & 4) !== 0;
      const pkey = index >>> 3;
      const pkru = (regs.pkru >>> (2 * pkey)) & 3;
      let mask = 0;
      for (let a = 0; a < ACCESS_KINDS; a++) {
        const write = (a & Access.WRITE) !== 0;
        const fetch = (a & Access.FETCH) !== 0;
        if (write && fetch) continue;
        const implicit = (a & Access.IMPLICIT) !== 0;
        const user = !implicit && ((a & Access.USER) !== 0 || cplUser);
        let deny = (write && !w) || (user && !u) || (fetch && nx);
        if (!user && u) {
          if (fetch) deny ||= smep;
          else deny ||= smap && (implicit || !ac);
        }
        if (!deny && pke && u && !fetch) {
          // AD blocks every data access; WD blocks writes (supervisor ones too: hardware WP=1).
          deny = (pkru & 1) !== 0 || (write && (pkru & 2) !== 0);
        }
        if (!deny) mask |= 1 << a;
      }
      this.table[index] = mask;
    }
  }
}
