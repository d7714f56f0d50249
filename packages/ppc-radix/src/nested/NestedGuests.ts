import { HvmmuError } from '@hvmmu/core';
import { TABLE_BASE_HI, TABLE_BASE_LO, TABLE_SIZE_MASK } from '../format/PartitionTable.js';
import type { ShadowLpids } from './ShadowLpids.js';
import { UINT32_FIELD } from '../format/Uint32Field.js';

/** PAPR return codes (Linux arch/powerpc/include/asm/hvcall.h). */
export const H_SUCCESS = 0;
export const H_PARAMETER = -4;

/** KVM_MAX_NESTED_GUESTS_SHIFT: L1's partition table holds at most 2^12 entries (PATS ≤ 4). */
export const MAX_NESTED_GUESTS_SHIFT = 12;

/**
 * What the nested-guest table needs from L0: L1 memory to read, a shadow
 * partition-scoped table per nested guest, and the shadow partition-table
 * entries the "hardware" walks.
 */
export interface NestedGuestHost {
  /** True if every byte of [gpa, gpa + bytes) is L1 memory (a visible memslot). */
  l1MemoryCovers(gpa: number, bytes: number): boolean;
  /** The big-endian doubleword at L1 real address gpa, or null if no memory backs it. */
  readL1(gpa: number): [number, number] | null;
  /** A new, empty shadow partition-scoped tree for shadow LPID `shadowLpid`; returns its root's PATE dw0 (without HR). */
  allocShadowTable(shadowLpid: number): [number, number];
  /** Empty a shadow tree (every shadow entry gone) and flush the shadow LPID's TLB entries. */
  clearShadowTable(root: [number, number], shadowLpid: number): void;
  /** Free a shadow tree (kvmppc_free_pgtable_radix + pgd_free). */
  freeShadowTable(root: [number, number], shadowLpid: number): void;
  /** Write the shadow partition-table entry for `lpid` (L0's own partition table). */
  setShadowPate(lpid: number, dw0: [number, number], dw1: [number, number]): void;
}

/** One nested guest (KVM struct kvm_nested_guest). */
export class NestedGuest {
  /** L1's cached partition-table entry for it: the root of L1's partition-scoped tree for the L2 (dw0) and the L2's process table (dw1); zero until read. */
  l1GrToHrHi = UINT32_FIELD;
  l1GrToHrLo = UINT32_FIELD;
  processTableHi = UINT32_FIELD;
  processTableLo = UINT32_FIELD;
  /** Table reference plus one per active user (H_ENTER_NESTED, tlbie emulation, copy hcall). */
  refcnt = 0;
  /** Set once released (its shadow LPID and table are gone). */
  released = false;

  constructor(
    /** The LPID L1 uses for it (the index into L1's partition table). */
    readonly l1Lpid: number,
    /** The LPID L0 runs it with. */
    readonly shadowLpid: number,
    /** The shadow partition-scoped tree's root (PATE dw0 without HR). */
    readonly shadowRoot: [number, number],
  ) {}
}

const NO_GUESTS: readonly NestedGuest[] = [];

/** A creation begun outside the lock (`beginCreate`), to be finished by `finishCreate`. */
export interface PendingNestedGuest {
  readonly l1Lpid: number;
  readonly guest: NestedGuest;
}

/**
 * The nested guests of one L1 (KVM book3s_hv_nested.c, as the 2018 series
 * was reviewed and 2022 finished: a dynamic set, not a fixed array):
 * looked up by L1's LPID, created on demand with a shadow LPID and shadow
 * table, reference counted, removed only while the table still maps the
 * LPID to the guest being removed, released when the last reference goes.
 *
 * The two steps of creation are separate, as KVM allocates outside
 * `mmu_lock` and inserts under it: `beginCreate` allocates, `finishCreate`
 * re-checks and, if another vCPU inserted the same LPID meanwhile ("someone
 * else beat us to it"), uses that one and releases its own. `get` does both.
 */
export class NestedGuests {
  private readonly table = new Map<number, NestedGuest>();
  /**
   * Every guest not yet released, by L1 LPID: the table's, and any removed
   * from it while still referenced (an L2 vCPU still running after L1's RIC 2
   * flush). Host invalidation finds shadow entries through this, so a
   * removed-but-running guest's shadow tree is not missed (KVM looks only in
   * the table, which the fact sheet flags as a gap).
   */
  private readonly live = new Map<number, NestedGuest[]>();
  /** The highest L1 LPID in use, -1 if none (KVM's max_nested_lpid). */
  maxLpid = -1;
  /** L1's partition-table register as H_SET_PARTITION_TABLE gave it (0: nesting off). */
  l1PtcrHi = 0;
  l1PtcrLo = 0;

  constructor(
    private readonly host: NestedGuestHost,
    private readonly lpids: ShadowLpids,
  ) {}

  get size(): number {
    return this.table.size;
  }

  /**
   * H_SET_PARTITION_TABLE (kvmhv_set_partition_table, with the review's
   * validation): 0 turns nesting off; otherwise the size must be at most
   * 2^(12+4) bytes (4096 entries) and the whole table must be L1 memory,
   * else H_PARAMETER and nothing changes.
   */
  setPartitionTable(ptcrHi: number, ptcrLo: number): number {
    ptcrHi >>>= 0;
    ptcrLo >>>= 0;
    if (ptcrHi === 0 && ptcrLo === 0) {
      this.l1PtcrHi = 0;
      this.l1PtcrLo = 0;
      return H_SUCCESS;
    }
    const pats = ptcrLo & TABLE_SIZE_MASK;
    if (pats + 12 - 4 > MAX_NESTED_GUESTS_SHIFT) return H_PARAMETER;
    const baseHi = ptcrHi & TABLE_BASE_HI;
    if (baseHi >= 0x20_0000) return H_PARAMETER;
    const base = baseHi * 0x1_0000_0000 + ((ptcrLo & TABLE_BASE_LO) >>> 0);
    // Reserved bits (outside PATB and PATS) set: a malformed PTCR.
    if ((ptcrHi & ~TABLE_BASE_HI) !== 0 || (ptcrLo & ~(TABLE_BASE_LO | TABLE_SIZE_MASK)) !== 0) return H_PARAMETER;
    if (!this.host.l1MemoryCovers(base, 2 ** (pats + 12))) return H_PARAMETER;
    this.l1PtcrHi = ptcrHi;
    this.l1PtcrLo = ptcrLo;
    return H_SUCCESS;
  }

  /** Entries L1's partition table holds: 2^(PATS+8), or 0 with nesting off. */
  get l1TableEntries(): number {
    return this.l1PtcrHi === 0 && this.l1PtcrLo === 0 ? 0 : 2 ** ((this.l1PtcrLo & TABLE_SIZE_MASK) + 8);
  }

  /** kvmhv_get_nested: a reference to the guest for `l1Lpid`, created if asked; null if absent, out of L1's table, or no shadow LPID is free. */
  get(l1Lpid: number, create: boolean): NestedGuest | null {
    if (!this.inRange(l1Lpid)) return null;
    const found = this.table.get(l1Lpid);
    if (found !== undefined) {
      found.refcnt++;
      return found;
    }
    if (!create) return null;
    const pending = this.beginCreate(l1Lpid);
    return pending === null ? null : this.finishCreate(pending);
  }

  /** The allocation half of creation (outside the lock): a shadow LPID and table. Null if no LPID is free or the LPID is out of range. */
  beginCreate(l1Lpid: number): PendingNestedGuest | null {
    if (!this.inRange(l1Lpid)) return null;
    const shadowLpid = this.lpids.alloc();
    if (shadowLpid < 0) return null;
    const guest = new NestedGuest(l1Lpid, shadowLpid, this.host.allocShadowTable(shadowLpid));
    const list = this.live.get(l1Lpid);
    if (list === undefined) this.live.set(l1Lpid, [guest]);
    else list.push(guest);
    return { l1Lpid, guest };
  }

  /**
   * The insertion half (under the lock): if the LPID is still free, insert
   * this guest with two references (the table's and the caller's);
   * otherwise take a reference to the one that got there first and
   * release this one.
   */
  finishCreate(pending: PendingNestedGuest): NestedGuest {
    const winner = this.table.get(pending.l1Lpid);
    if (winner !== undefined) {
      winner.refcnt++;
      this.release(pending.guest);
      return winner;
    }
    const guest = pending.guest;
    guest.refcnt = 2;
    this.table.set(pending.l1Lpid, guest);
    if (pending.l1Lpid > this.maxLpid) this.maxLpid = pending.l1Lpid;
    return guest;
  }

  /** The guest L1 calls `l1Lpid`, without taking a reference (for paths under the lock). */
  find(l1Lpid: number): NestedGuest | undefined {
    return this.table.get(l1Lpid);
  }

  /** Guests for `l1Lpid` not yet released (at most a few: the table's and removed ones still running); empty if none. */
  liveGuests(l1Lpid: number): readonly NestedGuest[] {
    return this.live.get(l1Lpid) ?? NO_GUESTS;
  }

  /** Every guest not yet released. */
  allLive(): NestedGuest[] {
    const out: NestedGuest[] = [];
    for (const list of this.live.values()) out.push(...list);
    return out;
  }

  /** kvmhv_put_nested: drop a reference; the last one releases the guest. */
  put(guest: NestedGuest): void {
    if (guest.refcnt <= 0) throw new HvmmuError('BAD_ARGUMENT', `nested guest ${guest.l1Lpid} has no reference to drop`);
    if (--guest.refcnt === 0) this.release(guest);
  }

  /**
   * kvmhv_remove_nested: unlink the guest and drop the table's reference —
   * only if the table still maps its LPID to this very guest (a second
   * remove, or a remove of a guest already replaced, changes nothing).
   */
  remove(guest: NestedGuest): boolean {
    if (this.table.get(guest.l1Lpid) !== guest) return false;
    this.table.delete(guest.l1Lpid);
    if (guest.l1Lpid === this.maxLpid) {
      let max = -1;
      for (const id of this.table.keys()) if (id > max) max = id;
      this.maxLpid = max;
    }
    this.put(guest);
    return true;
  }

  /** kvmhv_release_all_nested: unlink every guest and drop the table's references (guests still in use live on until their last put). */
  removeAll(): void {
    const all = [...this.table.values()];
    this.table.clear();
    this.maxLpid = -1;
    for (const g of all) this.put(g);
  }

  /**
   * kvmhv_update_ptbl_cache: read L1's partition-table entry for the guest
   * from L1 memory (zero when the LPID is outside L1's table or the memory
   * is not there), cache it, and rewrite the shadow partition-table entry:
   * HR, a 52-bit tree, the shadow table's root, and L1's dw1 (the L2's
   * process table) verbatim.
   */
  refreshPate(guest: NestedGuest): void {
    let d0: [number, number] | null = null;
    let d1: [number, number] | null = null;
    if (guest.l1Lpid < this.l1TableEntries) {
      const base = (this.l1PtcrHi & TABLE_BASE_HI) * 0x1_0000_0000 + ((this.l1PtcrLo & TABLE_BASE_LO) >>> 0);
      d0 = this.host.readL1(base + guest.l1Lpid * 16);
      d1 = d0 === null ? null : this.host.readL1(base + guest.l1Lpid * 16 + 8);
    }
    guest.l1GrToHrHi = d0 !== null && d1 !== null ? d0[0] : 0;
    guest.l1GrToHrLo = d0 !== null && d1 !== null ? d0[1] : 0;
    guest.processTableHi = d0 !== null && d1 !== null ? d1[0] : 0;
    guest.processTableLo = d0 !== null && d1 !== null ? d1[1] : 0;
    this.host.setShadowPate(guest.shadowLpid, [(guest.shadowRoot[0] | 0x8000_0000) >>> 0, guest.shadowRoot[1]], [guest.processTableHi, guest.processTableLo]);
  }

  /**
   * What H_TLB_INVALIDATE with IS = 2 (one LPID) or 3 (every LPID) does to
   * the nested guests (kvmhv_emulate_tlbie_lpid / _all_lpid): RIC 0 empties
   * the shadow tree, RIC 1 does nothing (L0 caches no L1 page-walk), RIC 2
   * (kvmhv_flush_nested) empties it, re-reads L1's partition-table entry and
   * removes the guest if the entry is now zero. An unknown LPID is nothing
   * to do. Each guest is held by a reference while it is worked on. Every
   * guest not yet released is flushed, also one removed from the table
   * while a vCPU still runs it (KVM looks only in the table: that vCPU's L2
   * would keep translations L1 has invalidated).
   */
  flush(l1Lpid: number | 'all', ric: number): void {
    const targets = l1Lpid === 'all' ? this.allLive() : [...this.liveGuests(l1Lpid)];
    for (const g of targets) {
      if (ric === 1) continue;
      g.refcnt++;
      this.host.clearShadowTable(g.shadowRoot, g.shadowLpid);
      if (ric === 2) {
        this.refreshPate(g);
        if (g.l1GrToHrHi === 0 && g.l1GrToHrLo === 0) this.remove(g);
      }
      this.put(g);
    }
  }

  /** kvmhv_release_nested: free the shadow table, clear the shadow PATE, free the shadow LPID. */
  private release(guest: NestedGuest): void {
    if (guest.released) return;
    guest.released = true;
    const list = this.live.get(guest.l1Lpid);
    if (list !== undefined) {
      const i = list.indexOf(guest);
      if (i >= 0) list.splice(i, 1);
      if (list.length === 0) this.live.delete(guest.l1Lpid);
    }
    this.host.freeShadowTable(guest.shadowRoot, guest.shadowLpid);
    this.host.setShadowPate(guest.shadowLpid, [0, 0], [0, 0]);
    this.lpids.free(guest.shadowLpid);
  }

  private inRange(l1Lpid: number): boolean {
    // LPID 0 is L1 itself; LPIDs past L1's partition table do not exist (and nesting must be on).
    return Number.isInteger(l1Lpid) && l1Lpid > 0 && l1Lpid < this.l1TableEntries;
  }
}
