import type { Memslot } from '../memslot/Memslot.js';

/**
 * The rmap operations table (`slot->arch.ops` in Xiao Guangrong's 2013 patch
 * "KVM: MMU: introduce invalid rmap handlers", kvm@vger.kernel.org, never
 * merged): every piece of rmap work on a memslot
 * goes through the table the slot currently points at. A slot starts on the
 * `normal` table; deleting or moving it switches it to `invalid` first, then
 * the MMU tears down whatever still maps it, then the slot is freed.
 *
 * An rmap head is identified by (slot, gfn, level): level 1 is the base 4 KiB
 * page; higher levels are the backend's larger mappings (x86: 2M, 1G).
 * `entry` is the backend's handle for one mapping entry (e.g. the index of a
 * shadow PTE in its typed arrays); core never interprets it.
 *
 * The boolean results follow KVM's handlers: "did anything change / is a
 * TLB flush needed" for writeProtect/setPte/unmap, "young" for age/testAge.
 */
export interface RmapOps {
  /** Name the strategy is registered under (`normal`, `invalid`, …). */
  readonly name: string;
  /** Record that `entry` maps gfn at level. */
  add(slot: Memslot, gfn: number, level: number, entry: number): void;
  /** Forget one entry (the mapping itself is being dropped by the caller). */
  remove(slot: Memslot, gfn: number, level: number, entry: number): void;
  /** Remove write access from every entry mapping gfn at level. */
  writeProtect(slot: Memslot, gfn: number, level: number): boolean;
  /** The host page behind gfn changed to `hfn` (change_pte): re-point or drop entries. */
  setPte(slot: Memslot, gfn: number, level: number, hfn: number, writable: boolean): boolean;
  /** Clear accessed state; true if any entry was young. */
  age(slot: Memslot, gfn: number, level: number): boolean;
  /** True if any entry is young; changes nothing. */
  testAge(slot: Memslot, gfn: number, level: number): boolean;
  /** Drop every entry mapping gfn at level. */
  unmap(slot: Memslot, gfn: number, level: number): boolean;
}

/** Names core itself relies on; a backend must register both. */
export const RMAP_NORMAL = 'normal';
export const RMAP_INVALID = 'invalid';
