// x86 page tables in a guest memory image, listed leaf by leaf the way QEMU's `info tlb`
// (target/i386/monitor.c tlb_info_32 / _pae32 / _la48 / _la57) walks them: an entry is followed
// when P is set, PS makes a leaf at the levels that allow one, nothing else is checked, so the
// listing lines up with QEMU's and the two can be diffed. The effective rights are the SDM's
// (4.6): U/S and R/W ANDed over every level, XD ORed (with EFER.NXE), SMEP/SMAP and CR0.WP for
// the kernel's view of user pages.
import type { GuestMemory } from '@hvmmu/core';
import { hex, inputError, sizeText } from '../InspectInput.js';
import { hex16, type InspectMapping } from '../InspectResult.js';

export interface X86InspectRegisters {
  readonly cr0: bigint;
  readonly cr3: bigint;
  readonly cr4: bigint;
  readonly efer: bigint;
}

export type X86Mode = '32-bit' | 'PAE' | '4-level' | '5-level';

const P = 1n;
const W = 2n;
const U = 4n;
const PWT = 8n;
const PCD = 0x10n;
const A = 0x20n;
const D = 0x40n;
const PS = 0x80n;
const G = 0x100n;
const XD = 1n << 63n;
const ADDR_52 = 0x000f_ffff_ffff_f000n;
/** QEMU's masks: what `info tlb` prints of an entry as the physical address. */
const QEMU_ADDR = 0x3_ffff_ffff_f000n;
const ALL64 = (1n << 64n) - 1n;

/** One leaf as `info tlb` would print it, with what the SDM says it grants. */
export interface X86Leaf {
  readonly va: bigint;
  /** Physical address of the page (bits 51:12 of the entry, masked to the page size). */
  readonly pa: bigint;
  /** What QEMU prints in its address column (PAE: `entry & ~0xfff`, XD included; 32-bit 4M: bit 21 kept). */
  readonly qemuPa: bigint;
  readonly size: bigint;
  readonly entry: bigint;
  /** 1 = PTE, 2 = PDE, 3 = PDPTE. */
  readonly level: number;
  readonly user: boolean;
  readonly write: boolean;
  readonly exec: boolean;
  readonly pkey: number;
}

export interface X86Listing {
  readonly mode: X86Mode;
  readonly leaves: X86Leaf[];
  readonly entriesRead: number;
  /** Tables named by present entries that are not in the image (QEMU reads nothing there either). */
  readonly missingTables: number;
  readonly truncated: boolean;
  readonly notes: string[];
  readonly tree: string[] | null;
}

export function x86Mode(regs: X86InspectRegisters): X86Mode {
  if ((regs.cr0 & (1n << 31n)) === 0n) throw inputError(`CR0 ${hex(regs.cr0)} has PG (bit 31) clear: paging is off, so there are no tables to walk`);
  if ((regs.cr4 & (1n << 5n)) === 0n) return '32-bit';
  // EFER.LMA is set by the processor when CR0.PG is set with EFER.LME (SDM 9.8.5): LME alone is long mode here.
  if ((regs.efer & ((1n << 10n) | (1n << 8n))) !== 0n) return (regs.cr4 & (1n << 12n)) !== 0n ? '5-level' : '4-level';
  return 'PAE';
}

/** QEMU's letters for a leaf: X G P D A C T U W (print_pte). */
export function qemuFlags(entry: bigint): string {
  const b = (bit: bigint, c: string): string => ((entry & bit) !== 0n ? c : '-');
  return b(XD, 'X') + b(G, 'G') + b(PS, 'P') + b(D, 'D') + b(A, 'A') + b(PCD, 'C') + b(PWT, 'T') + b(U, 'U') + b(W, 'W');
}

export function listX86Tables(memory: GuestMemory, regs: X86InspectRegisters, options: { maxLeaves: number; tree: boolean }): X86Listing {
  const mode = x86Mode(regs);
  const nx = mode !== '32-bit' && (regs.efer & (1n << 11n)) !== 0n;
  const pke = (mode === '4-level' || mode === '5-level') && (regs.cr4 & (1n << 22n)) !== 0n;
  const view = memory.view;
  const leaves: X86Leaf[] = [];
  const notes: string[] = [];
  const tree: string[] | null = options.tree ? [] : null;
  let entriesRead = 0;
  let missingTables = 0;
  let truncated = false;

  /** Offset of a whole table in the image, or -1. */
  const table = (gpa: bigint, bytes: number): number => {
    if (gpa > BigInt(Number.MAX_SAFE_INTEGER)) return -1;
    const off = memory.resolve(Number(gpa), false);
    if (off < 0 || off + bytes > view.byteLength) return -1;
    return off;
  };
  const read = (off: number, i: number, wide: boolean): bigint => {
    entriesRead++;
    return wide ? view.getBigUint64(off + i * 8, true) : BigInt(view.getUint32(off + i * 4, true));
  };
  const canonical = (va: bigint): bigint => {
    const bits = mode === '5-level' ? 57n : mode === '4-level' ? 48n : 64n;
    return bits < 64n && (va & (1n << (bits - 1n))) !== 0n ? va | (((1n << 64n) - 1n) ^ ((1n << bits) - 1n)) : va;
  };
  const line = (depth: number, text: string): void => {
    tree?.push(`${'  '.repeat(depth)}${text}`);
  };
  const leaf = (
    va: bigint,
    entry: bigint,
    size: bigint,
    level: number,
    qemuMask: bigint,
    user: boolean,
    write: boolean,
    xd: boolean,
    depth: number,
    name: string,
  ): boolean => {
    if (leaves.length >= options.maxLeaves) {
      truncated = true;
      return false;
    }
    const wide = mode !== '32-bit';
    const pa = wide ? entry & ADDR_52 & ~(size - 1n) : entry & 0xffff_f000n & ~(size - 1n);
    // QEMU masks 4K PTEs after clearing PS (the PAT bit there); it never prints PSE-36 high bits.
    const shown = level === 1 ? entry & ~PS : entry;
    const l: X86Leaf = {
      va: canonical(va),
      pa,
      qemuPa: shown & qemuMask,
      size,
      entry,
      level,
      user: user && (entry & U) !== 0n,
      write: write && (entry & W) !== 0n,
      exec: !(nx && (xd || (entry & XD) !== 0n)),
      pkey: pke ? Number((entry >> 59n) & 15n) : 0,
    };
    leaves.push(l);
    line(depth, `${name} ${hex16(entry)} leaf ${hex(l.va)} -> ${hex(pa)} ${sizeText(size)} ${qemuFlags(shown)}`);
    return true;
  };

  /** 8-byte tables from `level` (4 = PML4 … 1 = PT); returns false when the leaf budget stopped the walk. */
  const walk64 = (gpa: bigint, level: number, vaBase: bigint, user: boolean, write: boolean, xd: boolean, depth: number): boolean => {
    const off = table(gpa, 4096);
    if (off < 0) {
      missingTables++;
      line(depth, `(table ${hex(gpa)} is not in the image)`);
      return true;
    }
    const shift = 12n + 9n * BigInt(level - 1);
    const names = ['PTE', 'PDE', 'PDPTE', 'PML4E', 'PML5E'];
    for (let i = 0; i < 512; i++) {
      const e = read(off, i, true);
      if ((e & P) === 0n) continue;
      const va = vaBase + (BigInt(i) << shift);
      const u = user && (e & U) !== 0n;
      const w = write && (e & W) !== 0n;
      const x = xd || (e & XD) !== 0n;
      const name = `${names[level - 1]}[${i}]`;
      // QEMU's PAE masks keep every high bit (XD shows in the address column): ~0xfff and ~0xfffff.
      if (level === 1) {
        if (!leaf(va, e, 1n << 12n, 1, mode === 'PAE' ? ALL64 & ~0xfffn : QEMU_ADDR, user, write, xd, depth, name)) return false;
      } else if ((level === 2 || level === 3) && (e & PS) !== 0n) {
        const size = 1n << shift;
        if (!leaf(va, e, size, level, mode === 'PAE' ? ALL64 & ~0xf_ffffn : QEMU_ADDR & ~(size - 1n), user, write, xd, depth, name)) return false;
      } else {
        const next = e & QEMU_ADDR;
        line(
          depth,
          `${name} ${hex16(e)} -> ${['', 'PT', 'PD', 'PDPT', 'PML4'][level - 1]} ${hex(next)} ${u ? 'U' : 'S'}${w ? 'W' : 'R'}${nx && x ? '-' : 'X'}`,
        );
        if (!walk64(next, level - 1, va, u, w, x, depth + 1)) return false;
      }
    }
    return true;
  };

  const cr3 = regs.cr3;
  if (mode === '32-bit') {
    const root = cr3 & 0xffff_f000n;
    line(0, `CR3 ${hex(cr3)}: page directory ${hex(root)} (32-bit paging)`);
    const pd = table(root, 4096);
    if (pd < 0) throw inputError(`CR3 ${hex(cr3)} names a page directory at ${hex(root)}, which is not in the image`);
    const pse = (regs.cr4 & 0x10n) !== 0n;
    outer: for (let i = 0; i < 1024; i++) {
      const pde = read(pd, i, false);
      if ((pde & P) === 0n) continue;
      const va = BigInt(i) << 22n;
      if (pse && (pde & PS) !== 0n) {
        if (!leaf(va, pde, 1n << 22n, 2, 0xffff_ffffn & ~((1n << 21n) - 1n), true, true, false, 1, `PDE[${i}]`)) break;
        continue;
      }
      const ptGpa = pde & 0xffff_f000n;
      line(1, `PDE[${i}] ${hex16(pde)} -> PT ${hex(ptGpa)} ${(pde & U) !== 0n ? 'U' : 'S'}${(pde & W) !== 0n ? 'W' : 'R'}X`);
      const pt = table(ptGpa, 4096);
      if (pt < 0) {
        missingTables++;
        line(2, `(table ${hex(ptGpa)} is not in the image)`);
        continue;
      }
      for (let j = 0; j < 1024; j++) {
        const pte = read(pt, j, false);
        if ((pte & P) === 0n) continue;
        if (!leaf(va + (BigInt(j) << 12n), pte, 1n << 12n, 1, 0xffff_f000n, (pde & U) !== 0n, (pde & W) !== 0n, false, 2, `PTE[${j}]`)) break outer;
      }
    }
  } else if (mode === 'PAE') {
    const root = cr3 & 0xffff_ffe0n;
    line(0, `CR3 ${hex(cr3)}: PDPT ${hex(root)} (PAE paging)`);
    const pdpt = table(root, 32);
    if (pdpt < 0) throw inputError(`CR3 ${hex(cr3)} names a PDPT at ${hex(root)}, which is not in the image`);
    let withA = 0;
    for (let i = 0; i < 4; i++) {
      const e = read(pdpt, i, true);
      if ((e & P) === 0n) continue;
      if ((e & A) !== 0n) withA++;
      const pdGpa = e & QEMU_ADDR;
      line(1, `PDPTE[${i}] ${hex16(e)} -> PD ${hex(pdGpa)}`);
      // The PDPTE has no U/S, R/W or XD (SDM 4.4.1): the rights start at the PD.
      if (!walk64(pdGpa, 2, BigInt(i) << 30n, true, true, false, 2)) break;
    }
    if (withA > 0) {
      notes.push(`${withA} PDPTE(s) have A (bit 5) set: QEMU's TCG sets it, Intel reserves it (a MOV CR3 would #GP); listed as QEMU lists them`);
    }
  } else {
    const root = cr3 & ADDR_52;
    const top = mode === '5-level' ? 5 : 4;
    line(0, `CR3 ${hex(cr3)}: ${top === 5 ? 'PML5' : 'PML4'} ${hex(root)} (${mode} paging)`);
    if (table(root, 4096) < 0) throw inputError(`CR3 ${hex(cr3)} names a ${top === 5 ? 'PML5' : 'PML4'} table at ${hex(root)}, which is not in the image`);
    walk64(root, top, 0n, true, true, false, 1);
  }
  return { mode, leaves, entriesRead, missingTables, truncated, notes, tree };
}

/** A leaf as the command prints it; the kernel's rights follow CR0.WP, CR4.SMEP and CR4.SMAP for user pages. */
export function x86Mapping(l: X86Leaf, regs: X86InspectRegisters): InspectMapping {
  const wp = (regs.cr0 & (1n << 16n)) !== 0n;
  const smep = (regs.cr4 & (1n << 20n)) !== 0n;
  const smap = (regs.cr4 & (1n << 21n)) !== 0n;
  const user = l.user ? `r${l.write ? 'w' : '-'}${l.exec ? 'x' : '-'}` : '---';
  const kernelData = !(l.user && smap);
  const supervisor = `${kernelData ? 'r' : '-'}${kernelData && (l.write || !wp) ? 'w' : '-'}${l.exec && !(l.user && smep) ? 'x' : '-'}`;
  return {
    va: hex(l.va),
    vaEnd: hex(l.va + l.size),
    pa: hex(l.pa),
    pageSize: sizeText(l.size),
    user,
    supervisor,
    flags: qemuFlags(l.level === 1 ? l.entry & ~PS : l.entry),
    detail: { level: l.level, entry: hex(l.entry), pkey: l.pkey, access: `${l.user ? 'U' : 'S'}${l.write ? 'W' : 'R'}${l.exec ? 'X' : '-'}` },
  };
}

/** The leaf as a line of QEMU's `info tlb`: `%016lx: %016lx FLAGS`. */
export function qemuInfoTlbLine(l: X86Leaf): string {
  return `${hex16(l.va)}: ${hex16(l.qemuPa)} ${qemuFlags(l.level === 1 ? l.entry & ~PS : l.entry)}`;
}
