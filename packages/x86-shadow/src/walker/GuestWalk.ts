import { ACC } from './PagingContext.js';

/** W and U sit where R/W and U/S sit in an entry (PagingContext `ACC`). */
const ACC_WU = ACC.WRITE | ACC.USER;

/**
 * Result of one guest page walk, reused across walks (no allocation per
 * walk). Mirrors KVM's `struct guest_walker` (paging_tmpl.h); arrays are
 * indexed by level (1 = PTE … 5 = PML5E; index 0 unused). For PAE, level 3 is
 * the cached PDPTE (its gpa is the PDPTE's address in the PDPT).
 */
export class GuestWalk {
  /** Level of the leaf entry (1 = 4K, 2 = 2M/4M, 3 = 1G); on a fault, the level where the walk stopped. */
  level = 0;
  /** Levels in this paging mode (0 paging off, 2, 3, 4, 5). */
  maxLevel = 0;
  /** Guest entry read at each level (as written back after A/D updates). */
  readonly pteHi = new Uint32Array(6);
  readonly pteLo = new Uint32Array(6);
  /** Guest physical address of the entry read at each level. */
  readonly pteGpa = new Float64Array(6);
  /**
   * Top level of a walk whose `tableGfn` and `ptAccess` are still to be
   * derived from its entries, or 0. Set by `GuestWalker`'s long-mode fast
   * path, which records only what it read: those two are pure functions of
   * it, and a caller that never looks at them need not pay ten more stores.
   */
  private pendingTop = 0;
  private readonly tableGfnByLevel = new Float64Array(6);
  private readonly ptAccessByLevel = new Uint8Array(6);

  /** gfn of the guest table read at each level. */
  get tableGfn(): Float64Array {
    if (this.pendingTop !== 0) this.derive();
    return this.tableGfnByLevel;
  }

  /** ACC bits (X=1, W=2, U=4) accumulated from the levels above this one (KVM pt_access). */
  get ptAccess(): Uint8Array {
    if (this.pendingTop !== 0) this.derive();
    return this.ptAccessByLevel;
  }

  /** ACC bits of the whole translation, leaf included (KVM pte_access). */
  pteAccess = 0;
  /** Guest frame of the accessed 4 KiB page. */
  gfn = 0;
  /** Protection key of the leaf (0 when PK does not apply). */
  pkey = 0;
  /** True if the walk succeeded; false = fault (see errorCode). */
  ok = false;
  /** #PF error code when !ok (PFERR bits). */
  errorCode = 0;
  /** True when the fault is not a #PF but a failed read of guest memory (table outside RAM). */
  badTableGpa = false;
  /**
   * True when the walk was refused because the virtual address is not
   * canonical for the long-mode paging mode (SDM 3.3.7.1): hardware raises
   * #GP(0), not #PF, and reads no table. `errorCode` is 0 then.
   */
  nonCanonical = false;
  /**
   * ACC bits the guest tables grant for this translation (AND of W and U,
   * X = no XD anywhere): `pteAccess` before KVM takes W away from a clean
   * leaf on a non-write access (paging_tmpl.h `protect_clean_gpte`).
   */
  grantedAccess = 0;

  /**
   * For `GuestWalker`: levels `top`..1 of this walk are a complete
   * 8-byte-entry walk (long mode, 4 KiB leaf) whose `pteGpa`, `pteLo` and
   * `pteHi` are recorded; `tableGfn` and `ptAccess` follow from them.
   */
  deferTableGfnAndPtAccess(top: number): void {
    this.pendingTop = top;
  }

  /**
   * A table is 4 KiB-aligned and holds the entry, so its gfn is the entry's
   * gpa / 4096; pt_access is the AND of W, U and NOT XD (bit 63) of the
   * entries above, all granted at the top (KVM walk_addr_generic).
   */
  private derive(): void {
    const top = this.pendingTop;
    this.pendingTop = 0;
    const tableGfn = this.tableGfnByLevel;
    const ptAccess = this.ptAccessByLevel;
    let access: number = ACC.ALL;
    for (let level = top; level >= 1; level--) {
      tableGfn[level] = Math.floor(this.pteGpa[level]! / 4096);
      ptAccess[level] = access;
      access &= (this.pteLo[level]! & ACC_WU) | (~this.pteHi[level]! >>> 31);
    }
  }
}
