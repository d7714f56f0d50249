import { Access, ACCESS_MASK, HvmmuError, type GuestMemory } from '@hvmmu/core';
import { GuestWalk } from './GuestWalk.js';
import { ACC, PERM_INDEX, PagingContext } from './PagingContext.js';
import { PFERR, PagingMode, type X86Registers } from './X86Registers.js';

const TWO_POW_32 = 0x1_0000_0000;
const TWO_POW_20 = 0x10_0000;
const TWO_POW_52 = 2 ** 52;
/** Largest page number of a 64-bit virtual address. */
export const MAX_VPN = TWO_POW_52 - 1;

// Entry bits (SDM 4.3-4.5, KVM mmu.h PT_*_MASK).
const PTE_P = 1 << 0;
const PTE_A = 1 << 5;
const PTE_D = 1 << 6;
const PTE_PS = 1 << 7;

/**
 * How often a walk restarts because an entry changed between the read and the
 * A/D update (KVM retries its cmpxchg the same way). Only aliasing entries or
 * a concurrent writer can cause it; the bound keeps a hostile writer from
 * making the walk loop.
 */
const MAX_AD_RETRIES = 4;
const WALK_FAULT = 0;
const WALK_OK = 1;
const WALK_RETRY = 2;

/**
 * The x86 guest page-table walker: KVM's `walk_addr_generic`
 * (paging_tmpl.h) for every paging mode, over guest memory given as a
 * `GuestMemory` (a VM's memslots or a raw image), entries little-endian.
 *
 * The walk is allocation-free: results go to a caller-owned `GuestWalk`,
 * masks and the permission table come from a `PagingContext` recomputed only
 * when CR0/CR4/EFER or the guest CPUID fields change. Guest tables are
 * hostile: every malformed table ends in an architected fault (or
 * `badTableGpa` / `nonCanonical`), never an exception, after at most one read
 * per level.
 */
export class GuestWalker {
  private readonly ctx = new PagingContext();
  /** Table index per level for the current walk. */
  private readonly index = new Int32Array(6);
  private readonly scratch = new GuestWalk();

  /** The precomputed masks for `regs` (recomputed only if they changed since the last call). */
  prepare(regs: X86Registers): PagingContext {
    if (!this.ctx.matches(regs)) this.ctx.update(regs);
    return this.ctx;
  }

  /**
   * Walk the guest tables for virtual page `vpn` (the full virtual address /
   * 4096; in 32-bit and PAE modes only its low 20 bits are used, as linear
   * addresses are 32 bits there) for `access` (core `Access` bits: WRITE,
   * FETCH, USER = explicit CPL-3 access, IMPLICIT = implicit supervisor
   * access; `regs.cpl === 3` also makes an explicit access a user access).
   *
   * Fills `out` and returns `out.ok`. On failure exactly one of these holds:
   * `out.nonCanonical` (#GP, no table read), `out.badTableGpa` (a table lies
   * outside guest memory; `errorCode` is the not-present #PF KVM injects
   * then), or a #PF with `out.errorCode`. With `setAccessedDirty`, a
   * successful walk sets A in every entry used and D in the leaf of a write,
   * as KVM does, skipping entries in memory that is not writable; a failed
   * walk writes nothing. Without it the walk never writes guest memory.
   * Throws `HvmmuError` only for host misuse (bad `access`/`vpn`, impossible
   * `regs.maxPhyAddr`).
   */
  walk(regs: X86Registers, mem: GuestMemory, vpn: number, access: number, out: GuestWalk, setAccessedDirty: boolean): boolean {
    if ((access >>> 0) !== access || access > ACCESS_MASK || (access & (Access.WRITE | Access.FETCH)) === (Access.WRITE | Access.FETCH)) {
      throw new HvmmuError('BAD_ARGUMENT', `invalid access ${access}: Access bits, not both WRITE and FETCH`);
    }
    if (!(vpn >= 0 && vpn <= MAX_VPN) || Math.floor(vpn) !== vpn) {
      throw new HvmmuError('BAD_ARGUMENT', `virtual page number must be an integer in 0..2^52-1, got ${vpn}`);
    }
    const ctx = this.ctx;
    if (!ctx.matches(regs)) ctx.update(regs);

    const write = (access & Access.WRITE) !== 0;
    const fetch = (access & Access.FETCH) !== 0;
    const implicit = (access & Access.IMPLICIT) !== 0;
    // SDM 4.6: implicit supervisor accesses (descriptor tables …) are supervisor accesses even at CPL 3.
    const user = !implicit && ((access & Access.USER) !== 0 || regs.cpl === 3);
    let kind = (write ? PERM_INDEX.WRITE : 0) | (fetch ? PERM_INDEX.FETCH : 0);
    // Error-code bits every #PF of this access carries (paging_tmpl.h error path).
    let pfec = (write ? PFERR.W : 0) | (fetch ? ctx.fetchPfec : 0);
    if (user) {
      kind |= PERM_INDEX.USER;
      pfec |= PFERR.U;
    } else if (!implicit && regs.rflagsAc) {
      // SDM 4.6.1: EFLAGS.AC=1 lifts SMAP for explicit supervisor accesses only.
      kind |= PERM_INDEX.SMAP_OVERRIDE;
    }

    out.ok = false;
    out.errorCode = 0;
    out.badTableGpa = false;
    out.nonCanonical = false;
    out.pkey = 0;
    const mode = ctx.mode;
    out.maxLevel = mode;
    if (mode === PagingMode.NONE) {
      // Paging off: linear = physical, 32 bits wide (SDM 3.3.6), no checks, nothing to update.
      out.level = 0;
      out.gfn = vpn & 0xfffff;
      out.pteAccess = out.grantedAccess = ACC.ALL;
      out.ok = true;
      return true;
    }
    for (let attempt = 0; ; attempt++) {
      const lastTry = attempt === MAX_AD_RETRIES;
      const result = mode === PagingMode.BITS32
        ? this.walk32(regs, mem, vpn, kind, pfec, write, out, setAccessedDirty, lastTry)
        : this.walk64(regs, mem, vpn, kind, pfec, write, out, setAccessedDirty, lastTry);
      if (result !== WALK_RETRY) return result === WALK_OK;
    }
  }

  /**
   * Debugger / introspection translation of a full virtual address: never
   * writes guest memory. `gva` is a number (negative = sign-extended upper
   * half, e.g. -4096 = 0xffff_ffff_ffff_f000) or a bigint in
   * [-2^63, 2^64). Returns the guest physical address, or -1 when the walk
   * fails (details in `out`, by default an internal scratch walk).
   */
  translateGva(regs: X86Registers, mem: GuestMemory, gva: number | bigint, access: number = Access.READ, out: GuestWalk = this.scratch): number {
    let vpn: number;
    let offset: number;
    if (typeof gva === 'bigint') {
      if (gva < -(1n << 63n) || gva >= 1n << 64n) {
        throw new HvmmuError('BAD_ARGUMENT', `virtual address ${gva} does not fit in 64 bits`);
      }
      const va = BigInt.asUintN(64, gva);
      vpn = Number(va >> 12n);
      offset = Number(va & 0xfffn);
    } else {
      if (!Number.isSafeInteger(gva)) {
        throw new HvmmuError('BAD_ARGUMENT', `virtual address ${gva} is not a safe integer; pass a bigint`);
      }
      const page = Math.floor(gva / 4096);
      offset = gva - page * 4096;
      vpn = page < 0 ? page + TWO_POW_52 : page;
    }
    return this.walk(regs, mem, vpn, access, out, false) ? out.gfn * 4096 + offset : -1;
  }

  /** 8-byte entries: PAE (from the cached PDPTEs), 4-level and 5-level. */
  private walk64(
    regs: X86Registers, mem: GuestMemory, vpn: number, kind: number, pfec: number, write: boolean,
    out: GuestWalk, setAccessedDirty: boolean, lastTry: boolean,
  ): number {
    const ctx = this.ctx;
    const index = this.index;
    const view = mem.view;
    const limit = view.byteLength - 8;
    let lo32: number;
    let level: number;
    let tableGpa: number;
    let adTop: number;
    if (ctx.mode === PagingMode.PAE) {
      lo32 = vpn & 0xfffff;
      index[1] = lo32 & 511;
      index[2] = (lo32 >>> 9) & 511;
      const slot = lo32 >>> 18;
      // The PDPTE comes from the registers loaded at CR3 load (SDM 4.4.1), not from memory.
      const pdptGpa = (regs.cr3 & 0xffffffe0) >>> 0;
      const lo = regs.pdpteLo[slot]!;
      const hi = regs.pdpteHi[slot]!;
      out.tableGfn[3] = pdptGpa >>> 12;
      out.pteGpa[3] = pdptGpa + slot * 8;
      out.pteLo[3] = lo;
      out.pteHi[3] = hi;
      out.ptAccess[3] = ACC.ALL;
      if ((lo & PTE_P) === 0) return this.fail(out, 3, pfec);
      tableGpa = (hi & 0xfffff) * TWO_POW_32 + ((lo & 0xfffff000) >>> 0);
      // PDPTEs have no A bit (bits 5..8 reserved): A/D updates start at the PD.
      level = adTop = 2;
    } else {
      lo32 = vpn >>> 0;
      const hi20 = (vpn - lo32) / TWO_POW_32;
      // SDM 3.3.7.1: bits 63:47 (63:56 with LA57) must be equal, i.e. vpn bits 51:35 (51:44).
      const top = ctx.mode === PagingMode.LONG5 ? hi20 >>> 12 : hi20 >>> 3;
      if (top !== 0 && top !== (ctx.mode === PagingMode.LONG5 ? 0xff : 0x1ffff)) {
        out.level = 0;
        out.nonCanonical = true;
        return WALK_FAULT;
      }
      index[1] = lo32 & 511;
      index[2] = (lo32 >>> 9) & 511;
      index[3] = (lo32 >>> 18) & 511;
      index[4] = ((lo32 >>> 27) | (hi20 << 5)) & 511;
      index[5] = (hi20 >>> 4) & 511;
      const cr3 = regs.cr3;
      // CR3 bits 51:12 hold the root table (SDM 4.5.2); PCID / flags below are ignored.
      tableGpa = (Math.floor(cr3 / TWO_POW_32) & 0xfffff) * TWO_POW_32 + ((cr3 & 0xfffff000) >>> 0);
      level = adTop = ctx.mode;
    }

    const rsvdLo = ctx.rsvdLo;
    const rsvdHi = ctx.rsvdHi;
    let acc: number = ACC.ALL;
    let accessed = PTE_A;
    let lo = 0;
    let hi = 0;
    for (;;) {
      const gpa = tableGpa + index[level]! * 8;
      out.tableGfn[level] = tableGpa / 4096;
      out.pteGpa[level] = gpa;
      const off = mem.resolve(gpa, false);
      if (off < 0 || off > limit) return this.failBadTable(out, level, pfec);
      lo = view.getUint32(off, true);
      hi = view.getUint32(off + 4, true);
      out.pteLo[level] = lo;
      out.pteHi[level] = hi;
      out.ptAccess[level] = acc;
      if ((lo & PTE_P) === 0) return this.fail(out, level, pfec);
      const r = ((lo >>> 4) & 8) | level; // bit 7 selects the large-page mask
      if (((lo & rsvdLo[r]!) | (hi & rsvdHi[r]!)) !== 0) return this.fail(out, level, pfec | PFERR.P | PFERR.RSVD);
      // W and U are ANDed; XD (bit 63) inverted into X so it ANDs too.
      acc &= (lo & (ACC.WRITE | ACC.USER)) | (~hi >>> 31);
      accessed &= lo;
      // After the reserved check, PS can only be set where it means a leaf.
      if (level === 1 || (lo & PTE_PS) !== 0) break;
      tableGpa = (hi & 0xfffff) * TWO_POW_32 + ((lo & 0xfffff000) >>> 0);
      level--;
    }

    out.level = level;
    out.grantedAccess = acc;
    let code = PFERR.P;
    let fault = (ctx.permFault[kind]! >>> acc) & 1;
    if (ctx.pke) {
      // SDM 4.6.2: the key is in leaf bits 62:59.
      const pkey = (hi >>> 27) & 15;
      out.pkey = pkey;
      if (((regs.pkru >>> (pkey * 2)) & 3 & ctx.pkMask[((kind & 7) << 1) | (acc >>> 2)]!) !== 0) {
        fault = 1;
        code |= PFERR.PK;
      }
    }
    if (fault !== 0) {
      out.pteAccess = acc;
      return this.fail(out, level, pfec | code);
    }

    let gfn = (hi & 0xfffff) * TWO_POW_20 + (lo >>> 12);
    if (level > 1) {
      const mask = level === 2 ? 0x1ff : 0x3ffff;
      gfn = gfn - (gfn & mask) + (lo32 & mask);
    }
    out.gfn = gfn;
    return this.finish(mem, out, acc, accessed, lo, write, adTop, level, setAccessedDirty, lastTry);
  }

  /** 4-byte entries: 32-bit paging with 4 MiB PSE-36 pages. */
  private walk32(
    regs: X86Registers, mem: GuestMemory, vpn: number, kind: number, pfec: number, write: boolean,
    out: GuestWalk, setAccessedDirty: boolean, lastTry: boolean,
  ): number {
    const ctx = this.ctx;
    const view = mem.view;
    const limit = view.byteLength - 4;
    const lo20 = vpn & 0xfffff;
    const index = this.index;
    index[1] = lo20 & 1023;
    index[2] = lo20 >>> 10;
    const pse = ctx.pse;
    const rsvdLo = ctx.rsvdLo;
    let tableGpa = (regs.cr3 & 0xfffff000) >>> 0;
    let level = 2;
    let acc: number = ACC.ALL;
    let accessed = PTE_A;
    let lo = 0;
    for (;;) {
      const gpa = tableGpa + index[level]! * 4;
      out.tableGfn[level] = tableGpa >>> 12;
      out.pteGpa[level] = gpa;
      const off = mem.resolve(gpa, false);
      if (off < 0 || off > limit) return this.failBadTable(out, level, pfec);
      lo = view.getUint32(off, true);
      out.pteLo[level] = lo;
      out.pteHi[level] = 0;
      out.ptAccess[level] = acc;
      if ((lo & PTE_P) === 0) return this.fail(out, level, pfec);
      // SDM 4.3: PDE bit 7 means a 4 MiB page only with CR4.PSE=1; otherwise it is ignored.
      const large = level === 2 && pse && (lo & PTE_PS) !== 0;
      if ((lo & rsvdLo[large ? 8 | level : level]!) !== 0) return this.fail(out, level, pfec | PFERR.P | PFERR.RSVD);
      // No XD bit in 4-byte entries: everything is executable.
      acc &= (lo & (ACC.WRITE | ACC.USER)) | ACC.EXEC;
      accessed &= lo;
      if (level === 1 || large) break;
      tableGpa = (lo & 0xfffff000) >>> 0;
      level--;
    }

    out.level = level;
    out.grantedAccess = acc;
    if (((ctx.permFault[kind]! >>> acc) & 1) !== 0) {
      out.pteAccess = acc;
      return this.fail(out, level, pfec | PFERR.P);
    }
    // 4 MiB page: PA 31:22 from bits 31:22, PA 35:32 from bits 16:13 (PSE-36, KVM pse36_gfn_delta).
    out.gfn = level === 1
      ? lo >>> 12
      : (lo >>> 22) * 1024 + (lo20 & 1023) + ((lo >>> 13) & 15) * TWO_POW_20;
    return this.finish(mem, out, acc, accessed, lo, write, 2, level, setAccessedDirty, lastTry);
  }

  /** Successful walk: KVM's clean-page write protection and the A/D update. */
  private finish(
    mem: GuestMemory, out: GuestWalk, acc: number, accessed: number, leafLo: number, write: boolean,
    adTop: number, level: number, setAccessedDirty: boolean, lastTry: boolean,
  ): number {
    if (write) {
      // A write also needs the leaf's D bit (folded onto A, as KVM does).
      accessed &= leafLo >>> 1;
      out.pteAccess = acc;
    } else {
      // paging_tmpl.h protect_clean_gpte: a clean leaf is mapped read-only so the first write sets D.
      out.pteAccess = (leafLo & PTE_D) !== 0 ? acc : acc & ~ACC.WRITE;
    }
    if ((accessed & PTE_A) === 0 && setAccessedDirty && !this.setAccessedDirty(mem, out, adTop, level, write, lastTry)) {
      return WALK_RETRY;
    }
    out.ok = true;
    return WALK_OK;
  }

  /**
   * Set A in every entry of the walk and D in the leaf of a write (SDM 4.8,
   * KVM update_accessed_dirty_bits). Only the low half holds A and D, so only
   * it is written. An entry in memory that is not writable is skipped, as
   * KVM skips read-only slots. Returns false (walk again) if an entry no
   * longer holds the value the walk read — KVM's failed cmpxchg.
   */
  private setAccessedDirty(mem: GuestMemory, out: GuestWalk, top: number, leaf: number, write: boolean, force: boolean): boolean {
    const view = mem.view;
    const limit = view.byteLength - 4;
    for (let level = top; level >= leaf; level--) {
      const lo = out.pteLo[level]!;
      const set = PTE_A | (write && level === leaf ? PTE_D : 0);
      if ((lo & set) === set) continue;
      const off = mem.resolve(out.pteGpa[level]!, true);
      if (off < 0 || off > limit) continue;
      const current = view.getUint32(off, true);
      if (current !== lo && !force) return false;
      // After MAX_AD_RETRIES the bits are ORed into whatever the entry holds now.
      const updated = (current | set) >>> 0;
      view.setUint32(off, updated, true);
      out.pteLo[level] = updated;
    }
    return true;
  }

  private fail(out: GuestWalk, level: number, errorCode: number): number {
    out.level = level;
    out.errorCode = errorCode;
    return WALK_FAULT;
  }

  /** A table outside guest memory: KVM injects a not-present #PF (paging_tmpl.h `goto error`). */
  private failBadTable(out: GuestWalk, level: number, pfec: number): number {
    out.level = level;
    out.badTableGpa = true;
    out.errorCode = pfec;
    return WALK_FAULT;
  }
}
