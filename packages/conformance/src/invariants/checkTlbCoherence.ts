import { Access, ACCESS_KINDS, describeAccess, type Vm } from '@hvmmu/core';
import { guestPermAllows } from '../GuestAnswers.js';
import type { MappingLeaf, MmuSnapshot } from '@hvmmu/core';
import type { GuestView } from './GuestView.js';

/**
 * Every valid entry of every vCPU's TLB is backed by the current tables: the
 * guest maps its virtual page, a present leaf maps that gfn to the cached
 * host frame, the frame is allocated, and the cached permissions grant no
 * access the guest mapping or the leaf refuses. An entry that outlives the
 * leaf it came from is a missing TLB shootdown.
 */
export function checkTlbCoherence(vm: Vm, snapshot: MmuSnapshot, guest: GuestView): string[] {
  const violations: string[] = [];
  const host = vm.memslots.host;
  const leavesByGfn = new Map<number, { leaf: MappingLeaf; hfn: number }[]>();
  for (const leaf of snapshot.leaves) {
    for (let k = 0; k < leaf.pages; k++) {
      const list = leavesByGfn.get(leaf.gfn + k) ?? [];
      list.push({ leaf, hfn: leaf.hfn + k });
      leavesByGfn.set(leaf.gfn + k, list);
    }
  }
  for (const vcpu of vm.vcpus) {
    const tlb = vcpu.tlb;
    for (let i = 0; i < tlb.size; i++) {
      const vpn = tlb.tags[i]!;
      if (vpn === -1) continue;
      const hfn = tlb.frames[i]!;
      const perm = tlb.perms[i]!;
      const name = `vCPU ${vcpu.id} TLB entry vpn 0x${vpn.toString(16)} → hfn 0x${hfn.toString(16)}`;
      if (!host.isAllocated(hfn)) violations.push(`${name}: the host frame is free (use after free)`);
      const mapping = guest.get(vpn);
      if (mapping === undefined) {
        violations.push(`${name}: the guest does not map this page`);
        continue;
      }
      const backing = (leavesByGfn.get(mapping.gfn) ?? []).filter((b) => b.hfn === hfn);
      if (backing.length === 0) {
        violations.push(`${name}: no present leaf maps gfn 0x${mapping.gfn.toString(16)} to this frame (stale entry: missing TLB shootdown)`);
        continue;
      }
      for (let access = 0; access < ACCESS_KINDS; access++) {
        if (((perm >> access) & 1) === 0) continue;
        if (!guestPermAllows(mapping.perm, access)) {
          violations.push(`${name}: grants a ${describeAccess(access)} the guest mapping forbids`);
        } else if ((access & Access.WRITE) !== 0 && !backing.some((b) => b.leaf.writable)) {
          violations.push(`${name}: grants a ${describeAccess(access)} but every leaf is read-only`);
        }
      }
    }
  }
  return violations;
}

/**
 * After `invalidateHostRange(startHfn, endHfn)`: no leaf and no TLB entry
 * maps a frame of the range that belongs to the VM (the shared zero frame is
 * never invalidated, as the host never reclaims its zero page).
 */
export function checkHostRangeUnmapped(vm: Vm, snapshot: MmuSnapshot, startHfn: number, endHfn: number): string[] {
  const violations: string[] = [];
  const owned = (hfn: number): boolean => hfn >= startHfn && hfn < endHfn && vm.memslots.slotOfHostFrame(hfn) !== undefined;
  for (const leaf of snapshot.leaves) {
    for (let k = 0; k < leaf.pages; k++) {
      if (owned(leaf.hfn + k)) violations.push(`leaf ${leaf.entry} still maps invalidated host frame 0x${(leaf.hfn + k).toString(16)}`);
    }
  }
  for (const vcpu of vm.vcpus) {
    const tlb = vcpu.tlb;
    for (let i = 0; i < tlb.size; i++) {
      if (tlb.tags[i] !== -1 && owned(tlb.frames[i]!)) {
        violations.push(`vCPU ${vcpu.id} TLB still caches vpn 0x${tlb.tags[i]!.toString(16)} → invalidated host frame 0x${tlb.frames[i]!.toString(16)}`);
      }
    }
  }
  return violations;
}
