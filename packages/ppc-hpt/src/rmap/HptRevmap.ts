import { HvmmuError } from '@hvmmu/core';
import type { HashPageTable } from '../mmu/HashPageTable.js';

/**
 * KVM's reverse map for the HPT (arch/powerpc/include/asm/kvm_host.h struct
 * revmap_entry; kvm_book3s_64.h KVMPPC_RMAP_*; book3s_hv_rm_mmu.c
 * kvmppc_add_revmap_chain, remove_revmap_chain): for every HPTE the guest's
 * dword1 (guest_rpte, the guest-view word) and forw/back links forming a
 * circular list of the HPTEs that map the same guest page; for every guest
 * page of a memslot a 64-bit rmap word — type (bits 63..56, 0x01 = HPT),
 * the R/C harvested from removed entries (bits 40..39: R = 0x100 << 32,
 * C = 0x80 << 32), PRESENT (bit 32) and the head HPTE index (bits 31..0).
 * Typed arrays throughout; a page's rmap words are allocated with its memslot.
 */
export const RMAP_TYPE_HPT_HI = 0x0100_0000;
export const RMAP_PRESENT_HI = 0x1;
export const RMAP_REFERENCED_HI = 0x100;
export const RMAP_CHANGED_HI = 0x80;

/**
 * The per-HPTE half: the ring links, and guest_rpte — which is the guest
 * view's dword1 (`guestView`, the table the hcalls and the HTAB stream
 * see), so there is one copy of what the guest wrote.
 */
export class HptRevmapEntries {
  entries: number;
  forw: Uint32Array;
  back: Uint32Array;

  constructor(public guestView: HashPageTable) {
    this.entries = guestView.entries;
    this.forw = new Uint32Array(this.entries);
    this.back = new Uint32Array(this.entries);
  }

  /** After an HPT resize (every ring emptied first): links for the new table's entries. */
  retarget(guestView: HashPageTable): void {
    this.guestView = guestView;
    this.entries = guestView.entries;
    this.forw = new Uint32Array(this.entries);
    this.back = new Uint32Array(this.entries);
  }

  /** OR R (0x100) and/or C (0x80) into guest_rpte of HPTE `index`. */
  orGuestRc(index: number, rc: number): void {
    const view = this.guestView.view;
    const at = index * 16 + 12;
    const lo = view.getUint32(at, false);
    if ((lo | rc) !== lo) view.setUint32(at, (lo | rc) >>> 0, false);
  }
}

/** The rmap words of one memslot (`npages` guest pages) over the VM's revmap entries. */
export class HptSlotRmap {
  readonly hi: Uint32Array;
  readonly lo: Uint32Array;

  constructor(
    readonly npages: number,
    private readonly rev: HptRevmapEntries,
  ) {
    this.hi = new Uint32Array(npages);
    this.lo = new Uint32Array(npages);
  }

  present(page: number): boolean {
    return (this.hi[page]! & RMAP_PRESENT_HI) !== 0;
  }

  /**
   * kvmppc_add_revmap_chain: HPTE `index` now maps guest page `page`. A page
   * already mapped gets it just before its head (the ring's tail; the head
   * stays); otherwise it becomes a one-entry ring and the head.
   */
  add(page: number, index: number): void {
    this.check(page, index);
    const rev = this.rev;
    if (this.present(page)) {
      const head = this.lo[page]!;
      const tail = rev.back[head]!;
      rev.forw[index] = head;
      rev.back[index] = tail;
      rev.forw[tail] = index;
      rev.back[head] = index;
    } else {
      rev.forw[index] = index;
      rev.back[index] = index;
      this.hi[page] = (this.hi[page]! & (RMAP_REFERENCED_HI | RMAP_CHANGED_HI)) | RMAP_TYPE_HPT_HI | RMAP_PRESENT_HI;
      this.lo[page] = index;
    }
  }

  /**
   * remove_revmap_chain: HPTE `index` no longer maps `page`; the real
   * entry's R and C (`realR`, `realC`) are ORed into the guest view and
   * kept in the page's rmap word. Returns true if the entry's C was set (the
   * caller marks the page dirty).
   */
  remove(page: number, index: number, realR: boolean, realC: boolean): boolean {
    this.check(page, index);
    const rev = this.rev;
    rev.orGuestRc(index, (realR ? 0x100 : 0) | (realC ? 0x80 : 0));
    const next = rev.forw[index]!;
    const prev = rev.back[index]!;
    rev.back[next] = prev;
    rev.forw[prev] = next;
    if (this.lo[page] === index && this.present(page)) {
      if (next === index) {
        this.hi[page] = this.hi[page]! & ~RMAP_PRESENT_HI;
        this.lo[page] = 0;
      } else {
        this.lo[page] = next;
      }
    }
    this.hi[page] = this.hi[page]! | (realR ? RMAP_REFERENCED_HI : 0) | (realC ? RMAP_CHANGED_HI : 0);
    return realC;
  }

  /** The HPTE indexes mapping `page`, head first (inspection, and the walks of unmap/age/dirty). */
  chain(page: number): number[] {
    if (!Number.isInteger(page) || page < 0 || page >= this.npages) throw new HvmmuError('BAD_ARGUMENT', `page ${String(page)} outside the slot`);
    const out: number[] = [];
    if (!this.present(page)) return out;
    const head = this.lo[page]!;
    let i = head;
    // The ring holds at most every HPTE once: bounded even if a caller broke it.
    for (let n = 0; n < this.rev.entries; n++) {
      out.push(i);
      i = this.rev.forw[i]!;
      if (i === head) break;
    }
    return out;
  }

  /** Take the R (or C) bits harvested so far, clearing them (aging, dirty-log harvest). */
  takeRc(page: number, bit: typeof RMAP_REFERENCED_HI | typeof RMAP_CHANGED_HI): boolean {
    const had = (this.hi[page]! & bit) !== 0;
    this.hi[page] = this.hi[page]! & ~bit;
    return had;
  }

  private check(page: number, index: number): void {
    if (!Number.isInteger(page) || page < 0 || page >= this.npages) throw new HvmmuError('BAD_ARGUMENT', `page ${String(page)} outside the slot`);
    if (!Number.isInteger(index) || index < 0 || index >= this.rev.entries)
      throw new HvmmuError('BAD_ARGUMENT', `HPTE index ${String(index)} outside the table`);
  }
}
