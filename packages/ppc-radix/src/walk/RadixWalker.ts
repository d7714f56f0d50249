import type { GuestMemory } from '@hvmmu/core';
import { Dsisr, RadixVector, SRR1_NOEXEC_GUARD } from '../format/RadixInterrupt.js';
import { RADIX_PTE, RadixProt, eaaProt } from '../format/RadixEntry.js';
import {
  PATE0_HR_HI,
  TABLE_BASE_HI,
  TABLE_BASE_LO,
  TABLE_SIZE_MASK,
  radixTreeBits,
  rootDirectorySize,
  tableBase,
  tableBytes,
} from '../format/PartitionTable.js';
import type { RadixRegisters } from './RadixRegisters.js';
import { RadixAccess, type RadixTranslation } from './RadixTranslation.js';
import { UINT32_FIELD } from '../format/Uint32Field.js';

/**
 * What the "hardware" does when a leaf's R (or, for a store, C) is not set.
 * POWER ISA v3.0 lets an implementation either set them atomically or raise
 * a storage interrupt; POWER9 raises it (DSISR[ATOMIC_RC], which KVM
 * resolves in software: kvmppc_hv_handle_set_rc), and so does current QEMU.
 */
export type RadixRcPolicy = 'fault' | 'update';

export interface RadixWalkerOptions {
  /** Default 'fault', as POWER9. */
  readonly rc?: RadixRcPolicy;
  /**
   * Keep the last partition-table entry and process-table entries read, as
   * the processor's partition- and process-table caches do (POWER ISA v3.0
   * Book III 6.10: software invalidates them with tlbie RIC=2 after changing
   * a table; here `invalidateTableCaches`). Default false: every
   * translation reads them from memory, as QEMU does.
   */
  readonly cacheTableEntries?: boolean;
  /**
   * Keep, per 2 MiB region of a partition-scoped tree, the bottom-level
   * table a walk reached, so the next walk there reads one entry instead of
   * four: POWER9's page walk cache (POWER ISA v3.0 Book III 6.10.1; software
   * invalidates it with tlbie RIC=1 or RIC=2 after it frees a table, as KVM's
   * kvmppc_radix_flush_pwc does). Only for partition-scoped trees whose
   * tables the hypervisor frees and nobody else edits: the cache holds while
   * `tableEpoch` is unchanged, which the trees' owner bumps whenever it
   * frees a table (or `memory` starts resolving a table's address
   * elsewhere: the table's place in `memory.view` is kept too). Process-scoped trees (the guest's) are always walked in
   * full. Default: none.
   */
  readonly pageWalkCache?: RadixTableEpoch;
}

/** What a page walk cache watches: a count bumped whenever a table of the walked trees is freed or unlinked. */
export interface RadixTableEpoch {
  readonly tableEpoch: number;
}

const TWO_POW_32 = 0x1_0000_0000;
/** Process-table cache entries (a power of two). */
const PRTE_CACHE = 16;
/** Page walk cache entries (a power of two), direct-mapped by 2 MiB region. */
const PWC_ENTRIES = 16;
const LOAD = RadixAccess.LOAD;
const STORE = RadixAccess.STORE;
const FETCH = RadixAccess.FETCH;

/**
 * POWER9's supported radix configurations (POWER9 Processor User's Manual
 * 4.10.4.1, as QEMU ppc_radix64_is_valid_level checks them): a 52-bit tree
 * whose root has 2^13 entries, then two levels of 2^9, then 2^9 (4K pages)
 * or 2^5 (64K pages). Linux's geometries (radix-4k.h, radix-64k.h) are
 * exactly these.
 */
function validLevel(level: number, bits: number, nls: number): boolean {
  switch (level) {
    case 0:
      return bits === 52 && nls === 13;
    case 1:
    case 2:
      return nls === 9;
    case 3:
      return nls === 9 || nls === 5;
    default:
      return false;
  }
}

/** Bits [shift, shift + nls) of the 52-bit address (ah: bits 51..32, al: bits 31..0). */
function indexAt(ah: number, al: number, shift: number, nls: number): number {
  const mask = nls >= 31 ? 0x7fff_ffff : (1 << nls) - 1;
  if (shift >= 32) return (ah >>> (shift - 32)) & mask;
  if (shift === 0) return al & mask;
  return ((al >>> shift) | (ah << (32 - shift))) & mask;
}

/**
 * The radix MMU's translation, as the processor performs it (POWER ISA v3.0
 * Book III 6.7.10 "Radix Tree Translation"; the algorithm and its faults as
 * QEMU's target/ppc/mmu-radix64.c ppc_radix64_xlate implements them):
 *
 * - MSR[HV]=1 with relocation off: real mode (EA bits 63..60 ignored, HRMOR
 *   added when EA bit 63 is clear); a virtual hypervisor's guest likewise.
 * - The EA's quadrant (bits 63..62) selects (LPID, PID); EA bits 61..52 set,
 *   or quadrant 1/2 outside hypervisor state, is a segment interrupt.
 * - The partition-table entry comes from PTCR (or from the virtual
 *   hypervisor); process-scoped translation walks the process table entry's
 *   tree, and for a guest every process-table and tree entry address is
 *   first translated through the partition-scoped tree (the 2-D walk);
 *   finally the guest real address goes through the partition-scoped tree.
 * - The page size is the smaller of the two scopes', the access the AND.
 *
 * Faults are reported as the interrupt the processor raises: DSI/ISI for
 * the process scope, HDSI/HISI (with ASDR, and PRTABLE_FAULT for a table
 * entry's translation) for the partition scope, DSEG/ISEG for a bad EA.
 * Every table read goes through `memory` (host real addresses), which never
 * throws; an unbacked entry reads as zero (invalid), as QEMU's unassigned
 * memory does. Work is bounded: at most four levels per tree.
 *
 * One deliberate difference from QEMU: a leaf in the root directory (a
 * 512 GiB page) is a bad configuration, as KVM's software walker and the
 * POWER9 user's manual's page-size table have it; QEMU accepts it.
 */
export class RadixWalker {
  private readonly updateRc: boolean;
  // The last tree walk's leaf and result (one tree; entries at real addresses).
  private leafHi = UINT32_FIELD;
  private leafLo = UINT32_FIELD;
  private leafAddr = -1;
  private bits = 0;
  private raHi = 0;
  private raLo = UINT32_FIELD;
  private cause = 0;
  private prot = 0;
  private refs = 0;
  // The partition-table entry in use.
  private pate0Hi = UINT32_FIELD;
  private pate0Lo = UINT32_FIELD;

  private readonly cacheTables: boolean;
  // Partition-table cache: the entry last read, keyed by PTCR and LPID.
  private pateCached = false;
  private pateKeyHi = UINT32_FIELD;
  private pateKeyLo = UINT32_FIELD;
  private pateKeyLpid = -1;
  private cPate0Hi = UINT32_FIELD;
  private cPate0Lo = UINT32_FIELD;
  private cPate1Hi = UINT32_FIELD;
  private cPate1Lo = UINT32_FIELD;
  // Process-table cache: one entry per PID slot of a small direct-mapped array, keyed by (PATE dw1, LPID, PID).
  private readonly prteKey = new Float64Array(PRTE_CACHE * 4).fill(-1);
  private readonly prteValue = new Uint32Array(PRTE_CACHE * 2);
  // Page walk cache: per entry the 2 MiB region (guest real address >> 21), the tree (its PATE dw0
  // halves), and the bottom table's aligned real address and NLS; valid while the epoch holds.
  private readonly pwcSource: RadixTableEpoch | null;
  private pwcEpoch = -1;
  private readonly pwcRegion = new Int32Array(PWC_ENTRIES).fill(-1);
  private readonly pwcRoot = new Int32Array(PWC_ENTRIES * 2);
  private readonly pwcTable = new Float64Array(PWC_ENTRIES);
  private readonly pwcOffset = new Float64Array(PWC_ENTRIES);
  private readonly pwcNls = new Uint8Array(PWC_ENTRIES);
  // The bottom table the last tree walk descended to (level 3), -1 if it did not.
  private bottomTable = -1;
  private bottomNls = 0;

  constructor(
    readonly memory: GuestMemory,
    options: RadixWalkerOptions = {},
  ) {
    this.updateRc = options.rc === 'update';
    this.cacheTables = options.cacheTableEntries === true;
    this.pwcSource = options.pageWalkCache ?? null;
    this.view = memory.view;
    this.flatLimit = memory.identityReads === true ? memory.view.byteLength - 8 : -1;
  }

  private readonly view: DataView;
  /** The last address an entry can be read at directly when memory is flat, else -1. */
  private readonly flatLimit: number;

  /**
   * Whether a walk of the partition scope that ends at a leaf with low half
   * `lo` lets `access` through: the leaf's permission (EAA, no fetch from
   * non-idempotent I/O) and its R (and C for a store) already set — exactly
   * what `partitionScoped` checks after its walk. (With `rc: 'update'` a
   * missing R/C is false here: such a walk would write the leaf.)
   */
  partitionLeafAllows(access: number, lo: number): boolean {
    this.cause = 0;
    return this.checkProt(null, access, lo, true) >= 0 && this.rcAllows(access, lo);
  }

  /** Forget cached partition- and process-table entries (what tlbie with RIC=2 does to the processor's caches). */
  invalidateTableCaches(): void {
    this.pateCached = false;
    this.prteKey.fill(-1);
    this.invalidatePageWalkCache();
  }

  /** Forget the page walk cache (tlbie with RIC=1). */
  invalidatePageWalkCache(): void {
    this.pwcRegion.fill(-1);
  }

  /**
   * Translate effective address (eaHi, eaLo) for `access` under `regs`.
   * With `guestVisible` false (a debugger's look, QEMU's
   * get_phys_page_debug) no fault is recorded, no R/C is checked or set,
   * and nothing is written.
   */
  translate(regs: RadixRegisters, eaHi: number, eaLo: number, access: number, out: RadixTranslation, guestVisible = true): boolean {
    out.reset();
    this.refs = 0;
    const ok = this.xlate(regs, eaHi >>> 0, eaLo >>> 0, access, out, guestVisible);
    out.refs = this.refs;
    out.ok = ok;
    return ok;
  }

  /**
   * `translate` of a guest's access with relocation off for it (MSR[HV] 0,
   * no virtual hypervisor; MSR[IR] for a fetch, MSR[DR] otherwise): EA bits
   * 61..0 are the guest real address, which only the partition-scoped tree
   * translates. The same result and faults as `translate`, which it defers
   * to for anything but the plain case — quadrant 0 or 3, EA bits 61..52
   * clear, a partition-table entry for the LPID. A vCPU's miss path takes
   * it for real-mode guests: an L2 in real mode walks here twice per first
   * touch (the HDSI, then the retried access).
   */
  translateGuestReal(regs: RadixRegisters, eaHi: number, eaLo: number, access: number, out: RadixTranslation): boolean {
    const quadrant = eaHi >>> 30;
    if (regs.hv || regs.virtualHypervisor || (access === 2 ? regs.ir : regs.dr) || (eaHi & 0x3ff0_0000) !== 0 || quadrant === 1 || quadrant === 2) {
      return this.translate(regs, eaHi, eaLo, access, out);
    }
    const lpid = regs.lpidr >>> 0;
    out.reset();
    this.refs = 0;
    // No partition-table entry: the general way raises the fault.
    if (!this.loadPate(regs, lpid)) return this.translate(regs, eaHi, eaLo, access, out);
    const gHi = eaHi & 0x3fff_ffff;
    const gLo = eaLo >>> 0;
    out.guestRaHi = gHi;
    out.guestRaLo = gLo;
    const ok = this.partitionScoped(access, eaHi >>> 0, gLo, gHi, gLo, false, lpid, out, true);
    if (ok) {
      out.setRa(this.raHi, this.raLo);
      out.pageShift = this.bits;
      out.prot = this.prot;
      out.partitionPteHi = this.leafHi;
      out.partitionPteLo = this.leafLo;
      out.partitionPteAddr = this.leafAddr;
    }
    out.refs = this.refs;
    out.ok = ok;
    return ok;
  }

  private xlate(regs: RadixRegisters, eaHi: number, eaLo: number, access: number, out: RadixTranslation, visible: boolean): boolean {
    const relocation = access === 2 ? regs.ir : regs.dr; // FETCH
    if (!relocation && (regs.hv || regs.virtualHypervisor)) {
      // Real mode: the top 4 EA bits are ignored; HRMOR applies in hypervisor state when EA bit 63 is clear.
      let hi = eaHi & 0x0fff_ffff;
      let lo = eaLo;
      if (regs.hv && eaHi >>> 31 === 0) {
        hi |= regs.hrmorHi;
        lo = (lo | regs.hrmorLo) >>> 0;
      }
      out.setRa(hi, lo);
      out.guestRaHi = out.raHi;
      out.guestRaLo = out.raLo;
      out.pageShift = 12;
      out.prot = RadixProt.ALL;
      return true;
    }
    // EA bits 61..52 must be zero; the quadrant names (LPID, PID).
    if ((eaHi & 0x3ff0_0000) !== 0) return this.segmentFault(out, access, eaHi, eaLo, visible);
    const quadrant = eaHi >>> 30;
    let lpid: number;
    let pid: number;
    if (regs.hv) {
      lpid = quadrant === 1 || quadrant === 2 ? regs.lpidr >>> 0 : 0;
      pid = quadrant === 0 || quadrant === 1 ? regs.pidr >>> 0 : 0;
    } else {
      if (quadrant === 1 || quadrant === 2) return this.segmentFault(out, access, eaHi, eaLo, visible);
      lpid = regs.lpidr >>> 0;
      pid = quadrant === 0 ? regs.pidr >>> 0 : 0;
    }
    if (!this.loadPate(regs, lpid)) {
      if (visible) this.raiseHsi(out, access, eaHi, eaLo, eaHi, eaLo, Dsisr.BADCONFIG);
      return false;
    }
    let gHi: number;
    let gLo: number;
    let bits = 64;
    let prot = 7; // RadixProt.ALL
    const ah = eaHi & 0xf_ffff;
    if (relocation) {
      if (!this.processScoped(regs, access, eaHi, eaLo, ah, eaLo, pid, lpid, out, visible)) return false;
      gHi = this.raHi;
      gLo = this.raLo;
      bits = this.bits;
      prot = this.prot;
      out.processPteHi = this.leafHi;
      out.processPteLo = this.leafLo;
      out.processPteAddr = this.leafAddr;
    } else {
      gHi = eaHi & 0x3fff_ffff;
      gLo = eaLo;
    }
    out.guestRaHi = gHi >>> 0;
    out.guestRaLo = gLo >>> 0;
    if (regs.virtualHypervisor || (lpid === 0 && regs.hv)) {
      out.setRa(gHi, gLo);
    } else {
      if (!this.partitionScoped(access, eaHi, eaLo, gHi, gLo, false, lpid, out, visible)) return false;
      out.setRa(this.raHi, this.raLo);
      if (this.bits < bits) bits = this.bits;
      prot &= this.prot;
      out.partitionPteHi = this.leafHi;
      out.partitionPteLo = this.leafLo;
      out.partitionPteAddr = this.leafAddr;
    }
    out.pageShift = bits;
    out.prot = prot;
    return true;
  }

  /** The partition-table entry for `lpid` (QEMU ppc64_v3_get_pate + validate_pate); false if missing or invalid. */
  private loadPate(regs: RadixRegisters, lpid: number): boolean {
    if (regs.virtualHypervisor) {
      this.pate0Hi = regs.pate0Hi;
      this.pate0Lo = regs.pate0Lo;
      this.pate1Hi = regs.pate1Hi;
      this.pate1Lo = regs.pate1Lo;
      return true;
    }
    if (this.pateCached && this.pateKeyLpid === lpid && this.pateKeyHi === regs.ptcrHi && this.pateKeyLo === regs.ptcrLo) {
      if (lpid === 0 && !regs.hv) return false;
      this.pate0Hi = this.cPate0Hi;
      this.pate0Lo = this.cPate0Lo;
      this.pate1Hi = this.cPate1Hi;
      this.pate1Lo = this.cPate1Lo;
      return true;
    }
    const base = tableBase(regs.ptcrHi, regs.ptcrLo);
    const bytes = tableBytes(regs.ptcrLo);
    // The table must be aligned to its size and hold the entry (2^(PATS+8) entries of 16 bytes).
    if (base < 0 || base % bytes !== 0 || lpid * 16 >= bytes) return false;
    if (!this.read(base + lpid * 16)) return false;
    const dw0Hi = this.entryHi;
    const dw0Lo = this.entryLo;
    if (!this.read(base + lpid * 16 + 8)) return false;
    if ((dw0Hi & PATE0_HR_HI) === 0) return false;
    if (lpid === 0 && !regs.hv) return false;
    if (rootDirectorySize(dw0Lo) < 5) return false;
    this.pate0Hi = dw0Hi;
    this.pate0Lo = dw0Lo;
    this.pate1Hi = this.entryHi;
    this.pate1Lo = this.entryLo;
    if (this.cacheTables) {
      this.pateCached = true;
      this.pateKeyHi = regs.ptcrHi;
      this.pateKeyLo = regs.ptcrLo;
      this.pateKeyLpid = lpid;
      this.cPate0Hi = dw0Hi;
      this.cPate0Lo = dw0Lo;
      this.cPate1Hi = this.pate1Hi;
      this.cPate1Lo = this.pate1Lo;
    }
    return true;
  }

  private pate1Hi = UINT32_FIELD;
  private pate1Lo = UINT32_FIELD;
  // The entry address and level at which the last tree walk found an invalid entry.
  private missAddr = -1;
  private missLevel = -1;
  private entryHi = UINT32_FIELD;
  private entryLo = UINT32_FIELD;

  /** Read the big-endian doubleword at real address `addr` into entryHi/entryLo; unbacked memory reads as zero. */
  private read(addr: number): boolean {
    this.refs++;
    if (this.flatLimit >= 0) {
      // Flat memory: the address is the offset (no resolve call on the walk).
      if (addr >= 0 && addr <= this.flatLimit) {
        const view = this.view;
        this.entryHi = view.getUint32(addr, false);
        this.entryLo = view.getUint32(addr + 4, false);
      } else {
        this.entryHi = 0;
        this.entryLo = 0;
      }
      return true;
    }
    const off = addr >= 0 ? this.memory.resolve(addr, false) : -1;
    if (off < 0) {
      this.entryHi = 0;
      this.entryLo = 0;
      return true;
    }
    const view = this.memory.view;
    this.entryHi = view.getUint32(off, false);
    this.entryLo = view.getUint32(off + 4, false);
    return true;
  }

  /**
   * Walk one tree whose entries are at real addresses (QEMU
   * ppc_radix64_walk_tree). On success sets leaf*, bits (page size log2)
   * and raHi/raLo; on failure ORs the cause into `cause`.
   */
  // The walks below write the entry masks as literals: an imported or module-level
  // constant costs a load and a hole check per use in V8's optimised code, which
  // doubled a level's cost (V 0x8000_0000 and L 0x4000_0000 in the high half; NLB
  // 0x0fff_ffff / 0xffff_ff00; RPN 0x01ff_ffff / 0xffff_f000; 2^21 high half = 2^53).
  private walkTree(rootHi: number, rootLo: number, rootNls: number, treeBits: number, ah: number, al: number): boolean {
    let nls = rootNls;
    let bits = treeBits;
    // The table base as halves (RPDB and NLB share one mask): no float modulo on the walk.
    let baseHi = rootHi & 0x0fff_ffff;
    let baseLo = rootLo & 0xffff_ff00;
    const view = this.view;
    const flatLimit = this.flatLimit;
    let refs = this.refs;
    for (let level = 0; ; level++) {
      // POWER9's tree shapes (validLevel), inline.
      if (level === 0 ? bits !== 52 || nls !== 13 : level < 3 ? nls !== 9 : level > 3 || (nls !== 9 && nls !== 5)) {
        this.refs = refs;
        this.cause |= Dsisr.BADCONFIG;
        return false;
      }
      // A base not aligned to its table's size has its low bits ignored (QEMU logs a guest error);
      // a valid level's table is at most 2^16 bytes, so the low half holds the alignment and the index.
      const shift = bits - nls;
      const mask = (1 << nls) - 1;
      const index = shift >= 32 ? (ah >>> (shift - 32)) & mask : ((al >>> shift) | (ah << (32 - shift))) & mask;
      const addr = baseHi < 0x20_0000 ? baseHi * 0x1_0000_0000 + (((baseLo & ~((mask << 3) | 7)) >>> 0) + index * 8) : -1;
      refs++;
      let hi = 0;
      let lo = 0;
      if (flatLimit >= 0) {
        if (addr >= 0 && addr <= flatLimit) {
          hi = view.getUint32(addr, false);
          lo = view.getUint32(addr + 4, false);
        }
      } else {
        this.refs = refs - 1;
        this.read(addr);
        hi = this.entryHi;
        lo = this.entryLo;
      }
      if ((hi & 0x8000_0000) === 0) {
        this.refs = refs;
        this.cause |= Dsisr.NOPTE;
        this.missAddr = addr;
        this.missLevel = level;
        return false;
      }
      bits = shift;
      if ((hi & 0x4000_0000) !== 0) {
        this.refs = refs;
        if (level === 0) {
          this.cause |= Dsisr.BADCONFIG;
          return false;
        }
        this.setLeaf(hi, lo, addr, bits, ah, al);
        return true;
      }
      nls = lo & 0x1f;
      baseHi = hi & 0x0fff_ffff;
      baseLo = lo & 0xffff_ff00;
      // The bottom table (what a page walk cache keeps): its shape checked, its base aligned.
      if (level === 2 && baseHi < 0x20_0000 && (nls === 9 || nls === 5)) {
        this.bottomTable = baseHi * 0x1_0000_0000 + ((baseLo & ~((((1 << nls) - 1) << 3) | 7)) >>> 0);
        this.bottomNls = nls;
      }
    }
  }

  /**
   * The partition-scoped tree's walk for guest real address (ah, al) (the
   * PATE in use), through the page walk cache when there is one: a region
   * whose bottom table is cached is one read; any other walk is in full and
   * fills the cache when it reached the bottom table.
   */
  private walkPartitionTree(ah: number, al: number): boolean {
    const source = this.pwcSource;
    if (source === null) return this.walkTree(this.pate0Hi, this.pate0Lo, rootDirectorySize(this.pate0Lo), radixTreeBits(this.pate0Hi, this.pate0Lo), ah, al);
    if (source.tableEpoch !== this.pwcEpoch) {
      this.pwcRegion.fill(-1);
      this.pwcEpoch = source.tableEpoch;
    }
    // Guest real address bits 51..21 (ah is bits 51..32): an int32.
    const region = (ah << 11) | (al >>> 21);
    const i = region & 15; // PWC_ENTRIES - 1
    const roots = this.pwcRoot;
    if (this.pwcRegion[i] === region && roots[2 * i] === (this.pate0Hi | 0) && roots[2 * i + 1] === (this.pate0Lo | 0)) {
      return this.walkBottom(this.pwcTable[i]!, this.pwcOffset[i]!, this.pwcNls[i]!, ah, al);
    }
    this.bottomTable = -1;
    const ok = this.walkTree(this.pate0Hi, this.pate0Lo, rootDirectorySize(this.pate0Lo), radixTreeBits(this.pate0Hi, this.pate0Lo), ah, al);
    // The table's offset in the view too, so a hit reads without resolving: kept only when its
    // last entry resolves to the same run of the view (a table lies in one page; this also
    // bounds every read of a hit inside the view).
    const offset = this.bottomTable >= 0 ? this.memory.resolve(this.bottomTable, false) : -1;
    const last = (8 << this.bottomNls) - 8;
    if (offset >= 0 && this.memory.resolve(this.bottomTable + last, false) === offset + last) {
      this.pwcRegion[i] = region;
      roots[2 * i] = this.pate0Hi;
      roots[2 * i + 1] = this.pate0Lo;
      this.pwcTable[i] = this.bottomTable;
      this.pwcOffset[i] = offset;
      this.pwcNls[i] = this.bottomNls;
    }
    return ok;
  }

  /**
   * walkTree's last level alone, in the cached bottom table at real address
   * `table` (view offset `tableOffset`) of NLS `nls` (9 or 5): the same read
   * and faults from there.
   */
  private walkBottom(table: number, tableOffset: number, nls: number, ah: number, al: number): boolean {
    // The region's size is 2^21: shift + nls = 21, so the index is in the low half.
    const shift = 21 - nls;
    const index = ((al >>> shift) & ((1 << nls) - 1)) * 8;
    const addr = table + index;
    this.refs++;
    const view = this.view;
    const hi = view.getUint32(tableOffset + index, false);
    const lo = view.getUint32(tableOffset + index + 4, false);
    if ((hi & 0x8000_0000) === 0) {
      this.cause |= 0x4000_0000; // NOPTE
      this.missAddr = addr;
      this.missLevel = 3;
      return false;
    }
    if ((hi & 0x4000_0000) === 0) {
      // A directory at the bottom: the next level's shape check fails, as in walkTree.
      this.cause |= 0x0008_0000; // BADCONFIG
      return false;
    }
    this.setLeaf(hi, lo, addr, shift, ah, al);
    return true;
  }

  private setLeaf(hi: number, lo: number, addr: number, bits: number, ah: number, al: number): void {
    this.leafHi = hi;
    this.leafLo = lo;
    this.leafAddr = addr;
    this.bits = bits;
    // bits is 12, 16, 21 or 30 (validLevel allows no larger leaf): the offset is in the low half.
    const mask = (1 << bits) - 1;
    this.raHi = hi & 0x01ff_ffff;
    this.raLo = ((lo & 0xffff_f000 & ~mask) | (al & mask)) >>> 0;
    void ah;
  }

  /** Process-scoped translation (QEMU ppc_radix64_process_scoped_xlate). */
  private processScoped(
    regs: RadixRegisters,
    access: number,
    eaHi: number,
    eaLo: number,
    ah: number,
    al: number,
    pid: number,
    lpid: number,
    out: RadixTranslation,
    visible: boolean,
  ): boolean {
    this.cause = 0;
    // The process table: 2^(PRTS+12) bytes, aligned to its size, 16 bytes per PID.
    const prts = this.pate1Lo & TABLE_SIZE_MASK;
    const prtbHi = this.pate1Hi & TABLE_BASE_HI;
    const prtbLo = (this.pate1Lo & TABLE_BASE_LO) >>> 0;
    const aligned = prts + 12 < 32 ? (prtbLo & ((1 << (prts + 12)) - 1)) === 0 : prtbLo === 0 && (prtbHi & ((1 << (prts + 12 - 32)) - 1)) === 0;
    if (!aligned) {
      if (visible) this.raiseSi(out, access, eaHi, eaLo, Dsisr.BADCONFIG);
      return false;
    }
    // pid * 16 < 2^(PRTS+12), without Math.pow (a libcall that cost half the walk): PRTS + 8 ≤ 39.
    if (prts + 8 < 32 ? pid >>> (prts + 8) !== 0 : false) {
      if (visible) this.raiseSi(out, access, eaHi, eaLo, Dsisr.NOPTE);
      return false;
    }
    // Aligned to its size and the offset within it: no carry out of the low half.
    const prteHi = prtbHi + (prts + 12 > 32 ? Math.floor((pid * 16) / TWO_POW_32) : 0);
    const prteLo = (prtbLo + ((pid * 16) % TWO_POW_32)) >>> 0;
    const flat = regs.virtualHypervisor;
    const slot = (pid & (PRTE_CACHE - 1)) * 4;
    const keys = this.prteKey;
    let rootHi: number;
    let rootLo: number;
    if (this.cacheTables && keys[slot] === pid && keys[slot + 1] === lpid && keys[slot + 2] === this.pate1Hi && keys[slot + 3] === this.pate1Lo) {
      rootHi = this.prteValue[slot >> 1]!;
      rootLo = this.prteValue[(slot >> 1) + 1]!;
    } else {
      if (flat) {
        this.read(prteHi < 0x20_0000 ? prteHi * TWO_POW_32 + prteLo : -1);
      } else {
        // Process-table addresses are guest real: translated through the partition scope first.
        if (!this.partitionScoped(access, eaHi, eaLo, prteHi, prteLo, true, lpid, out, visible)) return false;
        this.read(this.raHi * TWO_POW_32 + this.raLo);
      }
      rootHi = this.entryHi;
      rootLo = this.entryLo;
      if (this.cacheTables && visible) {
        keys[slot] = pid;
        keys[slot + 1] = lpid;
        keys[slot + 2] = this.pate1Hi;
        keys[slot + 3] = this.pate1Lo;
        this.prteValue[slot >> 1] = rootHi;
        this.prteValue[(slot >> 1) + 1] = rootLo;
      }
    }
    // Linux leaves a kernel-only PID's entry zero so that NULL dereferences fault (QEMU's comment).
    if (rootHi === 0 && rootLo === 0) {
      if (visible) this.raiseSi(out, access, eaHi, eaLo, Dsisr.BADCONFIG);
      return false;
    }
    const treeBits = radixTreeBits(rootHi, rootLo);
    const nls = rootDirectorySize(rootLo);
    this.cause = 0;
    // The hypervisor's own quadrants (LPID 0) have real table addresses. A hypervisor's
    // access to a guest's quadrant (1 or 2: how KVM's __kvmhv_copy_tofrom_guest_radix
    // reads guest memory) walks the guest's tree 2-D, as the guest's own accesses do;
    // QEMU walks it with real addresses there, which only works for flat guests.
    if ((regs.hv && lpid === 0) || flat) {
      if (!this.walkTree(rootHi, rootLo, nls, treeBits, ah, al)) {
        if (visible) this.raiseSi(out, access, eaHi, eaLo, this.cause);
        return false;
      }
    } else if (!this.walkGuestTree(rootHi, rootLo, nls, treeBits, access, eaHi, eaLo, ah, al, lpid, out, visible)) {
      return false;
    }
    const prot = this.checkProt(regs, access, this.leafLo, false);
    if (prot < 0) {
      if (visible) this.raiseSi(out, access, eaHi, eaLo, this.cause);
      return false;
    }
    this.prot = prot;
    if (visible && !this.rcAllows(access, this.leafLo)) {
      if (!this.updateRc) {
        this.raiseSi(out, access, eaHi, eaLo, Dsisr.ATOMIC_RC);
        return false;
      }
      this.setRc(access);
    }
    return true;
  }

  /**
   * The process-scoped tree of a guest, 2-D: each entry's guest real address
   * (kept as halves: a guest may point anywhere in 64 bits) is translated
   * through the partition scope before it is read. As QEMU's
   * process_scoped_xlate loop: the entry's translation comes before the
   * level's configuration check, and the root base is used as given.
   */
  private walkGuestTree(
    rootHi: number,
    rootLo: number,
    rootNls: number,
    treeBits: number,
    access: number,
    eaHi: number,
    eaLo: number,
    ah: number,
    al: number,
    lpid: number,
    out: RadixTranslation,
    visible: boolean,
  ): boolean {
    let nls = rootNls;
    let bits = treeBits;
    let eHi = rootHi & 0x0fff_ffff;
    let eLo = (rootLo & 0xffff_ff00) + indexAt(ah, al, bits - nls, nls) * 8;
    if (eLo >= 0x1_0000_0000) {
      eLo -= 0x1_0000_0000;
      eHi = (eHi + 1) >>> 0;
    }
    for (let level = 0; ; level++) {
      if (!this.partitionScoped(access, eaHi, eaLo, eHi, eLo, true, lpid, out, visible)) return false;
      const hostAddr = this.raHi * 0x1_0000_0000 + this.raLo;
      this.cause = 0;
      if (!validLevel(level, bits, nls)) {
        if (visible) this.raiseSi(out, access, eaHi, eaLo, Dsisr.BADCONFIG);
        return false;
      }
      this.read(hostAddr);
      const hi = this.entryHi;
      const lo = this.entryLo;
      if ((hi & 0x8000_0000) === 0) {
        if (visible) this.raiseSi(out, access, eaHi, eaLo, Dsisr.NOPTE);
        return false;
      }
      bits -= nls;
      if ((hi & 0x4000_0000) !== 0) {
        if (level === 0) {
          if (visible) this.raiseSi(out, access, eaHi, eaLo, Dsisr.BADCONFIG);
          return false;
        }
        this.setLeaf(hi, lo, hostAddr, bits, ah, al);
        return true;
      }
      nls = lo & 0x1f;
      // A next-level base not aligned to its table's size has its low bits ignored.
      eHi = hi & 0x0fff_ffff;
      eLo = lo & 0xffff_ff00;
      if (nls + 3 >= 32) {
        eLo = 0;
        eHi &= ~((1 << (nls + 3 - 32)) - 1);
      } else {
        eLo &= ~((1 << (nls + 3)) - 1);
      }
      eLo = (eLo >>> 0) + indexAt(ah, al, bits - nls, nls) * 8;
    }
  }

  /**
   * Partition-scoped translation of guest real address (gHi, gLo) (QEMU
   * ppc_radix64_partition_scoped_xlate). `tableEntry`: the address is that
   * of a process table or process-scoped tree entry, translated as a load,
   * and a failure carries PRTABLE_FAULT.
   */
  private partitionScoped(
    access: number,
    eaHi: number,
    eaLo: number,
    gHi: number,
    gLo: number,
    tableEntry: boolean,
    lpid: number,
    out: RadixTranslation,
    visible: boolean,
  ): boolean {
    // Literals on this path (every miss goes through it; see walkTree): LOAD 0, STORE 1, FETCH 2;
    // DSISR NOPTE 0x4000_0000, PRTABLE_FAULT 0x0002_0000, ATOMIC_RC 0x0004_0000.
    const kind = tableEntry ? 0 : access;
    this.cause = 0;
    let ok = this.walkPartitionTree(gHi & 0xf_ffff, gLo);
    let prot = 0;
    if (ok) {
      prot = this.checkProt(null, kind, this.leafLo, true);
      ok = prot >= 0;
    }
    if (!ok) {
      if (tableEntry) this.cause |= 0x0002_0000;
      if (visible) {
        this.raiseHsi(out, access, eaHi, eaLo, gHi, gLo, this.cause);
        // Where the walk found no entry, when that is the bottom level: a hypervisor filling
        // the page can write its leaf there without walking again.
        out.partitionMissAddr = (this.cause & ~0x0002_0000) === 0x4000_0000 && this.missLevel === 3 ? this.missAddr : -1;
      }
      return false;
    }
    this.prot = prot;
    if (visible && !this.rcAllows(kind, this.leafLo)) {
      if (!this.updateRc) {
        // ISA 3.1 Book III 7.5.3/7.5.5: with effective LPID 0 this is a plain DSI/ISI (QEMU's comment: POWER9 agrees).
        if (lpid > 0) this.raiseHsi(out, kind, eaHi, eaLo, gHi, gLo, 0x0004_0000);
        else this.raiseSi(out, kind, eaHi, eaLo, 0x0004_0000);
        return false;
      }
      this.setRc(kind);
    }
    return true;
  }

  /** Access a leaf allows (QEMU ppc_radix64_check_prot), or -1 with the cause ORed into `cause`. */
  private checkProt(regs: RadixRegisters | null, access: number, lo: number, partition: boolean): number {
    // Literals (see walkTree): leaf ATT 0x30 (non-idempotent I/O 0x20), PRIVILEGED 8, EAA READ 4,
    // READ_WRITE 2 (implies read), EXECUTE 1; RadixProt READ 1, WRITE 2, EXECUTE 4; access LOAD 0,
    // STORE 1, FETCH 2; SRR1_NOEXEC_GUARD 0x1000_0000, DSISR PROTFAULT 0x0800_0000.
    // Non-idempotent I/O is guarded storage: no instruction fetch from it.
    if ((lo & 0x30) === 0x20 && access === 2) {
      this.cause |= 0x1000_0000;
      return -1;
    }
    const eaa = ((lo & 4) !== 0 ? 1 : 0) | ((lo & 2) !== 0 ? 3 : 0) | ((lo & 1) !== 0 ? 4 : 0);
    let prot: number;
    const privileged = (lo & 8) !== 0;
    if (partition || regs === null) {
      prot = eaa;
    } else if (privileged && regs.pr) {
      prot = 0;
    } else if (regs.pr || privileged) {
      prot = eaa;
    } else {
      // Supervisor access to a non-privileged page: AMR/IAMR key 0 (Linux KUAP/KUEP) apply too.
      const amr = regs.amrHi >>> 30;
      prot = eaa & (((amr & 2) !== 0 ? 0 : 2) | ((amr & 1) !== 0 ? 0 : 1) | (((regs.iamrHi >>> 30) & 1) !== 0 ? 0 : 4));
    }
    const need = access === 0 ? 1 : access === 1 ? 2 : 4;
    if ((prot & need) === 0) {
      this.cause |= access === 2 ? 0x1000_0000 : 0x0800_0000;
      return -1;
    }
    return prot;
  }

  /** R is set, and C too for a store (QEMU ppc_radix64_check_rc). */
  private rcAllows(access: number, lo: number): boolean {
    // R 0x100, C 0x80; STORE 1 (literals: see walkTree).
    if ((lo & 0x100) === 0) return false;
    return access !== 1 || (lo & 0x80) !== 0;
  }

  /** The 'update' R/C policy: set R (and C on a store) in the leaf in memory; a load leaves the page read-only until C is set. */
  private setRc(access: number): void {
    let lo = this.leafLo | RADIX_PTE.R;
    if (access === STORE) lo |= RADIX_PTE.C;
    if (lo !== this.leafLo && this.leafAddr >= 0) {
      const off = this.memory.resolve(this.leafAddr, true);
      if (off >= 0) this.memory.view.setUint32(off + 4, lo >>> 0, false);
      this.leafLo = lo >>> 0;
    }
    if ((this.leafLo & RADIX_PTE.C) === 0) this.prot &= ~RadixProt.WRITE;
  }

  private segmentFault(out: RadixTranslation, access: number, eaHi: number, eaLo: number, visible: boolean): false {
    if (visible) {
      if (access === FETCH) {
        out.vector = RadixVector.ISEG;
      } else {
        out.vector = RadixVector.DSEG;
        out.darHi = eaHi;
        out.darLo = eaLo;
      }
      out.cause = 0;
    }
    return false;
  }

  /** DSI / ISI (QEMU ppc_radix64_raise_si). */
  private raiseSi(out: RadixTranslation, access: number, eaHi: number, eaLo: number, cause: number): void {
    if (access === FETCH) {
      out.vector = RadixVector.ISI;
      out.cause = cause >>> 0;
      return;
    }
    out.vector = RadixVector.DSI;
    out.cause = (access === STORE ? cause | Dsisr.STORE : cause) >>> 0;
    out.darHi = eaHi;
    out.darLo = eaLo;
  }

  /** HDSI / HISI (QEMU ppc_radix64_raise_hsi): a table entry's fault is reported as a load. */
  private raiseHsi(out: RadixTranslation, access: number, eaHi: number, eaLo: number, gHi: number, gLo: number, cause: number): void {
    // On every nested first touch: literals (see walkTree) — PRTABLE_FAULT 0x0002_0000, DSISR STORE
    // 0x0200_0000, HISI 0xe20, HDSI 0xe00; access LOAD 0, STORE 1, FETCH 2.
    const kind = (cause & 0x0002_0000) !== 0 ? 0 : access;
    out.asdrHi = gHi >>> 0;
    out.asdrLo = gLo >>> 0;
    if (kind === 2) {
      out.vector = 0xe20;
      out.cause = cause >>> 0;
      return;
    }
    out.vector = 0xe00;
    out.cause = (kind === 1 ? cause | 0x0200_0000 : cause) >>> 0;
    out.darHi = eaHi;
    out.darLo = eaLo;
  }
}
