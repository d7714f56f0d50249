import { RADIX_NLB_HI, RADIX_NLB_LO, SAFE_HI_LIMIT } from './RadixEntry.js';

/**
 * The partition table, process table and the register pointing at the
 * first (POWER ISA v3.0 Book III 6.7.6 "Partition Table", 6.7.7 "Process
 * Table"; Linux arch/powerpc/include/asm/book3s/64/mmu.h, QEMU
 * target/ppc/mmu-book3s-v3.h). All entries are 16 bytes, big-endian.
 */

const TWO_POW_32 = 0x1_0000_0000;

/** PATE dw0 bit 63: HR, the partition uses radix (host radix). */
export const PATE0_HR_HI = 0x8000_0000;
/** PATE dw1 bit 63: GR, a radix guest (Linux sets it; the ISA dropped it and hardware ignores it). */
export const PATE1_GR_HI = 0x8000_0000;
/** PTCR / PATE dw1 table base (PATB, PRTB): bits 59..12. */
export const TABLE_BASE_HI = 0x0fff_ffff;
export const TABLE_BASE_LO = 0xffff_f000;
/** PTCR PATS / PATE dw1 PRTS: the table is 2^(size + 12) bytes. */
export const TABLE_SIZE_MASK = 0x1f;

/**
 * RTS of a radix root (PATE dw0 or process-table entry dw0): the tree
 * translates RTS + 31 address bits. RTS1 is bits 62..61, RTS2 bits 7..5
 * (QEMU PRTBE_R_GET_RTS; Linux radix__get_tree_size writes 52 bits as
 * RTS = 21).
 */
export function radixTreeBits(hi: number, lo: number): number {
  return ((((hi >>> 29) & 3) << 3) | ((lo >>> 5) & 7)) + 31;
}

/** RPDS of a radix root: log2 of the root directory's entry count. */
export function rootDirectorySize(lo: number): number {
  return lo & 0x1f;
}

/** RPDB of a radix root as an address, or -1 at or above 2^53 (unbacked). */
export function rootDirectoryBase(hi: number, lo: number): number {
  const h = hi & RADIX_NLB_HI;
  return h < SAFE_HI_LIMIT ? h * TWO_POW_32 + ((lo & RADIX_NLB_LO) >>> 0) : -1;
}

/** PATB / PRTB of a PTCR or PATE dw1 as an address, or -1 at or above 2^53. */
export function tableBase(hi: number, lo: number): number {
  const h = hi & TABLE_BASE_HI;
  return h < SAFE_HI_LIMIT ? h * TWO_POW_32 + ((lo & TABLE_BASE_LO) >>> 0) : -1;
}

/** Bytes of the table a PTCR or PATE dw1 describes: 2^(size + 12). */
export function tableBytes(lo: number): number {
  return POW2[(lo & TABLE_SIZE_MASK) + 12]!;
}

/** 2^0 .. 2^63 (Math.pow with a variable exponent is a libcall on V8's fast paths). */
const POW2 = Float64Array.from({ length: 64 }, (_, k) => 2 ** k);

/**
 * The dw0 Linux writes for a 52-bit radix tree rooted at `base` with a
 * 2^rootBits-entry root (radix__get_tree_size + RPDB + RPDS), without HR.
 */
export function radixRootHi(base: number): number {
  return 0x4000_0000 | (Math.floor(base / TWO_POW_32) & RADIX_NLB_HI);
}
export function radixRootLo(base: number, rootBits: number): number {
  return (((base % TWO_POW_32) & RADIX_NLB_LO) | (0b101 << 5) | (rootBits & 0x1f)) >>> 0;
}
