import { HvmmuError } from '@hvmmu/core';
import { POWER8_PAGE_SIZES, type SegmentPageSize } from '../format/SegmentPageSizes.js';
import type { HashPageTable } from './HashPageTable.js';

/**
 * The virtual real-mode area (Linux arch/powerpc/include/asm/kvm_book3s_64.h
 * VRMA_VSID, arch/powerpc/kvm/book3s_hv.c kvmppc_hv_setup_htab_rma /
 * book3s_64_mmu_hv.c kvmppc_map_vrma; QEMU target/ppc/mmu-hash64.c
 * build_vrma_slbe): a guest's real-mode accesses are translated by HPT
 * entries of a 1T segment with the reserved VSID 0x1FFFFFF, which KVM
 * creates for the guest's first bytes of memory so that it runs before it
 * turns relocation on.
 */
export const VRMA_VSID = 0x1ff_ffff;
/** The VRMA segment's SLB VSID word without L||LP: B = 1T, VSID << 24 (QEMU SLB_VSID_VRMA). */
export const VRMA_VSID_WORD_HI = (0x4000_0000 | (VRMA_VSID >>> 8)) >>> 0;
export const VRMA_VSID_WORD_LO = ((VRMA_VSID & 0xff) << 24) >>> 0;

/** The segment page size of a VRMA page size (12, 16 or 24), or undefined. */
export function vrmaSegment(pageShift: number): SegmentPageSize | undefined {
  return POWER8_PAGE_SIZES.find((s) => s.baseShift === pageShift && pageShift <= 24);
}

/**
 * kvmppc_map_vrma: bolted HPTEs mapping real addresses [0, bytes) to the
 * guest physical addresses they name, pages of 2^pageShift, each in slot 7
 * of group (i ^ VRMA_VSID ^ (VRMA_VSID << 25)) & mask, at most one per group
 * and at most 1 TiB. dword0: B = 1T, VSID, BOLTED, L for pages above 4K, the
 * AVPN of the address, V; dword1: the LP encoding (0x1000 for 64K, 0 for
 * 16M), R, C, M, PP 0, the address. Returns the number of entries made.
 */
export function mapVrma(hpt: HashPageTable, bytes: number, pageShift: number): number {
  const view = hpt.view;
  return forEachVrmaEntry(hpt.hashMask, bytes, pageShift, (ptex, v0Hi, v0Lo, r1Hi, r1Lo) => {
    const at = ptex * 16;
    view.setUint32(at, v0Hi, false);
    view.setUint32(at + 4, v0Lo, false);
    view.setUint32(at + 8, r1Hi, false);
    view.setUint32(at + 12, r1Lo, false);
    hpt.markModified(ptex);
    return true;
  });
}

/**
 * The entries `mapVrma` makes, in order, given to `visit` (which a hypervisor
 * uses to enter them its own way, as KVM enters them with H_EXACT); stops
 * early when `visit` returns false (KVM stops at the first entry that fails).
 * Returns the number of entries made.
 */
export function forEachVrmaEntry(
  hashMask: number,
  bytes: number,
  pageShift: number,
  visit: (ptex: number, v0Hi: number, v0Lo: number, r1Hi: number, r1Lo: number) => boolean,
): number {
  const sps = vrmaSegment(pageShift);
  if (sps === undefined) throw new HvmmuError('BAD_ARGUMENT', `VRMA page size must be 2^12, 2^16 or 2^24, got 2^${pageShift}`);
  if (!Number.isSafeInteger(bytes) || bytes <= 0 || bytes > 2 ** 40)
    throw new HvmmuError('BAD_ARGUMENT', `the VRMA covers at most 1 TiB, got ${String(bytes)} bytes`);
  const pages = Math.min(Math.ceil(bytes / 2 ** pageShift), hashMask + 1);
  const lp = pageShift === 16 ? 0x1000 : 0;
  // VSID ^ (VSID << 25), the part of the 1T hash that does not depend on the page.
  const vsidHash = (VRMA_VSID ^ (VRMA_VSID << 25)) >>> 0;
  for (let i = 0; i < pages; i++) {
    const addr = i * 2 ** pageShift;
    const group = ((i ^ vsidHash) & hashMask) >>> 0;
    const avpnLo = (Math.floor(addr / 65536) & ~0x7f) >>> 0;
    const v0Lo = (VRMA_VSID_WORD_LO | 0x10 | (pageShift > 12 ? 0x4 : 0) | avpnLo | 1) >>> 0;
    const r1Lo = ((addr % 0x1_0000_0000) | lp | 0x180 | 0x10) >>> 0;
    if (!visit(group * 8 + 7, VRMA_VSID_WORD_HI, v0Lo, Math.floor(addr / 0x1_0000_0000), r1Lo)) return i;
  }
  return pages;
}
