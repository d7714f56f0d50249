// POWER radix trees in a guest memory image (POWER ISA v3.0 Book III 6.7), listed with
// @hvmmu/ppc-radix's enumerateRadixTree: the partition-table entry (given, as a pseries
// virtual hypervisor supplies it, or read from the partition table PTCR names at the LPID),
// the process table it points to, and the trees of the PIDs asked for. Where the PATE has a
// partition-scoped tree, every table address and leaf is a guest real address translated
// through it (the 2-D walk); otherwise guest real is the image's address (flat, as under QEMU's
// pseries machine).
import type { GuestMemory } from '@hvmmu/core';
import { hex, inputError, pageSizeText } from '../InspectInput.js';
import { hex16, type InspectMapping } from '../InspectResult.js';
import type { PpcRadixPackage } from '../PpcPackages.js';

export interface RadixInspectOptions {
  /** The PATE (dw0, dw1) a virtual hypervisor supplies, or null to read it from PTCR's table. */
  readonly pate: readonly [bigint, bigint] | null;
  readonly ptcr: bigint | null;
  readonly lpid: number;
  readonly pid: number;
  /** Quadrants to list: 0 = (LPID, PID), 3 = (LPID, PID 0) — what the guest sees at 0x0… and 0xc…. */
  readonly quadrants: readonly (0 | 3)[];
  readonly maxLeaves: number;
  readonly tree: boolean;
  /** MSR, AMR, IAMR for --translate (QEMU's gva2gpa answers). */
  readonly msr: bigint;
  readonly amr: bigint;
  readonly iamr: bigint;
  readonly translate: readonly bigint[];
}

export interface RadixInspection {
  readonly mappings: InspectMapping[];
  readonly summary: Record<string, string | number | boolean>;
  readonly notes: string[];
  readonly tree: string[] | null;
  readonly translations: { ea: string; ra: string | null }[];
}

const MASK_BASE = 0x0fff_ffff_ffff_f000n;
const MASK_NLB = 0x0fff_ffff_ffff_ff00n;
const V = 1n << 63n;
const L = 1n << 62n;

function prot(bits: number): string {
  return `${bits & 1 ? 'r' : '-'}${bits & 2 ? 'w' : '-'}${bits & 4 ? 'x' : '-'}`;
}

function readBe64(memory: GuestMemory, address: bigint): bigint | null {
  if (address < 0n || address > BigInt(Number.MAX_SAFE_INTEGER)) return null;
  const off = memory.resolve(Number(address), false);
  if (off < 0 || off + 8 > memory.view.byteLength) return null;
  return memory.view.getBigUint64(off, false);
}

export function inspectRadix(radix: PpcRadixPackage, memory: GuestMemory, image: string, o: RadixInspectOptions): RadixInspection {
  const notes: string[] = [];
  const summary: Record<string, string | number | boolean> = {};
  let dw0: bigint;
  let dw1: bigint;
  if (o.pate !== null) {
    [dw0, dw1] = o.pate;
    summary.pateSource = 'given (virtual hypervisor)';
  } else if (o.ptcr !== null) {
    const patb = o.ptcr & MASK_BASE;
    const pats = Number(o.ptcr & 0x1fn);
    if (pats > 24) throw inputError(`--ptcr ${hex(o.ptcr)}: PATS ${pats} is larger than any partition table (at most 24: 2^36 bytes)`);
    const entries = 2 ** (pats + 12) / 16;
    if (o.lpid >= entries) throw inputError(`--lpid ${o.lpid} is outside the partition table (${entries} entries, PATS ${pats}) that --ptcr names`);
    const at = patb + BigInt(o.lpid) * 16n;
    const a = readBe64(memory, at);
    const b = readBe64(memory, at + 8n);
    if (a === null || b === null)
      throw inputError(`LPID ${o.lpid}'s partition-table entry at ${hex(at)} (PTCR ${hex(o.ptcr)}) is not in the memory image '${image}'`);
    [dw0, dw1] = [a, b];
    summary.pateSource = `partition table ${hex(patb)} (PATS ${pats}), LPID ${o.lpid}`;
  } else {
    throw inputError('--arch radix needs the partition-table entry: --pate DW0,DW1 (a pseries guest: QEMU spapr_get_pate) or --ptcr VALUE with --lpid N');
  }
  summary.pateDw0 = hex(dw0);
  summary.pateDw1 = hex(dw1);
  if ((dw0 & V) === 0n)
    throw inputError(`the partition-table entry dw0 ${hex(dw0)} has HR (bit 63) clear: that partition uses the hashed page table (try --arch hpt)`);

  // The partition-scoped tree, if any: guest real -> real.
  const partitionRoot = dw0 & MASK_NLB;
  let gra2ra: (gra: number) => number = (gra) => gra;
  let partitionLeaves = 0;
  if (partitionRoot !== 0n) {
    const listing = radix.enumerateRadixTree(memory, Number(dw0 >> 32n), Number(dw0 & 0xffff_ffffn), { quadrant: null });
    const leaves = listing.leaves.map((l) => ({ gra: Number(l.address), ra: Number(l.ra), size: 2 ** l.pageShift })).sort((x, y) => x.gra - y.gra);
    partitionLeaves = leaves.length;
    if (listing.badEntries > 0) notes.push(`partition-scoped tree: ${listing.badEntries} bad entries skipped`);
    gra2ra = (gra) => {
      let lo = 0;
      let hi = leaves.length - 1;
      while (lo <= hi) {
        const mid = (lo + hi) >> 1;
        const l = leaves[mid]!;
        if (gra < l.gra) hi = mid - 1;
        else if (gra >= l.gra + l.size) lo = mid + 1;
        else return l.ra + (gra - l.gra);
      }
      return -1;
    };
    summary.partitionScopedLeaves = partitionLeaves;
  } else {
    summary.partitionScope = 'flat (guest real = image address)';
  }

  const prtb = dw1 & MASK_BASE;
  const prts = Number(dw1 & 0x1fn);
  const processEntries = 2 ** (prts + 12) / 16;
  summary.processTable = hex(prtb);
  summary.processTableEntries = processEntries;
  if (o.pid >= processEntries)
    throw inputError(`--pid ${o.pid} is outside the process table (${processEntries} entries, PRTS ${prts}) in PATE dw1 ${hex(dw1)}`);

  const mappings: InspectMapping[] = [];
  const tree: string[] | null = o.tree ? [] : null;
  tree?.push(
    `PATE ${hex16(dw0)} ${hex16(dw1)}: process table ${hex(prtb)} (${processEntries} entries)${partitionRoot !== 0n ? `, partition-scoped tree ${hex(partitionRoot)}` : ''}`,
  );
  let entriesRead = 0;
  let badEntries = 0;
  let truncated = false;
  for (const quadrant of o.quadrants) {
    if (mappings.length >= o.maxLeaves) {
      truncated = true;
      break;
    }
    const pid = quadrant === 0 ? o.pid : 0;
    const entryGra = prtb + BigInt(pid) * 16n;
    const entryRa = gra2ra(Number(entryGra));
    const prte0 = entryRa < 0 ? null : readBe64(memory, BigInt(entryRa));
    if (prte0 === null) throw inputError(`PID ${pid}'s process-table entry (guest real ${hex(entryGra)}) is not in the memory image '${image}'`);
    tree?.push(`  quadrant ${quadrant} (PID ${pid}): process-table entry ${hex16(prte0)}`);
    if (prte0 === 0n) {
      notes.push(`PID ${pid} has no process-table entry (0): quadrant ${quadrant} maps nothing`);
      continue;
    }
    const listing = radix.enumerateRadixTree(memory, Number(prte0 >> 32n), Number(prte0 & 0xffff_ffffn), {
      quadrant,
      maxLeaves: o.maxLeaves - mappings.length,
      ...(partitionRoot !== 0n ? { tableAddress: gra2ra } : {}),
    });
    entriesRead += listing.entriesRead;
    badEntries += listing.badEntries;
    truncated ||= listing.truncated;
    for (const leaf of listing.leaves) {
      const size = 1n << BigInt(leaf.pageShift);
      const privileged = (leaf.pteLo & 0x8) !== 0;
      const flags = `${leaf.referenced ? 'R' : '-'}${leaf.changed ? 'C' : '-'}${leaf.att}${privileged ? 'P' : 'U'}${leaf.pteLo & 0x4 ? 'r' : '-'}${leaf.pteLo & 0x2 ? 'w' : '-'}${leaf.pteLo & 0x1 ? 'x' : '-'}`;
      const detail: Record<string, string | number | boolean> = {
        pid,
        quadrant,
        entry: hex((BigInt(leaf.pteHi >>> 0) << 32n) | BigInt(leaf.pteLo >>> 0)),
        entryAddress: hex(leaf.entryAddress),
        att: leaf.att,
      };
      if (partitionRoot !== 0n) {
        const ra = leaf.ra <= BigInt(Number.MAX_SAFE_INTEGER) ? gra2ra(Number(leaf.ra)) : -1;
        detail.hostRa = ra < 0 ? 'unmapped' : hex(ra);
      }
      mappings.push({
        va: hex(leaf.address),
        vaEnd: hex(leaf.address + size),
        pa: hex(leaf.ra),
        pageSize: pageSizeText(leaf.pageShift),
        user: prot(leaf.userProt),
        supervisor: prot(leaf.supervisorProt),
        flags,
        detail,
      });
    }
    if (tree !== null) drawTree(memory, prte0, quadrant, partitionRoot !== 0n ? gra2ra : (g) => g, tree);
  }
  summary.leaves = mappings.length;
  summary.entriesRead = entriesRead;
  summary.badEntries = badEntries;
  summary.truncated = truncated;
  if (badEntries > 0) notes.push(`${badEntries} valid entries skipped: unsupported level size, a leaf at the root, or a table outside the image`);

  const translations: { ea: string; ra: string | null }[] = [];
  if (o.translate.length > 0) {
    const regs = new radix.RadixRegisters();
    if (o.pate !== null) regs.setVirtualHypervisorPate(dw0, dw1);
    else regs.setPtcr(o.ptcr!);
    regs.hv = ((o.msr >> 60n) & 1n) === 1n;
    regs.pr = ((o.msr >> 14n) & 1n) === 1n;
    regs.ir = ((o.msr >> 5n) & 1n) === 1n;
    regs.dr = ((o.msr >> 4n) & 1n) === 1n;
    regs.lpidr = o.lpid;
    regs.pidr = o.pid;
    regs.setAmr(o.amr);
    regs.setIamr(o.iamr);
    for (const ea of o.translate) {
      const ra = radix.radixDebugTranslate(memory, regs, ea);
      translations.push({ ea: hex(ea), ra: ra === null ? null : hex(ra) });
    }
  }
  return { mappings, summary, notes, tree, translations };
}

/** The directories of one process-scoped tree, one line each, leaves under their directory. */
function drawTree(memory: GuestMemory, prte0: bigint, quadrant: number, gra2ra: (gra: number) => number, out: string[]): void {
  let budget = 1 << 22;
  const walk = (base: bigint, nls: number, depth: number, bitsLeft: number, prefix: bigint): void => {
    const shift = bitsLeft - nls;
    const names = ['PGD', 'PUD', 'PMD', 'PTE'];
    for (let i = 0; i < 2 ** nls && budget > 0; i++, budget--) {
      const gra = Number(base) + i * 8;
      const ra = gra2ra(gra);
      const e = ra < 0 ? null : readBe64(memory, BigInt(ra));
      if (e === null) {
        out.push(`${'  '.repeat(depth + 2)}(table ${hex(base)} is not in the image)`);
        return;
      }
      if ((e & V) === 0n) continue;
      const ea = prefix | (BigInt(i) << BigInt(shift));
      const name = `${names[depth] ?? 'L?'}[${i}]`;
      if ((e & L) !== 0n) {
        const ra2 = e & 0x01ff_ffff_ffff_f000n & ~((1n << BigInt(shift)) - 1n);
        out.push(`${'  '.repeat(depth + 2)}${name} ${hex16(e)} leaf ${hex(ea)} -> ${hex(ra2)} ${pageSizeText(shift)}`);
      } else {
        const next = e & MASK_NLB;
        const nextNls = Number(e & 0x1fn);
        out.push(`${'  '.repeat(depth + 2)}${name} ${hex16(e)} -> ${names[depth + 1] ?? 'L?'} ${hex(next)} (2^${nextNls} entries)`);
        if (depth < 3 && nextNls > 0 && nextNls <= 13 && shift - nextNls >= 12) walk(next, nextNls, depth + 1, shift, ea);
      }
    }
  };
  const root = prte0 & MASK_NLB;
  const rts = Number(((prte0 >> 61n) & 3n) << 3n) | Number((prte0 >> 5n) & 7n);
  out.push(`    PGD ${hex(root)} (2^${Number(prte0 & 0x1fn)} entries, ${rts + 31}-bit)`);
  walk(root, Number(prte0 & 0x1fn), 0, 52, BigInt(quadrant) << 62n);
}
