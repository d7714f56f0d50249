import {
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
import { HPT_MAX_SUPPORTED_ORDER, HPT_MIN_ORDER } from '../mmu/HashPageTable.js';
import { HostHpt } from './HostHpt.js';
import { HPT_HCALLS, HptHypercallHandler } from './HptHypercallHandler.js';
import { HptGuestSideFactory } from './HptGuestSide.js';
import { HptInvalidRmapOps } from './HptInvalidRmapOps.js';
import { HptNormalRmapOps } from './HptNormalRmapOps.js';
import { HptRmapContext } from './HptRmapContext.js';
import { PAPR_HYPERCALL_ABI } from './PaprHypercallAbi.js';
import { PpcHptMmu } from './PpcHptMmu.js';
import type { PpcHptTypes } from './PpcHptTypes.js';

/** The paging mode this backend's walker understands. */
export const HPT_PAGING_MODE = 'ppc-hash';

/**
 * POWER's hashed page table as KVM HV runs it for a pseries guest: the
 * guest view and the real HPT, the PAPR hash-table hcalls, KVM's reverse
 * map behind the core's rmap strategy tables, and a guest side that maps
 * pages with H_ENTER and handles its own segment and hash faults, as
 * Linux's hash MMU does.
 */
export const ppcHptBackend: BackendModule<PpcHptTypes> = {
  id: 'ppc-hpt',
  description: 'POWER hashed page table under KVM HV: guest view and real HPT, PAPR hcalls, reverse map, HTAB stream',
  capabilities: {
    pagingModes: [HPT_PAGING_MODE],
    dirtyLogging: true,
    readOnlyMemslots: true,
    hostInvalidation: true,
    memslotInvalidation: [MemslotInvalidation.INVALID_RMAP, MemslotInvalidation.FAST_ZAP],
    hypercallAbi: PAPR_HYPERCALL_ABI.name,
    translationContexts: 'single',
    features: { hashPageTable: true, htabStream: true },
  },
  options: {
    memslotInvalidation: memslotInvalidationOption([MemslotInvalidation.INVALID_RMAP, MemslotInvalidation.FAST_ZAP], MemslotInvalidation.INVALID_RMAP),
    realMode: OptionSpec.oneOf(['vrma', 'guest-physical'], 'vrma', "real mode through KVM HV's VRMA entries, or guest physical as under a virtual hypervisor"),
    cpu: OptionSpec.oneOf(['power8', 'power9'], 'power8', "the host processor: the real HPT in POWER8's v2.07 HPTE layout or POWER9's v3.0"),
    hptOrder: OptionSpec.integer(
      HPT_MIN_ORDER,
      HPT_MAX_SUPPORTED_ORDER,
      20,
      'log2 of the HPT size in bytes (KVM_PPC_ALLOCATE_HTAB; KVM defaults to 24, Linux sizes it at guest RAM / 128: 20 suits 128 MiB)',
    ),
  },
  register(container: DependencyContainer, config: VmConfig<PpcHptTypes['options']>): void {
    container.register(HostHpt, {
      useFactory: instanceCachingFactory(
        (c) => new HostHpt(config.backendOptions.hptOrder, c.resolve(TlbShootdown), config.backendOptions.cpu === 'power9' ? 'v3.0' : 'v2.07'),
      ),
    });
    container.register(HptRmapContext, { useFactory: instanceCachingFactory((c) => new HptRmapContext(c.resolve(HostHpt), c.resolve(TRACE_HOOK))) });
    container.register(RMAP_OPS, { useFactory: instanceCachingFactory((c) => new HptNormalRmapOps(c.resolve(HptRmapContext))) });
    container.register(RMAP_OPS, { useFactory: instanceCachingFactory((c) => new HptInvalidRmapOps(c.resolve(HptRmapContext))) });
    container.registerSingleton(PpcHptMmu);
    container.register(MMU, { useToken: PpcHptMmu });
    container.register(HYPERCALL_ABI, { useValue: PAPR_HYPERCALL_ABI });
    for (const h of HPT_HCALLS) {
      container.register(HYPERCALL_HANDLER, { useFactory: (c) => new HptHypercallHandler(h.number, h.name, c.resolve(PpcHptMmu)) });
    }
  },
  guestSide: new HptGuestSideFactory(),
};
