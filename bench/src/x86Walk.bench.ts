import { Access, FlatGuestMemory } from '@hvmmu/core';
import { CR0, CR4, EFER, GuestWalk, GuestWalker, X86Registers } from '@hvmmu/x86-shadow/internal';
import { pairedNs, speedFigure, type BenchContext, type BenchFigure, type BenchSuite } from './BenchFigure.js';

const TWO_POW_32 = 0x1_0000_0000;
const PTE_P = 1,
  PTE_W = 2,
  PTE_U = 4,
  PTE_A = 0x20,
  PTE_D = 0x40;
const WALKS = 2048;

/**
 * 4-level guest tables for the walk benchmark: `pages` 4 KiB pages spread
 * over many page tables (every 7th PT slot, so consecutive walks touch
 * different PTs), in a flat 32 MiB image. Returns the image, CR3 and the vpns.
 */
export function buildLongModeTables(pages: number): { image: Uint8Array; cr3: number; vpns: Float64Array } {
  const image = new Uint8Array(32 << 20);
  const view = new DataView(image.buffer);
  let next = 1; // next free table frame (frame 0 unused)
  const alloc = (): number => next++ * 4096;
  const set = (table: number, index: number, target: number, flags: number, nx: boolean): void => {
    view.setUint32(table + index * 8, (target % TWO_POW_32) + flags, true);
    view.setUint32(table + index * 8 + 4, Math.floor(target / TWO_POW_32) + (nx ? 0x80000000 : 0), true);
  };
  const get = (table: number, index: number): number => {
    const lo = view.getUint32(table + index * 8, true);
    return (lo & PTE_P) === 0 ? -1 : (view.getUint32(table + index * 8 + 4, true) & 0xfffff) * TWO_POW_32 + ((lo & 0xfffff000) >>> 0);
  };
  const pml4 = alloc();
  const vpns = new Float64Array(pages);
  const dataBase = 16 << 20; // data frames live above the tables
  for (let p = 0; p < pages; p++) {
    // Spread: vary PML4, PDPT and PD indices so the walk does not stay in one table.
    const vpn = (p % 4) * 2 ** 27 + ((p >> 2) % 8) * 2 ** 18 + (((p * 7) >> 5) % 512) * 512 + (p % 32) * 16;
    vpns[p] = vpn;
    let table = pml4;
    for (let level = 4; level > 1; level--) {
      const index = Math.floor(vpn / 2 ** (9 * (level - 1))) % 512;
      let child = get(table, index);
      if (child < 0) {
        child = alloc();
        set(table, index, child, PTE_P | PTE_W | PTE_U | PTE_A, false);
      }
      table = child;
    }
    set(table, vpn % 512, dataBase + (p % 1024) * 4096, PTE_P | PTE_W | PTE_U | PTE_A | PTE_D, true);
  }
  if (next * 4096 >= dataBase) throw new Error('bench tables overflow');
  return { image, cr3: pml4, vpns };
}

/**
 * The baseline every x86 speed figure is expressed in: a raw 4-level walk
 * of `vpns` over the tables at `cr3`, each entry read as two 32-bit halves,
 * no checks. Returns a function doing all the walks (the sum of leaf frames).
 */
export function rawLongModeWalk(view: DataView, cr3: number, vpns: Float64Array): () => number {
  const walks = vpns.length;
  return (): number => {
    let s = 0;
    for (let k = 0; k < walks; k++) {
      const vpn = vpns[k]!;
      let table = cr3;
      for (let level = 4; level >= 1; level--) {
        const index = level <= 3 ? (vpn >>> (9 * (level - 1))) & 511 : Math.floor(vpn / 2 ** 27) & 511;
        const off = table + index * 8;
        const lo = view.getUint32(off, true);
        const hi = view.getUint32(off + 4, true);
        table = (hi & 0xfffff) * TWO_POW_32 + ((lo & 0xfffff000) >>> 0);
      }
      s += table / 4096;
    }
    return s;
  };
}

/**
 * KVM-equivalent guest walk (full permission checks, reserved bits, A/D
 * updates) against a raw 4-level walk over the same tables that reads each
 * entry as two 32-bit halves and checks nothing. Target: raw/ours ≥ 0.5.
 */
function walkVsRaw(ctx: BenchContext): BenchFigure {
  const { image, cr3, vpns } = buildLongModeTables(WALKS);
  const mem = new FlatGuestMemory(image);
  const regs = new X86Registers();
  regs.cr0 = CR0.PG | CR0.PE | CR0.WP;
  regs.cr4 = CR4.PAE | CR4.SMEP | CR4.SMAP;
  regs.efer = EFER.LME | EFER.LMA | EFER.NXE;
  regs.cr3 = cr3;
  const walker = new GuestWalker();
  const out = new GuestWalk();
  const view = mem.view;

  const ours = (): number => {
    let s = 0;
    for (let k = 0; k < WALKS; k++) {
      walker.walk(regs, mem, vpns[k]!, Access.USER | ((k & 1) !== 0 ? Access.WRITE : Access.READ), out, true);
      s += out.gfn;
    }
    return s;
  };
  const raw = rawLongModeWalk(view, cr3, vpns);
  if (ours() !== raw()) throw new Error('bench set-up: walker and raw walk disagree on the frames');
  const t = pairedNs(ours, raw, WALKS, ctx);
  return speedFigure(t, 'ns/walk', 'raw 4-level walk time / checked walk with A/D time', '≥ 0.5');
}

export const x86WalkSuite: BenchSuite = {
  name: 'x86.walk',
  run(ctx) {
    return { longMode4VsRaw: walkVsRaw(ctx) };
  },
};
