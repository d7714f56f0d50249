import type { Memslot } from '@hvmmu/core';
import type { IdentityTypes } from './IdentityTypes.js';

/** An empty rmap head (KVM: `rmap_head->val == 0`). */
export const RMAP_EMPTY = 0;

/**
 * The identity backend's per-memslot rmap (`slot.arch`), KVM's placement (`slot->arch.rmap[level - 1][gfn - base_gfn]`) on a
 * typed array: one head per 4 KiB page of the slot. The identity table maps a
 * gfn at most once per VM, so a head is either empty or holds the single
 * entry (stored as entry + 1, so 0 stays "empty" as in KVM's encoding). Only
 * level 1 exists: host frames are 4 KiB, so no larger leaf can be built.
 */
export class IdentitySlotRmap {
  readonly heads: Int32Array;
  /** Non-empty heads, so an empty rmap is checked in O(1). */
  used = 0;

  constructor(npages: number) {
    this.heads = new Int32Array(npages);
  }

  get bytes(): number {
    return this.heads.byteLength;
  }

  /** The rmap a slot carries, created by the identity MMU's `prepareMemslot`. */
  static of(slot: Memslot<IdentityTypes>): IdentitySlotRmap {
    return slot.arch;
  }

  /** Entry recorded for page `index`, or −1. */
  entryAt(index: number): number {
    return this.heads[index]! - 1;
  }

  set(index: number, entry: number): void {
    if (this.heads[index] === RMAP_EMPTY) this.used++;
    this.heads[index] = entry + 1;
  }

  clear(index: number): void {
    if (this.heads[index] === RMAP_EMPTY) return;
    this.heads[index] = RMAP_EMPTY;
    this.used--;
  }
}
