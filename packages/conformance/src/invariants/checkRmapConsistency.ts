import type { MappingLeaf, MmuSnapshot, RmapRecord } from '@hvmmu/core';

function where(r: RmapRecord | MappingLeaf): string {
  return `slot ${r.slotId} gfn 0x${r.gfn.toString(16)} level ${r.level}`;
}

/**
 * How a backend's rmap relates to its leaves, declared by its harness
 * (`ConformanceHarness.rmapModel`) so the structural check fits the design:
 *
 * - `one-per-leaf`: KVM x86's pte_list (and the reference backend): exactly
 *   one rmap entry per present leaf, filed under the slot, gfn and level it
 *   maps, and no entry that names nothing — an entry is removed with its leaf.
 * - `names-every-leaf`: a list that is only ever dropped whole, like KVM
 *   PPC's nested rmap (book3s_hv_nested.c: kvmhv_insert_nest_rmap skips an
 *   identical entry, nothing removes one from the middle of a list): every
 *   live leaf is named under its slot, gfn and level, no head holds the same
 *   entry twice (the dedup that keeps a guest from growing it without
 *   bound), and entries naming nothing (stale) are allowed.
 */
export const RmapModel = {
  ONE_PER_LEAF: 'one-per-leaf',
  NAMES_EVERY_LEAF: 'names-every-leaf',
} as const;
export type RmapModelName = (typeof RmapModel)[keyof typeof RmapModel];

/**
 * The structural rmap check for `model` (default `one-per-leaf`). Under
 * `one-per-leaf`: every leaf has exactly one rmap entry, filed under the slot, gfn and level
 * it maps, and every rmap entry names a present leaf (KVM x86 mmu.c: rmap_add
 * files a leaf under its gfn and level; rmap_get_first/next assert every
 * entry is shadow-present). Entry handles are unique on both sides: an rmap
 * holding the same entry twice is the unbounded growth that KVM PPC's
 * kvmhv_insert_nest_rmap() (book3s_hv_nested.c) avoids by skipping an
 * identical entry.
 */
export function checkRmapConsistency(snapshot: MmuSnapshot, model: RmapModelName = RmapModel.ONE_PER_LEAF): string[] {
  if (model === RmapModel.NAMES_EVERY_LEAF) return checkNamesEveryLeaf(snapshot);
  const violations: string[] = [];
  const leafByEntry = new Map<number, MappingLeaf>();
  for (const leaf of snapshot.leaves) {
    if (leafByEntry.has(leaf.entry)) violations.push(`two leaves share entry handle ${leaf.entry}`);
    leafByEntry.set(leaf.entry, leaf);
  }
  const recorded = new Map<number, RmapRecord>();
  for (const record of snapshot.rmap) {
    const earlier = recorded.get(record.entry);
    if (earlier !== undefined) {
      violations.push(`entry ${record.entry} is recorded twice in rmaps (${where(earlier)} and ${where(record)})`);
      continue;
    }
    recorded.set(record.entry, record);
    const leaf = leafByEntry.get(record.entry);
    if (leaf === undefined) {
      violations.push(`rmap ${where(record)} holds entry ${record.entry}, which maps nothing (dangling rmap entry)`);
    } else if (leaf.slotId !== record.slotId || leaf.gfn !== record.gfn || leaf.level !== record.level) {
      violations.push(`rmap ${where(record)} holds entry ${record.entry}, but that leaf maps ${where(leaf)}`);
    }
  }
  for (const leaf of snapshot.leaves) {
    if (!recorded.has(leaf.entry)) {
      violations.push(`leaf ${leaf.entry} (${where(leaf)} → hfn 0x${leaf.hfn.toString(16)}) has no rmap entry: host events cannot find it`);
    }
  }
  return violations;
}

/** The `names-every-leaf` model: no duplicate under a head, every live leaf named; stale entries allowed. */
function checkNamesEveryLeaf(snapshot: MmuSnapshot): string[] {
  const violations: string[] = [];
  const key = (slotId: number, gfn: number, level: number, entry: number) => `${slotId}:${gfn}:${level}:${entry}`;
  const seen = new Set<string>();
  for (const record of snapshot.rmap) {
    const k = key(record.slotId, record.gfn, record.level, record.entry);
    if (seen.has(k)) violations.push(`rmap ${where(record)} holds entry ${record.entry} twice (an rmap that does not dedup grows without bound)`);
    seen.add(k);
  }
  for (const leaf of snapshot.leaves) {
    if (!seen.has(key(leaf.slotId, leaf.gfn, leaf.level, leaf.entry))) {
      violations.push(`leaf ${leaf.entry} (${where(leaf)} → hfn 0x${leaf.hfn.toString(16)}) is named by no rmap entry: host events cannot find it`);
    }
  }
  return violations;
}
