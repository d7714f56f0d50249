import { inject, injectable } from 'tsyringe';
import { MemslotTable, TlbShootdown, TRACE_HOOK, VM_CONFIG, type TraceHook, type VmConfig } from '@hvmmu/core';
import type { X86ShadowTypes } from '../X86ShadowTypes.js';
import { ShadowPageTable } from '../shadow/ShadowPageTable.js';
import { ShadowMmuStats } from '../shadow/ShadowMmuStats.js';
import { VcpuMmuList } from './VcpuMmuList.js';
import { WriteTracking } from './WriteTracking.js';

export * from './ShadowPageRules.js';

/**
 * The shadow pages of one VM: KVM mmu.c's shadow-page life cycle on
 * `ShadowPageTable`, built in layers, one concern per file —
 * `ShadowPageCache` (lookup/creation by gfn and role, link/unlink, rmap
 * bookkeeping, zapping, reclaim, fast zap, roots), `SpteInstaller`
 * (make_spte and mmu_set_spte), `UnsyncPages` (unsync and sync) and
 * `WriteTracking` (shadowed guest tables, emulated writes) — and bound in
 * the VM's container here. Every function keeps KVM's shadow-MMU invariants
 * (checked by test/shadow/helpers/invariants.ts) and flushes every vCPU's TLB
 * whenever an spte is dropped or loses a permission.
 */
@injectable()
export class ShadowPages extends WriteTracking {
  constructor(
    @inject(ShadowPageTable) spt: ShadowPageTable,
    @inject(MemslotTable) memslots: MemslotTable<X86ShadowTypes>,
    @inject(TlbShootdown) tlbs: TlbShootdown,
    @inject(ShadowMmuStats) stats: ShadowMmuStats,
    @inject(VcpuMmuList) vcpus: VcpuMmuList,
    @inject(VM_CONFIG) config: VmConfig<X86ShadowTypes['options']>,
    @inject(TRACE_HOOK) trace: TraceHook | null,
  ) {
    super(spt, memslots, tlbs, stats, vcpus, config, trace);
  }
}
