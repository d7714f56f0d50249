import type { MappingLeaf, MmuSnapshot, RmapRecord } from '../MmuSnapshot.js';

function where(r: RmapRecord | MappingLeaf): string {
  return `slot ${r.slotId} gfn 0x${r.gfn.toString(16)} level ${r.level}`;
}

/**
 * Every leaf has exactly one rmap entry, filed under the slot, gfn and level
 * it maps, and every rmap entry names a present leaf (KVM x86 mmu.c: rmap_add
 * files a leaf under its gfn and level; rmap_get_first/next assert every
 * entry is shadow-present). Entry handles are unique on both sides: an rmap
 * holding the same entry twice is the unbounded growth that KVM PPC's
 * kvmhv_insert_nest_rmap() (book3s_hv_nested.c) avoids by skipping an
 * identical entry.
 */
export function checkRmapConsistency(snapshot: MmuSnapshot): string[] {
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
