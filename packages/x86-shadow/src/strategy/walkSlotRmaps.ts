import { RMAP_LEVELS, gfnToIndex, pagesPerLevel, slotRmap } from '../rmap/SlotRmap.js';
import type { X86Memslot } from '../X86ShadowTypes.js';
import type { X86RmapOps } from '../rmap/X86RmapOps.js';

/** Which rmap operation `walkSlotRmaps` applies to each non-empty head. */
export const RmapWalkOp = {
  UNMAP: 0,
  AGE: 1,
  TEST_AGE: 2,
  /** Remove W for dirty logging, keeping MMU-writable (x86 table's clearWritable with pt_protect off). */
  CLEAR_WRITABLE: 3,
} as const;
export type RmapWalkOpValue = (typeof RmapWalkOp)[keyof typeof RmapWalkOp];

/**
 * KVM's slot_rmap_walk: apply `op` through the slot's current rmap table to
 * every non-empty head covering [startGfn, endGfn) at every level (4K, 2M,
 * 1G). Returns true if any call did (flush needed / young); TEST_AGE stops
 * at the first young head.
 */
export function walkSlotRmaps(slot: X86Memslot, startGfn: number, endGfn: number, op: RmapWalkOpValue): boolean {
  const start = Math.max(startGfn, slot.baseGfn);
  const end = Math.min(endGfn, slot.baseGfn + slot.npages);
  if (start >= end) return false;
  const r = slotRmap(slot);
  const ops = slot.rmapOps;
  let result = false;
  for (let level = 1; level <= RMAP_LEVELS; level++) {
    const heads = r.heads[level - 1]!;
    const span = pagesPerLevel(level);
    const first = gfnToIndex(start, slot.baseGfn, level);
    const last = gfnToIndex(end - 1, slot.baseGfn, level);
    const base = Math.floor(slot.baseGfn / span);
    for (let i = first; i <= last; i++) {
      if (heads[i] === 0) continue;
      const gfn = (base + i) * span;
      const did =
        op === RmapWalkOp.UNMAP
          ? ops.unmap(slot, gfn, level)
          : op === RmapWalkOp.AGE
            ? ops.age(slot, gfn, level)
            : op === RmapWalkOp.TEST_AGE
              ? ops.testAge(slot, gfn, level)
              : (ops as X86RmapOps).clearWritable(slot, gfn, level, false);
      if (did) {
        result = true;
        if (op === RmapWalkOp.TEST_AGE) return true;
      }
    }
  }
  return result;
}
