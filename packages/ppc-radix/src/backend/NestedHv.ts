import {
  FaultKind,
  FaultOutcome,
  GuestPhysMemory,
  HvmmuError,
  type FaultInfo,
  type FaultOutcomeValue,
  type HypercallRegisters,
  type MappingLeaf,
  type Memslot,
  type MemslotTable,
  type RmapRecord,
  type TlbShootdown,
  type TraceHook,
  type TranslationResult,
} from '@hvmmu/core';
import { RADIX_PTE } from '../format/RadixEntry.js';
import { Dsisr, RadixVector, SRR1_NOEXEC_GUARD } from '../format/RadixInterrupt.js';
import { HvGuestState, HvGuestStateField, PT_REGS_BYTES, PtRegsField } from '../nested/HvGuestState.js';
import { L1PartitionWalk, L1WalkStatus } from '../nested/L1PartitionWalk.js';
import { H_PARAMETER, H_SUCCESS, NestedGuests, type NestedGuest, type NestedGuestHost } from '../nested/NestedGuests.js';
import { ShadowLeaf, makeShadowLeaf } from '../nested/ShadowLeaf.js';
import { ShadowLpids } from '../nested/ShadowLpids.js';
import { TlbieScope, decodeTlbInvalidate } from '../nested/TlbInvalidate.js';
import { RadixWalker } from '../walk/RadixWalker.js';
import { RadixRegisters } from '../walk/RadixRegisters.js';
import { RadixAccess, RadixTranslation } from '../walk/RadixTranslation.js';
import { PARTITION_GFN_LIMIT, PartitionScopedTree } from './PartitionScopedTree.js';
import type { PpcRadixTypes } from './PpcRadixTypes.js';
import type { RadixContexts } from './RadixContexts.js';
import { RadixFaultWord, deliverRadixInterrupt } from './RadixFaultWords.js';
import { RadixSlotRmap } from './RadixSlotRmap.js';
import type { RadixVcpuMmu } from './RadixVcpuMmu.js';

/** PAPR return codes the nested hcalls use (Linux arch/powerpc/include/asm/hvcall.h). */
export const NestedHcallStatus = {
  H_SUCCESS: 0,
  H_NOT_AVAILABLE: 3,
  H_FUNCTION: -2,
  H_PARAMETER: -4,
  H_NOT_FOUND: -7,
  H_NO_MEM: -9,
  H_AUTHORITY: -10,
  H_P2: -55,
} as const;

/** NR_CPUS of the L0 kernel (Debian's ppc64el config): H_ENTER_NESTED refuses a vcpu_token at or above it. */
export const NESTED_NR_CPUS = 2048;
/**
 * The largest H_COPY_TOFROM_GUEST: KVM copies through a kzalloc'd bounce
 * buffer, which fails (H_NO_MEM) beyond kmalloc's limit — 4 MiB on a ppc64
 * kernel with 64K pages (KMALLOC_MAX_SIZE = 2^(PAGE_SHIFT + MAX_ORDER - 1)).
 */
export const COPY_TOFROM_GUEST_MAX = 4 * 1024 * 1024;

/** The L2 exit interrupts (trap numbers H_ENTER_NESTED returns: arch/powerpc/include/asm/kvm_asm.h). */
export const NestedTrap = {
  HDSI: 0xe00,
  HISI: 0xe20,
  SYSCALL: 0xc00,
  HDEC: 0x980,
  EXTERNAL: 0x500,
  HEAI: 0xe40,
  HFAC: 0xf80,
} as const;

/** MSR bits (reg.h): IR, DR, and the SRR1 bits an HISI leaves of the MSR (SRR1_MSR_BITS = ~0x783f0000). */
const MSR_IR = 0x20;
const MSR_DR = 0x10;
const SRR1_MSR_BITS_LO = ~0x783f_0000 >>> 0;
const TWO_POW_32 = 0x1_0000_0000;
const TWO_POW_20 = 0x10_0000;
/** A 4 KiB page: L0's page size, and the unit L1 memory is checked and copied in. */
const PAGE = 4096;

/** An L2 the vCPU runs, from H_ENTER_NESTED until the exit that completes it. */
export class NestedRun {
  constructor(
    readonly guest: NestedGuest,
    readonly tree: PartitionScopedTree,
    readonly state: HvGuestState,
    /** L1 real addresses of the hv_guest_state and pt_regs the hcall named (written back on exit). */
    readonly hvPtr: number,
    readonly regsPtr: number,
    /** L1's registers, restored on exit. */
    readonly l1Pid: number,
    readonly l1Ir: boolean,
    readonly l1Dr: boolean,
  ) {}
}

/** How an H_ENTER_NESTED completed. */
export interface NestedExit {
  /** L1's LPID for the L2. */
  readonly l1Lpid: number;
  /** The interrupt that ended the L2's run (0xe00 HDSI, 0xe20 HISI, 0xc00 hcall, ...). */
  readonly trap: number;
  /** What H_ENTER_NESTED returned in r3: the trap, or H_AUTHORITY if the state could not be written back. */
  readonly status: number;
}

/** What the nested code needs from the VM's own radix MMU (L0's handling of L1 pages). */
export interface L1PageSource {
  readonly readOnlyStore: 'vmm-exit' | 'guest-dsi';
  /** kvmppc_book3s_instantiate_page for L1 page gfn: RETRY once a leaf is in place (or must be retried), DONE with `fault` filled otherwise. */
  instantiatePage(slot: Memslot<PpcRadixTypes>, gfn: number, writing: boolean, fault: FaultInfo): FaultOutcomeValue;
  /** kvmppc_hv_handle_set_rc on L1's leaf of gfn. */
  handleSetRc(slot: Memslot<PpcRadixTypes>, gfn: number, writing: boolean): boolean;
  /** The per-vCPU MMUs (their walkers' table caches are dropped when a shadow partition-table entry changes). */
  readonly vcpuMmuList: readonly (RadixVcpuMmu | undefined)[];
}

/** Counters of nested HV (part of the backend's stats). */
export interface NestedHvCounters {
  enters: number;
  exits: number;
  l2Faults: number;
  reflected: number;
  shadowInserts: number;
  shadowUnmaps: number;
  shadowRcUpdates: number;
  shadowInvalidations: number;
  copies: number;
}

/**
 * L0's nested HV for one L1 (KVM book3s_hv_nested.c): the four hcalls, the
 * nested guests with their shadow partition-scoped trees (real radix trees in
 * the same host real space as L1's, each under its shadow LPID in L0's
 * partition table), the L2 page fault (kvmhv_nested_page_fault), the exit
 * that completes H_ENTER_NESTED, and the nested rmap's host side:
 * invalidation, aging and dirty-bit clearing of the shadow entries an L1
 * page's list names.
 */
export class NestedHv implements NestedGuestHost {
  readonly guests: NestedGuests;
  readonly lpids: ShadowLpids;
  readonly counters: NestedHvCounters = {
    enters: 0,
    exits: 0,
    l2Faults: 0,
    reflected: 0,
    shadowInserts: 0,
    shadowUnmaps: 0,
    shadowRcUpdates: 0,
    shadowInvalidations: 0,
    copies: 0,
  };
  private readonly trees = new Map<number, PartitionScopedTree>();
  private readonly l1: GuestPhysMemory;
  private readonly l1Walk: L1PartitionWalk;
  private readonly leaf = new ShadowLeaf();
  private readonly copyRegs = new RadixRegisters();
  private readonly copyWalk = new RadixTranslation();
  private readonly copyWalker: RadixWalker;
  // The nested rmap visitors are made once (no closure per call); they read these.
  private visitHfn = 0;
  private visitClear = 0;
  private readonly removeVisitor = (lpid: number, gfn: number): void => this.removeShadowEntry(lpid, gfn, this.visitHfn);
  private readonly rcVisitor = (lpid: number, gfn: number): void => this.clearShadowRc(lpid, gfn, this.visitHfn, this.visitClear);

  constructor(
    private readonly l1Tree: PartitionScopedTree,
    private readonly memslots: MemslotTable<PpcRadixTypes>,
    private readonly tlbs: TlbShootdown,
    private readonly contexts: RadixContexts,
    private readonly pages: L1PageSource,
    private readonly trace: TraceHook | null,
    /** KVM_CAP_PPC_NESTED_HV: without it every nested hcall is H_FUNCTION. */
    readonly enabled: boolean,
  ) {
    const space = l1Tree.space;
    // One LPID per root directory window of the space; L1's own LPID is taken first.
    this.lpids = new ShadowLpids(space.rootDirectories + 1);
    if (this.lpids.alloc() !== l1Tree.lpid) throw new HvmmuError('BACKEND_INVALID', `the L1 partition must be LPID ${l1Tree.lpid}`);
    this.guests = new NestedGuests(this, this.lpids);
    this.l1 = new GuestPhysMemory(memslots);
    // A page walk cache of L1's trees for its L2s (dropped by every H_TLB_INVALIDATE and partition-table change).
    this.l1Walk = new L1PartitionWalk(this.l1, { pageWalkCache: true });
    this.copyWalker = new RadixWalker(space, { rc: 'fault' });
    this.copyRegs.hv = true;
  }

  // ------------------------------------------------------------ NestedGuestHost

  /** Every byte of [gpa, gpa + bytes) is L1 memory (a visible memslot; a writable one if `writable`). */
  l1MemoryCovers(gpa: number, bytes: number, writable = false): boolean {
    if (!Number.isSafeInteger(gpa) || gpa < 0 || bytes < 1) return false;
    const last = Math.floor((gpa + bytes - 1) / PAGE);
    for (let gfn = Math.floor(gpa / PAGE); gfn <= last; gfn++) {
      const slot = gfn < PARTITION_GFN_LIMIT ? this.memslots.findByGfn(gfn) : undefined;
      if (slot === undefined || (writable && slot.readOnly)) return false;
    }
    return true;
  }

  readL1(gpa: number): [number, number] | null {
    return this.l1.read64(gpa, false) ? [this.l1.hi, this.l1.lo] : null;
  }

  allocShadowTable(shadowLpid: number): [number, number] {
    const tree = new PartitionScopedTree(this.l1Tree.space, shadowLpid);
    this.trees.set(shadowLpid, tree);
    const root = tree.rootDirectoryBase;
    return [Math.floor(root / TWO_POW_32), root % TWO_POW_32];
  }

  clearShadowTable(_root: [number, number], shadowLpid: number): void {
    const tree = this.trees.get(shadowLpid);
    if (tree === undefined) return;
    if (tree.ready) {
      // kvmppc_free_pgtable_radix: every shadow entry and table goes; the PATE is written again at once.
      tree.free();
      tree.ensureReady();
    }
    this.counters.shadowInvalidations++;
    this.contexts.flushLpid(shadowLpid);
    this.dropTableCaches();
  }

  freeShadowTable(_root: [number, number], shadowLpid: number): void {
    const tree = this.trees.get(shadowLpid);
    if (tree === undefined) return;
    tree.release();
    this.trees.delete(shadowLpid);
    this.contexts.flushLpid(shadowLpid);
    this.dropTableCaches();
  }

  setShadowPate(shadowLpid: number, dw0: [number, number], dw1: [number, number]): void {
    const tree = this.trees.get(shadowLpid);
    if (tree === undefined || (dw0[0] === 0 && dw0[1] === 0)) return;
    tree.setVerbatimDw1(dw1[0], dw1[1]);
    tree.ensureReady();
    this.dropTableCaches();
  }

  /**
   * A tlbie by a nested guest's kernel, for process `pid` of the guest L1
   * calls `l1Lpid`: one page (`vpn`) or, with `vpn` -1, the whole PID —
   * every context of the guest's shadow partition, on every vCPU (the
   * processor applies a guest's tlbie to its own LPID).
   */
  tlbieGuest(l1Lpid: number, pid: number, vpn: number): void {
    for (const g of this.guests.liveGuests(l1Lpid)) {
      if (vpn < 0) this.contexts.flushPid(pid, g.shadowLpid);
      else this.contexts.flushPidPage(pid, vpn, g.shadowLpid);
    }
  }

  /** Every vCPU's walker forgets its cached partition- and process-table entries (a tlbie with RIC 2). */
  dropTableCaches(): void {
    this.l1Walk.invalidatePageWalkCache();
    for (const m of this.pages.vcpuMmuList) m?.invalidateTableCaches();
  }

  /** The shadow tree of a shadow LPID (tests and inspection). */
  shadowTree(shadowLpid: number): PartitionScopedTree | undefined {
    return this.trees.get(shadowLpid);
  }

  /** Shadow trees' table pages, root-window frames excepted, and their leaves. */
  shadowSizes(): { tablePages: number; leaves: number } {
    let tablePages = 0;
    let leaves = 0;
    for (const t of this.trees.values()) {
      tablePages += t.tablePages;
      leaves += t.leaves;
    }
    return { tablePages, leaves };
  }

  // ------------------------------------------------------------ hcalls

  /** H_SET_PARTITION_TABLE (r4: the PTCR value). */
  setPartitionTable(regs: HypercallRegisters): number {
    if (!this.enabled) return NestedHcallStatus.H_FUNCTION;
    this.l1Walk.invalidatePageWalkCache();
    return this.guests.setPartitionTable(regs.argHi[0]!, regs.argLo[0]!);
  }

  /**
   * H_ENTER_NESTED (kvmhv_enter_nested_guest): r4 the hv_guest_state, r5 the
   * pt_regs, both L1 real addresses. On H_SUCCESS the vCPU runs the L2 from
   * now on; the hcall completes at the L2's exit (see `completeEntry`).
   */
  enterNested(vmmu: RadixVcpuMmu, regs: HypercallRegisters): number {
    if (!this.enabled) return NestedHcallStatus.H_FUNCTION;
    if (this.guests.l1PtcrHi === 0 && this.guests.l1PtcrLo === 0) return NestedHcallStatus.H_NOT_AVAILABLE;
    const hvPtr = regs.arg(0);
    const regsPtr = regs.arg(1);
    if (hvPtr < 0 || regsPtr < 0) return NestedHcallStatus.H_PARAMETER;
    const read = HvGuestState.read((gpa, bytes) => this.readL1Bytes(gpa, bytes), hvPtr, regsPtr, vmmu.littleEndian, NESTED_NR_CPUS);
    if (read.status !== H_SUCCESS || read.state === null) return read.status;
    const state = read.state;
    const guest = this.guests.get(state.lpid, true);
    if (guest === null) return H_PARAMETER;
    if (guest.l1GrToHrHi === 0 && guest.l1GrToHrLo === 0) this.guests.refreshPate(guest);
    const tree = this.trees.get(guest.shadowLpid);
    if (tree === undefined) throw new HvmmuError('BACKEND_INVALID', `nested guest ${guest.l1Lpid} has no shadow tree`);
    const msrLo = Number(state.reg64(PtRegsField.msr) & 0xffff_ffffn);
    const pid = Number(state.get64(HvGuestStateField.pidr) & 0xffff_ffffn);
    vmmu.enterL2(
      new NestedRun(guest, tree, state, hvPtr, regsPtr, vmmu.regs.pidr, vmmu.regs.ir, vmmu.regs.dr),
      pid,
      (msrLo & MSR_IR) !== 0,
      (msrLo & MSR_DR) !== 0,
    );
    this.counters.enters++;
    if (this.trace !== null) this.trace({ kind: 'radix-nested-enter', lpid: guest.l1Lpid, shadowLpid: guest.shadowLpid });
    return NestedHcallStatus.H_SUCCESS;
  }

  /**
   * H_TLB_INVALIDATE (kvmhv_emulate_priv_tlbie): r4 the tlbie image, r5 RS
   * (the LPID), r6 RB. IS 0 removes the shadow entries of one L1 page of the
   * L2; IS 2 and 3 act on whole nested guests (`NestedGuests.flush`).
   */
  tlbInvalidate(regs: HypercallRegisters): number {
    if (!this.enabled) return NestedHcallStatus.H_FUNCTION;
    // Whatever it names, L1 may have changed its trees' directories: the page walk cache of them goes.
    this.l1Walk.invalidatePageWalkCache();
    const req = decodeTlbInvalidate(regs.argLo[0]!, regs.argLo[1]!, regs.argHi[2]!, regs.argLo[2]!);
    if (req === null) return H_PARAMETER;
    if (req.scope === TlbieScope.PAGE) {
      // Every guest of the LPID not yet released: also one removed from the table while a vCPU still runs it
      // (KVM looks only in the table, and that vCPU's L2 would keep the translation L1 just invalidated).
      for (const guest of this.guests.liveGuests(req.lpid)) {
        const tree = this.trees.get(guest.shadowLpid);
        if (tree === undefined) continue;
        const first = req.addrHi * TWO_POW_20 + req.addrLo / PAGE;
        const end = Math.min(first + 2 ** (req.pageShift - 12), PARTITION_GFN_LIMIT);
        // Step by the shadow entry's size (4 KiB), skipping each 512-page group without a PTE table:
        // a 1 GiB request costs 512 lookups, not 262,144.
        for (let gfn = first; gfn < end; ) {
          if (tree.pteOffset(gfn) < 0) {
            gfn = (Math.floor(gfn / 512) + 1) * 512;
            continue;
          }
          this.clearShadowLeaf(tree, gfn);
          gfn++;
        }
      }
      return H_SUCCESS;
    }
    this.guests.flush(req.scope === TlbieScope.ALL ? 'all' : req.lpid, req.ric);
    return H_SUCCESS;
  }

  /**
   * H_COPY_TOFROM_GUEST (kvmhv_copy_tofrom_guest_nested): r4 L1's LPID of the
   * L2, r5 PID, r6 the L2 effective address, r7 the L1 buffer to copy to
   * (a load from the L2) or 0, r8 the L1 buffer to copy from (a store to
   * the L2) or 0, r9 the length. The L2 side is translated as the processor
   * would in hypervisor state through quadrant 1 (PID ≠ 0) or 2 under the
   * shadow LPID — no fault is taken: a page not in the shadow tree, or not
   * accessible, is H_NOT_FOUND, and then nothing was written.
   */
  copyToFromGuest(regs: HypercallRegisters): number {
    if (!this.enabled) return NestedHcallStatus.H_FUNCTION;
    const lpid = regs.arg(0);
    const pid = regs.argHi[1] === 0 ? regs.argLo[1]! : -1;
    const eaHi = regs.argHi[2]!;
    const eaLo = regs.argLo[2]!;
    const to = regs.arg(3);
    const from = regs.arg(4);
    const n = regs.arg(5);
    if (lpid < 0 || pid < 0 || to < 0 || from < 0) return H_PARAMETER;
    if ((to === 0) === (from === 0)) return H_PARAMETER;
    // The top 12 EA bits are the quadrant's and must be clear.
    if ((eaHi & 0xfff0_0000) !== 0) return H_PARAMETER;
    // n is unsigned: one at or past 2^53 (arg -1) is as far beyond the bounce buffer's limit as any.
    if (n < 0 || n > COPY_TOFROM_GUEST_MAX) return NestedHcallStatus.H_NO_MEM;
    const guest = this.guests.get(lpid, false);
    if (guest === null) return H_PARAMETER;
    try {
      const load = to !== 0;
      const l1Addr = load ? to : from;
      if (n === 0) return H_SUCCESS;
      if (!this.l1MemoryCovers(l1Addr, n)) return NestedHcallStatus.H_NOT_FOUND;
      // Translate every L2 page first (the bounce buffer: a failure part-way writes nothing).
      const offs = this.translateL2Range(guest, pid, eaHi, eaLo, n, !load);
      if (offs === null) return NestedHcallStatus.H_NOT_FOUND;
      const host = this.l1Tree.space.host.bytes;
      const buf = new Uint8Array(n);
      if (load) {
        let done = 0;
        for (let i = 0; i < offs.length; i++) {
          const take = Math.min(n - done, PAGE - (i === 0 ? eaLo % PAGE : 0));
          buf.set(host.subarray(offs[i]!, offs[i]! + take), done);
          done += take;
        }
        this.memslots.writeBytes(to, buf);
      } else {
        this.memslots.readBytes(from, buf);
        let done = 0;
        for (let i = 0; i < offs.length; i++) {
          const take = Math.min(n - done, PAGE - (i === 0 ? eaLo % PAGE : 0));
          host.set(buf.subarray(done, done + take), offs[i]!);
          done += take;
        }
      }
      this.counters.copies++;
      return H_SUCCESS;
    } finally {
      this.guests.put(guest);
    }
  }

  /** Host byte offsets of each page of the L2 range, or null if any page is not accessible. */
  private translateL2Range(guest: NestedGuest, pid: number, eaHi: number, eaLo: number, n: number, store: boolean): number[] | null {
    const tree = this.trees.get(guest.shadowLpid);
    if (tree === undefined || !tree.ready) return null;
    const r = this.copyRegs;
    r.hv = true;
    r.pr = false;
    r.ir = true;
    r.dr = true;
    r.lpidr = guest.shadowLpid;
    r.pidr = pid;
    [r.ptcrHi, r.ptcrLo] = this.l1Tree.ptcr();
    const quadrant = pid === 0 ? 2 : 1;
    const offs: number[] = [];
    let hi = eaHi;
    let lo = eaLo;
    let left = n;
    while (left > 0) {
      const pageLo = (lo - (lo % PAGE)) >>> 0;
      if (!this.copyWalker.translate(r, ((quadrant << 30) | hi) >>> 0, pageLo, store ? RadixAccess.STORE : RadixAccess.LOAD, this.copyWalk)) return null;
      const off = this.l1Tree.space.resolve(this.copyWalk.ra, store);
      if (off < 0) return null;
      offs.push(off + (lo % PAGE));
      const take = Math.min(left, PAGE - (lo % PAGE));
      left -= take;
      lo += take;
      if (lo >= TWO_POW_32) {
        lo -= TWO_POW_32;
        hi++;
        if ((hi & 0xfff0_0000) !== 0) return null;
      }
    }
    return offs;
  }

  private readL1Bytes(gpa: number, bytes: number): Uint8Array | null {
    if (!this.l1MemoryCovers(gpa, bytes)) return null;
    const out = new Uint8Array(bytes);
    this.memslots.readBytes(gpa, out);
    return out;
  }

  // ------------------------------------------------------------ the L2's run

  /**
   * End the L2's run with interrupt `trap` and complete its H_ENTER_NESTED
   * as kvmhv_enter_nested_guest does after the run: the L2's state written
   * back to L1 memory (PIDR, the MSR's relocation bits, and per trap HDAR,
   * HDSISR, ASDR; for an hcall exit r3..r12), the vCPU back in L1, r3 the
   * trap (H_AUTHORITY if L1 memory no longer takes the state). `hcall` is
   * the number of the L2 hypercall that ended the run (-1: none).
   */
  completeEntry(vmmu: RadixVcpuMmu, trap: number, words: ExitWords | null, hcall = -1): NestedExit {
    const run = vmmu.nested;
    if (run === null) throw new HvmmuError('BAD_ARGUMENT', `vCPU ${vmmu.vcpu.id} is not running a nested guest`);
    const st = run.state;
    const regs = vmmu.regs;
    st.set64(HvGuestStateField.pidr, BigInt(regs.pidr >>> 0));
    let msr = st.reg64(PtRegsField.msr) & ~BigInt(MSR_IR | MSR_DR);
    if (regs.ir) msr |= BigInt(MSR_IR);
    if (regs.dr) msr |= BigInt(MSR_DR);
    if (words !== null) {
      if (trap === NestedTrap.HDSI) {
        st.set64(HvGuestStateField.hdar, (BigInt(words.darHi) << 32n) | BigInt(words.darLo));
        st.set64(HvGuestStateField.hdsisr, BigInt(words.cause >>> 0));
      }
      if (trap === NestedTrap.HDSI || trap === NestedTrap.HISI) st.set64(HvGuestStateField.asdr, (BigInt(words.asdrHi) << 32n) | BigInt(words.asdrLo));
      // An HISI's cause is in HSRR1, which becomes the L2's MSR image: SRR1_MSR_BITS kept, the cause ORed in.
      if (trap === NestedTrap.HISI) msr = (msr & ~0xffff_ffffn) | BigInt(((Number(msr & 0xffff_ffffn) & SRR1_MSR_BITS_LO) | words.cause) >>> 0);
    }
    st.setReg64(PtRegsField.msr, msr);
    if (hcall >= 0) {
      // The L2's hcall: its number and arguments are what L1 reads from r3..r12.
      const h = vmmu.vcpu.hcallRegs;
      st.setReg64(PtRegsField.gpr + 3 * 8, BigInt(hcall));
      for (let i = 0; i < 9 && i < h.count; i++) st.setReg64(PtRegsField.gpr + (4 + i) * 8, (BigInt(h.argHi[i]!) << 32n) | BigInt(h.argLo[i]!));
    }
    vmmu.leaveL2();
    this.guests.put(run.guest);
    const written = this.writeL1Bytes(run.hvPtr, st.bytes) && this.writeL1Bytes(run.regsPtr, st.regs.subarray(0, PT_REGS_BYTES));
    const status = written ? trap : NestedHcallStatus.H_AUTHORITY;
    vmmu.vcpu.hcallRegs.setRet(0, status);
    const exit: NestedExit = { l1Lpid: run.guest.l1Lpid, trap, status };
    vmmu.lastNestedExit = exit;
    this.counters.exits++;
    if (this.trace !== null) this.trace({ kind: 'radix-nested-exit', lpid: run.guest.l1Lpid, trap, status });
    return exit;
  }

  private writeL1Bytes(gpa: number, bytes: Uint8Array): boolean {
    if (!this.l1MemoryCovers(gpa, bytes.length, true)) return false;
    try {
      this.memslots.writeBytes(gpa, bytes);
    } catch (error) {
      // A page L1 never wrote needs a host frame and the host has none: the write-back fails (H_AUTHORITY), as
      // kvm_vcpu_write_guest's failure does; thrown, it would leave the run half completed.
      if (error instanceof HvmmuError && error.code === 'HOST_OUT_OF_MEMORY') return false;
      throw error;
    }
    return true;
  }

  /** A vCPU running an L2 is going away (VM teardown): drop the run's reference, write nothing back. */
  abandonRun(vmmu: RadixVcpuMmu): void {
    const run = vmmu.nested;
    if (run === null) return;
    vmmu.leaveL2();
    this.guests.put(run.guest);
  }

  // ------------------------------------------------------------ the L2 page fault

  /**
   * kvmhv_nested_page_fault: an HDSI/HISI the walk under the shadow LPID
   * raised. Resolve it from L1's partition-scoped tree for the L2 (walked in
   * software in L1 memory) and L0's tree for L1 into a shadow entry, or end
   * the L2's run with the fault for L1, or deliver / exit as KVM does.
   */
  l2Fault(vmmu: RadixVcpuMmu, walk: RadixTranslation, fault: FaultInfo, access: number, result: TranslationResult): FaultOutcomeValue {
    // Every L2 first touch runs through here: on its common path the DSISR and leaf bits are
    // literals (an imported constant costs a module-binding load and a hole check per use; see
    // RadixWalker.walkTree) — HDSISR BADCONFIG 0x0008_0000, STORE 0x0200_0000, ATOMIC_RC
    // 0x0004_0000; leaf READ 4, READ_WRITE 2, EXECUTE 1; HISI 0xe20.
    const run = vmmu.nested!;
    const gp = run.guest;
    this.counters.l2Faults++;
    const cause = walk.cause;
    if ((cause & 0x0008_0000) !== 0) throw new HvmmuError('BACKEND_INVALID', 'radix MMU: a shadow partition-scoped tree is malformed (HDSISR BADCONFIG)');
    const fetch = walk.vector === 0xe20;
    const writing = !fetch && (cause & 0x0200_0000) !== 0;
    const tree = run.tree;
    // n_gpa: ASDR without its top 4 bits (the page; a table entry's address for PRTABLE_FAULT).
    const nHi = walk.asdrHi & 0x0fff_ffff;
    const nLo = walk.asdrLo;
    const nGfn = nHi * TWO_POW_20 + (nLo >>> 12);
    if (gp.l1GrToHrHi === 0 && gp.l1GrToHrLo === 0) {
      this.guests.refreshPate(gp);
      if (gp.l1GrToHrHi === 0 && gp.l1GrToHrLo === 0) return this.reflect(vmmu, walk, cause, walk.asdrHi, walk.asdrLo, fault);
    }
    // kvmhv_translate_addr_nested: L1's tree for the L2, in L1 memory.
    const w = this.l1Walk;
    let flags = writing ? 0x0200_0000 : 0;
    if (!w.walk(gp.l1GrToHrHi, gp.l1GrToHrLo, nHi, nLo)) {
      if (w.status === L1WalkStatus.BAD_TREE) flags |= Dsisr.BADCONFIG;
      else if (w.status === L1WalkStatus.NO_ENTRY) flags |= Dsisr.NOPTE;
      else flags |= Dsisr.PRTABLE_FAULT;
      const aHi = w.status === L1WalkStatus.BAD_ADDRESS ? Math.floor(w.entryAddr / TWO_POW_32) : walk.asdrHi;
      const aLo = w.status === L1WalkStatus.BAD_ADDRESS ? w.entryAddr % TWO_POW_32 : walk.asdrLo;
      return this.forward(vmmu, walk, tree, nGfn, flags, aHi, aLo, fault);
    }
    const l1Lo = w.leafLo;
    if (writing ? (l1Lo & 2) === 0 : fetch ? (l1Lo & 1) === 0 : (l1Lo & 6) === 0) {
      flags |= fetch ? SRR1_NOEXEC_GUARD : Dsisr.PROTFAULT;
      return this.forward(vmmu, walk, tree, nGfn, flags, walk.asdrHi, walk.asdrLo, fault);
    }
    const gfn = w.raHi * TWO_POW_20 + (w.raLo >>> 12);
    const slot = gfn < PARTITION_GFN_LIMIT ? this.memslots.findByGfn(gfn) : undefined;
    if ((cause & 0x0004_0000) !== 0) {
      // kvmhv_handle_nested_set_rc: L1 must first have R (and C for a store) in its own entry.
      const need = writing ? RADIX_PTE.R | RADIX_PTE.C : RADIX_PTE.R;
      if ((need & ~l1Lo) !== 0) return this.reflect(vmmu, walk, cause, walk.asdrHi, walk.asdrLo, fault);
      if (slot === undefined || !this.pages.handleSetRc(slot, gfn, writing) || !this.setShadowRc(tree, nGfn, writing)) {
        this.clearShadowLeaf(tree, nGfn);
        return FaultOutcome.RETRY;
      }
      this.counters.shadowRcUpdates++;
      if ((cause & (Dsisr.NOPTE | Dsisr.PROTFAULT)) === 0) return FaultOutcome.RETRY;
    }
    if (slot === undefined) {
      if ((cause & Dsisr.PRTABLE_FAULT) !== 0) {
        // An L2 table in no L1 memory: the L2's own DSI (a bad address in its page tables).
        deliverStorageInterrupt(walk, cause, fault);
        return FaultOutcome.DONE;
      }
      // MMIO of L1's: the VMM emulates it at the L1 real address; the vCPU stays in the L2.
      fault.exit(FaultKind.NO_MEMORY, gfn * PAGE);
      return FaultOutcome.DONE;
    }
    if (writing && slot.readOnly) {
      if (this.pages.readOnlyStore === 'guest-dsi') {
        deliverStorageInterrupt(walk, Dsisr.STORE | Dsisr.PROTFAULT, fault);
        return FaultOutcome.DONE;
      }
      fault.exit(FaultKind.READ_ONLY, gfn * PAGE);
      return FaultOutcome.DONE;
    }
    // L0's own leaf for the L1 page, instantiated first if missing or not writable for a store
    // (L0's tree for L1 exists once L1 has run; an L1 that has only made hcalls gets it here).
    if (!this.l1Tree.ensureReady()) {
      fault.exit(FaultKind.HOST_OUT_OF_MEMORY, gfn * PAGE);
      return FaultOutcome.DONE;
    }
    const seq = this.memslots.invalidationSeq;
    const l1Tree = this.l1Tree;
    let off = l1Tree.pteOffset(gfn);
    let l0Hi = off >= 0 ? l1Tree.hiAt(off) : 0;
    let l0Lo = off >= 0 ? l1Tree.loAt(off) : 0;
    if (l0Hi >>> 30 !== 3 || (writing && (l0Lo & RADIX_PTE.READ_WRITE) === 0)) {
      if (this.pages.instantiatePage(slot, gfn, writing, fault) === FaultOutcome.DONE) return FaultOutcome.DONE;
      off = l1Tree.pteOffset(gfn);
      if (!l1Tree.isLeaf(off)) return FaultOutcome.RETRY;
      l0Hi = l1Tree.hiAt(off);
      l0Lo = l1Tree.loAt(off);
    }
    const s = makeShadowLeaf(l0Hi, l0Lo, 12, l1Lo, w.shift, writing, w.raHi, w.raLo, 12, this.leaf);
    if (this.memslots.invalidationSeq !== seq || slot.invalid) return FaultOutcome.RETRY;
    const hfn = (s.hi & 0x01ff_ffff) * TWO_POW_20 + (s.lo >>> 12);
    // The walk that faulted found the shadow tree's invalid bottom entry: the leaf goes there (no
    // invalidation ran since, so the tables it walked are still in place); otherwise walk and insert.
    const at = walk.partitionMissAddr;
    const inPlace = at >= 0 && tree.insertAt(at, hfn, s.lo & 0xfff);
    if (!inPlace) {
      if (tree.insert(nGfn, hfn, s.lo & 0xfff) < 0) {
        fault.exit(FaultKind.HOST_OUT_OF_MEMORY, gfn * PAGE);
        return FaultOutcome.DONE;
      }
      const oldHfn = tree.replacedHfn;
      if (oldHfn >= 0 && oldHfn !== hfn) this.tlbs.flushHostFrame(oldHfn);
    }
    slot.rmapOps.insertNested(slot, gfn, gp.l1Lpid, nGfn);
    this.counters.shadowInserts++;
    if (this.trace !== null) this.trace({ kind: 'radix-shadow-insert', lpid: gp.l1Lpid, l2Gfn: nGfn, gfn, hfn });
    // The L2 retries: in real mode its walk reads exactly the entry just written (the walk that
    // faulted found it invalid there; the page walk cache holds its table), so its answer is known.
    if (inPlace && vmmu.completeRealModeRetry(access, tree.hiAt(at), tree.loAt(at), at, result)) return FaultOutcome.FILLED;
    return FaultOutcome.RETRY;
  }

  /**
   * forward_to_l1 of kvmhv_nested_page_fault, except that a fault the
   * processor raised on a shadow entry that existed (PROTFAULT, no-exec)
   * means the shadow entry grants what L1 no longer does: it is dropped and
   * the L2 retries (and then faults to L1 if L1 still refuses).
   */
  private forward(
    vmmu: RadixVcpuMmu,
    walk: RadixTranslation,
    tree: PartitionScopedTree,
    nGfn: number,
    flags: number,
    aHi: number,
    aLo: number,
    fault: FaultInfo,
  ): FaultOutcomeValue {
    if ((walk.cause & (Dsisr.PROTFAULT | SRR1_NOEXEC_GUARD)) !== 0 && this.clearShadowLeaf(tree, nGfn)) return FaultOutcome.RETRY;
    return this.reflect(vmmu, walk, flags, aHi, aLo, fault);
  }

  /** End the L2's run with its HDSI/HISI for L1 (HDSISR or the HSRR1 cause, HDAR, ASDR). */
  private reflect(vmmu: RadixVcpuMmu, walk: RadixTranslation, cause: number, asdrHi: number, asdrLo: number, fault: FaultInfo): FaultOutcomeValue {
    const hisi = walk.vector === RadixVector.HISI;
    const trap = hisi ? NestedTrap.HISI : NestedTrap.HDSI;
    const words = this.exitWords;
    words.cause = cause >>> 0;
    words.darHi = fault.vaHi;
    words.darLo = fault.vaLo;
    words.asdrHi = asdrHi >>> 0;
    words.asdrLo = asdrLo >>> 0;
    this.completeEntry(vmmu, trap, words);
    this.counters.reflected++;
    fault.reflect(trap);
    fault.setWord(RadixFaultWord.CAUSE, 0, cause);
    fault.setWord(RadixFaultWord.SRR1, 0, hisi ? cause : 0);
    fault.setWord(RadixFaultWord.DAR, hisi ? 0 : fault.vaHi, hisi ? 0 : fault.vaLo);
    fault.setWord(RadixFaultWord.ASDR, asdrHi, asdrLo);
    return FaultOutcome.DONE;
  }

  private readonly exitWords = new ExitWords();

  // ------------------------------------------------------------ shadow entries

  /** Remove the shadow leaf of L2 frame gfn (kvmhv_invalidate_shadow_pte); true if there was one. */
  clearShadowLeaf(tree: PartitionScopedTree, gfn: number): boolean {
    const off = tree.pteOffset(gfn);
    if (!tree.isLeaf(off)) return false;
    const hfn = tree.hfnAt(off);
    tree.clear(off);
    this.tlbs.flushHostFrame(hfn);
    this.counters.shadowUnmaps++;
    return true;
  }

  /** kvmppc_hv_handle_set_rc on the shadow leaf (nested = true). */
  private setShadowRc(tree: PartitionScopedTree, gfn: number, writing: boolean): boolean {
    const off = tree.pteOffset(gfn);
    if (!tree.isLeaf(off)) return false;
    if (writing && (tree.loAt(off) & RADIX_PTE.READ_WRITE) === 0) return false;
    tree.updateLo(off, 0, writing ? RADIX_PTE.R | RADIX_PTE.C : RADIX_PTE.R);
    return true;
  }

  /**
   * kvmhv_remove_nest_rmap_range for one L1 page whose L0 leaf (host frame
   * `hfn`) is going: every entry of its list is detached and each shadow
   * entry it names that still maps `hfn` is removed (stale entries, whose
   * shadow entry has gone or maps another page, are skipped).
   */
  removeNestedRange(slot: Memslot<PpcRadixTypes>, index: number, hfn: number): number {
    // The caller (kvmppc_unmap_pte's) flushes `hfn` once after this: the shadow entries removed all map it.
    this.visitHfn = hfn;
    return RadixSlotRmap.of(slot).nested.detachAll(index, this.removeVisitor);
  }

  /** kvmhv_update_nest_rmap_rc_list: clear `clear` (R or C) in the shadow entries the page's list names that map `hfn`. */
  clearNestedRc(slot: Memslot<PpcRadixTypes>, index: number, hfn: number, clear: number): void {
    this.visitHfn = hfn;
    this.visitClear = clear;
    RadixSlotRmap.of(slot).nested.forEachEntry(index, this.rcVisitor);
  }

  private removeShadowEntry(l1Lpid: number, l2Gfn: number, hfn: number): void {
    for (const g of this.guests.liveGuests(l1Lpid)) {
      const tree = this.trees.get(g.shadowLpid);
      if (tree === undefined) continue;
      const off = tree.pteOffset(l2Gfn);
      if (tree.isLeaf(off) && tree.hfnAt(off) === hfn) {
        // No flush here: every entry removed maps `hfn`, and the caller flushes it once after the list.
        tree.clear(off);
        this.counters.shadowUnmaps++;
      }
    }
  }

  private clearShadowRc(l1Lpid: number, l2Gfn: number, hfn: number, clear: number): void {
    for (const g of this.guests.liveGuests(l1Lpid)) {
      const tree = this.trees.get(g.shadowLpid);
      if (tree === undefined) continue;
      const off = tree.pteOffset(l2Gfn);
      if (tree.isLeaf(off) && tree.hfnAt(off) === hfn && (tree.loAt(off) & clear) !== 0) {
        tree.updateLo(off, clear, 0);
        this.tlbs.flushHostFrame(hfn);
      }
    }
  }

  /**
   * The shadow leaves and the nested rmap's records, for `PpcRadixMmu.inspect`
   * (the conformance suite's `names-every-leaf` model). A shadow leaf is
   * filed under the L1 page L1's tree for the L2 maps it to now (walked in
   * software, as the fault did); its handle is its entry's host real
   * address / 8 like L1's leaves. An rmap entry names the shadow leaf of
   * (LPID, L2 frame) in each guest not yet released that has one; a stale
   * entry (no such leaf) names a handle no leaf has (negative). Not a hot path.
   */
  snapshot(slots: readonly Memslot<PpcRadixTypes>[], leaves: MappingLeaf[], rmap: RmapRecord[]): void {
    let stale = -1;
    for (const g of this.guests.allLive()) {
      const tree = this.trees.get(g.shadowLpid);
      if (tree === undefined) continue;
      tree.forEachLeaf((l2Gfn, off) => {
        const hfn = tree.hfnAt(off);
        let gfn = -1;
        if (this.l1Walk.walk(g.l1GrToHrHi, g.l1GrToHrLo, Math.floor(l2Gfn / TWO_POW_20), ((l2Gfn % TWO_POW_20) * PAGE) >>> 0)) {
          gfn = this.l1Walk.raHi * TWO_POW_20 + (this.l1Walk.raLo >>> 12);
        }
        const slot = slots.find((sl) => gfn >= sl.baseGfn && gfn < sl.baseGfn + sl.npages);
        const lo = tree.loAt(off);
        leaves.push({
          entry: off / 8,
          slotId: slot?.id ?? -1,
          gfn,
          level: 1,
          pages: 1,
          hfn,
          writable: (lo & RADIX_PTE.READ_WRITE) !== 0 && (lo & RADIX_PTE.C) !== 0,
        });
      });
    }
    for (const slot of slots) {
      const nested = RadixSlotRmap.of(slot).nested;
      if (nested.bytes === 0) continue;
      for (let i = 0; i < slot.npages; i++) {
        for (const [lpid, l2Gfn] of nested.entries(i)) {
          let named = false;
          for (const g of this.guests.liveGuests(lpid)) {
            const tree = this.trees.get(g.shadowLpid);
            const off = tree === undefined ? -1 : tree.pteOffset(l2Gfn);
            if (tree !== undefined && tree.isLeaf(off)) {
              rmap.push({ slotId: slot.id, gfn: slot.baseGfn + i, level: 1, entry: off / 8 });
              named = true;
            }
          }
          if (!named) rmap.push({ slotId: slot.id, gfn: slot.baseGfn + i, level: 1, entry: stale-- });
        }
      }
    }
  }

  /** Every shadow tree emptied (L0's tree for L1 is going whole: zapAll). */
  clearAllShadows(): void {
    for (const g of this.guests.allLive()) this.clearShadowTable(g.shadowRoot, g.shadowLpid);
  }

  /** kvmhv_release_all_nested (VM teardown): every guest unlinked; released once no vCPU runs it. */
  releaseAll(): void {
    this.guests.removeAll();
  }
}

/** The words an HDSI/HISI exit writes back (reused). */
export class ExitWords {
  cause = 0;
  darHi = 0;
  darLo = 0;
  asdrHi = 0;
  asdrLo = 0;
}

/** The running guest's own DSI (ISI) for a partition-scoped fault it must see (KVM's kvmppc_core_queue_data_storage). */
function deliverStorageInterrupt(walk: RadixTranslation, cause: number, fault: FaultInfo): void {
  deliverRadixInterrupt(fault, walk.vector === RadixVector.HISI ? RadixVector.ISI : RadixVector.DSI, cause, fault.vaHi, fault.vaLo);
}
