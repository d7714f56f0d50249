import { inject, injectable } from 'tsyringe';
import { RMAP_NORMAL, TlbShootdown } from '@hvmmu/core';
import type { X86Memslot } from '../X86ShadowTypes.js';
import { ShadowPageTable } from '../shadow/ShadowPageTable.js';
import { ShadowMmuStats } from '../shadow/ShadowMmuStats.js';
import { SPTE_A, SPTE_HI_FRAME_MASK, SPTE_HOST_WRITABLE, SPTE_MMU_WRITABLE, SPTE_W, spteHi, spteLo } from '../spte/Spte.js';
import { SlotRmap, gfnToIndex, slotRmap } from '../rmap/SlotRmap.js';
import { RMAP_RECYCLE_THRESHOLD, type X86RmapOps } from '../rmap/X86RmapOps.js';

/**
 * The `normal` rmap table: KVM's rmap handlers (arch/x86/kvm/mmu/mmu.c:
 * rmap_add, rmap_write_protect, kvm_zap_rmap, kvm_set_pte_rmap, kvm_age_rmap,
 * kvm_test_age_rmap) over the slot's pte_lists. Entries are sptep handles
 * into `ShadowPageTable`; every handler acts on the sptes directly and
 * returns whether a TLB flush is needed — the caller flushes (KVM batches
 * flushes the same way).
 */
@injectable()
export class NormalRmapOps implements X86RmapOps {
  readonly name = RMAP_NORMAL;
  private scratch = new Uint32Array(64);

  constructor(
    @inject(ShadowPageTable) private readonly spt: ShadowPageTable,
    @inject(TlbShootdown) private readonly tlbs: TlbShootdown,
    @inject(ShadowMmuStats) private readonly stats: ShadowMmuStats,
  ) {}

  /** rmap_add's list part; recycles (zaps) a list that grew past RMAP_RECYCLE_THRESHOLD. */
  add(slot: X86Memslot, gfn: number, level: number, entry: number): void {
    // The first 4 KiB mapping of a gfn (every first-touch fault) takes the single-entry form
    // here; kept this small so the compiler inlines it into the fault path.
    const arch = slot.arch;
    if (level === 1 && arch instanceof SlotRmap) {
      const at = gfn - slot.baseGfn;
      if (arch.heads[0]![at] === 0) {
        arch.heads[0]![at] = entry * 2;
        arch.entries++;
        return;
      }
    }
    this.addToList(slot, gfn, level, entry);
  }

  private addToList(slot: X86Memslot, gfn: number, level: number, entry: number): void {
    const r = slotRmap(slot);
    const heads = r.heads[level - 1]!;
    const at = gfnToIndex(gfn, slot.baseGfn, level);
    r.entries++;
    const before = r.pool.add(heads, at, entry);
    if (before > RMAP_RECYCLE_THRESHOLD) {
      this.stats.rmapRecycles++;
      if (this.unmap(slot, gfn, level)) this.tlbs.flushAll();
    }
  }

  remove(slot: X86Memslot, gfn: number, level: number, entry: number): void {
    const r = slotRmap(slot);
    if (!r.pool.remove(r.heads[level - 1]!, gfnToIndex(gfn, slot.baseGfn, level), entry)) {
      throw new Error(`internal: rmap of slot ${slot.id} gfn ${gfn} level ${level} does not hold spte ${entry}`);
    }
    r.entries--;
  }

  writeProtect(slot: X86Memslot, gfn: number, level: number): boolean {
    return this.clearWritable(slot, gfn, level, true);
  }

  /** rmap_write_protect: clear W (and MMU-writable with ptProtect); flush if a writable spte lost W. */
  clearWritable(slot: X86Memslot, gfn: number, level: number, ptProtect: boolean): boolean {
    const n = this.collect(slot, gfn, level);
    if (n === 0) return false;
    const lo = this.spt.sptLo;
    const clear = ptProtect ? SPTE_W | SPTE_MMU_WRITABLE : SPTE_W;
    let flush = false;
    for (let k = 0; k < n; k++) {
      const e = this.scratch[k]!;
      const v = lo[e]!;
      if ((v & clear) === 0) continue;
      if ((v & SPTE_W) !== 0) flush = true;
      lo[e] = (v & ~clear) >>> 0;
    }
    return flush;
  }

  /**
   * kvm_set_pte_rmap (change_pte): a writable new host page zaps the sptes;
   * otherwise they are re-pointed at `hfn` read-only (W, host-writable and
   * MMU-writable cleared) and marked for access tracking (A cleared).
   */
  setPte(slot: X86Memslot, gfn: number, level: number, hfn: number, writable: boolean): boolean {
    if (writable) return this.unmap(slot, gfn, level);
    const n = this.collect(slot, gfn, level);
    const lo = this.spt.sptLo;
    const hi = this.spt.sptHi;
    for (let k = 0; k < n; k++) {
      const e = this.scratch[k]!;
      const flags = lo[e]! & 0xfff & ~(SPTE_W | SPTE_HOST_WRITABLE | SPTE_MMU_WRITABLE | SPTE_A);
      lo[e] = spteLo(hfn, flags);
      hi[e] = spteHi(hfn, hi[e]! & ~SPTE_HI_FRAME_MASK);
    }
    return n > 0;
  }

  /** kvm_age_rmap: clear A; true if any spte was young. */
  age(slot: X86Memslot, gfn: number, level: number): boolean {
    const n = this.collect(slot, gfn, level);
    const lo = this.spt.sptLo;
    let young = false;
    for (let k = 0; k < n; k++) {
      const e = this.scratch[k]!;
      const v = lo[e]!;
      if ((v & SPTE_A) !== 0) {
        young = true;
        lo[e] = (v & ~SPTE_A) >>> 0;
      }
    }
    return young;
  }

  /** kvm_test_age_rmap: true if any spte is young; changes nothing. */
  testAge(slot: X86Memslot, gfn: number, level: number): boolean {
    const n = this.collect(slot, gfn, level);
    const lo = this.spt.sptLo;
    for (let k = 0; k < n; k++) if ((lo[this.scratch[k]!]! & SPTE_A) !== 0) return true;
    return false;
  }

  /** kvm_zap_rmap: clear every spte on the list, free its descriptors, empty the head. */
  unmap(slot: X86Memslot, gfn: number, level: number): boolean {
    const r = slotRmap(slot);
    const heads = r.heads[level - 1]!;
    const at = gfnToIndex(gfn, slot.baseGfn, level);
    const val = heads[at]!;
    if (val === 0) return false;
    const n = this.collect(slot, gfn, level);
    const lo = this.spt.sptLo;
    const hi = this.spt.sptHi;
    for (let k = 0; k < n; k++) {
      const e = this.scratch[k]!;
      lo[e] = 0;
      hi[e] = 0;
    }
    r.pool.destroy(val);
    heads[at] = 0;
    r.entries -= n;
    this.stats.sptesDropped += n;
    return true;
  }

  /** Entries of the list for (gfn, level) into `scratch`; returns how many. */
  private collect(slot: X86Memslot, gfn: number, level: number): number {
    const r = slotRmap(slot);
    const val = r.heads[level - 1]![gfnToIndex(gfn, slot.baseGfn, level)]!;
    if (val === 0) return 0;
    const count = r.pool.count(val);
    if (count > this.scratch.length) this.scratch = new Uint32Array(count * 2);
    return r.pool.collect(val, this.scratch);
  }
}
