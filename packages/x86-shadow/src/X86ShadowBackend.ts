import type { DependencyContainer } from 'tsyringe';
import { HvmmuError, MMU, RMAP_OPS, type BackendModule, type VmConfig } from '@hvmmu/core';
import { ShadowPageTable } from './shadow/ShadowPageTable.js';
import { NormalRmapOps } from './rmap/NormalRmapOps.js';
import { InvalidRmapOps } from './rmap/InvalidRmapOps.js';
import { ShadowMmuStats } from './mmu/ShadowMmuStats.js';
import { ShadowPages } from './mmu/ShadowPages.js';
import { VcpuMmuList } from './mmu/VcpuMmuList.js';
import { X86_SHADOW_BACKEND_ID, X86ShadowMmu } from './mmu/X86ShadowMmu.js';
import { FastZapFlush } from './memslot/FastZapFlush.js';
import { InvalidRmapFlush } from './memslot/InvalidRmapFlush.js';
import { MEMSLOT_FLUSH_STRATEGY, MEMSLOT_INVALIDATION_NAMES } from './memslot/MemslotFlushStrategy.js';

/**
 * The x86 shadow-paging backend: one module object. `register` binds, in
 * the VM's child container, the shadow page table, both rmap strategy
 * tables (`normal`, `invalid`), the memslot flush strategy chosen by
 * `backendOptions.memslotInvalidation` ('fast-zap', the default as in
 * upstream KVM, or 'invalid-rmap'), and the MMU.
 *
 * Backend options: `memslotInvalidation`, `hostRootLevel` (3 | 4 | 5: the
 * smallest hardware root; 4/5 model a 64-bit host shadowing an L1 NPT and
 * exercise the pml4/pml5 special levels), `maxShadowPages` (soft budget;
 * default 2% of guest pages, at least 64, as KVM).
 *
 * @example
 * const hv = new Hypervisor({ memoryBytes: 64 << 20 });
 * const vm = hv.createVm({ backend: x86ShadowBackend, backendOptions: { memslotInvalidation: 'invalid-rmap' } });
 * const vcpu = vm.createVcpu();
 * x86Vcpu(vcpu).loadControlRegisters({ cr0: 0x80000011, cr3: 0x1000, cr4: 0x20, efer: 0 });
 */
export const x86ShadowBackend: BackendModule = {
  id: X86_SHADOW_BACKEND_ID,
  description: 'x86 shadow paging after KVM: shadow pages with roles, gfn hash, rmaps, unsync/sync, special roots, invalid-rmap and fast-zap memslot invalidation',
  capabilities: {
    pagingModes: ['x86-nopaging', 'x86-32bit', 'x86-pae', 'x86-4level', 'x86-5level'],
    nestedGuests: false,
    specialRoots: true,
    htabStream: false,
    dirtyLogging: true,
    readOnlyMemslots: true,
    hostInvalidation: true,
    memslotInvalidation: MEMSLOT_INVALIDATION_NAMES,
    hypercallAbi: 'none',
  },
  register(container: DependencyContainer, config: VmConfig): void {
    const strategy = config.backendOptions['memslotInvalidation'] ?? 'fast-zap';
    if (strategy !== 'fast-zap' && strategy !== 'invalid-rmap') {
      throw new HvmmuError('BAD_ARGUMENT',
        `backendOptions.memslotInvalidation must be one of ${MEMSLOT_INVALIDATION_NAMES.join(', ')}, got ${String(strategy)}`);
    }
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
