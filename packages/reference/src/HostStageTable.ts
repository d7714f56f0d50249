import { HvmmuError } from '@hvmmu/core';

/** Entries per table node: 9 index bits per level, as in x86 EPT and POWER radix. */
const NODE_SHIFT = 9;
const NODE_ENTRIES = 1 << NODE_SHIFT;
const NODE_MASK = NODE_ENTRIES - 1;
/** gfn bits resolved below the split point with 32-bit integer ops (levels 1 and 2). */
const LOW_BITS = 2 * NODE_SHIFT;
const LOW_MASK = (1 << LOW_BITS) - 1;
const LOW_SPAN = 1 << LOW_BITS;

/** Leaf flag bits (one byte per entry). */
export const HostStageFlags = {
  /** The guest may write through this entry. */
  WRITABLE: 1 << 0,
  /** Set by the "hardware" when a walk uses the entry; cleared by aging (EPT A bit). */
  ACCESSED: 1 << 1,
} as const;

const INITIAL_NODES = 4;

/**
 * The identity backend's hardware table: guest frame number → host frame,
 * a radix tree of 512-entry nodes in typed arrays (like an EPT / NPT: the
 * hypervisor fills it on faults, the "hardware" walks it on TLB misses).
 *
 * A 52-bit guest physical space has 2^40 frames, far too many for a flat
 * array, so directory levels are allocated on demand. Leaf entries never move:
 * entry index = leaf node × 512 + slot, which is the handle the rmap stores.
 * Directory and leaf nodes come from two pools that grow by doubling; they are
 * only released all at once by `reset` (zap all), as KVM frees page-table pages
 * only when it zaps.
 */
export class HostStageTable {
  /** Levels of the tree (level 1 = leaves). */
  readonly levels: number;
  /** Guest frames the table can map: 2^(guestPhysBits − 12). */
  readonly maxGfn: number;

  /** Directory nodes: child index + 1 per slot, 0 = empty. */
  private dir: Int32Array;
  private dirNodes = 0;
  /** Leaf entries: host frame (−1 = not present), flags, owning slot id, gfn. */
  private hfns: Int32Array;
  private flagBytes: Uint8Array;
  private slotIds: Int32Array;
  private gfns: Float64Array;
  private leafNodes = 0;
  private presentCount = 0;

  constructor(guestPhysBits: number) {
    if (!Number.isInteger(guestPhysBits) || guestPhysBits < 12 || guestPhysBits > 52) {
      throw new HvmmuError('BAD_ARGUMENT', `guestPhysBits must be an integer in 12..52, got ${guestPhysBits}`);
    }
    const gfnBits = guestPhysBits - 12;
    this.maxGfn = 2 ** gfnBits;
    this.levels = Math.max(1, Math.ceil(gfnBits / NODE_SHIFT));
    this.dir = new Int32Array(INITIAL_NODES * NODE_ENTRIES);
    this.hfns = new Int32Array(INITIAL_NODES * NODE_ENTRIES).fill(-1);
    this.flagBytes = new Uint8Array(INITIAL_NODES * NODE_ENTRIES);
    this.slotIds = new Int32Array(INITIAL_NODES * NODE_ENTRIES);
    this.gfns = new Float64Array(INITIAL_NODES * NODE_ENTRIES);
    this.reset();
  }

  /** Present entries. */
  get count(): number {
    return this.presentCount;
  }

  /** Bytes held by the table's pools (directory + leaf arrays). */
  get bytes(): number {
    return this.dir.byteLength + this.hfns.byteLength + this.flagBytes.byteLength + this.slotIds.byteLength + this.gfns.byteLength;
  }

  /** Nodes in use (directory + leaf). */
  get nodes(): number {
    return this.dirNodes + this.leafNodes;
  }

  /** Capacity of the entry index space (for iteration). */
  get entryLimit(): number {
    return this.leafNodes * NODE_ENTRIES;
  }

  /** Entry mapping gfn, or −1. Bounded: one read per level. gfn must be in [0, maxGfn). */
  lookup(gfn: number): number {
    const lo = gfn & LOW_MASK;
    const hi = (gfn - lo) / LOW_SPAN;
    const dir = this.dir;
    let node = 0;
    for (let level = this.levels; level > 1; level--) {
      const index = level > 2 ? (hi >>> ((level - 3) * NODE_SHIFT)) & NODE_MASK : (lo >>> NODE_SHIFT) & NODE_MASK;
      const child = dir[node * NODE_ENTRIES + index]!;
      if (child === 0) return -1;
      node = child - 1;
    }
    const entry = node * NODE_ENTRIES + (lo & NODE_MASK);
    return this.hfns[entry]! >= 0 ? entry : -1;
  }

  /** Install gfn → hfn (gfn must not be mapped); returns the entry index. */
  insert(gfn: number, hfn: number, writable: boolean, slotId: number): number {
    const lo = gfn & LOW_MASK;
    const hi = (gfn - lo) / LOW_SPAN;
    let node = 0;
    for (let level = this.levels; level > 1; level--) {
      const index = level > 2 ? (hi >>> ((level - 3) * NODE_SHIFT)) & NODE_MASK : (lo >>> NODE_SHIFT) & NODE_MASK;
      const at = node * NODE_ENTRIES + index;
      let child = this.dir[at]!;
      if (child === 0) {
        child = (level === 2 ? this.allocLeafNode() : this.allocDirNode()) + 1;
        this.dir[at] = child;
      }
      node = child - 1;
    }
    const entry = node * NODE_ENTRIES + (lo & NODE_MASK);
    if (this.hfns[entry]! >= 0) {
      throw new HvmmuError('BACKEND_INVALID', `host-stage entry for gfn ${gfn} is already present`);
    }
    this.hfns[entry] = hfn;
    this.flagBytes[entry] = writable ? HostStageFlags.WRITABLE : 0;
    this.slotIds[entry] = slotId;
    this.gfns[entry] = gfn;
    this.presentCount++;
    return entry;
  }

  isPresent(entry: number): boolean {
    return entry >= 0 && entry < this.entryLimit && this.hfns[entry]! >= 0;
  }

  hfnOf(entry: number): number {
    return this.hfns[entry]!;
  }

  gfnOf(entry: number): number {
    return this.gfns[entry]!;
  }

  slotOf(entry: number): number {
    return this.slotIds[entry]!;
  }

  isWritable(entry: number): boolean {
    return (this.flagBytes[entry]! & HostStageFlags.WRITABLE) !== 0;
  }

  isAccessed(entry: number): boolean {
    return (this.flagBytes[entry]! & HostStageFlags.ACCESSED) !== 0;
  }

  /** The "hardware" used the entry for a translation. */
  markAccessed(entry: number): void {
    this.flagBytes[entry] = this.flagBytes[entry]! | HostStageFlags.ACCESSED;
  }

  clearAccessed(entry: number): void {
    this.flagBytes[entry] = this.flagBytes[entry]! & ~HostStageFlags.ACCESSED;
  }

  setWritable(entry: number, writable: boolean): void {
    const flags = this.flagBytes[entry]!;
    this.flagBytes[entry] = writable ? flags | HostStageFlags.WRITABLE : flags & ~HostStageFlags.WRITABLE;
  }

  /** Point a present entry at another host frame. */
  repoint(entry: number, hfn: number): void {
    this.hfns[entry] = hfn;
  }

  /** Make the entry not present. Callers shoot down TLBs. */
  clear(entry: number): void {
    if (this.hfns[entry]! < 0) return;
    this.hfns[entry] = -1;
    this.flagBytes[entry] = 0;
    this.presentCount--;
  }

  /** Drop every entry and release all nodes but the root. */
  reset(): void {
    this.dir = new Int32Array(INITIAL_NODES * NODE_ENTRIES);
    this.hfns = new Int32Array(INITIAL_NODES * NODE_ENTRIES).fill(-1);
    this.flagBytes = new Uint8Array(INITIAL_NODES * NODE_ENTRIES);
    this.slotIds = new Int32Array(INITIAL_NODES * NODE_ENTRIES);
    this.gfns = new Float64Array(INITIAL_NODES * NODE_ENTRIES);
    this.dirNodes = 0;
    this.leafNodes = 0;
    this.presentCount = 0;
    // The root: a directory node, or the only leaf node of a one-level table.
    if (this.levels > 1) this.allocDirNode();
    else this.allocLeafNode();
  }

  private allocDirNode(): number {
    if ((this.dirNodes + 1) * NODE_ENTRIES > this.dir.length) {
      const grown = new Int32Array(this.dir.length * 2);
      grown.set(this.dir);
      this.dir = grown;
    }
    return this.dirNodes++;
  }

  private allocLeafNode(): number {
    if ((this.leafNodes + 1) * NODE_ENTRIES > this.hfns.length) {
      const size = this.hfns.length * 2;
      const hfns = new Int32Array(size).fill(-1);
      hfns.set(this.hfns);
      this.hfns = hfns;
      const flags = new Uint8Array(size);
      flags.set(this.flagBytes);
      this.flagBytes = flags;
      const slots = new Int32Array(size);
      slots.set(this.slotIds);
      this.slotIds = slots;
      const gfns = new Float64Array(size);
      gfns.set(this.gfns);
      this.gfns = gfns;
    }
    return this.leafNodes++;
  }
}
