import { RADIX_PTE } from '../format/RadixEntry.js';
import { UINT32_FIELD } from '../format/Uint32Field.js';

/** The leaf L0 puts in an L2's shadow partition-scoped tree, and its size. */
export class ShadowLeaf {
  hi = UINT32_FIELD;
  lo = UINT32_FIELD;
  /** log2 of the shadow page: L0's leaf size when it is no larger than L1's, else smaller (see `makeShadowLeaf`). */
  shift = 0;
}

/**
 * The shadow entry for an L2 page (kvmhv_nested_page_fault, steps "adjust
 * the permissions and R/C bits according to L1's PTE" and the page-size
 * choice): L0's leaf for the L1 page (the host page), minus what L1's leaf
 * for the L2 does not grant — read (which its RW grants too), write,
 * execute — and minus R unless L1's leaf has R and C unless L1's leaf has C
 * and this is a store, so the hardware raises the R/C fault that mirrors
 * L1's R/C handling.
 *
 * The size: L0's leaf size when it is no larger than L1's; otherwise 2M when
 * L1's page is strictly larger than 2M, else L0's base page — the L1 real
 * address's bits between the new size and L0's selecting the sub-page of
 * L0's page (as L0 leaves are at most 1G, a 2M L1 page over a 1G L0 page is
 * shadowed with base pages, not 2M).
 *
 * `l1GpaHi/Lo` is the L1 real address of the access; `baseShift` L0's base
 * page (12 or 16).
 */
export function makeShadowLeaf(
  l0Hi: number,
  l0Lo: number,
  l0Shift: number,
  l1Lo: number,
  l1Shift: number,
  store: boolean,
  l1GpaHi: number,
  l1GpaLo: number,
  baseShift: number,
  out: ShadowLeaf,
): ShadowLeaf {
  let strip = 0;
  // The ISA's EAA: RW grants read too. KVM strips _PAGE_READ when L1's leaf lacks it even with
  // _PAGE_WRITE, relying on L0's write right to carry the read; with L0's leaf not writable (a
  // read-only host page) the shadow then grants nothing and the L2's load refaults forever.
  if ((l1Lo & (RADIX_PTE.READ | RADIX_PTE.READ_WRITE)) === 0) strip |= RADIX_PTE.READ;
  if ((l1Lo & RADIX_PTE.READ_WRITE) === 0) strip |= RADIX_PTE.READ_WRITE;
  if ((l1Lo & RADIX_PTE.EXECUTE) === 0) strip |= RADIX_PTE.EXECUTE;
  if ((l1Lo & RADIX_PTE.R) === 0) strip |= RADIX_PTE.R;
  if ((l1Lo & RADIX_PTE.C) === 0 || !store) strip |= RADIX_PTE.C;
  let hi = l0Hi;
  let lo = (l0Lo & ~strip) >>> 0;
  let shift = l0Shift;
  if (l0Shift > l1Shift) {
    shift = l1Shift > 21 ? 21 : baseShift;
    // Select the sub-page: the L1 real address's bits in [shift, l0Shift) go into the RPN.
    if (l0Shift <= 32) {
      const bits = (((1 << (l0Shift === 32 ? 31 : l0Shift)) - 1) & ~((1 << shift) - 1)) >>> 0;
      lo = ((lo & ~bits) | (l1GpaLo & bits)) >>> 0;
    } else {
      const loBits = ~((1 << shift) - 1) >>> 0;
      const hiBits = (1 << (l0Shift - 32)) - 1;
      lo = ((lo & ~loBits) | (l1GpaLo & loBits)) >>> 0;
      hi = ((hi & ~hiBits) | (l1GpaHi & hiBits)) >>> 0;
    }
  }
  out.hi = hi >>> 0;
  out.lo = lo;
  out.shift = shift;
  return out;
}
