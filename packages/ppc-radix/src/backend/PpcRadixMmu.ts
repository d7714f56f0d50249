import {
  FaultKind,
  FaultOutcome,
  GFN_HOST_OUT_OF_MEMORY,
  HvmmuError,
  MemslotFlags,
  MemslotInvalidation,
  MemslotTable,
  TlbShootdown,
  TRACE_HOOK,
  TranslationContexts,
  VM_CONFIG,
  type FaultInfo,
  type FaultOutcomeValue,
  type HypercallRegisters,
  type MappingLeaf,
  type Memslot,
  type MemslotChange,
  type Mmu,
  type MmuSnapshot,
  type RmapRecord,
  type TraceHook,
  type Vcpu,
  type TranslationResult,
  type VmConfig,
} from '@hvmmu/core';
import { inject, injectable } from 'tsyringe';
import { RADIX_PTE } from '../format/RadixEntry.js';
import { Dsisr, RadixVector } from '../format/RadixInterrupt.js';
import { enumerateRadixTree, type RadixTreeListing } from '../inspect/enumerateRadixTree.js';
import { NestedRmapNodes } from '../nested/NestedRmap.js';
import { RadixRegisters } from '../walk/RadixRegisters.js';
import type { RadixTranslation } from '../walk/RadixTranslation.js';
import { PARTITION_GFN_LIMIT, PartitionScopedTree } from './PartitionScopedTree.js';
import type { PpcRadixOptions, PpcRadixStats, PpcRadixTypes } from './PpcRadixTypes.js';
import { RadixContexts } from './RadixContexts.js';
import { deliverRadixInterrupt } from './RadixFaultWords.js';
import { RadixMissCode } from './RadixMissCode.js';
import { NestedHv, NestedTrap, type L1PageSource } from './NestedHv.js';
import { RadixRmapContext } from './RadixRmapContext.js';
import { RadixSlotRmap } from './RadixSlotRmap.js';
import { RadixVcpuMmu } from './RadixVcpuMmu.js';

export const PPC_RADIX_BACKEND_ID = 'ppc-radix';
const TWO_POW_20 = 0x10_0000;
/** Partition-scoped leaf flags KVM starts from (kvmppc_book3s_instantiate_page: _PAGE_READ | _PAGE_EXEC | _PAGE_ACCESSED). */
const LEAF_BASE = RADIX_PTE.R | RADIX_PTE.READ | RADIX_PTE.EXECUTE;
/** ... and for a store, or a read upgraded to write (_PAGE_WRITE | _PAGE_DIRTY). */
const LEAF_WRITE = RADIX_PTE.READ_WRITE | RADIX_PTE.C;

/**
 * KVM-HV's radix host side for one guest (an L1, a pseries radix guest):
 * the VM's MMU and `vm.arch`.
 *
 * The hardware side is `RadixVcpuMmu`: the guest's own process-scoped tree
 * (process table in PATE dw1, PIDR, MSR[IR/DR], AMR/IAMR) walked in two
 * dimensions under the partition-scoped tree L0 keeps for the guest's LPID
 * (`PartitionScopedTree`, real radix entries in host frames). A
 * process-scoped failure is the guest's: a DSI/ISI/segment interrupt with
 * its registers. A partition-scoped failure (HDSI/HISI) comes here and is
 * handled as kvmppc_book3s_radix_page_fault does (arch/powerpc/kvm/
 * book3s_64_mmu_radix.c):
 *
 * - no memslot: a bad address in the guest's page-table tree (PRTABLE_FAULT,
 *   or an R/C fault) is reflected to the guest as a DSI/ISI with the same
 *   cause; anything else is MMIO: an exit to the VMM (NO_MEMORY);
 * - a store to a READONLY slot: exit READ_ONLY (or KVM's DSI, see options);
 * - an R/C fault (DSISR_SET_RC): kvmppc_hv_handle_set_rc sets R, and C for a
 *   store, in the existing leaf; the access is retried;
 * - otherwise kvmppc_book3s_instantiate_page: the host frame from the
 *   memslot (a read of an untouched page gets the zero frame, read-only), an
 *   invalidation-sequence check (mmu_invalidate_retry), and
 *   kvmppc_create_pte: R|read|exec, plus RW|C for a store or for a read of
 *   a writable private page (KVM's upgrade_write) unless the slot logs dirty
 *   pages.
 *
 * Dirty logging uses C as KVM-HV radix does: a leaf with C clear refuses
 * stores (R/C fault), set_rc sets C and the page is logged then (KVM reads C
 * when the log is fetched; core's `getDirtyLog` has no such hook, so the
 * bit is set when C is), and a harvest clears C with a tlbie. Host events
 * go through the slot's rmap table (`RadixRmapOps`).
 */
@injectable()
export class PpcRadixMmu implements Mmu<PpcRadixTypes>, L1PageSource {
  readonly backendId = PPC_RADIX_BACKEND_ID;
  readonly arch: PpcRadixMmu = this;
  readonly options: PpcRadixOptions;
  readonly contexts: RadixContexts;
  /** The nested rmap's node pool, shared by every slot of the VM. */
  readonly nestedNodes = new NestedRmapNodes();
  private readonly vcpuMmus: (RadixVcpuMmu | undefined)[] = [];
  /** Nested HV: the L2 guests of this L1, their shadow trees, and the four nested hcalls. */
  readonly nested: NestedHv;
  /** Slots holding radix slot data (live ones, and one being deleted until its commit). */
  private readonly rmapSlots = new Set<Memslot<PpcRadixTypes>>();
  private readonly c = {
    guestDsi: 0,
    guestIsi: 0,
    guestSegment: 0,
    partitionFaults: 0,
    instantiations: 0,
    setRc: 0,
    tableFaultsReflected: 0,
    noMemory: 0,
    readOnly: 0,
    hostOutOfMemory: 0,
    invalidationRetries: 0,
    tableInits: 0,
    zapAlls: 0,
    walks: 0,
    walkRefs: 0,
  };

  constructor(
    @inject(MemslotTable) private readonly memslots: MemslotTable<PpcRadixTypes>,
    @inject(PartitionScopedTree) readonly tree: PartitionScopedTree,
    @inject(TlbShootdown) private readonly tlbs: TlbShootdown,
    @inject(TranslationContexts) translationContexts: TranslationContexts,
    @inject(RadixRmapContext) private readonly rmapContext: RadixRmapContext,
    @inject(VM_CONFIG) config: VmConfig<PpcRadixOptions>,
    @inject(TRACE_HOOK) private readonly trace: TraceHook | null,
  ) {
    this.options = config.backendOptions;
    this.contexts = new RadixContexts(translationContexts, tlbs);
    this.nested = new NestedHv(tree, memslots, tlbs, this.contexts, this, trace, this.options.nestedHv);
    rmapContext.nested = this.nested;
  }

  get readOnlyStore(): PpcRadixOptions['readOnlyStore'] {
    return this.options.readOnlyStore;
  }

  get vcpuMmuList(): readonly (RadixVcpuMmu | undefined)[] {
    return this.vcpuMmus;
  }

  // ------------------------------------------------------------ vCPUs

  attachVcpu(vcpu: Vcpu<PpcRadixTypes>): RadixVcpuMmu {
    const mmu = new RadixVcpuMmu(vcpu as Vcpu, this.tree, this.tree.space, this.contexts, this.memslots, this.nested);
    this.vcpuMmus[vcpu.id] = mmu;
    return mmu;
  }

  detachVcpu(vcpu: Vcpu<PpcRadixTypes>): void {
    const mmu = this.vcpuMmus[vcpu.id];
    if (mmu !== undefined) {
      this.nested.abandonRun(mmu);
      this.c.walks += mmu.walks;
      this.c.walkRefs += mmu.walkRefs;
    }
    this.vcpuMmus[vcpu.id] = undefined;
  }

  // ------------------------------------------------------------ the guest's MMU registers and tlbie

  /**
   * The guest's process table (H_REGISTER_PROC_TBL, which QEMU passes on as
   * KVM_PPC_CONFIGURE_V3_MMU): PRTB | PRTS, a guest real address, written to
   * PATE dw1; then every vCPU's TLB and table caches are flushed (tlbie RIC 2
   * for the LPID).
   */
  setProcessTable(value: bigint | number): void {
    this.checkAlive();
    const [hi, lo] = RadixRegisters.halves(value, 'process table (PRTB | PRTS)');
    if ((hi & 0xf000_0000) !== 0 || (lo & 0xfe0) !== 0) {
      throw new HvmmuError(
        'BAD_ARGUMENT',
        `process table value must be PRTB (bits 59..12) | PRTS (bits 4..0), got 0x${((BigInt(hi) << 32n) | BigInt(lo)).toString(16)}`,
      );
    }
    this.tree.setProcessTable(hi, lo);
    for (const mmu of this.vcpuMmus) mmu?.invalidateTableCaches();
    this.tlbs.flushAll();
  }

  /** The guest's tlbie of one page of process `pid` (RIC 0, PRS 1, IS 0), on every vCPU. */
  guestTlbiePage(pid: number, vpn: number): void {
    this.checkAlive();
    this.contexts.flushPidPage(pid, vpn);
  }

  /**
   * The guest's tlbie of a whole process (PRS 1, IS 1): RIC 0 its
   * translations; RIC 2 also the cached process-table entries, which a
   * guest must issue after changing a process-table entry (Linux does on
   * every PID it sets up).
   */
  guestTlbiePid(pid: number, ric: 0 | 2 = 0): void {
    this.checkAlive();
    if (ric === 2) for (const mmu of this.vcpuMmus) mmu?.invalidateTableCaches();
    this.contexts.flushPid(pid);
  }

  private checkAlive(): void {
    if (this.memslots.isClosed) throw new HvmmuError('VM_DESTROYED', 'the VM of this radix MMU has been destroyed');
  }

  /** The per-vCPU MMU of `vcpu` (its registers). */
  vcpuMmuOf(vcpu: { readonly id: number }): RadixVcpuMmu {
    const mmu = this.vcpuMmus[vcpu.id];
    if (mmu === undefined) throw new HvmmuError('VCPU_BAD_ID', `vCPU ${vcpu.id} is not attached to this radix MMU`);
    return mmu;
  }

  // ------------------------------------------------------------ faults

  handleFault(vcpu: Vcpu<PpcRadixTypes>, _vpn: number, access: number, missCode: number, fault: FaultInfo, result: TranslationResult): FaultOutcomeValue {
    const walk = vcpu.arch.lastWalk;
    switch (missCode) {
      case RadixMissCode.NO_PARTITION_TABLE:
        if (!vcpu.arch.activeTree.ensureReady()) {
          this.c.hostOutOfMemory++;
          fault.exit(FaultKind.HOST_OUT_OF_MEMORY, -1);
          return FaultOutcome.DONE;
        }
        this.c.tableInits++;
        return FaultOutcome.RETRY;
      case RadixMissCode.GUEST:
        this.deliverToGuest(walk, walk.cause, fault);
        return FaultOutcome.DONE;
      case RadixMissCode.PARTITION:
        return vcpu.arch.nested !== null ? this.nested.l2Fault(vcpu.arch, walk, fault, access, result) : this.partitionFault(walk, fault);
      default:
        throw new HvmmuError('BACKEND_INVALID', `radix MMU: unknown miss code ${missCode}`);
    }
  }

  private deliverToGuest(walk: RadixTranslation, cause: number, fault: FaultInfo): void {
    let vector = walk.vector;
    // A partition-scoped fault reflected to the guest is its storage interrupt.
    if (vector === RadixVector.HDSI) vector = RadixVector.DSI;
    else if (vector === RadixVector.HISI) vector = RadixVector.ISI;
    if (vector === RadixVector.DSI) this.c.guestDsi++;
    else if (vector === RadixVector.ISI) this.c.guestIsi++;
    else this.c.guestSegment++;
    deliverRadixInterrupt(fault, vector, cause, walk.darHi, walk.darLo);
  }

  /** kvmppc_book3s_radix_page_fault, from the HDSI/HISI the walk raised. */
  private partitionFault(walk: RadixTranslation, fault: FaultInfo): FaultOutcomeValue {
    this.c.partitionFaults++;
    const cause = walk.cause;
    if ((cause & Dsisr.BADCONFIG) !== 0) {
      // DSISR_UNSUPP_MMU: L0's own table is malformed, which no guest input can cause.
      throw new HvmmuError('BACKEND_INVALID', 'radix MMU: the partition-scoped tree is malformed (HDSISR BADCONFIG)');
    }
    const data = walk.vector === RadixVector.HDSI;
    const writing = data && (cause & Dsisr.STORE) !== 0;
    // ASDR with the top 4 bits cleared: the guest real address (a table entry's for PRTABLE_FAULT).
    const gfn = (walk.asdrHi & 0x0fff_ffff) * TWO_POW_20 + (walk.asdrLo >>> 12);
    const slot = gfn < PARTITION_GFN_LIMIT ? this.memslots.findByGfn(gfn) : undefined;
    if (slot === undefined) {
      if ((cause & (Dsisr.PRTABLE_FAULT | Dsisr.ATOMIC_RC)) !== 0) {
        // A bad address in the guest's page-table tree: reflected as a DSI (ISI) with the same cause.
        this.c.tableFaultsReflected++;
        this.deliverToGuest(walk, cause, fault);
        return FaultOutcome.DONE;
      }
      this.c.noMemory++;
      fault.exit(FaultKind.NO_MEMORY, gfn < PARTITION_GFN_LIMIT ? gfn * 4096 : -1);
      return FaultOutcome.DONE;
    }
    if (writing && slot.readOnly) {
      if (this.options.readOnlyStore === 'guest-dsi') {
        this.deliverToGuest(walk, Dsisr.STORE | Dsisr.PROTFAULT, fault);
        return FaultOutcome.DONE;
      }
      this.c.readOnly++;
      fault.exit(FaultKind.READ_ONLY, gfn * 4096);
      return FaultOutcome.DONE;
    }
    if ((cause & Dsisr.ATOMIC_RC) !== 0 && this.handleSetRc(slot, gfn, writing) && (cause & (Dsisr.NOPTE | Dsisr.PROTFAULT)) === 0) {
      return FaultOutcome.RETRY;
    }
    return this.instantiatePage(slot, gfn, writing, fault);
  }

  /**
   * kvmppc_hv_handle_set_rc: set R, and C for a store, in gfn's present leaf
   * (a store only if the leaf allows writing). A set C is where this
   * backend logs the page dirty.
   */
  /** @internal (also the nested fault's, for L1's leaf) */
  handleSetRc(slot: Memslot<PpcRadixTypes>, gfn: number, writing: boolean): boolean {
    const off = this.rmapContext.leafOf(gfn);
    if (off < 0) return false;
    if (writing && (this.tree.loAt(off) & RADIX_PTE.READ_WRITE) === 0) return false;
    this.tree.updateLo(off, 0, writing ? RADIX_PTE.R | RADIX_PTE.C : RADIX_PTE.R);
    if (writing) slot.markDirty(gfn);
    this.c.setRc++;
    return true;
  }

  /** kvmppc_book3s_instantiate_page + kvmppc_create_pte for a 4 KiB leaf. */
  /** @internal (also the nested fault's, for L1's leaf) */
  instantiatePage(slot: Memslot<PpcRadixTypes>, gfn: number, writing: boolean, fault: FaultInfo): FaultOutcomeValue {
    const memslots = this.memslots;
    const seq = memslots.invalidationSeq;
    const hfn = memslots.gfnToHfn(slot, gfn, writing);
    if (hfn === GFN_HOST_OUT_OF_MEMORY) {
      this.c.hostOutOfMemory++;
      fault.exit(FaultKind.HOST_OUT_OF_MEMORY, gfn * 4096);
      return FaultOutcome.DONE;
    }
    if (hfn < 0) {
      this.c.noMemory++;
      fault.exit(FaultKind.NO_MEMORY, gfn * 4096);
      return FaultOutcome.DONE;
    }
    // An invalidation ran while the frame was resolved (copy-on-write of the zero frame): retry.
    if (memslots.invalidationSeq !== seq) {
      this.c.invalidationRetries++;
      return FaultOutcome.RETRY;
    }
    const backing = slot.frames[gfn - slot.baseGfn]!;
    const upgradeWrite = !writing && backing >= 0 && !slot.readOnly && !slot.dirtyLogging;
    const lo = writing || upgradeWrite ? LEAF_BASE | LEAF_WRITE : LEAF_BASE;
    if (writing) slot.markDirty(gfn);
    const tree = this.tree;
    const off = tree.pteOffset(gfn);
    if (tree.isLeaf(off)) {
      const old = tree.hfnAt(off);
      if (old === hfn) {
        // "PTE was previously valid, so update it": rights only grow, no flush needed.
        tree.updateLo(off, 0, lo);
      } else {
        tree.insert(gfn, hfn, lo);
        this.tlbs.flushHostFrame(old);
      }
    } else if (tree.insert(gfn, hfn, lo) < 0) {
      this.c.hostOutOfMemory++;
      fault.exit(FaultKind.HOST_OUT_OF_MEMORY, gfn * 4096);
      return FaultOutcome.DONE;
    }
    this.c.instantiations++;
    if (this.trace !== null) this.trace({ kind: 'radix-instantiate', gfn, hfn, writable: (lo & RADIX_PTE.READ_WRITE) !== 0 });
    return FaultOutcome.RETRY;
  }

  // ------------------------------------------------------------ nested guests

  /**
   * An L2's hypercall (`sc 1` while the vCPU runs it) is L1's business: the
   * run ends with trap 0xc00 and L1's H_ENTER_NESTED completes, the L2's r3
   * (the number) and r4..r12 (`regs`' arguments) in the pt_regs written
   * back. Returns what the H_ENTER_NESTED returned; null while L1 runs.
   */
  interceptHypercall(vcpu: Vcpu<PpcRadixTypes>, number: number, _regs: HypercallRegisters): number | null {
    const mmu = vcpu.arch;
    if (mmu.nested === null) return null;
    // r3 holds the number: a host passing something no register holds is misuse, refused before the run ends.
    if (!Number.isSafeInteger(number) || number < 0)
      throw new HvmmuError('BAD_ARGUMENT', `a hypercall number is a non-negative integer, got ${String(number)}`);
    return this.nested.completeEntry(mmu, NestedTrap.SYSCALL, null, number).status;
  }

  /** VM teardown (kvmhv_release_all_nested): every nested guest released, every shadow LPID freed. */
  teardown(): void {
    this.nested.releaseAll();
  }

  // ------------------------------------------------------------ memslot hooks

  prepareMemslot(slot: Memslot<PpcRadixTypes>, _change: MemslotChange): RadixSlotRmap {
    this.rmapSlots.add(slot);
    return new RadixSlotRmap(slot.npages, this.nestedNodes);
  }

  flushMemslot(slot: Memslot<PpcRadixTypes>, change: MemslotChange): void {
    if (this.options.memslotInvalidation === MemslotInvalidation.FAST_ZAP) {
      this.zapAll();
    } else if (this.tree.ready) {
      // kvmppc_radix_flush_memslot: every page of the slot, through the invalid table.
      for (let i = 0; i < slot.npages; i++) slot.rmapOps.unmap(slot, slot.baseGfn + i);
    }
    // A moved slot gets fresh slot data: its nested rmap lists go now (kvmhv_free_memslot_nest_rmap).
    if (change === 'move') RadixSlotRmap.of(slot).nested.freeAll();
  }

  commitMemslot(slot: Memslot<PpcRadixTypes>, change: MemslotChange, oldFlags: number): void {
    if (change === 'delete') {
      RadixSlotRmap.of(slot).nested.freeAll();
      this.rmapSlots.delete(slot);
      return;
    }
    // kvmppc_core_commit_memory_region_hv: a radix guest's slot whose dirty logging changed is flushed
    // (kvmppc_radix_flush_memslot), so its pages fault in again under the new rule.
    if (change === 'flags' && ((oldFlags ^ slot.flags) & MemslotFlags.LOG_DIRTY_PAGES) !== 0 && this.tree.ready) {
      for (let i = 0; i < slot.npages; i++) slot.rmapOps.unmap(slot, slot.baseGfn + i);
    }
  }

  invalidateGfnRange(slot: Memslot<PpcRadixTypes>, startGfn: number, endGfn: number): number {
    if (!this.tree.ready) return 0;
    let dropped = 0;
    const lo = Math.max(startGfn, slot.baseGfn);
    const hi = Math.min(endGfn, slot.baseGfn + slot.npages);
    for (let gfn = lo; gfn < hi; gfn++) if (slot.rmapOps.unmap(slot, gfn)) dropped++;
    return dropped;
  }

  changeGfnPte(slot: Memslot<PpcRadixTypes>, gfn: number, hfn: number): void {
    if (this.tree.ready) slot.rmapOps.setPte(slot, gfn, hfn);
  }

  dirtyLogHarvested(slot: Memslot<PpcRadixTypes>, harvested: Uint32Array): void {
    if (!this.tree.ready) return;
    for (let word = 0; word < harvested.length; word++) {
      let bits = harvested[word]!;
      while (bits !== 0) {
        const bit = 31 - Math.clz32(bits);
        bits &= ~(1 << bit);
        const index = word * 32 + bit;
        if (index < slot.npages) slot.rmapOps.clearDirty(slot, slot.baseGfn + index);
      }
    }
  }

  ageGfnRange(slot: Memslot<PpcRadixTypes>, startGfn: number, endGfn: number): boolean {
    if (!this.tree.ready) return false;
    let young = false;
    const lo = Math.max(startGfn, slot.baseGfn);
    const hi = Math.min(endGfn, slot.baseGfn + slot.npages);
    for (let gfn = lo; gfn < hi; gfn++) if (slot.rmapOps.age(slot, gfn)) young = true;
    return young;
  }

  testAgeGfnRange(slot: Memslot<PpcRadixTypes>, startGfn: number, endGfn: number): boolean {
    if (!this.tree.ready) return false;
    const lo = Math.max(startGfn, slot.baseGfn);
    const hi = Math.min(endGfn, slot.baseGfn + slot.npages);
    for (let gfn = lo; gfn < hi; gfn++) if (slot.rmapOps.testAge(slot, gfn)) return true;
    return false;
  }

  /**
   * Drop every mapping: the whole partition-scoped tree, its root and the
   * partition-table entry are freed (kvmppc_free_radix), every vCPU's TLB is
   * flushed, and the nested rmap lists go with the shadow entries they named.
   * The next access rebuilds the table entry and faults its pages back in.
   */
  zapAll(): void {
    this.tree.free();
    // The nested rmap lists go below, so no shadow entry derived from a freed leaf may stay.
    this.nested.clearAllShadows();
    for (const slot of this.rmapSlots) RadixSlotRmap.of(slot).nested.freeAll();
    for (const mmu of this.vcpuMmus) mmu?.invalidateTableCaches();
    this.tlbs.flushAll();
    this.c.zapAlls++;
    if (this.trace !== null) this.trace({ kind: 'radix-zap-all' });
  }

  stats(): PpcRadixStats {
    const c = this.c;
    const r = this.rmapContext.counters;
    let walks = c.walks;
    let walkRefs = c.walkRefs;
    for (const mmu of this.vcpuMmus) {
      if (mmu === undefined) continue;
      walks += mmu.walks;
      walkRefs += mmu.walkRefs;
    }
    let nestedBytes = this.nestedNodes.bytes;
    for (const slot of this.rmapSlots) nestedBytes += RadixSlotRmap.of(slot).bytes;
    const n = this.nested;
    const nc = n.counters;
    const shadow = n.shadowSizes();
    let nestedEntries = this.nestedNodes.inUse;
    for (const slot of this.rmapSlots) nestedEntries += RadixSlotRmap.of(slot).nested.slotsInUse;
    const tablePages = this.tree.tablePages + this.tree.space.windowFrames;
    return {
      ppcRadixTablePages: tablePages,
      ppcRadixTableBytes: tablePages * 4096,
      ppcRadixLeaves: this.tree.leaves,
      ppcRadixNestedRmapBytes: nestedBytes,
      ppcRadixWalks: walks,
      ppcRadixWalkRefs: walkRefs,
      ppcRadixGuestDsi: c.guestDsi,
      ppcRadixGuestIsi: c.guestIsi,
      ppcRadixGuestSegment: c.guestSegment,
      ppcRadixPartitionFaults: c.partitionFaults,
      ppcRadixInstantiations: c.instantiations,
      ppcRadixSetRc: c.setRc,
      ppcRadixTableFaultsReflected: c.tableFaultsReflected,
      ppcRadixNoMemoryExits: c.noMemory,
      ppcRadixReadOnlyExits: c.readOnly,
      ppcRadixHostOutOfMemory: c.hostOutOfMemory,
      ppcRadixInvalidationRetries: c.invalidationRetries,
      ppcRadixTableInits: c.tableInits,
      ppcRadixUnmaps: r.unmaps,
      ppcRadixAged: r.aged,
      ppcRadixDirtyReprotects: r.dirtyReprotects,
      ppcRadixZapAlls: c.zapAlls,
      ppcRadixInvalidSlotWarnings: r.invalidSlotWarnings,
      ppcRadixContexts: this.contexts.size,
      ppcRadixNestedGuests: n.guests.allLive().length,
      ppcRadixShadowTablePages: shadow.tablePages,
      ppcRadixShadowLeaves: shadow.leaves,
      ppcRadixNestedEnters: nc.enters,
      ppcRadixNestedExits: nc.exits,
      ppcRadixL2Faults: nc.l2Faults,
      ppcRadixL2Reflected: nc.reflected,
      ppcRadixShadowInserts: nc.shadowInserts,
      ppcRadixShadowRcUpdates: nc.shadowRcUpdates,
      ppcRadixShadowUnmaps: nc.shadowUnmaps,
      ppcRadixShadowFlushes: nc.shadowInvalidations,
      ppcRadixNestedRmapEntries: nestedEntries,
    };
  }

  // ------------------------------------------------------------ inspection

  /** Every leaf of the partition-scoped tree, as `enumerateRadixTree` lists it from the real entries (empty before the table exists). */
  listPartitionScoped(): RadixTreeListing {
    if (!this.tree.ready) return { leaves: [], entriesRead: 0, badEntries: 0, truncated: false };
    const [dw0Hi, dw0Lo] = this.tree.pate();
    return enumerateRadixTree(this.tree.space, dw0Hi & 0x7fff_ffff, dw0Lo);
  }

  /**
   * Leaves, rmap records and registers for the conformance suite. A leaf's
   * handle is its entry's host real address / 8; its slot is the one
   * holding its gfn. On radix the rmap of an L1 leaf is the tree's own gfn
   * index (KVM keeps no list for it), so each leaf's record is the (slot,
   * gfn) it is filed under, which a leaf outside every slot lacks. Nested
   * guests add their shadow leaves and the nested rmap's records
   * (`NestedHv.snapshot`: the `names-every-leaf` model).
   */
  inspect(): MmuSnapshot {
    const leaves: MappingLeaf[] = [];
    const rmap: RmapRecord[] = [];
    const slots = [...this.rmapSlots];
    this.tree.forEachLeaf((gfn, off) => {
      const slot = slots.find((s) => gfn >= s.baseGfn && gfn < s.baseGfn + s.npages);
      const lo = this.tree.loAt(off);
      const entry = off / 8;
      leaves.push({
        entry,
        slotId: slot?.id ?? -1,
        gfn,
        level: 1,
        pages: 1,
        hfn: this.tree.hfnAt(off),
        writable: (lo & RADIX_PTE.READ_WRITE) !== 0 && (lo & RADIX_PTE.C) !== 0,
      });
      if (slot !== undefined) rmap.push({ slotId: slot.id, gfn, level: 1, entry });
    });
    this.nested.snapshot(slots, leaves, rmap);
    const registers = this.vcpuMmus.map((m): Readonly<Record<string, number>> => (m === undefined ? {} : { ...m.registers() }));
    return { leaves, rmap, registers };
  }
}
