import { Access, FRAME_ZERO } from '@hvmmu/core';
import { RADIX_PTE } from '@hvmmu/ppc-radix';
import type { RadixTestVm } from './radixVm.js';

/** L0's leaves against the memslots, and every TLB entry against the leaves. */
export function radixInvariants(t: RadixTestVm): string | null {
  const { vm } = t;
  const tree = vm.arch.tree;
  const host = vm.memslots.host;
  const writableFrames = new Set<number>();
  const mappedFrames = new Set<number>();
  let count = 0;
  let violation: string | null = null;
  tree.forEachLeaf((gfn, off) => {
    count++;
    const slot = vm.memslots.findByGfn(gfn);
    const lo = tree.loAt(off);
    const hfn = tree.hfnAt(off);
    const writable = (lo & RADIX_PTE.READ_WRITE) !== 0 && (lo & RADIX_PTE.C) !== 0;
    if (slot === undefined) {
      violation ??= `leaf for gfn 0x${gfn.toString(16)} outside every memslot`;
      return;
    }
    const backing = slot.frames[gfn - slot.baseGfn]!;
    const expected = backing >= 0 ? backing : backing === FRAME_ZERO ? host.zeroFrame : -1;
    if (hfn !== expected) violation ??= `leaf for gfn 0x${gfn.toString(16)} maps hfn ${hfn}, the slot backs it with ${expected}`;
    if (writable && (backing < 0 || slot.readOnly)) violation ??= `leaf for gfn 0x${gfn.toString(16)} is writable over the zero frame or a READONLY slot`;
    if ((lo & RADIX_PTE.C) !== 0 && slot.dirtyLogging && !slot.isDirty(gfn))
      violation ??= `leaf for gfn 0x${gfn.toString(16)} has C in a logged slot but is not dirty`;
    mappedFrames.add(hfn);
    if (writable) writableFrames.add(hfn);
  });
  if (count !== tree.leaves) violation ??= `the tree counts ${tree.leaves} leaves, ${count} are present`;
  if (vm.arch.listPartitionScoped().leaves.length !== count) violation ??= 'enumerateRadixTree lists another number of leaves';
  for (const v of vm.vcpus) {
    for (let i = 0; i < v.tlb.size; i++) {
      if (v.tlb.tags[i] === -1) continue;
      const hfn = v.tlb.frames[i]!;
      if (!mappedFrames.has(hfn)) violation ??= `vCPU ${v.id} TLB caches hfn ${hfn}, which no leaf maps`;
      if ((v.tlb.perms[i]! & (1 << Access.WRITE)) !== 0 && !writableFrames.has(hfn))
        violation ??= `vCPU ${v.id} TLB grants a store to hfn ${hfn} with no writable leaf`;
    }
  }
  return violation;
}
