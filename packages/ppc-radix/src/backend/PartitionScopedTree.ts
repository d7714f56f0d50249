import { HvmmuError } from '@hvmmu/core';
import { PATE0_HR_HI, PATE1_GR_HI, radixRootHi, radixRootLo } from '../format/PartitionTable.js';
import { PARTITION_TABLE_PATS, type HostRealSpace } from './HostRealSpace.js';

const TWO_POW_20 = 0x10_0000;
const TWO_POW_27 = 0x800_0000;
const TWO_POW_32 = 0x1_0000_0000;
/** Guest frames the 52-bit partition-scoped tree covers. */
export const PARTITION_GFN_LIMIT = 2 ** 40;
/** NLS of the levels below the root: 2^9 entries (4 KiB tables: Linux radix-4k.h). */
const LEVEL_NLS = 9;
const ROOT_NLS = 13;

/**
 * L0's partition-scoped tree for one LPID (KVM: kvm->arch.pgtable, made by
 * kvmppc_init_vm_radix; its partition-table entry written as
 * kvmppc_setup_partition_table does): guest real → host real, POWER ISA
 * v3.0 radix entries, big-endian, in host frames (the root in
 * `HostRealSpace`'s window). Geometry 13/9/9/9 and 4 KiB leaves only: core's
 * host frames are 4 KiB, so there is no larger host page to map with a 2M
 * or 1G leaf as KVM does where the host has one.
 *
 * Table pages are allocated when a leaf first needs them and kept until the
 * whole tree is freed (KVM frees page-table pages only on teardown too,
 * kvmppc_free_pgtable_radix). Entries are addressed by their offset in the
 * host pool (`pteOffset`); the entry's handle for rmaps and inspection is
 * that offset / 8.
 */
export class PartitionScopedTree {
  /** Present leaves. */
  leaves = 0;
  /** Directory and table pages below the root (the root's frames are the window's). */
  tablePages = 0;
  private isReady = false;
  /** The guest's process table as it registered it (PATE dw1 without GR: PRTB | PRTS). */
  private processTableHi = 0;
  private processTableLo = 0;
  /** PATE dw1 is written as given (a nested guest's shadow entry copies L1's dw1 verbatim). */
  private dw1Verbatim = false;
  private readonly view: DataView;
  // The last PTE table `pteOffset` found (a one-entry page-walk cache, as POWER9's PWC): the
  // 512-page group it serves and its pool offset. Tables are only freed all at once (`free`), which drops it.
  private pwcKey = -1;
  private pwcBase = 0;
  /** The host frame the last `insert` replaced, or -1 if the entry was not a leaf. */
  replacedHfn = -1;
  /** Host real address of this tree's root directory (a window of `space`). */
  readonly rootDirectoryBase: number;

  /**
   * A tree for `lpid` (1..4095: LPID 0 is the host's) in `space`, whose
   * partition table it shares with the other trees there (a nested guest's
   * shadow tree would be another tree of the same space, under its shadow LPID).
   */
  constructor(
    readonly space: HostRealSpace,
    readonly lpid: number,
  ) {
    if (!Number.isInteger(lpid) || lpid < 1 || lpid >= 4096)
      throw new HvmmuError('BAD_ARGUMENT', `a partition-scoped tree's LPID is 1..4095, got ${String(lpid)}`);
    this.view = space.view;
    this.rootDirectoryBase = space.allocateRoot();
  }

  /** The partition table entry exists (the tree can be walked). */
  get ready(): boolean {
    return this.isReady;
  }

  /** PTCR naming the partition table, as halves. */
  ptcr(): [number, number] {
    const base = this.space.partitionTableBase;
    return [Math.floor(base / TWO_POW_32), ((base % TWO_POW_32) | PARTITION_TABLE_PATS) >>> 0];
  }

  /** Write the partition-table entry (allocating its page); false, nothing changed, if the host has no free frame. */
  ensureReady(): boolean {
    if (this.isReady) return true;
    if (!this.space.acquirePate(this.lpid)) return false;
    this.isReady = true;
    this.writePate();
    return true;
  }

  /** KVM_PPC_CONFIGURE_V3_MMU / H_REGISTER_PROC_TBL: the guest's process table (PRTB | PRTS) goes into PATE dw1. */
  setProcessTable(hi: number, lo: number): void {
    this.processTableHi = hi & 0x0fff_ffff;
    this.processTableLo = lo & 0xffff_f01f;
    if (this.isReady) this.writePate();
  }

  /**
   * A shadow tree's PATE dw1: L1's partition-table entry dw1 for the L2,
   * copied verbatim (kvmhv_update_ptbl_cache), so the processor walks the
   * L2's own process table in L2 real space through this tree.
   */
  setVerbatimDw1(hi: number, lo: number): void {
    this.dw1Verbatim = true;
    this.processTableHi = hi >>> 0;
    this.processTableLo = lo >>> 0;
    if (this.isReady) this.writePate();
  }

  get processTable(): [number, number] {
    return [this.processTableHi, this.processTableLo >>> 0];
  }

  /** The PATE's two doublewords as halves ([dw0Hi, dw0Lo, dw1Hi, dw1Lo]). */
  pate(): [number, number, number, number] {
    const root = this.rootDirectoryBase;
    const dw1Hi = this.dw1Verbatim ? this.processTableHi : PATE1_GR_HI | this.processTableHi;
    return [(radixRootHi(root) | PATE0_HR_HI) >>> 0, radixRootLo(root, ROOT_NLS), dw1Hi >>> 0, this.processTableLo >>> 0];
  }

  private writePate(): void {
    const off = this.space.windowOffset(this.space.partitionTableBase + this.lpid * 16, false);
    if (off < 0) throw new HvmmuError('BACKEND_INVALID', 'partition table page missing while the tree is ready');
    const [a, b, c, d] = this.pate();
    const view = this.view;
    view.setUint32(off, a, false);
    view.setUint32(off + 4, b, false);
    view.setUint32(off + 8, c, false);
    view.setUint32(off + 12, d, false);
  }

  /**
   * Pool offset of gfn's leaf entry (find_kvm_secondary_pte), or -1 if a
   * directory on the way is missing. The entry itself may be invalid.
   */
  pteOffset(gfn: number): number {
    if (!this.isReady) return -1;
    const group = gfn <= 0x7fff_ffff ? gfn >>> 9 : Math.floor(gfn / 512);
    if (group === this.pwcKey) return this.pwcBase + (gfn & 511) * 8;
    const low = gfn % TWO_POW_27;
    const rootIndex = (gfn - low) / TWO_POW_27;
    let off = this.space.resolve(this.rootDirectoryBase + rootIndex * 8, false);
    if (off < 0) return -1;
    off = this.child(off, low >>> 18);
    if (off < 0) return -1;
    off = this.child(off, (low >>> 9) & 511);
    if (off < 0) return -1;
    const pte = this.child(off, low & 511);
    if (pte >= 0) {
      this.pwcKey = group;
      this.pwcBase = pte - (low & 511) * 8;
    }
    return pte;
  }

  /**
   * Write a 4 KiB leaf into the invalid entry at pool offset `off` (one a walk
   * found at the bottom level for gfn: `RadixTranslation.partitionMissAddr`);
   * false, nothing written, if the entry is no longer invalid.
   */
  insertAt(off: number, hfn: number, lo: number): boolean {
    if (!this.isReady || (this.view.getUint32(off, false) & 0x8000_0000) !== 0) return false;
    this.leaves++;
    this.view.setUint32(off, (0xc000_0000 | (Math.floor(hfn / TWO_POW_20) & 0x01ff_ffff)) >>> 0, false);
    this.view.setUint32(off + 4, (((hfn % TWO_POW_20) * 4096) | (lo & 0xfff)) >>> 0, false);
    return true;
  }

  /** The entry at `index` of the table a directory entry at `off` points to, or -1 if that entry is not a valid directory. */
  private child(off: number, index: number): number {
    const view = this.view;
    const hi = view.getUint32(off, false);
    if (hi >>> 30 !== 2) return -1; // V set, L clear
    const lo = view.getUint32(off + 4, false);
    return (hi & 0x0fff_ffff) * TWO_POW_32 + ((lo & 0xffff_ff00) >>> 0) + index * 8;
  }

  /**
   * kvmppc_create_pte for a 4 KiB leaf: make the directories gfn's leaf
   * needs (all or none: the frames are counted first), then write the leaf
   * (host frame hfn, low-half flags `lo`). Returns the leaf's offset, or -1
   * with nothing changed if the host has too few free frames.
   */
  insert(gfn: number, hfn: number, lo: number): number {
    if (!this.isReady) return -1;
    const space = this.space;
    const low = gfn % TWO_POW_27;
    const rootIndex = (gfn - low) / TWO_POW_27;
    const rootAddr = this.rootDirectoryBase + rootIndex * 8;
    // Count what is missing: the root's window chunk, then one table per invalid directory entry.
    let missing = space.windowBacked(rootAddr) ? 0 : 1;
    let off = missing === 0 ? space.resolve(rootAddr, false) : -1;
    let depth = 0;
    while (off >= 0 && depth < 3) {
      const next = this.child(off, levelIndex(low, depth));
      if (next < 0) break;
      off = next;
      depth++;
    }
    missing += 3 - depth;
    if (space.host.framesFree < missing) return -1;
    off = space.windowOffset(rootAddr, true);
    for (let level = 0; level < 3; level++) {
      const index = levelIndex(low, level);
      let next = this.child(off, index);
      if (next < 0) {
        const table = space.host.allocFrame() * 4096;
        this.tablePages++;
        this.view.setUint32(off, (0x8000_0000 | Math.floor(table / TWO_POW_32)) >>> 0, false);
        this.view.setUint32(off + 4, ((table % TWO_POW_32) | LEVEL_NLS) >>> 0, false);
        next = table + index * 8;
      }
      off = next;
    }
    const oldHi = this.view.getUint32(off, false);
    if ((oldHi & 0x8000_0000) === 0) this.leaves++;
    this.replacedHfn = oldHi >>> 30 === 3 ? this.hfnAt(off) : -1;
    this.view.setUint32(off, (0xc000_0000 | (Math.floor(hfn / TWO_POW_20) & 0x01ff_ffff)) >>> 0, false);
    this.view.setUint32(off + 4, (((hfn % TWO_POW_20) * 4096) | (lo & 0xfff)) >>> 0, false);
    return off;
  }

  /** High half of the entry at `off`. */
  hiAt(off: number): number {
    return this.view.getUint32(off, false);
  }

  /** Low half of the entry at `off`. */
  loAt(off: number): number {
    return this.view.getUint32(off + 4, false);
  }

  /** The entry at `off` is a present leaf. */
  isLeaf(off: number): boolean {
    return off >= 0 && this.view.getUint32(off, false) >>> 30 === 3; // V and L
  }

  /** The host frame a leaf maps. */
  hfnAt(off: number): number {
    return (this.view.getUint32(off, false) & 0x01ff_ffff) * TWO_POW_20 + (this.view.getUint32(off + 4, false) >>> 12);
  }

  /** kvmppc_radix_update_pte on the low half: clear `clear`, set `set`; returns the old low half. */
  updateLo(off: number, clear: number, set: number): number {
    const old = this.view.getUint32(off + 4, false);
    this.view.setUint32(off + 4, ((old & ~clear) | set) >>> 0, false);
    return old;
  }

  /** Clear a leaf (kvmppc_unmap_pte's update_pte(~0, 0)); returns its old low half. */
  clear(off: number): number {
    const old = this.view.getUint32(off + 4, false);
    if ((this.view.getUint32(off, false) & 0x8000_0000) !== 0) this.leaves--;
    this.view.setUint32(off, 0, false);
    this.view.setUint32(off + 4, 0, false);
    return old;
  }

  /** Every present leaf, in gfn order (inspection and teardown; not a hot path). */
  forEachLeaf(visit: (gfn: number, off: number) => void): void {
    if (!this.isReady) return;
    const space = this.space;
    for (let r = 0; r < 1 << ROOT_NLS; r++) {
      const rootOff = space.resolve(this.rootDirectoryBase + r * 8, false);
      if (rootOff < 0) {
        r |= 511; // the rest of this window chunk is unbacked
        continue;
      }
      this.forEachTable(rootOff, 0, r * TWO_POW_27, visit);
    }
  }

  private forEachTable(dirOff: number, level: number, gfnBase: number, visit: (gfn: number, off: number) => void): void {
    const first = this.child(dirOff, 0);
    if (first < 0) return;
    const span = level === 0 ? 2 ** 18 : level === 1 ? 512 : 1;
    for (let i = 0; i < 512; i++) {
      const off = first + i * 8;
      const hi = this.view.getUint32(off, false);
      if ((hi & 0x8000_0000) === 0) continue;
      if (level === 2) {
        if ((hi & 0x4000_0000) !== 0) visit(gfnBase + i, off);
      } else {
        this.forEachTable(off, level + 1, gfnBase + i * span, visit);
      }
    }
  }

  /**
   * Free the whole tree, its directories and root, and clear its
   * partition-table entry (kvmppc_free_radix); the table's page goes with
   * the last entry. After this the tree is not ready and owns no host frame;
   * `ensureReady` starts it again.
   */
  free(): void {
    if (this.isReady) {
      const space = this.space;
      for (let r = 0; r < 1 << ROOT_NLS; r++) {
        const rootOff = space.resolve(this.rootDirectoryBase + r * 8, false);
        if (rootOff < 0) {
          r |= 511;
          continue;
        }
        this.freeBelow(rootOff, 0);
      }
    }
    if (this.isReady) {
      const off = this.space.windowOffset(this.space.partitionTableBase + this.lpid * 16, false);
      for (let i = 0; i < 16; i += 4) this.view.setUint32(off + i, 0, false);
      this.space.releasePate();
    }
    this.space.releaseRoot(this.rootDirectoryBase, true);
    this.leaves = 0;
    this.tablePages = 0;
    this.isReady = false;
    this.pwcKey = -1;
  }

  /** Free the tree and give its root window back to the space (a nested guest's shadow tree, when the guest goes). */
  release(): void {
    this.free();
    this.space.releaseRoot(this.rootDirectoryBase, false);
  }

  private freeBelow(dirOff: number, level: number): void {
    const first = this.child(dirOff, 0);
    if (first < 0) return;
    if (level < 2) {
      for (let i = 0; i < 512; i++) this.freeBelow(first + i * 8, level + 1);
    }
    this.space.host.freeFrame(first / 4096);
  }
}

/** The index below the root of a gfn's low 27 bits at `level` (0 PUD, 1 PMD, 2 PTE): 9 bits each. */
function levelIndex(low: number, level: number): number {
  return level === 0 ? low >>> 18 : level === 1 ? (low >>> 9) & 511 : low & 511;
}
