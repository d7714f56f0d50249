import { HvmmuError, type GuestMemory } from '@hvmmu/core';
import { RADIX_L_HI, RADIX_PTE, RADIX_RPN_HI, RADIX_RPN_LO, RADIX_V_HI, RadixProt, eaaProt, nextLevelBase } from '../format/RadixEntry.js';
import { radixTreeBits, rootDirectoryBase, rootDirectorySize } from '../format/PartitionTable.js';

/** One leaf of a radix tree, as `enumerateRadixTree` reports it. */
export interface RadixLeaf {
  /** The first address it maps: the effective address (quadrant bits included) or the guest real address. */
  readonly address: bigint;
  /** The real address it maps to. */
  readonly ra: bigint;
  /** log2 of the page size (12, 16, 21 or 30). */
  readonly pageShift: number;
  /** The leaf entry, halves. */
  readonly pteHi: number;
  readonly pteLo: number;
  /** Real address of the leaf entry. */
  readonly entryAddress: number;
  /** `RadixProt` bits for problem state (MSR[PR]=1) and for privileged state with AMR/IAMR key 0 open. */
  readonly userProt: number;
  readonly supervisorProt: number;
  readonly referenced: boolean;
  readonly changed: boolean;
  /** ATT: 0 normal, 1 SAO, 2 non-idempotent I/O, 3 tolerant I/O. */
  readonly att: number;
}

export interface EnumerateRadixOptions {
  /** EA quadrant (bits 63..62) to put on each address: 0 user, 3 kernel, or null for a partition-scoped tree (guest real addresses). Default null. */
  readonly quadrant?: 0 | 1 | 2 | 3 | null;
  /** Stop after this many leaves (default 2^20). */
  readonly maxLeaves?: number;
  /** Stop after reading this many entries (default 2^22): bounds the work whatever the tables hold. */
  readonly maxEntries?: number;
  /**
   * Where a table at guest real address `gra` is in `memory`, or -1 if
   * nowhere: for a guest's tree under a partition-scoped translation.
   * Default: table addresses are real addresses of `memory`.
   */
  readonly tableAddress?: (gra: number) => number;
}

export interface RadixTreeListing {
  readonly leaves: RadixLeaf[];
  readonly entriesRead: number;
  /** Valid entries skipped: an unsupported level size, a root leaf, a table outside memory. */
  readonly badEntries: number;
  /** True when a limit stopped the listing early. */
  readonly truncated: boolean;
}

/**
 * Every leaf of the radix tree rooted at (rootHi, rootLo) — a process-table
 * entry's dw0 or a partition-table entry's dw0 — with its page size and the
 * access it grants, read-only, over a live VM's memory or a raw memory image.
 * The same configuration rules as translation apply (POWER9 tree shapes,
 * no root leaf); entries that break them are counted, not followed, and
 * work is bounded by `maxEntries` however the tables point.
 */
export function enumerateRadixTree(memory: GuestMemory, rootHi: number, rootLo: number, options: EnumerateRadixOptions = {}): RadixTreeListing {
  const maxLeaves = options.maxLeaves ?? 1 << 20;
  const maxEntries = options.maxEntries ?? 1 << 22;
  if (!Number.isSafeInteger(maxLeaves) || maxLeaves < 1 || !Number.isSafeInteger(maxEntries) || maxEntries < 1) {
    throw new HvmmuError('BAD_ARGUMENT', `maxLeaves and maxEntries must be positive integers, got ${maxLeaves} and ${maxEntries}`);
  }
  const quadrant = options.quadrant ?? null;
  const tableAddress = options.tableAddress ?? ((a: number) => a);
  const leaves: RadixLeaf[] = [];
  let entriesRead = 0;
  let badEntries = 0;
  let truncated = false;
  const view = memory.view;
  const levelsOk = (level: number, nls: number): boolean => (level === 0 ? nls === 13 : level <= 2 ? nls === 9 : level === 3 ? nls === 9 || nls === 5 : false);
  const top = quadrant === null ? 0n : BigInt(quadrant) << 62n;

  const walk = (tableGra: number, nls: number, level: number, bitsLeft: number, prefix: bigint): void => {
    if (!levelsOk(level, nls)) {
      badEntries++;
      return;
    }
    const table = tableGra < 0 ? -1 : tableAddress(tableGra - (tableGra % (1 << (nls + 3))));
    const shift = bitsLeft - nls;
    for (let index = 0; index < 1 << nls; index++) {
      if (truncated) return;
      if (entriesRead >= maxEntries) {
        truncated = true;
        return;
      }
      entriesRead++;
      const off = table < 0 ? -1 : memory.resolve(table + index * 8, false);
      if (off < 0) {
        badEntries++;
        return;
      }
      const hi = view.getUint32(off, false);
      const lo = view.getUint32(off + 4, false);
      if ((hi & RADIX_V_HI) === 0) continue;
      const address = prefix | (BigInt(index) << BigInt(shift));
      if ((hi & RADIX_L_HI) !== 0) {
        if (level === 0) {
          badEntries++;
          continue;
        }
        if (leaves.length >= maxLeaves) {
          truncated = true;
          return;
        }
        const mask = (1 << shift) - 1;
        const ra = (BigInt(hi & RADIX_RPN_HI) << 32n) | BigInt((lo & RADIX_RPN_LO & ~mask) >>> 0);
        const eaa = eaaProt(lo);
        const privileged = (lo & RADIX_PTE.PRIVILEGED) !== 0;
        const guarded = (lo & RADIX_PTE.ATT) === RADIX_PTE.ATT_NON_IDEMPOTENT_IO;
        const prot = guarded ? eaa & ~RadixProt.EXECUTE : eaa;
        leaves.push({
          address: top | address,
          ra,
          pageShift: shift,
          pteHi: hi,
          pteLo: lo,
          entryAddress: table + index * 8,
          userProt: quadrant === null || !privileged ? prot : 0,
          supervisorProt: prot,
          referenced: (lo & RADIX_PTE.R) !== 0,
          changed: (lo & RADIX_PTE.C) !== 0,
          att: (lo >>> 4) & 3,
        });
        continue;
      }
      walk(nextLevelBase(hi, lo), lo & 0x1f, level + 1, shift, address);
    }
  };

  if (radixTreeBits(rootHi, rootLo) !== 52) {
    badEntries++;
  } else {
    walk(rootDirectoryBase(rootHi, rootLo), rootDirectorySize(rootLo), 0, 52, 0n);
  }
  return { leaves, entriesRead, badEntries, truncated };
}
