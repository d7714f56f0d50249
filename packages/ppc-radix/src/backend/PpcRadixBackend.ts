import {
  HOST_MEMORY,
  HYPERCALL_ABI,
  HYPERCALL_HANDLER,
  MMU,
  MemslotInvalidation,
  OptionSpec,
  RMAP_OPS,
  TlbShootdown,
  TRACE_HOOK,
  memslotInvalidationOption,
  type BackendModule,
  type VmConfig,
} from '@hvmmu/core';
import { instanceCachingFactory, type DependencyContainer } from 'tsyringe';
import { radixGuestSide } from '../guest/RadixGuestSide.js';
import { HostRealSpace } from './HostRealSpace.js';
import { PartitionScopedTree } from './PartitionScopedTree.js';
import { PPC_RADIX_BACKEND_ID, PpcRadixMmu } from './PpcRadixMmu.js';
import type { PpcRadixTypes } from './PpcRadixTypes.js';
import { RadixInvalidRmapOps } from './RadixInvalidRmapOps.js';
import { RadixNormalRmapOps } from './RadixNormalRmapOps.js';
import { RadixRmapContext } from './RadixRmapContext.js';
import { NESTED_HCALLS, NestedHypercallHandler, RADIX_PAPR_ABI } from './NestedHypercallHandler.js';

/** The paging mode of a radix guest (POWER ISA v3.0 radix, any of 4K/64K/2M/1G process-scoped pages). */
export const RADIX_PAGING_MODE = 'radix';

/**
 * Each VM has its own partition table (its own PTCR) in which the guest is
 * LPID 1, as KVM would hand out an LPID; LPID 0 is the host's. The shadow
 * LPIDs of its nested guests are the table's next entries.
 */
export const RADIX_GUEST_LPID = 1;

/**
 * The POWER radix backend: a pseries radix guest (an L1) of KVM-HV, with
 * L0's partition-scoped table built on faults from the memslots
 * (`PpcRadixMmu`), and the guest side a workload drives (`radixGuestSide`).
 */
export const ppcRadixBackend: BackendModule<PpcRadixTypes> = {
  id: PPC_RADIX_BACKEND_ID,
  description: "KVM-HV's radix host side: a radix guest's 2-D translation under L0's partition-scoped table, filled on faults from the memslots",
  capabilities: {
    pagingModes: [RADIX_PAGING_MODE],
    dirtyLogging: true,
    readOnlyMemslots: true,
    hostInvalidation: true,
    memslotInvalidation: [MemslotInvalidation.INVALID_RMAP, MemslotInvalidation.FAST_ZAP],
    hypercallAbi: RADIX_PAPR_ABI.name,
    translationContexts: 'many',
    features: { radixGuest: true, partitionPageShifts: [12], nestedGuests: true },
  },
  options: {
    memslotInvalidation: memslotInvalidationOption([MemslotInvalidation.INVALID_RMAP, MemslotInvalidation.FAST_ZAP], MemslotInvalidation.INVALID_RMAP),
    readOnlyStore: OptionSpec.oneOf(
      ['vmm-exit', 'guest-dsi'] as const,
      'vmm-exit',
      "a store to a READONLY memslot: 'vmm-exit' (FaultKind.READ_ONLY) or 'guest-dsi' (KVM-HV's DSI with ISSTORE | PROTFAULT)",
    ),
    nestedHv: OptionSpec.boolean(
      false,
      'nested HV for the guest (KVM_CAP_PPC_NESTED_HV): off, the nested hcalls return H_FUNCTION as in KVM and QEMU by default',
    ),
  },
  register(container: DependencyContainer, _config: VmConfig<PpcRadixTypes['options']>): void {
    container.register(PartitionScopedTree, {
      useFactory: instanceCachingFactory((c) => new PartitionScopedTree(new HostRealSpace(c.resolve(HOST_MEMORY)), RADIX_GUEST_LPID)),
    });
    container.register(RadixRmapContext, {
      useFactory: instanceCachingFactory((c) => new RadixRmapContext(c.resolve(PartitionScopedTree), c.resolve(TlbShootdown), c.resolve(TRACE_HOOK))),
    });
    container.register(RMAP_OPS, { useFactory: instanceCachingFactory((c) => new RadixNormalRmapOps(c.resolve(RadixRmapContext))) });
    container.register(RMAP_OPS, { useFactory: instanceCachingFactory((c) => new RadixInvalidRmapOps(c.resolve(RadixRmapContext))) });
    container.registerSingleton(PpcRadixMmu);
    container.register(MMU, { useToken: PpcRadixMmu });
    container.register(HYPERCALL_ABI, { useValue: RADIX_PAPR_ABI });
    for (const h of NESTED_HCALLS) {
      container.register(HYPERCALL_HANDLER, { useFactory: (c) => new NestedHypercallHandler(h.number, h.name, c.resolve(PpcRadixMmu)) });
    }
  },
  guestSide: radixGuestSide,
};
