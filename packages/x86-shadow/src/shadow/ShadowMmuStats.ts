import { injectable } from 'tsyringe';

/**
 * Event counters of one VM's shadow MMU (KVM's `kvm->stat` / `vcpu->stat`
 * MMU fields). Gauges (pages, rmap entries, bytes) are computed on demand
 * by `X86ShadowMmu.stats()`.
 */
@injectable()
export class ShadowMmuStats {
  /** Faults fixed by installing or updating shadow entries (KVM pf_fixed). */
  shadowFaults = 0;
  /** Faults reflected to the guest as #PF/#GP (KVM pf_guest). */
  guestFaults = 0;
  /** Faults handed to the VMM: MMIO/holes and writes to read-only slots. */
  vmmFaults = 0;
  /** Guest writes emulated because the target is a write-protected guest page table (KVM pf_emulate). */
  emulatedWrites = 0;
  /** Shadow pages zapped (KVM mmu_shadow_zapped). */
  zappedPages = 0;
  /** Shadow pages zapped by write-flooding / misaligned-write detection (KVM mmu_flooded). */
  flooded = 0;
  /** Upper-level sptes zapped by emulated guest writes (KVM mmu_pde_zapped). */
  pdeZapped = 0;
  /** Leaf sptes dropped (rmap zaps, notifier, sync, memslot flush). */
  sptesDropped = 0;
  /** Pages made unsync (KVM mmu_unsync). */
  unsyncs = 0;
  /** Unsync pages resynced. */
  syncs = 0;
  /** Shadow page lookups that allocated a new page (KVM mmu_cache_miss). */
  mmuCacheMisses = 0;
  /** Hash lookups that skipped a page of another gfn (KVM max_mmu_page_hash_collisions, summed). */
  hashCollisions = 0;
  /** Rmap lists that exceeded RMAP_RECYCLE_THRESHOLD and were zapped. */
  rmapRecycles = 0;
  /** add / writeProtect calls on an invalid slot's rmap table (the 2013 invalid-rmap patch's warnings). */
  invalidRmapWarnings = 0;
  /** Fast zaps (generation flips). */
  fastZaps = 0;
  /** Obsolete pages zapped by fast zaps. */
  obsoletePagesZapped = 0;
  /** Lock-break points passed while zapping obsolete pages (every BATCH_ZAP_PAGES). */
  zapBatches = 0;
  /** Memslot delete/move flushes. */
  memslotFlushes = 0;
  /** Roots allocated / freed. */
  rootsLoaded = 0;
  rootsFreed = 0;
  /** CR3 switches served from the current or a cached previous root. */
  prevRootHits = 0;
  /** Special shadow pages allocated / freed (Lai Jiangshan's 2022 special-root series). */
  specialPagesAllocated = 0;
  specialPagesFreed = 0;
  /** Shadow pages made available by zapping the oldest (KVM make_mmu_pages_available). */
  pagesReclaimed = 0;
  /** Retries because a host-side invalidation raced with the fault (mmu_invalidate_retry). */
  invalidationRetries = 0;
  /** INVLPG executed. */
  invlpgs = 0;
}
