import { FlatGuestMemory, type GuestMemory } from '@hvmmu/core';
import { RadixAccess, RadixRegisters, RadixTranslation, RadixTreeBuilder, RadixWalker } from '@hvmmu/ppc-radix';
import { pairedNs, speedFigure, type BenchContext, type BenchFigure, type BenchSuite } from '../../../bench/src/BenchFigure.js';

const MiB = 1 << 20;
const GUEST_BASE = 64 * MiB;
const PAGES = 256;

/** Guest real address = host address - GUEST_BASE (where the guest builds its own tables). */
class GuestRealView implements GuestMemory {
  constructor(private readonly host: FlatGuestMemory) {}
  get view(): DataView {
    return this.host.view;
  }
  resolve(gpa: number, write: boolean): number {
    return gpa >= 0 && gpa < 64 * MiB ? this.host.resolve(gpa + GUEST_BASE, write) : -1;
  }
}

/**
 * The 2-D walk: a guest's 4-level process-scoped tree (64K pages) under a
 * 4-level partition-scoped tree (64K pages), with the partition- and
 * process-table caches warm as the processor keeps them — 24 entry reads
 * per translation (4 process levels × (4 partition reads + 1) + 4 for the
 * final address). Against a raw 2-D walk reading the same 24
 * entries, read the way x86's baseline is: a raw walk that reads each
 * entry big-endian as two halves and checks nothing. Target from the radix
 * issue: raw / walk ≥ 0.5.
 */
function twoDimensionalWalk(ctx: BenchContext): BenchFigure {
  const host = new FlatGuestMemory(new ArrayBuffer(128 * MiB));
  const l0 = new RadixTreeBuilder(host, 1 * MiB, 32 * MiB);
  const partitionTable = l0.createProcessTable(0);
  const partitionTree = l0.createTree('64k');
  for (let g = 0; g < 64 * MiB; g += 1 << 16) partitionTree.map(g, g + GUEST_BASE, 16, { read: true, write: true, execute: true });
  const guest = new RadixTreeBuilder(new GuestRealView(host), 32 * MiB, 16 * MiB);
  const processTable = guest.createProcessTable(0);
  const tree = guest.createTree('64k');
  processTable.setProcess(1, tree);
  partitionTable.setPartition(1, partitionTree, processTable.pointer());
  // Pages spread over many tables: each EA touches a different PMD/PTE table.
  const eas = new Float64Array(PAGES);
  for (let p = 0; p < PAGES; p++) {
    const ea = (p % 16) * 2 ** 39 + ((p >> 4) % 16) * 2 ** 30 + ((p * 7) % 512) * 2 ** 21 + (p % 32) * 2 ** 16;
    eas[p] = ea;
    tree.map(ea, (p % 512) * 2 ** 16, 16, { read: true, write: true });
  }
  const regs = new RadixRegisters();
  [regs.ptcrHi, regs.ptcrLo] = partitionTable.pointer();
  regs.lpidr = 1;
  regs.pidr = 1;
  const walker = new RadixWalker(host, { cacheTableEntries: true });
  const out = new RadixTranslation();
  const eaHis = new Uint32Array(PAGES);
  const eaLos = new Uint32Array(PAGES);
  for (let p = 0; p < PAGES; p++) {
    eaHis[p] = Math.floor(eas[p]! / 2 ** 32);
    eaLos[p] = eas[p]! >>> 0;
  }
  const view = host.view;
  const [pRootHi, pRootLo] = partitionTree.rootEntry();
  const [gRootHi, gRootLo] = tree.rootEntry();
  const pRoot = (pRootHi & 0x0fff_ffff) * 2 ** 32 + ((pRootLo & 0xffff_ff00) >>> 0);
  const gRoot = (gRootHi & 0x0fff_ffff) * 2 ** 32 + ((gRootLo & 0xffff_ff00) >>> 0);
  const ours = (): number => {
    let s = 0;
    for (let p = 0; p < PAGES; p++) {
      walker.translate(regs, eaHis[p]!, eaLos[p]!, RadixAccess.LOAD, out);
      s += out.ra;
    }
    return s;
  };
  // The baseline, as x86's: a raw walk reading the same 24 entries big-endian as two
  // halves, each next address from the entry just read, no checks, integer index
  // arithmetic on the address halves (shifts 39/30/21/16, 13/9/9/5 index bits).
  const SHIFTS = [39, 30, 21, 16];
  const NLS = [13, 9, 9, 5];
  const index = (ah: number, al: number, level: number): number => {
    const shift = SHIFTS[level]!;
    const mask = (1 << NLS[level]!) - 1;
    return shift >= 32 ? (ah >>> (shift - 32)) & mask : ((al >>> shift) | (ah << (32 - shift))) & mask;
  };
  const rawPartition = (g: number): number => {
    const gl = g >>> 0;
    const gh = (g - gl) / 2 ** 32;
    let table = pRoot;
    for (let level = 0; level < 4; level++) {
      const off = table + index(gh, gl, level) * 8;
      const hi = view.getUint32(off, false);
      const lo = view.getUint32(off + 4, false);
      // A directory's NLB, or at the last level the 64K leaf's RPN.
      table = (hi & 0x01ff_ffff) * 2 ** 32 + ((lo & (level === 3 ? 0xffff_0000 : 0xffff_ff00)) >>> 0);
    }
    return table + (g & 0xffff);
  };
  const raw = (): number => {
    let s = 0;
    for (let p = 0; p < PAGES; p++) {
      const ah = eaHis[p]! & 0xf_ffff;
      const al = eaLos[p]!;
      let table = gRoot;
      for (let level = 0; level < 4; level++) {
        const off = rawPartition(table + index(ah, al, level) * 8);
        const hi = view.getUint32(off, false);
        const lo = view.getUint32(off + 4, false);
        table = (hi & 0x01ff_ffff) * 2 ** 32 + ((lo & (level === 3 ? 0xffff_0000 : 0xffff_ff00)) >>> 0);
      }
      s += rawPartition(table + (al & 0xffff));
    }
    return s;
  };
  if (ours() !== raw()) throw new Error('bench set-up: the walk and the raw walk disagree');
  for (let p = 0; p < PAGES; p++) {
    walker.translate(regs, eaHis[p]!, eaLos[p]!, RadixAccess.LOAD, out);
    if (out.refs !== 24) throw new Error(`bench set-up: walk ${p} read ${out.refs} entries, not 24`);
  }
  ours();
  const t = pairedNs(ours, raw, PAGES, ctx);
  return speedFigure(t, 'ns/walk', 'raw 2-D walk (24 big-endian entry reads, no checks) / checked 2-D walk', '≥ 0.5');
}

export const radixWalkSuite: BenchSuite = {
  name: 'ppc.radix.walk',
  run: (ctx) => ({ twoDimensionalVsRaw: twoDimensionalWalk(ctx) }),
};
