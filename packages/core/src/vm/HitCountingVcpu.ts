import type { Mmu } from '../mmu/Mmu.js';
import type { MemslotTable } from '../memslot/MemslotTable.js';
import type { HypercallDispatcher } from '../hcall/HypercallDispatcher.js';
import type { BackendTypes } from './BackendTypes.js';
import { TRANSLATE_FAULT, Vcpu } from './Vcpu.js';

/**
 * A vCPU that counts its TLB hits in `tlb.hits`, made by
 * `vm.createVcpu({ countTlbHits: true })` for statistics and teaching.
 *
 * The count is a store on every hit, so it lives in a subclass: the plain
 * `Vcpu`'s hit path has none, and a program that makes only one kind of vCPU
 * keeps its call sites monomorphic either way.
 */
export class HitCountingVcpu<T extends BackendTypes = BackendTypes> extends Vcpu<T> {
  /** Hits of this vCPU's hit paths; read them as `tlb.hits`. */
  tlbFastHits = 0;

  constructor(id: number, tlbEntries: number, mmu: Mmu<T>, hypercalls: HypercallDispatcher, memslots: MemslotTable<T>) {
    super(id, tlbEntries, mmu, hypercalls, memslots);
    this.tlb.attachFastPath(this);
  }

  override get countsTlbHits(): boolean {
    return true;
  }

  // The hit paths are `Vcpu`'s with the count added (see there for the access-value check).
  override translate(va: number, access: number): number {
    const offset = va & 0xfff;
    const vpn = (va - offset) / 4096;
    const i = (vpn & this.tlbMask) ^ this.context;
    if (this.tlbTags[i] === vpn && (access & 0xf) === access && ((this.tlbPerms[i]! >> access) & 1) !== 0) {
      this.tlbFastHits++;
      return this.tlbFrames[i]! * 4096 + offset;
    }
    return +this.translateMiss(va, access);
  }

  override translatePage(vpn: number, access: number): number {
    const i = (vpn & this.tlbMask) ^ this.context;
    if (this.tlbTags[i] === vpn && (access & 0xf) === access && ((this.tlbPerms[i]! >> access) & 1) !== 0) {
      this.tlbFastHits++;
      return this.tlbFrames[i]!;
    }
    const hpa = this.translateSlow(vpn, 0, access);
    return hpa < 0 ? TRANSLATE_FAULT : hpa / 4096;
  }
}
