import type { RmapStrategy } from '@hvmmu/core';
import type { X86Memslot } from '../X86ShadowTypes.js';

/**
 * The x86 rmap strategy table: the seven operations of the 2013 KVM patch
 * "KVM: MMU: introduce invalid rmap handlers" (add, remove, write-protect,
 * set_pte, age, test_age, unmap; KVM's rmap handlers in
 * arch/x86/kvm/mmu/mmu.c) on pte_list heads, plus
 * `rmap_write_protect(rmap_head, pt_protect)` in both flavours. An rmap head
 * is (slot, gfn, level): level 1 is 4 KiB, 2 and 3 are 2 MiB and 1 GiB;
 * `entry` is a shadow-PTE index. The booleans follow KVM's handlers: "did
 * anything change / is a flush needed", or "young" for age/testAge.
 */
export interface X86RmapOps extends RmapStrategy {
  /** Record that spte `entry` maps gfn at level. */
  add(slot: X86Memslot, gfn: number, level: number, entry: number): void;
  /** Forget one entry (the mapping itself is being dropped by the caller). */
  remove(slot: X86Memslot, gfn: number, level: number, entry: number): void;
  /** Remove write access (and MMU-writable) from every entry mapping gfn at level. */
  writeProtect(slot: X86Memslot, gfn: number, level: number): boolean;
  /** The host page behind gfn changed to `hfn` (change_pte): re-point or drop entries. */
  setPte(slot: X86Memslot, gfn: number, level: number, hfn: number, writable: boolean): boolean;
  /** Clear accessed state; true if any entry was young. */
  age(slot: X86Memslot, gfn: number, level: number): boolean;
  /** True if any entry is young; changes nothing. */
  testAge(slot: X86Memslot, gfn: number, level: number): boolean;
  /** Drop every entry mapping gfn at level. */
  unmap(slot: X86Memslot, gfn: number, level: number): boolean;
  /**
   * With `ptProtect` the entries also lose MMU-writable (a guest page table
   * lives there: writes must be emulated); without it only W is cleared and
   * the fault path may restore it (dirty logging).
   */
  clearWritable(slot: X86Memslot, gfn: number, level: number, ptProtect: boolean): boolean;
}

/** KVM RMAP_RECYCLE_THRESHOLD: an rmap list longer than this is zapped whole. */
export const RMAP_RECYCLE_THRESHOLD = 1000;
