/** One run of `MappingList`, as an object (for printing and tests, not for hot paths). */
export interface MappingRun {
  /** First virtual page (full 64-bit VA / 4096; upper-half addresses are sign-extended). */
  readonly vpn: number;
  readonly gfn: number;
  /** Length in 4 KiB pages. */
  readonly pages: number;
  /** ACC bits granted: EXEC=1 (no XD on the path), WRITE=2, USER=4 (AND over levels). */
  readonly access: number;
  /** Protection key (0 unless long mode with CR4.PKE). */
  readonly pkey: number;
}

/**
 * Every mapping a set of guest page tables holds, compacted into runs: a run
 * is a range of virtual pages mapped to consecutive guest frames with the
 * same access and key. Struct-of-arrays, in ascending virtual order.
 */
export class MappingList {
  count = 0;
  vpnStart: Float64Array;
  gfnStart: Float64Array;
  pageCount: Float64Array;
  access: Uint8Array;
  pkey: Uint8Array;
  /** The enumeration stopped at its entry or run budget; the list is a prefix. */
  truncated = false;
  /** Table entries read. */
  entriesRead = 0;
  /** Tables that are not in guest memory (their subtree is skipped; a walk through them fails). */
  badTables = 0;
  /** Present entries with reserved bits set (every walk through them faults; skipped). */
  reservedEntries = 0;
  private readonly maxRuns: number;

  constructor(maxRuns: number, initialCapacity = 64) {
    this.maxRuns = maxRuns;
    const capacity = Math.max(1, Math.min(initialCapacity, maxRuns));
    this.vpnStart = new Float64Array(capacity);
    this.gfnStart = new Float64Array(capacity);
    this.pageCount = new Float64Array(capacity);
    this.access = new Uint8Array(capacity);
    this.pkey = new Uint8Array(capacity);
  }

  /** Append a mapping, merging it into the last run when contiguous. False when the run budget is spent. */
  add(vpn: number, gfn: number, pages: number, access: number, pkey: number): boolean {
    const last = this.count - 1;
    if (
      last >= 0 &&
      this.access[last] === access &&
      this.pkey[last] === pkey &&
      this.vpnStart[last]! + this.pageCount[last]! === vpn &&
      this.gfnStart[last]! + this.pageCount[last]! === gfn
    ) {
      this.pageCount[last] = this.pageCount[last]! + pages;
      return true;
    }
    if (this.count === this.maxRuns) return false;
    if (this.count === this.vpnStart.length) this.grow();
    const i = this.count++;
    this.vpnStart[i] = vpn;
    this.gfnStart[i] = gfn;
    this.pageCount[i] = pages;
    this.access[i] = access;
    this.pkey[i] = pkey;
    return true;
  }

  run(i: number): MappingRun {
    return { vpn: this.vpnStart[i]!, gfn: this.gfnStart[i]!, pages: this.pageCount[i]!, access: this.access[i]!, pkey: this.pkey[i]! };
  }

  runs(): MappingRun[] {
    const out: MappingRun[] = [];
    for (let i = 0; i < this.count; i++) out.push(this.run(i));
    return out;
  }

  /** Total mapped 4 KiB pages. */
  get pages(): number {
    let total = 0;
    for (let i = 0; i < this.count; i++) total += this.pageCount[i]!;
    return total;
  }

  private grow(): void {
    const capacity = Math.min(this.maxRuns, this.vpnStart.length * 2);
    const grow64 = (a: Float64Array): Float64Array => {
      const b = new Float64Array(capacity);
      b.set(a);
      return b;
    };
    const grow8 = (a: Uint8Array): Uint8Array => {
      const b = new Uint8Array(capacity);
      b.set(a);
      return b;
    };
    this.vpnStart = grow64(this.vpnStart);
    this.gfnStart = grow64(this.gfnStart);
    this.pageCount = grow64(this.pageCount);
    this.access = grow8(this.access);
    this.pkey = grow8(this.pkey);
  }
}
