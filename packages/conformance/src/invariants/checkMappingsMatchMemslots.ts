import { FRAME_ZERO, type Vm } from '@hvmmu/core';
import type { MmuSnapshot } from '@hvmmu/core';

/**
 * Every leaf maps through a live memslot that contains it, to exactly the
 * host frame that slot backs the page with (its own frame, or the shared zero
 * frame read-only), and that frame is allocated; nothing writable maps a
 * READONLY slot or the zero frame (KVM: spte.c make_spte() sets host-writable
 * only over a writable host page; kvm_arch_flush_shadow_memslot() unmaps a
 * deleted or moved slot).
 */
export function checkMappingsMatchMemslots(vm: Vm, snapshot: MmuSnapshot): string[] {
  const violations: string[] = [];
  const memslots = vm.memslots;
  const host = memslots.host;
  for (const leaf of snapshot.leaves) {
    const name = `leaf ${leaf.entry} (slot ${leaf.slotId} gfn 0x${leaf.gfn.toString(16)})`;
    if (!memslots.has(leaf.slotId)) {
      violations.push(`${name} maps through memslot ${leaf.slotId}, which no longer exists`);
      continue;
    }
    const slot = memslots.get(leaf.slotId);
    for (let k = 0; k < leaf.pages; k++) {
      const gfn = leaf.gfn + k;
      const hfn = leaf.hfn + k;
      if (!slot.containsGfn(gfn)) {
        violations.push(`${name} maps gfn 0x${gfn.toString(16)}, outside memslot ${slot.id} [0x${slot.baseGfn.toString(16)}, 0x${slot.endGfn.toString(16)})`);
        continue;
      }
      const backing = slot.frames[gfn - slot.baseGfn]!;
      // Only ask for the zero frame when a page uses it: the getter allocates it on first use.
      const expected = backing >= 0 ? backing : backing === FRAME_ZERO ? host.zeroFrame : -1;
      if (expected < 0) violations.push(`${name} maps gfn 0x${gfn.toString(16)}, which has no backing frame`);
      else if (hfn !== expected)
        violations.push(`${name} maps gfn 0x${gfn.toString(16)} to hfn 0x${hfn.toString(16)}, but the slot backs it with hfn 0x${expected.toString(16)}`);
      if (!host.isAllocated(hfn)) violations.push(`${name} points at host frame 0x${hfn.toString(16)}, which is free (use after free)`);
      if (leaf.writable && backing === FRAME_ZERO) violations.push(`${name} maps the shared zero frame writable`);
    }
    if (leaf.writable && slot.readOnly) violations.push(`${name} is writable in READONLY memslot ${slot.id}`);
  }
  return violations;
}

/**
 * While a slot logs dirty pages, a writable leaf means its page is already
 * marked dirty: writes through it no longer fault, so they could not be
 * logged otherwise (KVM marks the page when it makes the spte writable and
 * write-protects harvested pages).
 */
export function checkDirtyLogArmed(vm: Vm, snapshot: MmuSnapshot): string[] {
  const violations: string[] = [];
  for (const leaf of snapshot.leaves) {
    if (!leaf.writable || !vm.memslots.has(leaf.slotId)) continue;
    const slot = vm.memslots.get(leaf.slotId);
    if (!slot.dirtyLogging) continue;
    for (let k = 0; k < leaf.pages; k++) {
      const gfn = leaf.gfn + k;
      if (slot.containsGfn(gfn) && !slot.isDirty(gfn)) {
        violations.push(
          `leaf ${leaf.entry} maps gfn 0x${gfn.toString(16)} writable in dirty-logged slot ${slot.id}, but the page is not marked dirty: a write through it would go unlogged`,
        );
      }
    }
  }
  return violations;
}

/** The memslot table's private-frame count equals the frames its slots hold, and each is allocated. */
export function checkFrameAccounting(vm: Vm): string[] {
  const violations: string[] = [];
  const host = vm.memslots.host;
  let frames = 0;
  for (const slot of vm.memslots.slots()) {
    for (let i = 0; i < slot.npages; i++) {
      const hfn = slot.frames[i]!;
      if (hfn < 0) continue;
      frames++;
      if (!host.isAllocated(hfn)) violations.push(`memslot ${slot.id} page ${i} is backed by free host frame 0x${hfn.toString(16)}`);
    }
  }
  if (frames !== vm.memslots.framesInUse) violations.push(`memslots hold ${frames} private frames but account ${vm.memslots.framesInUse}`);
  return violations;
}
