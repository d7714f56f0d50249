import { inject, injectable } from 'tsyringe';
import { RMAP_INVALID, TRACE_HOOK, type TraceHook } from '@hvmmu/core';
import type { X86Memslot } from '../X86ShadowTypes.js';
import { ShadowPageTable } from '../shadow/ShadowPageTable.js';
import { ShadowMmuStats } from '../shadow/ShadowMmuStats.js';
import { SPTE_A } from '../spte/Spte.js';
import { DESC_COUNT, DESC_MORE, DESC_SPTES, PTE_LIST_DESC_WORDS, PTE_LIST_SPTE_SKIP } from '../rmap/PteList.js';
import { gfnToIndex, slotRmap } from '../rmap/SlotRmap.js';
import type { X86RmapOps } from '../rmap/X86RmapOps.js';

/**
 * The `invalid` rmap table (Xiao Guangrong's patch "KVM: MMU: introduce
 * invalid rmap handlers", kvm@vger.kernel.org, April 2013; never merged
 * upstream, which took the fast zap instead), used by a slot from the
 * moment its deletion or move starts:
 *
 * - `add` and `writeProtect` can never legitimately happen (no translation
 *   reaches an invalid slot): they warn — a counter and a trace event — and
 *   do nothing;
 * - `remove` clears the entry in place with the skip marker, keeping the
 *   list's shape and memory, so a walker running at the same time stays
 *   valid;
 * - `unmap`, `setPte`, `age` and `testAge` all do the same thing: walk the
 *   list, skip markers, drop each spte and clear its entry in place (any
 *   spte on an invalid rmap is stale: aging or re-pointing it means
 *   dropping it).
 *
 * The lists' memory is only freed with the slot (`SlotRmap` is dropped when
 * the memslot table frees the slot).
 */
@injectable()
export class InvalidRmapOps implements X86RmapOps {
  readonly name = RMAP_INVALID;

  constructor(
    @inject(ShadowPageTable) private readonly spt: ShadowPageTable,
    @inject(ShadowMmuStats) private readonly stats: ShadowMmuStats,
    @inject(TRACE_HOOK) private readonly trace: TraceHook | null,
  ) {}

  add(slot: X86Memslot, gfn: number, level: number, entry: number): void {
    this.warn('add', slot, gfn, level, entry);
  }

  writeProtect(slot: X86Memslot, gfn: number, level: number): boolean {
    this.warn('writeProtect', slot, gfn, level, 0);
    return false;
  }

  clearWritable(slot: X86Memslot, gfn: number, level: number, _ptProtect: boolean): boolean {
    this.warn('writeProtect', slot, gfn, level, 0);
    return false;
  }

  remove(slot: X86Memslot, gfn: number, level: number, entry: number): void {
    const r = slotRmap(slot);
    if (r.pool.clearInPlace(r.heads[level - 1]!, gfnToIndex(gfn, slot.baseGfn, level), entry)) {
      r.entries--;
      r.skipped++;
    }
  }

  setPte(slot: X86Memslot, gfn: number, level: number, _hfn: number, _writable: boolean): boolean {
    return this.dropAll(slot, gfn, level) !== 0;
  }

  age(slot: X86Memslot, gfn: number, level: number): boolean {
    return this.dropAll(slot, gfn, level) === 2;
  }

  testAge(slot: X86Memslot, gfn: number, level: number): boolean {
    return this.dropAll(slot, gfn, level) === 2;
  }

  unmap(slot: X86Memslot, gfn: number, level: number): boolean {
    return this.dropAll(slot, gfn, level) !== 0;
  }

  /**
   * Drop every spte on the list and overwrite its entry with the skip
   * marker. Returns 0 if nothing was dropped, 1 if sptes were dropped, 2 if
   * at least one of them was young.
   */
  private dropAll(slot: X86Memslot, gfn: number, level: number): number {
    const r = slotRmap(slot);
    const heads = r.heads[level - 1]!;
    const at = gfnToIndex(gfn, slot.baseGfn, level);
    const val = heads[at]!;
    if (val === 0) return 0;
    let dropped = 0;
    let young = false;
    if ((val & 1) === 0) {
      const e = val >>> 1;
      if (e === PTE_LIST_SPTE_SKIP) return 0;
      young = this.drop(e);
      heads[at] = PTE_LIST_SPTE_SKIP * 2;
      dropped = 1;
    } else {
      const w = r.pool.words;
      for (let d = val >>> 1; d !== 0; d = w[d * PTE_LIST_DESC_WORDS + DESC_MORE]!) {
        const base = d * PTE_LIST_DESC_WORDS;
        const n = w[base + DESC_COUNT]!;
        for (let i = 0; i < n; i++) {
          const e = w[base + DESC_SPTES + i]!;
          if (e === PTE_LIST_SPTE_SKIP) continue;
          if (this.drop(e)) young = true;
          w[base + DESC_SPTES + i] = PTE_LIST_SPTE_SKIP;
          dropped++;
        }
      }
    }
    r.entries -= dropped;
    r.skipped += dropped;
    this.stats.sptesDropped += dropped;
    if (dropped === 0) return 0;
    return young ? 2 : 1;
  }

  /** Clear one spte; returns whether it was young. */
  private drop(e: number): boolean {
    const young = (this.spt.sptLo[e]! & SPTE_A) !== 0;
    this.spt.sptLo[e] = 0;
    this.spt.sptHi[e] = 0;
    return young;
  }

  private warn(op: string, slot: X86Memslot, gfn: number, level: number, entry: number): void {
    this.stats.invalidRmapWarnings++;
    if (this.trace !== null) {
      this.trace({ kind: 'x86.rmap.invalid-warning', op, slot: slot.id, gfn, level, entry });
    }
  }
}
