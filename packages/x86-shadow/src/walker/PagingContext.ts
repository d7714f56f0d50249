import { Access } from '@hvmmu/core';
import { checkMaxPhyAddr } from './MaxPhyAddr.js';
import { CR0, CR4, EFER, PFERR, PagingMode, type PagingModeValue, type X86Registers } from './X86Registers.js';

// In their own module so that X86Registers can check MAXPHYADDR without an import cycle through this one.
export { MIN_MAXPHYADDR, MAX_MAXPHYADDR, checkMaxPhyAddr } from './MaxPhyAddr.js';

/**
 * KVM's ACC bits (mmu.h): the access a translation grants. W and U sit where
 * R/W and U/S sit in an entry (bits 1 and 2); X is bit 0 and means
 * "executable", the inverse of XD, so that every right is ANDed over levels.
 */
export const ACC = { EXEC: 1, WRITE: 2, USER: 4, ALL: 7 } as const;

/**
 * Index into `PagingContext.permFault` / `pkMask`: the kind of access being
 * checked. Mirrors KVM's `pfec >> 1` index with the RSVD slot reused for
 * "SMAP overridden by EFLAGS.AC" (mmu.h `permission_fault`).
 */
export const PERM_INDEX = { WRITE: 1, FETCH: 2, USER: 4, SMAP_OVERRIDE: 8 } as const;

/** Bits above the `Access` bits in an access key (`PagingContext.accessKind`). */
export const ACCESS_KEY_CPL3 = 1 << 4;
export const ACCESS_KEY_AC = 1 << 5;

/** Mask with bits lo..hi (inclusive, 0..31) set; 0 if hi < lo. */
export function bitRange(lo: number, hi: number): number {
  return hi < lo ? 0 : ((hi === 31 ? 0xffffffff : (1 << (hi + 1)) - 1) & ~((1 << lo) - 1)) >>> 0;
}

/** High half of the PAE PDPTE reserved bits (MAXPHYADDR..63; SDM 4.4.1, KVM `pdptr_rsvd_bits`). */
export function pdpteReservedHi(maxPhyAddr: number): number {
  return bitRange(maxPhyAddr - 32, 31);
}

/** Low half of the PAE PDPTE reserved bits: 1..2 and 5..8 (SDM 4.4.1). */
export const PDPTE_RESERVED_LO = (bitRange(1, 2) | bitRange(5, 8)) >>> 0;

/**
 * Everything about a walk that depends only on CR0/CR4/EFER and the guest
 * CPUID (MAXPHYADDR, 1 GiB pages, vendor), precomputed once per register
 * change as KVM does in `reset_guest_rsvds_bits_mask` and
 * `update_permission_bitmask` / `update_pkru_bitmask`; the walk then costs a
 * few table lookups per level.
 */
export class PagingContext {
  /** Register values this context was computed from (compared on every walk). */
  cr0 = -1;
  cr4 = -1;
  efer = -1;
  maxPhyAddr = -1;
  gbPages = false;
  amd = false;
  /** The registers object `matches` last accepted, and its `generation` then. */
  private seenRegs: X86Registers | null = null;
  private seenGeneration = -1;

  mode: PagingModeValue = PagingMode.NONE;
  /** EFER.NXE: XD is honoured (and bit 63 is not reserved). */
  nxe = false;
  /** CR4.PSE: 4 MiB pages in 32-bit mode. */
  pse = false;
  /** Protection keys apply: EFER.LMA && CR4.PKE (KVM `cr4_pke`). */
  pke = false;
  /**
   * PFERR.ID when a fetch fault reports I/D: EFER.NXE || CR4.SMEP, KVM's rule
   * (paging_tmpl.h error path). SDM 4.7 counts NXE only with CR4.PAE=1, so
   * 32-bit paging with NXE=1, SMEP=0 differs (docs/x86-shadow.md).
   */
  fetchPfec = 0;
  /**
   * Reserved-bit masks, index `(large << 3) | level` where large = bit 7 of
   * the entry (KVM `rsvd_bits_mask[large][level-1]`), as two uint32 halves.
   */
  readonly rsvdLo = new Uint32Array(16);
  readonly rsvdHi = new Uint32Array(16);
  /**
   * The same rules split the way the walk's hot loop uses them: high-half
   * bits reserved in every 8-byte entry (address bits above MAXPHYADDR, XD
   * without NXE), low-half bits reserved in every PML4E/PML5E (AMD bit 8),
   * and low-half bits reserved when bit 7 is set, per level (all ones where
   * PS itself is reserved; 0 at level 1, where bit 7 is PAT).
   */
  entryRsvdHi = 0;
  topRsvdLo = 0;
  readonly largeRsvdLo = new Uint32Array(6);
  /** PAE PDPTE reserved bits checked at CR3 load (x86.c `pdptr_rsvd_bits`). */
  pdpteRsvdLo = 0;
  pdpteRsvdHi = 0;
  /** Per access kind (`PERM_INDEX` bits): bit n set = a translation with ACC value n faults. */
  readonly permFault = new Uint8Array(16);
  /**
   * Per access kind without the SMAP-override bit, times two, plus the
   * effective U bit of the translation: 1 = check PKRU.AD, 2 = check PKRU.WD.
   */
  readonly pkMask = new Uint8Array(16);
  /**
   * Per access key `access | (CPL is 3) << 4 | EFLAGS.AC << 5`: the
   * `PERM_INDEX` kind of the access, and the #PF error-code bits every fault
   * of it carries (W, U, and I/D where reported).
   */
  readonly accessKind = new Uint8Array(64);
  readonly accessPfec = new Uint8Array(64);

  /** True if `regs` select the same context as the one computed last. */
  matches(regs: X86Registers): boolean {
    // The registers last seen, unwritten since: one compare on every walk.
    if (regs === this.seenRegs && regs.generation === this.seenGeneration) return true;
    // Booleans compared by branching: V8 compiles `===` between two booleans to a generic call.
    if (
      regs.cr0 !== this.cr0 ||
      regs.cr4 !== this.cr4 ||
      regs.efer !== this.efer ||
      regs.maxPhyAddr !== this.maxPhyAddr ||
      !(regs.gbPages ? this.gbPages : !this.gbPages) ||
      !(regs.amd ? this.amd : !this.amd)
    ) {
      return false;
    }
    this.seenRegs = regs;
    this.seenGeneration = regs.generation;
    return true;
  }

  /** Recompute every mask from `regs`. Throws `HvmmuError` on an impossible MAXPHYADDR (host misuse). */
  update(regs: X86Registers): void {
    const maxPhyAddr = regs.maxPhyAddr;
    checkMaxPhyAddr(maxPhyAddr);
    this.cr0 = regs.cr0;
    this.cr4 = regs.cr4;
    this.efer = regs.efer;
    this.maxPhyAddr = maxPhyAddr;
    this.gbPages = regs.gbPages;
    this.amd = regs.amd;
    this.seenRegs = regs;
    this.seenGeneration = regs.generation;

    const mode = regs.pagingMode;
    const paging = mode !== PagingMode.NONE;
    this.mode = mode;
    // KVM's cpu role leaves every permission bit clear when CR0.PG=0 (kvm_calc_cpu_role).
    this.nxe = paging && (regs.efer & EFER.NXE) !== 0;
    this.pse = (regs.cr4 & CR4.PSE) !== 0;
    const wp = paging && (regs.cr0 & CR0.WP) !== 0;
    const smep = paging && (regs.cr4 & CR4.SMEP) !== 0;
    const smap = paging && (regs.cr4 & CR4.SMAP) !== 0;
    this.pke = paging && (regs.efer & EFER.LMA) !== 0 && (regs.cr4 & CR4.PKE) !== 0;
    this.fetchPfec = this.nxe || smep ? PFERR.ID : 0;

    this.computeReservedBits(mode, maxPhyAddr);
    this.computePermissions(wp, smep, smap);
    this.computePkMask(wp);
    this.computeAccessKinds();
  }

  /** Decode every (access, CPL 3, EFLAGS.AC) combination once. */
  private computeAccessKinds(): void {
    for (let key = 0; key < 64; key++) {
      const write = (key & Access.WRITE) !== 0;
      const fetch = (key & Access.FETCH) !== 0;
      const implicit = (key & Access.IMPLICIT) !== 0;
      const cpl3 = (key & ACCESS_KEY_CPL3) !== 0;
      const ac = (key & ACCESS_KEY_AC) !== 0;
      // SDM 4.6: implicit supervisor accesses (descriptor tables …) are supervisor accesses even at CPL 3;
      // every explicit access at CPL 3 is a user access.
      const user = !implicit && ((key & Access.USER) !== 0 || cpl3);
      let kind = (write ? PERM_INDEX.WRITE : 0) | (fetch ? PERM_INDEX.FETCH : 0);
      // paging_tmpl.h error path: W and U from the access, I/D only with NXE or SMEP.
      let pfec = (write ? PFERR.W : 0) | (fetch ? this.fetchPfec : 0);
      if (user) {
        kind |= PERM_INDEX.USER;
        pfec |= PFERR.U;
      } else if (!implicit && ac) {
        // SDM 4.6.1: EFLAGS.AC=1 lifts SMAP for explicit supervisor accesses only.
        kind |= PERM_INDEX.SMAP_OVERRIDE;
      }
      this.accessKind[key] = kind;
      this.accessPfec[key] = pfec;
    }
  }

  private computeReservedBits(mode: PagingModeValue, maxPhyAddr: number): void {
    const lo = this.rsvdLo;
    const hi = this.rsvdHi;
    lo.fill(0);
    hi.fill(0);
    // Physical-address bits above MAXPHYADDR: up to bit 51 in long mode, up
    // to bit 62 in PAE mode (SDM 4.4.2, tables 4-8..4-11: PAE entries reserve 62:M).
    const topAddrBit = mode === PagingMode.PAE ? 62 : 51;
    let highHi = bitRange(maxPhyAddr - 32, topAddrBit - 32);
    // SDM 4.4.2 / 4.5.4: XD is reserved while IA32_EFER.NXE = 0.
    if (!this.nxe) highHi = (highHi | 0x8000_0000) >>> 0;
    // PDPTE checks at CR3 load: MAXPHYADDR..63, 5..8, 1..2 (SDM 4.4.1, KVM pdptr_rsvd_bits).
    this.pdpteRsvdHi = pdpteReservedHi(maxPhyAddr);
    this.pdpteRsvdLo = PDPTE_RESERVED_LO;

    const bit7 = 0x80;
    const nl8 = this.amd ? 0x100 : 0; // AMD reserves bit 8 of PML4Es/PML5Es (KVM nonleaf_bit8_rsvd).
    const gb = this.gbPages ? 0 : bit7; // PS in a PDPTE is reserved without PDPE1GB.
    const large = 8;
    this.entryRsvdHi = mode === PagingMode.BITS32 ? 0 : highHi;
    this.topRsvdLo = nl8;
    const largeLo = this.largeRsvdLo;
    largeLo.fill(0);
    switch (mode) {
      case PagingMode.BITS32:
        largeLo[2] = this.pse ? bitRange(17, 21) : 0;
        // 32-bit entries reserve nothing but the PSE-36 hole of a 4 MiB PDE
        // (KVM behaves as PSE-36: bits 17..21 reserved, 13..16 = PA 35:32,
        // whatever MAXPHYADDR; SDM table 4-4 sizes both by MAXPHYADDR, up to 40).
        lo[large | 2] = this.pse ? bitRange(17, 21) : 0;
        break;
      case PagingMode.PAE:
        hi[3] = hi[large | 3] = this.pdpteRsvdHi;
        lo[3] = lo[large | 3] = this.pdpteRsvdLo;
        hi[2] = hi[1] = hi[large | 1] = highHi;
        hi[large | 2] = highHi;
        lo[large | 2] = bitRange(13, 20); // 2 MiB leaf: address bits 20:13 must be 0
        largeLo[2] = lo[large | 2]!;
        break;
      case PagingMode.LONG5:
      case PagingMode.LONG4:
        for (const level of [4, 5]) {
          hi[level] = hi[large | level] = highHi;
          lo[level] = lo[large | level] = bit7 | nl8; // SDM 4.5: PS is reserved in PML4Es and PML5Es
        }
        hi[3] = hi[large | 3] = highHi;
        lo[3] = gb;
        lo[large | 3] = (gb | bitRange(13, 29)) >>> 0; // 1 GiB leaf: address bits 29:13 must be 0
        hi[2] = hi[large | 2] = highHi;
        lo[large | 2] = bitRange(13, 20);
        hi[1] = hi[large | 1] = highHi;
        largeLo[5] = largeLo[4] = 0xffffffff;
        largeLo[3] = this.gbPages ? bitRange(13, 29) : 0xffffffff;
        largeLo[2] = lo[large | 2]!;
        break;
      default:
        break;
    }
  }

  /** KVM `update_permission_bitmask` for a non-EPT MMU. */
  private computePermissions(wp: boolean, smep: boolean, smap: boolean): void {
    for (let index = 0; index < 16; index++) {
      const write = (index & PERM_INDEX.WRITE) !== 0;
      const fetch = (index & PERM_INDEX.FETCH) !== 0;
      const user = (index & PERM_INDEX.USER) !== 0;
      const smapOverride = (index & PERM_INDEX.SMAP_OVERRIDE) !== 0;
      let faults = 0;
      for (let acc = 0; acc < 8; acc++) {
        const x = (acc & ACC.EXEC) !== 0;
        const w = (acc & ACC.WRITE) !== 0;
        const u = (acc & ACC.USER) !== 0;
        // SDM 4.6.1: user accesses need U/S=1 at every level.
        const userFault = user && !u;
        // User writes need R/W=1; supervisor writes too when CR0.WP=1.
        const writeFault = write && !w && (user || wp);
        // Fetches from XD pages fault when IA32_EFER.NXE=1.
        const fetchFault = fetch && this.nxe && !x;
        // A supervisor access to a user page (the SMEP/SMAP case).
        const supervisorOnUser = !user && u;
        const smepFault = smep && fetch && supervisorOnUser;
        // SMAP covers supervisor data accesses unless EFLAGS.AC overrides an explicit one.
        const smapFault = smap && !fetch && !smapOverride && supervisorOnUser;
        if (userFault || writeFault || fetchFault || smepFault || smapFault) faults |= 1 << acc;
      }
      this.permFault[index] = faults;
    }
  }

  /** KVM `update_pkru_bitmask`: which PKRU bits a data access to a user page consults. */
  private computePkMask(wp: boolean): void {
    this.pkMask.fill(0);
    if (!this.pke) return;
    for (let index = 0; index < 8; index++) {
      const write = (index & PERM_INDEX.WRITE) !== 0;
      const fetch = (index & PERM_INDEX.FETCH) !== 0;
      const user = (index & PERM_INDEX.USER) !== 0;
      // SDM 4.6.2: keys apply to data accesses to user-mode addresses only;
      // WD blocks user writes, and supervisor writes only with CR0.WP=1.
      const checkAd = !fetch;
      const checkWd = checkAd && write && (user || wp);
      this.pkMask[index * 2 + 1] = (checkAd ? 1 : 0) | (checkWd ? 2 : 0);
    }
  }
}
