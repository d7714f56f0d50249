import { HvmmuError, hex, type MemslotTable } from '@hvmmu/core';
import { CR0, CR4, EFER } from '../walker/X86Registers.js';
import type { ControlRegisters } from '../walker/X86Registers.js';

/** The paging modes a guest can build tables for (SDM table 4-1). */
export type X86GuestPagingMode = 'bits32' | 'pae' | 'long4' | 'long5';

/** Guest entry bits (SDM 4.3–4.5). NX is bit 63, passed as a flag. */
export const GuestPte = {
  P: 1 << 0,
  W: 1 << 1,
  U: 1 << 2,
  PWT: 1 << 3,
  PCD: 1 << 4,
  A: 1 << 5,
  D: 1 << 6,
  PS: 1 << 7,
  G: 1 << 8,
} as const;

export interface GuestMapping {
  /** Writable (R/W = 1). Default true. */
  readonly write?: boolean;
  /** User accessible (U/S = 1). Default true. */
  readonly user?: boolean;
  /** Not executable (XD = 1; not in 32-bit mode). Default false. */
  readonly noExec?: boolean;
  /** Page size: 4 KiB, 2 MiB (PAE/long), 4 MiB (32-bit PSE) or 1 GiB (long). Default 4 KiB. */
  readonly pageSize?: number;
  /** Pre-set A and D in the leaf (as an OS that wants no A/D faults). Default false. */
  readonly accessedDirty?: boolean;
}

const TWO_POW_32 = 0x1_0000_0000;
const KiB4 = 4096;

/**
 * Builds a guest's own page tables in guest memory, the way guest firmware
 * or an OS kernel would, with host-side (VMM) writes: for setting up a guest
 * before it runs in an emulator, a demo or an example. Tables come from a
 * bump allocator over a guest-physical range you give it; upper levels are
 * created on demand with P|W|U (permissions are restricted at the leaf).
 *
 * The guest itself edits its tables through its own mappings (see
 * `entryGpa`, and `X86VcpuMmu.write`, which emulates writes to shadowed
 * tables); this class is the VMM's view.
 */
export class GuestPageTables {
  /** Guest physical address of the top table (the CR3 base; the PDPT in PAE mode). */
  readonly rootGpa: number;
  private nextGpa: number;

  constructor(
    private readonly mem: MemslotTable,
    readonly mode: X86GuestPagingMode,
    /** Guest-physical range the tables are allocated from: [firstGpa, limitGpa). */
    firstGpa: number,
    private readonly limitGpa: number,
  ) {
    if (firstGpa % KiB4 !== 0 || limitGpa <= firstGpa) {
      throw new HvmmuError('BAD_ARGUMENT', `table range [${hex(firstGpa)}, ${hex(limitGpa)}) must be page aligned and non-empty`);
    }
    this.nextGpa = firstGpa;
    this.rootGpa = this.allocTable();
  }

  /** Levels of this mode's tables. */
  get levels(): number {
    return this.mode === 'long5' ? 5 : this.mode === 'long4' ? 4 : this.mode === 'pae' ? 3 : 2;
  }

  /** Bytes of table memory used so far. */
  get tableBytes(): number {
    return this.nextGpa - (this.rootGpa - (this.rootGpa % KiB4));
  }

  /** CR0/CR3/CR4/EFER that select this mode with these tables (WP on; NX on where it exists). */
  controlRegisters(extra: { cr0?: number; cr4?: number; efer?: number } = {}): ControlRegisters<number> {
    const cr0 = (CR0.PE | CR0.PG | CR0.WP | (extra.cr0 ?? 0)) >>> 0;
    const cr4Extra = extra.cr4 ?? 0;
    const eferExtra = extra.efer ?? 0;
    switch (this.mode) {
      case 'bits32':
        return { cr0, cr3: this.rootGpa, cr4: CR4.PSE | cr4Extra, efer: eferExtra };
      case 'pae':
        return { cr0, cr3: this.rootGpa, cr4: CR4.PAE | cr4Extra, efer: EFER.NXE | eferExtra };
      case 'long4':
        return { cr0, cr3: this.rootGpa, cr4: CR4.PAE | cr4Extra, efer: EFER.LME | EFER.NXE | eferExtra };
      case 'long5':
        return { cr0, cr3: this.rootGpa, cr4: CR4.PAE | CR4.LA57 | cr4Extra, efer: EFER.LME | EFER.NXE | eferExtra };
    }
  }

  /** Map the page at virtual address va to guest physical gpa. */
  map(va: number, gpa: number, mapping: GuestMapping = {}): void {
    const size = mapping.pageSize ?? KiB4;
    const leafLevel = this.leafLevelFor(size);
    if (va % size !== 0 || gpa % size !== 0) {
      throw new HvmmuError('BAD_ARGUMENT', `va ${hex(va)} and gpa ${hex(gpa)} must be aligned to the page size ${hex(size)}`);
    }
    const table = this.tableFor(va, leafLevel, true);
    let lo = GuestPte.P;
    if (mapping.write ?? true) lo |= GuestPte.W;
    if (mapping.user ?? true) lo |= GuestPte.U;
    if (mapping.accessedDirty === true) lo |= GuestPte.A | GuestPte.D;
    if (leafLevel > 1) lo |= GuestPte.PS;
    let hi = 0;
    if (mapping.noExec === true) {
      if (this.mode === 'bits32') throw new HvmmuError('BAD_ARGUMENT', '32-bit paging has no XD bit');
      hi = 0x8000_0000;
    }
    if (this.mode === 'bits32') {
      // 4-byte entries; a 4 MiB PDE carries PA bits 35:32 in bits 16:13 (PSE-36 as KVM models it).
      const high = Math.floor(gpa / TWO_POW_32);
      if (high > 0xf || (leafLevel === 1 && high !== 0)) {
        throw new HvmmuError('BAD_ARGUMENT', `gpa ${hex(gpa)} is beyond what 32-bit paging can map`);
      }
      const entry = leafLevel === 2 ? ((gpa & 0xffc0_0000) | (high << 13) | lo) >>> 0 : ((gpa & 0xffff_f000) | lo) >>> 0;
      this.mem.write32(this.entryAddress(table, va, leafLevel), entry, true);
    } else {
      this.mem.write64Halves(this.entryAddress(table, va, leafLevel), hi + Math.floor(gpa / TWO_POW_32), (((gpa >>> 0) & 0xffff_f000) | lo) >>> 0, true);
    }
  }

  /** Clear the leaf entry for va (if the tables down to it exist). */
  unmap(va: number, pageSize: number = KiB4): void {
    const leafLevel = this.leafLevelFor(pageSize);
    const table = this.tableFor(va, leafLevel, false);
    if (table < 0) return;
    const at = this.entryAddress(table, va, leafLevel);
    if (this.mode === 'bits32') this.mem.write32(at, 0, true);
    else this.mem.write64Halves(at, 0, 0, true);
  }

  /**
   * Guest physical address of the entry that translates va at `level`, or
   * -1 if the tables above it do not exist: what a guest kernel computes to
   * edit its own tables through a mapping of them.
   */
  entryGpa(va: number, level: number = 1): number {
    if (!Number.isInteger(level) || level < 1 || level > this.levels) {
      throw new HvmmuError('BAD_ARGUMENT', `level must be 1..${this.levels}, got ${level}`);
    }
    const table = this.tableFor(va, level, false);
    return table < 0 ? -1 : this.entryAddress(table, va, level);
  }

  private leafLevelFor(size: number): number {
    if (size === KiB4) return 1;
    if (size === 2 << 20 && this.mode !== 'bits32') return 2;
    if (size === 4 << 20 && this.mode === 'bits32') return 2;
    if (size === 1 << 30 && (this.mode === 'long4' || this.mode === 'long5')) return 3;
    throw new HvmmuError('BAD_ARGUMENT', `page size ${hex(size)} does not exist in ${this.mode} paging`);
  }

  private entrySize(): number {
    return this.mode === 'bits32' ? 4 : 8;
  }

  private index(va: number, level: number): number {
    if (this.mode === 'bits32') return Math.floor(va / 2 ** (12 + 10 * (level - 1))) % 1024;
    if (this.mode === 'pae' && level === 3) return Math.floor(va / 2 ** 30) % 4;
    return Math.floor(va / 2 ** (12 + 9 * (level - 1))) % 512;
  }

  private entryAddress(table: number, va: number, level: number): number {
    return table + this.index(va, level) * this.entrySize();
  }

  /** The table holding va's entry at `level`, creating missing tables above it if `create`. */
  private tableFor(va: number, level: number, create: boolean): number {
    let table = this.rootGpa;
    for (let l = this.levels; l > level; l--) {
      const at = this.entryAddress(table, va, l);
      let lo: number;
      let hi = 0;
      if (this.mode === 'bits32') lo = this.mem.read32(at, true);
      else {
        lo = this.mem.read64Lo(at, true);
        hi = this.mem.read64Hi(at, true);
      }
      if ((lo & GuestPte.P) === 0) {
        if (!create) return -1;
        const child = this.allocTable();
        // A PAE PDPTE has only P among the low flags (bits 1-2 and 5-8 are reserved, SDM 4.4.1).
        const flags = this.mode === 'pae' && l === 3 ? GuestPte.P : GuestPte.P | GuestPte.W | GuestPte.U;
        if (this.mode === 'bits32') this.mem.write32(at, (child | flags) >>> 0, true);
        else this.mem.write64Halves(at, Math.floor(child / TWO_POW_32), ((child >>> 0) | flags) >>> 0, true);
        table = child;
      } else {
        if ((lo & GuestPte.PS) !== 0 && !(this.mode === 'pae' && l === 3)) {
          throw new HvmmuError('BAD_ARGUMENT', `va ${hex(va)} is inside a large page mapped at level ${l}`);
        }
        table = (hi & 0xfffff) * TWO_POW_32 + ((lo & 0xffff_f000) >>> 0);
      }
    }
    return table;
  }

  private allocTable(): number {
    const gpa = this.nextGpa;
    if (gpa + KiB4 > this.limitGpa) {
      throw new HvmmuError('GUEST_NO_MEMORY', `guest page-table range exhausted at ${hex(gpa)} (limit ${hex(this.limitGpa)})`);
    }
    this.nextGpa += KiB4;
    this.mem.writeBytes(gpa, new Uint8Array(KiB4));
    return gpa;
  }
}
