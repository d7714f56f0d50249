import { hptePageShifts } from '../format/HptePageSizes.js';
import { HPT_MAX_ORDER, HPT_MAX_SUPPORTED_ORDER, HPT_MIN_ORDER, HashPageTable } from './HashPageTable.js';

/** PAPR statuses of the resize hcalls (hvcall.h; QEMU hw/ppc/spapr_hcall.c maps KVM's errors to them). */
export const ResizeStatus = {
  H_SUCCESS: 0,
  H_CLOSED: 2,
  H_PARAMETER: -4,
  H_PTEG_FULL: -6,
  H_RESOURCE: -16,
} as const;

const M64 = (1n << 64n) - 1n;

/**
 * Where a bolted HPTE at `index` of an order-`oldOrder` table goes in an
 * order-`newOrder` one (KVM book3s_64_mmu_hv.c resize_hpt_rehash_hpte): the
 * hash is recovered from the AVPN and the old group (the page-offset bits
 * the AVPN lacks come from the group number), then taken modulo the new
 * mask — complemented for a secondary entry — keeping the slot. Returns -1
 * for an entry whose page size is invalid.
 */
export function rehashIndex(index: number, v0Hi: number, v0Lo: number, r1Lo: number, oldOrder: number, newOrder: number): number {
  const shifts = hptePageShifts(v0Lo, r1Lo);
  if (shifts === 0) return -1;
  const p = BigInt(shifts >> 8);
  const v = (BigInt(v0Hi) << 32n) | BigInt(v0Lo);
  const oldMask = (1n << BigInt(oldOrder - 7)) - 1n;
  const newMask = (1n << BigInt(newOrder - 7)) - 1n;
  let avpn = (v & 0x3fff_ffff_ffff_ff80n) >> 7n;
  avpn &= ~(((1n << p) - 1n) >> 23n);
  const secondary = (v0Lo & 2) !== 0;
  let pteg = BigInt(Math.floor(index / 8));
  if (secondary) pteg = ~pteg & M64;
  let hash: bigint;
  if ((v0Hi & 0x4000_0000) === 0) {
    let offset = (avpn & 0x1fn) << 23n;
    const vsid = avpn >> 5n;
    if (p < 23n) offset |= ((vsid ^ pteg) & oldMask) << p;
    hash = vsid ^ (offset >> p);
  } else {
    let offset = (avpn & 0x1_ffffn) << 23n;
    const vsid = avpn >> 17n;
    if (p < 23n) offset |= ((vsid ^ ((vsid << 25n) & M64) ^ pteg) & oldMask) << p;
    hash = vsid ^ ((vsid << 25n) & M64) ^ (offset >> p);
  }
  const group = secondary ? ~hash & newMask : hash & newMask;
  return Number(group) * 8 + (index % 8);
}

/**
 * HPT resizing (KVM_PPC_RESIZE_HPT_PREPARE / _COMMIT, H_RESIZE_HPT_PREPARE
 * / _COMMIT): `prepare(shift)` readies a table of the new order (0 cancels),
 * `commit(shift)` moves every bolted entry into it by `rehashIndex` and
 * makes it the table; non-bolted entries are dropped (the guest re-faults
 * them). A bolted entry landing on a bolted one fails the commit
 * (H_PTEG_FULL) and changes nothing; a non-bolted source never displaces
 * anything.
 */
export class HptResize {
  private pending: number | null = null;

  constructor(
    private table: HashPageTable,
    /** The largest order a prepare may ask for (QEMU: the RAM-based order + 1). */
    private readonly maxOrder = HPT_MAX_SUPPORTED_ORDER,
  ) {}

  get current(): HashPageTable {
    return this.table;
  }

  prepare(flagsHi: number, flagsLo: number, shift: number): number {
    if (flagsHi !== 0 || flagsLo !== 0) return ResizeStatus.H_PARAMETER;
    if (shift === 0) {
      this.pending = null;
      return ResizeStatus.H_SUCCESS;
    }
    if (!Number.isInteger(shift) || shift < HPT_MIN_ORDER || shift > HPT_MAX_ORDER) return ResizeStatus.H_PARAMETER;
    if (shift > this.maxOrder) return ResizeStatus.H_RESOURCE;
    this.pending = shift;
    return ResizeStatus.H_SUCCESS;
  }

  commit(flagsHi: number, flagsLo: number, shift: number): number {
    if (flagsHi !== 0 || flagsLo !== 0) return ResizeStatus.H_PARAMETER;
    if (!Number.isInteger(shift) || shift < HPT_MIN_ORDER || shift > HPT_MAX_ORDER) return ResizeStatus.H_PARAMETER;
    if (this.pending === null || this.pending !== shift) {
      this.pending = null;
      return ResizeStatus.H_CLOSED;
    }
    this.pending = null;
    const old = this.table;
    const next = new HashPageTable(shift);
    const ov = old.view;
    const nv = next.view;
    for (let i = 0; i < old.entries; i++) {
      const v0Lo = ov.getUint32(i * 16 + 4, false);
      if ((v0Lo & 1) === 0 || (v0Lo & 0x10) === 0) continue; // invalid, or not bolted: dropped
      const v0Hi = ov.getUint32(i * 16, false);
      const r1Lo = ov.getUint32(i * 16 + 12, false);
      const to = rehashIndex(i, v0Hi, v0Lo, r1Lo, old.order, shift);
      if (to < 0) continue;
      if ((nv.getUint32(to * 16 + 4, false) & 0x11) === 0x11) return ResizeStatus.H_PTEG_FULL; // bolted on bolted
      next.bytes.set(old.bytes.subarray(i * 16, i * 16 + 16), to * 16);
    }
    this.table = next;
    return ResizeStatus.H_SUCCESS;
  }
}
