import { Access, ACCESS_MASK, FlatGuestMemory, HvmmuError, type GuestMemory } from '@hvmmu/core';
import { GuestPhysMemory } from '@hvmmu/core';
import { GuestWalk } from './GuestWalk.js';
import { ACC, ACCESS_KEY_AC, ACCESS_KEY_CPL3, PagingContext } from './PagingContext.js';
import { PFERR, PagingMode, type X86Registers } from './X86Registers.js';

const TWO_POW_32 = 0x1_0000_0000;
const NO_FRAMES = new Int32Array(0);
const TWO_POW_20 = 0x10_0000;
const TWO_POW_22 = 0x40_0000;
const TWO_POW_27 = 0x800_0000;
const TWO_POW_52 = 2 ** 52;
/** Typed arrays read in host byte order; the fast path's `Uint32Array` reads need it little-endian. */
const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
/** Largest page number of a 64-bit virtual address. */
export const MAX_VPN = TWO_POW_52 - 1;

// Entry bits (SDM 4.3-4.5, KVM mmu.h PT_*_MASK).
const PTE_P = 1 << 0;
const PTE_A = 1 << 5;
const PTE_D = 1 << 6;
const PTE_PS = 1 << 7;
const ACC_WU = ACC.WRITE | ACC.USER;
const WRITE_AND_FETCH = Access.WRITE | Access.FETCH;

/**
 * The x86 guest page-table walker: KVM's `walk_addr_generic`
 * (paging_tmpl.h) for every paging mode, over guest memory given as a
 * `GuestMemory` (a VM's memslots or a raw image), entries little-endian.
 *
 * The walk is allocation-free: results go to a caller-owned `GuestWalk`,
 * masks and the permission table come from a `PagingContext` recomputed only
 * when CR0/CR4/EFER or the guest CPUID fields change. Guest tables are
 * hostile: every malformed table ends in an architected fault (or
 * `badTableGpa` / `nonCanonical`), never an exception, after at most two
 * reads per level (the long-mode fast path, then the general walk) and one
 * A/D write per level.
 */
export class GuestWalker {
  private readonly ctx = new PagingContext();
  private readonly scratch = new GuestWalk();
  /** CR3 value the cached root table address was computed from. */
  private rootCr3 = -1;
  private rootGpa = 0;
  /** `rootGpa / 4` when the root table lies below 4 GiB (the fast path's word index), else -1. */
  private rootWord = -1;
  /** The guest memory view `words` was made for. */
  private wordsView: DataView | null = null;
  /** `wordsView`'s bytes as little-endian uint32 words, or null when they cannot be (see `bindWords`). */
  private words: Uint32Array | null = null;
  /**
   * The memslot the current fast walk last read a table from, as plain
   * fields (`slotPages` 0: none yet). Reset at the start of every fast walk,
   * so it never outlives a walk, during which no slot changes.
   */
  private slotBase = 0;
  private slotPages = 0;
  private slotFrames: Int32Array = NO_FRAMES;
  /**
   * Per level, the last table the fast walk read there over memslot memory
   * (its word index, -1: none) and the host word index its page starts at:
   * consecutive walks share their upper tables, and reusing the host frame
   * takes the frame lookup off each level's chain of dependent loads. Valid
   * for one `GuestPhysMemory` while its memslots' generation and
   * invalidation sequence stay the same (a frame is only replaced or freed
   * by a change that bumps one of them); cleared otherwise.
   */
  private readonly tableKey = new Int32Array(6).fill(-1);
  private readonly tableHost = new Int32Array(6);
  private tablePhys: GuestPhysMemory | null = null;
  private tableGen = -1;
  private tableSeq = -1;
  /** The last successful `walkLeaf`'s pte_access (ACC bits) and protection key. */
  leafAccess = 0;
  leafPkey = 0;

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
    checkWalkArgs(vpn, access);
    const ctx = this.ctx;
    if (!ctx.matches(regs)) ctx.update(regs);
    const mode = ctx.mode;
    out.maxLevel = mode;
    // The fast path prepares what it needs itself: this function stays small enough for a
    // caller's compiler to inline it (the MMU's fault path does).
    if (mode >= PagingMode.LONG4 && this.walkLongFast(regs, mem, vpn, access, out, setAccessedDirty)) return true;
    const key = accessKey(regs, access);
    return this.walkGeneral(regs, mem, vpn, ctx.accessKind[key]!, ctx.accessPfec[key]!, (access & Access.WRITE) !== 0, out, setAccessedDirty);
  }

  /**
   * The common case of long mode, tried first: a 4 KiB page reached through
   * valid entries in tables below 4 GiB, nothing left to set in A/D, the
   * access allowed. Returns false, having stored nothing, for anything else
   * (a fault, a large page, an A/D update, a table above 4 GiB or in
   * unaligned host memory, a non-canonical address); the general walk then
   * starts over and handles it, the reads it repeats being idempotent.
   *
   * Addresses are kept as uint32 word indices (gpa / 4) so every step is
   * int32 arithmetic, and entries are read through a `Uint32Array` of the
   * guest memory's bytes (little-endian host, see `bindWords`). The reads stay
   * in locals and nothing is stored until the walk is known to succeed:
   * stores between the dependent reads cost more than the reads.
   */
  private walkLongFast(regs: X86Registers, mem: GuestMemory, vpn: number, access: number, out: GuestWalk, setAccessedDirty: boolean): boolean {
    const ctx = this.ctx;
    if (regs.cr3 !== this.rootCr3) this.setRoot(regs.cr3);
    const view = mem.view;
    // By identity only: reading a DataView's byteLength costs more than a level of the walk.
    if (view !== this.wordsView) this.bindWords(view);
    const words = this.words;
    if (words === null || this.rootWord < 0) return false;
    const kind = ctx.accessKind[accessKey(regs, access)]!;
    const write = (access & Access.WRITE) !== 0;
    // A flat image maps gpa to the same offset (FlatGuestMemory's contract):
    // a bounds check replaces the resolve call.
    const flat = mem.constructor === FlatGuestMemory;
    // A VM's memslots: tables usually share a slot, looked up once per walk (see `slotWord`).
    const phys = mem.constructor === GuestPhysMemory ? (mem as GuestPhysMemory) : null;
    this.slotPages = 0;
    if (phys !== null) this.checkTableCache(phys);
    // Word index of the last 8-byte entry the words can hold.
    const lastWord = words.length - 2;
    const rsvdHi = ctx.entryRsvdHi;
    // A non-leaf entry here must also have a zero high address half: its table lies below 4 GiB.
    const tableRsvdHi = rsvdHi | 0xfffff;
    const topRsvdLo = ctx.topRsvdLo | PTE_PS;
    // vpn bits 26:0 index levels 1..3, bits 51:27 levels 4..5.
    const vaLow = vpn & 0x7ffffff;
    const vaHigh = vpn <= 0x7fffffff ? vpn >>> 27 : (vpn - vaLow) / TWO_POW_27;
    const long5 = ctx.mode === PagingMode.LONG5;
    let acc: number = ACC.ALL;
    // tN: word index (gpa / 4) of the table read at level N; gN: of the entry read there.
    let g5 = 0;
    let lo5 = PTE_A;
    let hi5 = 0;
    let t4 = this.rootWord;
    if (long5) {
      // SDM 3.3.7.1: VA bits 63:56 equal (vpn bits 51:44).
      if (vaHigh >>> 17 !== 0 && vaHigh >>> 17 !== 0xff) return false;
      g5 = t4 + (((vaHigh >>> 9) & 511) << 1);
      // The PML5 table is the root (t4 until the PML5E replaces it).
      const w5 = flat ? g5 : phys !== null ? this.tableWord(phys, t4, g5, 5) : hostWord(mem, g5);
      if (w5 < 0 || w5 > lastWord) return false;
      lo5 = words[w5]!;
      hi5 = words[w5 + 1]!;
      if (((~lo5 & PTE_P) | (lo5 & topRsvdLo) | (hi5 & tableRsvdHi)) !== 0) return false;
      acc &= (lo5 & ACC_WU) | (~hi5 >>> 31);
      t4 = (lo5 >>> 12) << 10;
    } else if (vaHigh >>> 8 !== 0 && vaHigh >>> 8 !== 0x1ffff) {
      // SDM 3.3.7.1: VA bits 63:47 equal (vpn bits 51:35).
      return false;
    }
    const g4 = t4 + ((vaHigh & 511) << 1);
    const w4 = flat ? g4 : phys !== null ? this.tableWord(phys, t4, g4, 4) : hostWord(mem, g4);
    if (w4 < 0 || w4 > lastWord) return false;
    const lo4 = words[w4]!;
    const hi4 = words[w4 + 1]!;
    if (((~lo4 & PTE_P) | (lo4 & topRsvdLo) | (hi4 & tableRsvdHi)) !== 0) return false;
    acc &= (lo4 & ACC_WU) | (~hi4 >>> 31);

    const t3 = (lo4 >>> 12) << 10;
    const g3 = t3 + ((vaLow >>> 18) << 1);
    const w3 = flat ? g3 : phys !== null ? this.tableWord(phys, t3, g3, 3) : hostWord(mem, g3);
    if (w3 < 0 || w3 > lastWord) return false;
    const lo3 = words[w3]!;
    const hi3 = words[w3 + 1]!;
    if ((((lo3 & (PTE_P | PTE_PS)) ^ PTE_P) | (hi3 & tableRsvdHi)) !== 0) return false;
    acc &= (lo3 & ACC_WU) | (~hi3 >>> 31);

    const t2 = (lo3 >>> 12) << 10;
    const g2 = t2 + (((vaLow >>> 9) & 511) << 1);
    const w2 = flat ? g2 : phys !== null ? this.tableWord(phys, t2, g2, 2) : hostWord(mem, g2);
    if (w2 < 0 || w2 > lastWord) return false;
    const lo2 = words[w2]!;
    const hi2 = words[w2 + 1]!;
    if ((((lo2 & (PTE_P | PTE_PS)) ^ PTE_P) | (hi2 & tableRsvdHi)) !== 0) return false;
    acc &= (lo2 & ACC_WU) | (~hi2 >>> 31);

    const t1 = (lo2 >>> 12) << 10;
    const g1 = t1 + ((vaLow & 511) << 1);
    const w1 = flat ? g1 : phys !== null ? this.tableWord(phys, t1, g1, 1) : hostWord(mem, g1);
    if (w1 < 0 || w1 > lastWord) return false;
    const lo = words[w1]!;
    const hi = words[w1 + 1]!;
    if (((~lo & PTE_P) | (hi & rsvdHi)) !== 0) return false;
    acc &= (lo & ACC_WU) | (~hi >>> 31);

    // A in every entry (D in the leaf for a write) already, unless A/D are not to be written at all.
    const accessed = lo5 & lo4 & lo3 & lo2 & lo & (write ? lo >>> 1 : PTE_A);
    if ((accessed & PTE_A) === 0 && setAccessedDirty) return false;
    const pkey = allowedKey(ctx, regs, kind, acc, hi);
    if (pkey < 0) return false;

    const pteGpa = out.pteGpa;
    const pteLo = out.pteLo;
    const pteHi = out.pteHi;
    if (long5) {
      pteGpa[5] = g5 * 4;
      pteLo[5] = lo5;
      pteHi[5] = hi5;
    }
    pteGpa[4] = g4 * 4;
    pteLo[4] = lo4;
    pteHi[4] = hi4;
    pteGpa[3] = g3 * 4;
    pteLo[3] = lo3;
    pteHi[3] = hi3;
    pteGpa[2] = g2 * 4;
    pteLo[2] = lo2;
    pteHi[2] = hi2;
    pteGpa[1] = g1 * 4;
    pteLo[1] = lo;
    pteHi[1] = hi;
    out.deferTableGfnAndPtAccess(long5 ? 5 : 4);
    out.level = 1;
    out.gfn = leafGfn(lo, hi);
    out.pkey = pkey;
    out.grantedAccess = acc;
    // paging_tmpl.h protect_clean_gpte: a clean leaf is mapped read-only so the first write sets D.
    out.pteAccess = write || (lo & PTE_D) !== 0 ? acc : acc & ~ACC.WRITE;
    return this.succeed(out);
  }

  /**
   * The last step of a long-mode walk whose upper levels are already known:
   * the 4 KiB leaf for `vpn` in the page table at `tableGfn`, given
   * `ptAccess`, the ACC bits the levels above grant (KVM pt_access). This is
   * what KVM itself relies on when it rebuilds a leaf from a shadow page
   * alone (FNAME(sync_spte), FNAME(prefetch_gpte): the page's role access and
   * the level-1 gpte). The caller must know that the upper entries are still
   * what a full walk would read, with A set; the shadow MMU knows it for a
   * table reached through an intact shadow path, because every upper-level
   * table it shadows is write-protected and a write to one zaps the link.
   *
   * Returns the leaf's gfn, with its ACC bits as KVM's pte_access (W taken
   * from a clean leaf on a non-write access, as in `GuestWalk.pteAccess`) in
   * `leafAccess` and its protection key (0 when keys do not apply) in
   * `leafPkey`, only in the fast walk's case: a present leaf with A set (and
   * D for a write), no reserved bit, the access allowed. Returns -1 for
   * anything else (including a table at or above 4 GiB), having written
   * nothing to guest memory; a full `walk` then gives the exact outcome.
   */
  walkLeaf(regs: X86Registers, mem: GuestMemory, vpn: number, access: number, tableGfn: number, ptAccess: number): number {
    checkWalkArgs(vpn, access);
    const ctx = this.ctx;
    if (!ctx.matches(regs)) ctx.update(regs);
    // Word indices are int32: the table must lie below 4 GiB, as in the fast walk.
    if (ctx.mode < PagingMode.LONG4 || !(tableGfn >= 0 && tableGfn < TWO_POW_22)) return -1;
    const view = mem.view;
    if (view !== this.wordsView) this.bindWords(view);
    const words = this.words;
    if (words === null) return -1;
    const phys = mem.constructor === GuestPhysMemory ? (mem as GuestPhysMemory) : null;
    this.slotPages = 0;
    if (phys !== null) this.checkTableCache(phys);
    const t1 = tableGfn << 10;
    const g1 = t1 + ((vpn & 511) << 1);
    const w1 = mem.constructor === FlatGuestMemory ? g1 : phys !== null ? this.tableWord(phys, t1, g1, 1) : hostWord(mem, g1);
    if (w1 < 0 || w1 > words.length - 2) return -1;
    const lo = words[w1]!;
    const hi = words[w1 + 1]!;
    if (((~lo & PTE_P) | (hi & ctx.entryRsvdHi)) !== 0) return -1;
    const write = (access & Access.WRITE) !== 0;
    if ((lo & (write ? lo >>> 1 : PTE_A) & PTE_A) === 0) return -1;
    const acc = ptAccess & ((lo & ACC_WU) | (~hi >>> 31));
    const kind = ctx.accessKind[accessKey(regs, access)]!;
    const pkey = allowedKey(ctx, regs, kind, acc, hi);
    if (pkey < 0) return -1;
    this.leafAccess = write || (lo & PTE_D) !== 0 ? acc : acc & ~ACC.WRITE;
    this.leafPkey = pkey;
    return leafGfn(lo, hi);
  }

  /**
   * The general walk, every mode and every outcome: KVM walk_addr_generic's
   * loop for 8-byte entries (PAE from the cached PDPTEs, 4-level, 5-level),
   * `walk32` for 4-byte entries, identity with paging off.
   */
  private walkGeneral(
    regs: X86Registers,
    mem: GuestMemory,
    vpn: number,
    kind: number,
    pfec: number,
    write: boolean,
    out: GuestWalk,
    setAccessedDirty: boolean,
  ): boolean {
    const ctx = this.ctx;
    const mode = ctx.mode;
    // vaLow / vaHigh: vpn bits 26:0 (levels 1..3) and 51:27 (levels 4..5), both exact uint32s.
    let vaLow: number;
    let vaHigh: number;
    let table: number;
    let level: number;
    if (mode >= PagingMode.LONG4) {
      vaLow = vpn & 0x7ffffff;
      vaHigh = (vpn - vaLow) / TWO_POW_27;
      // SDM 3.3.7.1: VA bits 63:47 (63:56 with LA57) must be equal, i.e. vpn bits 51:35 (51:44).
      const top = mode === PagingMode.LONG5 ? vaHigh >>> 17 : vaHigh >>> 8;
      if (top !== 0 && top !== (mode === PagingMode.LONG5 ? 0xff : 0x1ffff)) return this.failNonCanonical(out);
      if (regs.cr3 !== this.rootCr3) this.setRoot(regs.cr3);
      table = this.rootGpa;
      level = mode;
    } else if (mode === PagingMode.PAE) {
      // Linear addresses are 32 bits outside long mode; the walk starts at
      // the PDPTE cached at CR3 load (SDM 4.4.1), not read from memory.
      vaLow = vpn & 0xfffff;
      vaHigh = 0;
      const slot = vaLow >>> 18;
      const pdptGpa = (regs.cr3 & 0xffffffe0) >>> 0;
      const pdpteLo = regs.pdpteLo[slot]!;
      const pdpteHi = regs.pdpteHi[slot]!;
      out.tableGfn[3] = pdptGpa >>> 12;
      out.pteGpa[3] = pdptGpa + slot * 8;
      out.pteLo[3] = pdpteLo;
      out.pteHi[3] = pdpteHi;
      out.ptAccess[3] = ACC.ALL;
      // Only P matters: reserved bits were refused at load, and PDPTEs carry no R/W, U/S or XD.
      if ((pdpteLo & PTE_P) === 0) return this.failEntry(out, 3, pdpteLo, pfec);
      table = (pdpteHi & 0xfffff) * TWO_POW_32 + ((pdpteLo & 0xfffff000) >>> 0);
      level = 2;
    } else if (mode === PagingMode.BITS32) {
      return this.walk32(regs, mem, vpn, kind, pfec, write, out, setAccessedDirty);
    } else {
      return this.walkUnpaged(vpn, out);
    }
    // PDPTEs have no A bit (bits 5..8 reserved): in PAE mode A/D updates start at the PD.
    const adTop = level;

    const view = mem.view;
    const limit = view.byteLength - 8;
    const flat = mem.constructor === FlatGuestMemory;
    const rsvdHi = ctx.entryRsvdHi;
    const topRsvdLo = ctx.topRsvdLo;
    const tableGfn = out.tableGfn;
    const pteGpa = out.pteGpa;
    const pteLo = out.pteLo;
    const pteHi = out.pteHi;
    const ptAccess = out.ptAccess;
    let acc: number = ACC.ALL;
    let accessed = PTE_A;
    let lo = 0;
    let hi = 0;
    for (;;) {
      const index = level <= 3 ? (vaLow >>> (9 * level - 9)) & 511 : (vaHigh >>> (9 * level - 36)) & 511;
      const gpa = table + index * 8;
      tableGfn[level] = table / 4096;
      pteGpa[level] = gpa;
      ptAccess[level] = acc;
      const off = flat ? (gpa <= limit ? gpa : -1) : mem.resolve(gpa, false);
      if (off < 0 || off > limit) return this.failBadTable(out, level, pfec);
      lo = pteLo[level] = view.getUint32(off, true);
      hi = pteHi[level] = view.getUint32(off + 4, true);
      if ((lo & PTE_P) === 0 || (hi & rsvdHi) !== 0) return this.failEntry(out, level, lo, pfec);
      // W and U are ANDed over levels; XD (bit 63) is inverted into X so it ANDs too (KVM walk_nx_mask).
      acc &= (lo & ACC_WU) | (~hi >>> 31);
      accessed &= lo;
      if (level === 1) break;
      if ((lo & PTE_PS) !== 0) {
        // A large leaf, or PS where it is reserved (PML4E/PML5E; PDPTE without PDPE1GB).
        if ((lo & ctx.largeRsvdLo[level]!) !== 0) return this.failEntry(out, level, lo, pfec);
        break;
      }
      // AMD reserves bit 8 of PML4Es and PML5Es (KVM nonleaf_bit8_rsvd).
      if ((lo & topRsvdLo) !== 0 && level >= 4) return this.failEntry(out, level, lo, pfec);
      table = (hi & 0xfffff) * TWO_POW_32 + ((lo & 0xfffff000) >>> 0);
      level--;
    }

    out.level = level;
    out.grantedAccess = acc;
    let code = PFERR.P;
    let fault = (ctx.permFault[kind]! >>> acc) & 1;
    let pkey = 0;
    if (ctx.pke) {
      // SDM 4.6.2: the key is in leaf bits 62:59; PKRU is consulted for data accesses to user pages.
      pkey = (hi >>> 27) & 15;
      if (((regs.pkru >>> (pkey * 2)) & 3 & ctx.pkMask[((kind & 7) << 1) | (acc >>> 2)]!) !== 0) {
        fault = 1;
        code |= PFERR.PK;
      }
    }
    out.pkey = pkey;
    if (fault !== 0) {
      out.pteAccess = acc;
      return this.fail(out, level, pfec | code);
    }
    let gfn = (hi & 0xfffff) * TWO_POW_20 + (lo >>> 12);
    if (level > 1) {
      // Large leaf: the address bits below the page size come from the VA.
      const mask = level === 2 ? 0x1ff : 0x3ffff;
      gfn = gfn - (gfn & mask) + (vaLow & mask);
    }
    out.gfn = gfn;
    return this.finish(mem, out, acc, accessed, lo, write, adTop, level, setAccessedDirty);
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

  /** Cache the root table address for a CR3 value: bits 51:12 (SDM 4.5.2; PCID and flags below are ignored). */
  private setRoot(cr3: number): void {
    this.rootCr3 = cr3;
    this.rootGpa = (Math.floor(cr3 / TWO_POW_32) & 0xfffff) * TWO_POW_32 + ((cr3 & 0xfffff000) >>> 0);
    this.rootWord = this.rootGpa < TWO_POW_32 ? this.rootGpa / 4 : -1;
  }

  /**
   * View `view`'s bytes as uint32 words for the fast path. A typed array
   * reads in host byte order, so this is only done on a little-endian host
   * (guest entries are little-endian), when the bytes start on a 4-byte
   * boundary, and when the buffer cannot be resized (the words are bound to
   * the view once, not re-measured per walk; a detached buffer leaves them
   * empty, which the fast path's bounds check refuses). Otherwise `words` is
   * null and every walk takes the general, DataView-based path.
   */
  private bindWords(view: DataView): void {
    const buffer = view.buffer;
    const fixedLength = Reflect.get(buffer, 'resizable') !== true && Reflect.get(buffer, 'growable') !== true;
    this.wordsView = view;
    this.tableKey.fill(-1);
    this.words =
      HOST_LITTLE_ENDIAN && fixedLength && view.byteOffset % 4 === 0 ? new Uint32Array(buffer, view.byteOffset, Math.floor(view.byteLength / 4)) : null;
  }

  private walk32(
    regs: X86Registers,
    mem: GuestMemory,
    vpn: number,
    kind: number,
    pfec: number,
    write: boolean,
    out: GuestWalk,
    setAccessedDirty: boolean,
  ): boolean {
    const ctx = this.ctx;
    const view = mem.view;
    const limit = view.byteLength - 4;
    const va20 = vpn & 0xfffff;
    let table = (regs.cr3 & 0xfffff000) >>> 0;
    let acc: number = ACC.ALL;
    let accessed = PTE_A;
    let level = 2;
    let off = this.entry32(mem, out, 2, table, va20 >>> 10, acc, limit);
    if (off < 0) return this.failBadTable(out, 2, pfec);
    let lo = view.getUint32(off, true);
    out.pteLo[2] = lo;
    if ((lo & PTE_P) === 0) return this.failEntry(out, 2, lo, pfec);
    // No XD bit in 4-byte entries: everything is executable.
    acc &= (lo & ACC_WU) | ACC.EXEC;
    accessed &= lo;
    // SDM 4.3: PDE bit 7 means a 4 MiB page only with CR4.PSE=1; otherwise it is ignored.
    if ((lo & PTE_PS) !== 0 && ctx.pse) {
      if ((lo & ctx.largeRsvdLo[2]!) !== 0) return this.fail(out, 2, pfec | PFERR.P | PFERR.RSVD);
    } else {
      table = (lo & 0xfffff000) >>> 0;
      level = 1;
      off = this.entry32(mem, out, 1, table, va20 & 1023, acc, limit);
      if (off < 0) return this.failBadTable(out, 1, pfec);
      lo = out.pteLo[1] = view.getUint32(off, true);
      if ((lo & PTE_P) === 0) return this.failEntry(out, 1, lo, pfec);
      acc &= (lo & ACC_WU) | ACC.EXEC;
      accessed &= lo;
    }

    out.level = level;
    out.grantedAccess = acc;
    out.pkey = 0;
    if (((ctx.permFault[kind]! >>> acc) & 1) !== 0) {
      out.pteAccess = acc;
      return this.fail(out, level, pfec | PFERR.P);
    }
    // 4 MiB page: PA 31:22 from bits 31:22, PA 35:32 from bits 16:13 (PSE-36, KVM pse36_gfn_delta).
    out.gfn = level === 1 ? lo >>> 12 : (lo >>> 22) * 1024 + (va20 & 1023) + ((lo >>> 13) & 15) * TWO_POW_20;
    return this.finish(mem, out, acc, accessed, lo, write, 2, level, setAccessedDirty);
  }

  private entry32(mem: GuestMemory, out: GuestWalk, level: number, table: number, index: number, acc: number, limit: number): number {
    const gpa = table + index * 4;
    out.tableGfn[level] = table / 4096;
    out.pteGpa[level] = gpa;
    out.ptAccess[level] = acc;
    out.pteHi[level] = 0;
    const off = mem.resolve(gpa, false);
    return off <= limit ? off : -1;
  }

  /** Paging off: linear = physical, 32 bits wide (SDM 3.3.6); no checks, nothing to update. */
  private walkUnpaged(vpn: number, out: GuestWalk): boolean {
    out.level = 0;
    out.gfn = vpn & 0xfffff;
    out.pkey = 0;
    out.pteAccess = out.grantedAccess = ACC.ALL;
    return this.succeed(out);
  }

  /** Successful walk: KVM's clean-page write protection and the A/D update. */
  private finish(
    mem: GuestMemory,
    out: GuestWalk,
    acc: number,
    accessed: number,
    leafLo: number,
    write: boolean,
    adTop: number,
    level: number,
    setAccessedDirty: boolean,
  ): boolean {
    if (write) {
      // A write also needs the leaf's D bit (folded onto A, as KVM does).
      accessed &= leafLo >>> 1;
      out.pteAccess = acc;
    } else {
      // paging_tmpl.h protect_clean_gpte: a clean leaf is mapped read-only so the first write sets D.
      out.pteAccess = (leafLo & PTE_D) !== 0 ? acc : acc & ~ACC.WRITE;
    }
    if ((accessed & PTE_A) === 0 && setAccessedDirty) this.setAccessedDirty(mem, out, adTop, level, write);
    return this.succeed(out);
  }

  /**
   * Set A in every entry of the walk and D in the leaf of a write (SDM 4.8,
   * KVM update_accessed_dirty_bits). Each update is a read-modify-write of
   * the entry's low half (A and D live there), ORing the bits into what the
   * entry holds now, as the processor's locked update does; an entry used at
   * two levels (a self-referencing table) thus ends up with both updates. An
   * entry in memory that is not writable is skipped, as KVM skips read-only
   * slots.
   */
  private setAccessedDirty(mem: GuestMemory, out: GuestWalk, top: number, leaf: number, write: boolean): void {
    const view = mem.view;
    const limit = view.byteLength - 4;
    for (let level = top; level >= leaf; level--) {
      const lo = out.pteLo[level]!;
      const set = PTE_A | (write && level === leaf ? PTE_D : 0);
      if ((lo & set) === set) continue;
      const off = mem.resolve(out.pteGpa[level]!, true);
      if (off < 0 || off > limit) continue;
      const updated = (view.getUint32(off, true) | set) >>> 0;
      view.setUint32(off, updated, true);
      out.pteLo[level] = updated;
    }
  }

  private succeed(out: GuestWalk): boolean {
    out.ok = true;
    out.errorCode = 0;
    out.badTableGpa = false;
    out.nonCanonical = false;
    return true;
  }

  private fail(out: GuestWalk, level: number, errorCode: number): boolean {
    out.ok = false;
    out.level = level;
    out.errorCode = errorCode;
    out.badTableGpa = false;
    out.nonCanonical = false;
    return false;
  }

  /** A not-present entry (#PF, P=0) or a present one with reserved bits (#PF, P=1, RSVD=1). */
  private failEntry(out: GuestWalk, level: number, lo: number, pfec: number): boolean {
    out.pkey = 0;
    return this.fail(out, level, (lo & PTE_P) === 0 ? pfec : pfec | PFERR.P | PFERR.RSVD);
  }

  /** A table outside guest memory: KVM injects a not-present #PF (paging_tmpl.h `goto error`). */
  private failBadTable(out: GuestWalk, level: number, pfec: number): boolean {
    out.ok = false;
    out.level = level;
    out.errorCode = pfec;
    out.pkey = 0;
    out.badTableGpa = true;
    out.nonCanonical = false;
    return false;
  }

  /** Forget the remembered table frames unless they were taken under `phys`'s current memslots (see `tableKey`). */
  private checkTableCache(phys: GuestPhysMemory): void {
    if (phys !== this.tablePhys || phys.memslots.generation !== this.tableGen || phys.memslots.invalidationSeq !== this.tableSeq) {
      this.tablePhys = phys;
      this.tableGen = phys.memslots.generation;
      this.tableSeq = phys.memslots.invalidationSeq;
      this.tableKey.fill(-1);
    }
  }

  /**
   * `hostWord` for memslot-backed memory, for entry `g` of the table at word
   * `t` (below 4 GiB: `g` < 2^30 + 2^10) read at `level`: the table this
   * level read last is reused (see `tableKey`); another table page in the
   * walk's cached slot with its own host frame is indexed directly and
   * remembered; any other page goes to the slot lookup or to `resolve`, so
   * the result is always `hostWord`'s.
   */
  private tableWord(phys: GuestPhysMemory, t: number, g: number, level: number): number {
    // Kept tiny so every level of the fast walk inlines it; the rest is a call on a new table.
    return t === this.tableKey[level] ? this.tableHost[level]! + (g & 1023) : this.lookUpTableWord(phys, t, g, level);
  }

  private lookUpTableWord(phys: GuestPhysMemory, t: number, g: number, level: number): number {
    const gfn = g >>> 10;
    let index = gfn - this.slotBase;
    if (index < 0 || index >= this.slotPages) {
      const slot = phys.readSlot(gfn);
      if (slot === undefined) return -1;
      this.slotBase = slot.baseGfn;
      this.slotPages = slot.npages;
      this.slotFrames = slot.frames;
      index = gfn - slot.baseGfn;
    }
    const hfn = this.slotFrames[index]!;
    if (hfn < 0) return hostWord(phys, g);
    this.tableKey[level] = t;
    this.tableHost[level] = hfn * 1024;
    return hfn * 1024 + (g & 1023);
  }

  /** A non-canonical address: #GP(0), no table read (SDM 3.3.7.1). */
  private failNonCanonical(out: GuestWalk): boolean {
    out.ok = false;
    out.level = 0;
    out.errorCode = 0;
    out.pkey = 0;
    out.badTableGpa = false;
    out.nonCanonical = true;
    return false;
  }
}

/**
 * Word index in `mem.view` of the guest entry at word index `gpaWord` (gpa / 4),
 * or -1 if no memory backs it or it does not start on a 4-byte boundary of the view.
 */
function hostWord(mem: GuestMemory, gpaWord: number): number {
  const off = mem.resolve(gpaWord * 4, false);
  return off >= 0 && (off & 3) === 0 ? off / 4 : -1;
}

/** The `PagingContext.accessKind` / `accessPfec` index of `access` under `regs` (CPL 3, EFLAGS.AC). */
function accessKey(regs: X86Registers, access: number): number {
  return access | (regs.cpl === 3 ? ACCESS_KEY_CPL3 : 0) | (regs.rflagsAc ? ACCESS_KEY_AC : 0);
}

/**
 * For a 4 KiB leaf (high half `hi`) reached with ACC bits `acc`: -1 if the
 * access of kind `kind` is refused by those rights or by PKRU, else the
 * leaf's protection key (0 when keys do not apply).
 */
function allowedKey(ctx: PagingContext, regs: X86Registers, kind: number, acc: number, hi: number): number {
  if (((ctx.permFault[kind]! >>> acc) & 1) !== 0) return -1;
  if (!ctx.pke) return 0;
  const pkey = (hi >>> 27) & 15;
  return ((regs.pkru >>> (pkey * 2)) & 3 & ctx.pkMask[((kind & 7) << 1) | (acc >>> 2)]!) !== 0 ? -1 : pkey;
}

/** The gfn a 4 KiB leaf maps: address bits 51:12 of its two halves. */
function leafGfn(lo: number, hi: number): number {
  const high = hi & 0xfffff;
  return high === 0 ? lo >>> 12 : high * TWO_POW_20 + (lo >>> 12);
}

/** Host-API misuse: `access` must be Access bits (not both WRITE and FETCH), `vpn` an integer page of a 64-bit address. */
function checkWalkArgs(vpn: number, access: number): void {
  if (
    access >>> 0 !== access ||
    access > ACCESS_MASK ||
    (access & WRITE_AND_FETCH) === WRITE_AND_FETCH ||
    !(vpn >= 0 && vpn <= MAX_VPN) ||
    Math.floor(vpn) !== vpn
  ) {
    throw new HvmmuError('BAD_ARGUMENT', `walk needs Access bits (not both WRITE and FETCH) and an integer vpn in 0..2^52-1, got access ${access}, vpn ${vpn}`);
  }
}
