import type { DependencyContainer } from 'tsyringe';
import { MMU, RMAP_OPS, type BackendModule, type VmConfig } from '@hvmmu/core';
import type { X86ShadowTypes } from '../X86ShadowTypes.js';
import { X86_SHADOW_OPTIONS } from '../X86ShadowOptions.js';
import { ShadowPageTable } from '../shadow/ShadowPageTable.js';
import { NormalRmapOps } from '../strategy/NormalRmapOps.js';
import { InvalidRmapOps } from '../strategy/InvalidRmapOps.js';
import { ShadowMmuStats } from '../shadow/ShadowMmuStats.js';
import { ShadowPages } from '../mmu/ShadowPages.js';
import { VcpuMmuList } from '../mmu/VcpuMmuList.js';
import { X86_SHADOW_BACKEND_ID, X86ShadowMmu } from './X86ShadowMmu.js';
import { FastZapFlush } from '../strategy/FastZapFlush.js';
import { InvalidRmapFlush } from '../strategy/InvalidRmapFlush.js';
import { MEMSLOT_FLUSH_STRATEGY, MEMSLOT_INVALIDATION_NAMES } from '../strategy/MemslotFlushStrategy.js';
import { x86GuestSide } from '../guest/X86GuestSide.js';

/**
 * The x86 shadow-paging backend: one module object. `register` binds, in
 * the VM's child container, the shadow page table, both rmap strategy
 * tables (`normal`, `invalid`), the memslot flush strategy chosen by
 * `backendOptions.memslotInvalidation` ('fast-zap', the default as in
 * upstream KVM, or 'invalid-rmap'), and the MMU.
 *
 * Backend options: see `X86ShadowOptions` (validated by core at VM creation).
 *
 * @example
 * const hv = new Hypervisor({ memoryBytes: 64 << 20 });
 * const vm = hv.createVm({ backend: x86ShadowBackend, backendOptions: { memslotInvalidation: 'invalid-rmap' } });
 * const vcpu = vm.createVcpu();
 * vcpu.arch.loadControlRegisters({ cr0: 0x80000011, cr3: 0x1000, cr4: 0x20, efer: 0 });
 */
export const x86ShadowBackend: BackendModule<X86ShadowTypes> = {
  id: X86_SHADOW_BACKEND_ID,
  description:
    'x86 shadow paging after KVM: shadow pages with roles, gfn hash, rmaps, unsync/sync, special roots, invalid-rmap and fast-zap memslot invalidation',
  capabilities: {
    pagingModes: ['x86-nopaging', 'x86-32bit', 'x86-pae', 'x86-4level', 'x86-5level'],
    dirtyLogging: true,
    readOnlyMemslots: true,
    hostInvalidation: true,
    memslotInvalidation: MEMSLOT_INVALIDATION_NAMES,
    hypercallAbi: 'none',
    // One address space at a time: without PCIDs a MOV to CR3 flushes the TLB (SDM Vol. 3A §4.10.4.1).
    translationContexts: 'single',
    features: { specialRoots: true, unsyncShadowPages: true },
  },
  options: X86_SHADOW_OPTIONS,
  // A 4-level long-mode guest OS: what `hvmmu run` workloads map through (see X86GuestSide).
  guestSide: x86GuestSide,
  register(container: DependencyContainer, config: VmConfig<X86ShadowTypes['options']>): void {
    const strategy = config.backendOptions.memslotInvalidation;
    container.registerSingleton(ShadowPageTable);
    container.registerSingleton(ShadowMmuStats);
    container.registerSingleton(VcpuMmuList);
    container.registerSingleton(NormalRmapOps);
    container.registerSingleton(InvalidRmapOps);
    container.register(RMAP_OPS, { useToken: NormalRmapOps });
    container.register(RMAP_OPS, { useToken: InvalidRmapOps });
    container.registerSingleton(ShadowPages);
    if (strategy === 'fast-zap') {
      container.registerSingleton(FastZapFlush);
      container.register(MEMSLOT_FLUSH_STRATEGY, { useToken: FastZapFlush });
    } else {
      container.registerSingleton(InvalidRmapFlush);
      container.register(MEMSLOT_FLUSH_STRATEGY, { useToken: InvalidRmapFlush });
    }
    container.registerSingleton(X86ShadowMmu);
    container.register(MMU, { useToken: X86ShadowMmu });
  },
};
