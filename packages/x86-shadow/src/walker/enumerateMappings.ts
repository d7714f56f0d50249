import { HvmmuError, type GuestMemory } from '@hvmmu/core';
import { MappingList } from './MappingList.js';
import { ACC, PDPTE_RESERVED_LO, PagingContext, pdpteReservedHi } from './PagingContext.js';
import { PagingMode, type X86Registers } from './X86Registers.js';

export interface EnumerateMappingsOptions {
  /** Stop after this many runs (default 2^20). */
  readonly maxRuns?: number;
  /** Stop after reading this many table entries (default 2^22), bounding work on hostile or self-mapped tables. */
  readonly maxEntries?: number;
  /**
   * PAE only: read the four PDPTEs from memory at CR3 instead of using the
   * ones cached in `regs` (for a raw memory image where no CR3 load
   * happened). Default false, as hardware walks from the cached PDPTEs.
   */
  readonly pdptesFromMemory?: boolean;
}

const TWO_POW_32 = 0x1_0000_0000;
const TWO_POW_20 = 0x10_0000;
const TWO_POW_52 = 2 ** 52;
const PTE_P = 1;
const PTE_PS = 0x80;

/**
 * Enumerate every mapping the guest tables selected by `regs` (CR0, CR3,
 * CR4, EFER, MAXPHYADDR, cached PDPTEs) hold, with the access the tables
 * grant (U/W ANDed, X = no XD on the path) and the protection key. Works on
 * a live VM's memory or a raw image (`FlatGuestMemory`), reads only, never
 * throws on table contents: present entries with reserved bits and tables
 * outside memory are counted and skipped (a walk through them faults), and
 * the work is bounded by `maxEntries` whatever the tables hold (self
 * references included). With paging off it reports nothing: there are no
 * tables, and every address maps to itself.
 */
export function enumerateMappings(regs: X86Registers, mem: GuestMemory, options: EnumerateMappingsOptions = {}): MappingList {
  const maxRuns = options.maxRuns ?? 1 << 20;
  const maxEntries = options.maxEntries ?? 1 << 22;
  if (!Number.isSafeInteger(maxRuns) || maxRuns < 1 || !Number.isSafeInteger(maxEntries) || maxEntries < 1) {
    throw new HvmmuError('BAD_ARGUMENT', `maxRuns and maxEntries must be positive integers, got ${maxRuns} and ${maxEntries}`);
  }
  const ctx = new PagingContext();
  ctx.update(regs);
  const enumerator = new MappingEnumerator(ctx, mem, new MappingList(maxRuns), maxEntries);
  enumerator.run(regs, options.pdptesFromMemory === true);
  return enumerator.list;
}

class MappingEnumerator {
  private stopped = false;

  constructor(
    private readonly ctx: PagingContext,
    private readonly mem: GuestMemory,
    readonly list: MappingList,
    private readonly maxEntries: number,
  ) {}

  run(regs: X86Registers, pdptesFromMemory: boolean): void {
    const cr3 = regs.cr3;
    switch (this.ctx.mode) {
      case PagingMode.NONE:
        return;
      case PagingMode.BITS32:
        this.visit32(2, (cr3 & 0xfffff000) >>> 0, 0, ACC.ALL);
        return;
      case PagingMode.PAE:
        this.visitPdptes(regs, pdptesFromMemory);
        return;
      default: {
        const root = (Math.floor(cr3 / TWO_POW_32) & 0xfffff) * TWO_POW_32 + ((cr3 & 0xfffff000) >>> 0);
        this.visit64(this.ctx.mode, root, 0, ACC.ALL);
      }
    }
  }

  /** Account one entry read; false once a budget is spent. */
  private budget(): boolean {
    if (this.stopped) return false;
    if (this.list.entriesRead >= this.maxEntries) {
      this.stop();
      return false;
    }
    this.list.entriesRead++;
    return true;
  }

  private stop(): void {
    this.stopped = true;
    this.list.truncated = true;
  }

  private emit(vpn: number, gfn: number, pages: number, access: number, pkey: number): void {
    if (!this.list.add(vpn, gfn, pages, access, pkey)) this.stop();
  }

  /** Offset of a whole table page, or -1 (counted) if it is not in guest memory. */
  private table(gpa: number, bytes: number): number {
    const off = this.mem.resolve(gpa, false);
    if (off < 0 || off > this.mem.view.byteLength - bytes) {
      this.list.badTables++;
      return -1;
    }
    return off;
  }

  private visitPdptes(regs: X86Registers, fromMemory: boolean): void {
    const view = this.mem.view;
    let off = -1;
    if (fromMemory) {
      off = this.table((regs.cr3 & 0xffffffe0) >>> 0, 32);
      if (off < 0) return;
    }
    const rsvdHi = pdpteReservedHi(this.ctx.maxPhyAddr);
    for (let i = 0; i < 4; i++) {
      if (!this.budget()) return;
      const lo = fromMemory ? view.getUint32(off + i * 8, true) : regs.pdpteLo[i]!;
      const hi = fromMemory ? view.getUint32(off + i * 8 + 4, true) : regs.pdpteHi[i]!;
      if ((lo & PTE_P) === 0) continue;
      if (((lo & PDPTE_RESERVED_LO) | (hi & rsvdHi)) !== 0) {
        this.list.reservedEntries++;
        continue;
      }
      this.visit64(2, (hi & 0xfffff) * TWO_POW_32 + ((lo & 0xfffff000) >>> 0), i * 0x40000, ACC.ALL);
    }
  }

  /** 8-byte tables; `level` is the level of the entries in the table at `tableGpa`. */
  private visit64(level: number, tableGpa: number, vpnBase: number, acc: number): void {
    const off = this.table(tableGpa, 4096);
    if (off < 0) return;
    const view = this.mem.view;
    const ctx = this.ctx;
    const pagesPerEntry = 2 ** (9 * (level - 1));
    // The top level of long mode splits into the canonical lower and upper halves (SDM 3.3.7.1).
    const signExtension = level === ctx.mode ? TWO_POW_52 - 512 * pagesPerEntry : 0;
    for (let i = 0; i < 512; i++) {
      if (!this.budget()) return;
      const lo = view.getUint32(off + i * 8, true);
      const hi = view.getUint32(off + i * 8 + 4, true);
      if ((lo & PTE_P) === 0) continue;
      const r = ((lo >>> 4) & 8) | level;
      if (((lo & ctx.rsvdLo[r]!) | (hi & ctx.rsvdHi[r]!)) !== 0) {
        this.list.reservedEntries++;
        continue;
      }
      const access = acc & ((lo & (ACC.WRITE | ACC.USER)) | (~hi >>> 31));
      const vpn = vpnBase + i * pagesPerEntry + (i >= 256 ? signExtension : 0);
      if (level === 1 || (lo & PTE_PS) !== 0) {
        let gfn = (hi & 0xfffff) * TWO_POW_20 + (lo >>> 12);
        gfn -= gfn % pagesPerEntry;
        this.emit(vpn, gfn, pagesPerEntry, access, ctx.pke ? (hi >>> 27) & 15 : 0);
      } else {
        this.visit64(level - 1, (hi & 0xfffff) * TWO_POW_32 + ((lo & 0xfffff000) >>> 0), vpn, access);
      }
      if (this.stopped) return;
    }
  }

  /** 4-byte tables (32-bit paging). */
  private visit32(level: number, tableGpa: number, vpnBase: number, acc: number): void {
    const off = this.table(tableGpa, 4096);
    if (off < 0) return;
    const view = this.mem.view;
    const ctx = this.ctx;
    const pagesPerEntry = level === 2 ? 1024 : 1;
    for (let i = 0; i < 1024; i++) {
      if (!this.budget()) return;
      const lo = view.getUint32(off + i * 4, true);
      if ((lo & PTE_P) === 0) continue;
      const large = level === 2 && ctx.pse && (lo & PTE_PS) !== 0;
      if ((lo & ctx.rsvdLo[large ? 8 | level : level]!) !== 0) {
        this.list.reservedEntries++;
        continue;
      }
      const access = acc & ((lo & (ACC.WRITE | ACC.USER)) | ACC.EXEC);
      const vpn = vpnBase + i * pagesPerEntry;
      if (level === 1) {
        this.emit(vpn, lo >>> 12, 1, access, 0);
      } else if (large) {
        // PSE-36: PA 35:32 in bits 16:13.
        this.emit(vpn, (lo >>> 22) * 1024 + ((lo >>> 13) & 15) * TWO_POW_20, 1024, access, 0);
      } else {
        this.visit32(1, (lo & 0xfffff000) >>> 0, vpn, access);
      }
      if (this.stopped) return;
    }
  }
}
