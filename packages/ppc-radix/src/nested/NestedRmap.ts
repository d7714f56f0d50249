import { HvmmuError } from '@hvmmu/core';

/**
 * KVM's nested rmap (arch/powerpc/include/asm/kvm_book3s_64.h,
 * arch/powerpc/kvm/book3s_hv_nested.c kvmhv_insert_nest_rmap,
 * kvmhv_remove_nest_rmap_range, kvmhv_free_memslot_nest_rmap; commit
 * 8cf531ed48cf "Introduce rmap to track nested guest mappings"), in typed
 * arrays.
 *
 * For each 4 KiB page of an L1 memslot, a slot naming every L2 shadow
 * mapping L0 made from it. One entry is one 64-bit word: L1's LPID for the
 * L2 in bits 63..52, the L2 guest-real 4 KiB frame number in bits 51..12,
 * bit 0 the single-entry flag. A slot is 0 (empty), an entry with bit 0 set
 * (exactly one, inline), or a pointer to a list of nodes — a node is a next
 * word and an entry, 16 bytes — whose last next word is an inline entry
 * (bit 0 set), never null. Inserting scans the list and does nothing if an
 * equal entry is there: entries are never removed from the middle (lists
 * are only ever emptied whole, by host invalidation of the page or by
 * freeing the memslot's rmap), so without the scan a guest that faulted the
 * same mapping over and over could make the host allocate without bound.
 * Stale entries (the shadow entry since removed or remapped) stay, and
 * every user re-checks the shadow entry against the host page.
 *
 * A node pointer is written as (node index + 1) × 2 in the low half (even,
 * non-zero), an entry's halves as the 64-bit word's halves.
 */
export class NestedRmapNodes {
  /** Per node: the next word (hi, lo) and the entry (hi, lo): 16 bytes. */
  private words: Uint32Array;
  private freeList: Int32Array;
  private freeTop = 0;
  private capacity = 0;
  /** Nodes in use. */
  inUse = 0;

  constructor(initialNodes = 64) {
    this.words = new Uint32Array(0);
    this.freeList = new Int32Array(0);
    this.grow(Math.max(1, initialNodes));
  }

  /** Bytes the node storage takes (16 per node allocated, used or free). */
  get bytes(): number {
    return this.capacity * 16;
  }

  private grow(to: number): void {
    const words = new Uint32Array(to * 4);
    words.set(this.words);
    const free = new Int32Array(to);
    free.set(this.freeList.subarray(0, this.freeTop));
    let top = this.freeTop;
    for (let n = to - 1; n >= this.capacity; n--) free[top++] = n;
    this.words = words;
    this.freeList = free;
    this.freeTop = top;
    this.capacity = to;
  }

  /** @internal */
  alloc(): number {
    if (this.freeTop === 0) this.grow(this.capacity * 2);
    this.inUse++;
    return this.freeList[--this.freeTop]!;
  }

  /** @internal */
  free(node: number): void {
    this.inUse--;
    this.freeList[this.freeTop++] = node;
  }

  /** @internal */
  nextHi(node: number): number {
    return this.words[node * 4]!;
  }
  nextLo(node: number): number {
    return this.words[node * 4 + 1]!;
  }
  entryHi(node: number): number {
    return this.words[node * 4 + 2]!;
  }
  entryLo(node: number): number {
    return this.words[node * 4 + 3]!;
  }
  set(node: number, nextHi: number, nextLo: number, entryHi: number, entryLo: number): void {
    const w = this.words;
    w[node * 4] = nextHi;
    w[node * 4 + 1] = nextLo;
    w[node * 4 + 2] = entryHi;
    w[node * 4 + 3] = entryLo;
  }
}

/** RMAP_NESTED_LPID_MASK: L1's LPID in bits 63..52 (12 bits). */
export const NESTED_RMAP_MAX_LPID = 0xfff;
/** RMAP_NESTED_GPA_MASK: a 40-bit L2 guest-real 4 KiB frame number. */
export const NESTED_RMAP_MAX_GFN = 2 ** 40 - 1;

/** The entry word's halves for (lpid, L2 frame): lpid in bits 63..52, the frame in 51..12, bit 0 clear. */
export function nestedRmapEntry(lpid: number, gfn: number): [number, number] {
  return [((lpid << 20) | Math.floor(gfn / 0x10_0000)) >>> 0, ((gfn % 0x10_0000) * 4096) >>> 0];
}

/** Decode an entry word: [lpid, L2 frame number]. */
export function decodeNestedRmapEntry(hi: number, lo: number): [number, number] {
  return [hi >>> 20, (hi & 0xf_ffff) * 0x10_0000 + (lo >>> 12)];
}

/**
 * The nested rmap slots of one L1 memslot (`npages` 4 KiB pages), over a
 * VM-wide node pool. The slot words are allocated on first insert (a slot
 * nothing nested maps costs nothing).
 */
export class NestedRmapSlots {
  private hi: Uint32Array | null = null;
  private lo: Uint32Array | null = null;

  constructor(
    readonly npages: number,
    private readonly nodes: NestedRmapNodes,
  ) {
    if (!Number.isSafeInteger(npages) || npages < 1) throw new HvmmuError('BAD_ARGUMENT', `a memslot has at least one page, got ${String(npages)}`);
  }

  /**
   * Slots holding at least one entry: with the nodes in use, the number of
   * entries (a list of k entries is k - 1 nodes and its inline terminator).
   * Counted on demand (stats; not a hot path).
   */
  get slotsInUse(): number {
    if (this.hi === null) return 0;
    let n = 0;
    for (let i = 0; i < this.npages; i++) if (this.hi[i] !== 0 || this.lo![i] !== 0) n++;
    return n;
  }

  /** Bytes the slot words take (0 until the first insert). */
  get bytes(): number {
    return this.hi === null ? 0 : this.npages * 8;
  }

  /**
   * kvmhv_insert_nest_rmap: record that L2 frame `gfn` of the guest L1 calls
   * `lpid` is mapped from L1 page `page`. Returns false (nothing changed, no
   * node used) when an equal entry is already there.
   */
  insert(page: number, lpid: number, gfn: number): boolean {
    this.checkPage(page);
    // LPID 0 is the host's: an entry must never be 0 (KVM's header relies on it; its H_ENTER_NESTED does not check, a port should).
    if (!Number.isInteger(lpid) || lpid < 1 || lpid > NESTED_RMAP_MAX_LPID)
      throw new HvmmuError('BAD_ARGUMENT', `nested rmap LPID must be 1..${NESTED_RMAP_MAX_LPID}, got ${String(lpid)}`);
    if (!Number.isSafeInteger(gfn) || gfn < 0 || gfn > NESTED_RMAP_MAX_GFN)
      throw new HvmmuError('BAD_ARGUMENT', `nested rmap frame must be below 2^40, got ${String(gfn)}`);
    if (this.hi === null) {
      this.hi = new Uint32Array(this.npages);
      this.lo = new Uint32Array(this.npages);
    }
    // The entry word's halves, inline (no array per insert: this runs on every L2 fault).
    // gfn < 2^40 is a safe integer: its low 20 bits by a mask, the rest by a shift below 2^31.
    const eHi = ((lpid << 20) | (gfn <= 0x7fff_ffff ? gfn >>> 20 : Math.floor(gfn / 0x10_0000))) >>> 0;
    const eLo = ((gfn & 0xf_ffff) << 12) >>> 0;
    const sHi = this.hi[page]!;
    const sLo = this.lo![page]!;
    if (sHi === 0 && sLo === 0) {
      this.hi[page] = eHi;
      this.lo![page] = (eLo | 1) >>> 0;
      return true;
    }
    // Scan every entry (the flag ignored); an equal one means nothing to do.
    const nodes = this.nodes;
    let wHi = sHi;
    let wLo = sLo;
    while ((wLo & 1) === 0) {
      const node = (wLo >>> 1) - 1;
      if (nodes.entryHi(node) === eHi && nodes.entryLo(node) === eLo) return false;
      wHi = nodes.nextHi(node);
      wLo = nodes.nextLo(node);
    }
    if (wHi === eHi && (wLo & ~1) >>> 0 === eLo) return false;
    // Push a node at the head; an inline entry becomes the list's terminator.
    const node = nodes.alloc();
    nodes.set(node, sHi, sLo, eHi, eLo);
    this.hi[page] = 0;
    this.lo![page] = ((node + 1) * 2) >>> 0;
    return true;
  }

  /** Entries of a slot, newest first, as [lpid, gfn] (inspection and tests; not a hot path). */
  entries(page: number): [number, number][] {
    this.checkPage(page);
    const out: [number, number][] = [];
    if (this.hi === null) return out;
    let wHi = this.hi[page]!;
    let wLo = this.lo![page]!;
    if (wHi === 0 && wLo === 0) return out;
    while ((wLo & 1) === 0) {
      const node = (wLo >>> 1) - 1;
      out.push(decodeNestedRmapEntry(this.nodes.entryHi(node), this.nodes.entryLo(node)));
      wHi = this.nodes.nextHi(node);
      wLo = this.nodes.nextLo(node);
    }
    out.push(decodeNestedRmapEntry(wHi, wLo & ~1));
    return out;
  }

  /**
   * Visit every entry of a slot without changing it (for_each_nest_rmap_safe
   * as kvmhv_update_nest_rmap_rc_list walks it: the list keeps its shape).
   */
  forEachEntry(page: number, visit: (lpid: number, gfn: number) => void): number {
    return this.walkList(page, visit, false);
  }

  /**
   * Detach the slot's whole list (llist_del_all: the slot becomes 0) and
   * hand each entry to `visit` (kvmhv_remove_nest_rmap_range's walk), then
   * free its nodes. Returns the number of entries.
   */
  detachAll(page: number, visit: (lpid: number, gfn: number) => void): number {
    return this.walkList(page, visit, true);
  }

  /** Hand each entry of a slot's list to `visit`, newest first; with `detach`, the slot becomes 0 and each node is freed as it is left. */
  private walkList(page: number, visit: (lpid: number, gfn: number) => void, detach: boolean): number {
    this.checkPage(page);
    if (this.hi === null) return 0;
    let wHi = this.hi[page]!;
    let wLo = this.lo![page]!;
    if (wHi === 0 && wLo === 0) return 0;
    if (detach) {
      this.hi[page] = 0;
      this.lo![page] = 0;
    }
    const nodes = this.nodes;
    let n = 0;
    while ((wLo & 1) === 0) {
      const node = (wLo >>> 1) - 1;
      const eHi = nodes.entryHi(node);
      const eLo = nodes.entryLo(node);
      wHi = nodes.nextHi(node);
      wLo = nodes.nextLo(node);
      if (detach) nodes.free(node);
      visit(eHi >>> 20, (eHi & 0xf_ffff) * 0x10_0000 + (eLo >>> 12));
      n++;
    }
    visit(wHi >>> 20, (wHi & 0xf_ffff) * 0x10_0000 + (wLo >>> 12));
    return n + 1;
  }

  /** kvmhv_free_memslot_nest_rmap: empty every slot, freeing the nodes, touching no shadow entry. */
  freeAll(): void {
    if (this.hi === null) return;
    for (let page = 0; page < this.npages; page++) {
      if (this.hi[page] !== 0 || this.lo![page] !== 0) this.detachAll(page, noop);
    }
    this.hi = null;
    this.lo = null;
  }

  /** The raw slot word's halves (tests check the encoding). */
  slotWord(page: number): [number, number] {
    this.checkPage(page);
    return this.hi === null ? [0, 0] : [this.hi[page]!, this.lo![page]!];
  }

  private checkPage(page: number): void {
    if (!Number.isInteger(page) || page < 0 || page >= this.npages)
      throw new HvmmuError('BAD_ARGUMENT', `nested rmap page ${String(page)} outside 0..${this.npages - 1}`);
  }
}

function noop(): void {}
