import { HvmmuError, type GuestMemory, type TranslationResult, type Translator, type Vcpu } from '@hvmmu/core';
import { radixDebugTranslate } from '../inspect/radixDebugTranslate.js';
import { RadixRegisters } from '../walk/RadixRegisters.js';
import { RadixTranslation } from '../walk/RadixTranslation.js';
import { RadixWalker } from '../walk/RadixWalker.js';
import type { HostRealSpace } from './HostRealSpace.js';
import type { NestedExit, NestedHv, NestedRun } from './NestedHv.js';
import type { PartitionScopedTree } from './PartitionScopedTree.js';
import { RadixContexts, RadixMode } from './RadixContexts.js';
import { RadixMissCode } from './RadixMissCode.js';
import { DATA_KINDS, FETCH_KINDS, PERM_BY_PROT } from './RadixPermissions.js';

const TWO_POW_20 = 0x10_0000;

/** `RadixProt` from a leaf's EAA (eaaProt with literal masks: RW implies read). */
function eaaProtOf(lo: number): number {
  return ((lo & 4) !== 0 ? 1 : 0) | ((lo & 2) !== 0 ? 3 : 0) | ((lo & 1) !== 0 ? 4 : 0);
}

/** What a partition-scoped leaf lets the TLB serve: EAA; C gates writes (a store without it raises the R/C fault); no fetch from non-idempotent I/O. */
function partitionProtOf(lo: number): number {
  let prot = eaaProtOf(lo);
  if ((lo & 0x80) === 0) prot &= ~2;
  if ((lo & 0x30) === 0x20) prot &= ~4;
  return prot;
}

/** The guest-visible registers radix translation depends on, as `vcpu.arch.registers()` reports them. */
export interface RadixVcpuRegisters {
  readonly pid: number;
  readonly ir: number;
  readonly dr: number;
  readonly amrKey0: number;
  readonly iamrKey0: number;
}

/**
 * One vCPU of a radix guest (`vcpu.arch`): the processor's translation as
 * `RadixWalker` performs it (the 2-D walk of the guest's process-scoped tree
 * under L0's partition-scoped tree, from L0's partition table through PTCR
 * and LPIDR), and the guest's registers that steer it — PIDR, MSR[IR/DR],
 * AMR/IAMR. MSR[PR] is the access's privilege (core's `Access.USER`, a table
 * walk's IMPLICIT read being privileged), so it is not a register here.
 *
 * Register writes switch the vCPU's translation context (`RadixContexts`):
 * no TLB flush. The TLB is given only the access kinds the walked entries
 * allow without a fault: EAA with privilege and AMR/IAMR key 0, no write
 * unless both leaves have C set, no fetch from guarded storage, and only
 * fetches or only data accesses when MSR[IR] and MSR[DR] differ (the two
 * relocate differently, so the other kind must walk again).
 */
export class RadixVcpuMmu implements Translator {
  /** The processor state the walker reads (L0 owns LPIDR and PTCR; the guest the rest). */
  readonly regs = new RadixRegisters();
  /** The last walk: its interrupt and registers when it failed (read by the fault handler). */
  readonly lastWalk = new RadixTranslation();
  /** Walks and the table entries they read (process, partition and table entries). */
  walks = 0;
  walkRefs = 0;
  /** The L2 this vCPU runs (from H_ENTER_NESTED to its exit), or null while it runs L1. */
  nested: NestedRun | null = null;
  /** How the last H_ENTER_NESTED of this vCPU completed. */
  lastNestedExit: NestedExit | null = null;
  /** MSR[LE] of L1: the byte order of the hv_guest_state and pt_regs it hands H_ENTER_NESTED (ppc64el: little). */
  littleEndian = true;
  /** The partition-scoped tree the vCPU translates under: L1's, or the running L2's shadow tree. */
  activeTree: PartitionScopedTree;
  private readonly walker: RadixWalker;
  // The permission tables, held by the instance (read on every miss; see `translate`).
  private readonly permByProt = PERM_BY_PROT;
  private readonly fetchKinds = FETCH_KINDS;
  private readonly dataKinds = DATA_KINDS;

  constructor(
    readonly vcpu: Vcpu,
    private readonly tree: PartitionScopedTree,
    space: HostRealSpace,
    private readonly contexts: RadixContexts,
    private readonly guestMemory: GuestMemory,
    private readonly nestedHv: NestedHv,
  ) {
    this.activeTree = tree;
    // POWER9 raises a storage interrupt when R or C must be set (KVM resolves the partition-scoped ones),
    // and keeps partition- and process-table entries cached until a tlbie with RIC 2 (POWER ISA v3.0 Book III 6.10).
    // Partition-scoped trees are L0's, freed only whole (HostRealSpace.tableEpoch): POWER9's page walk cache applies.
    this.walker = new RadixWalker(space, { rc: 'fault', cacheTableEntries: true, pageWalkCache: space });
    const regs = this.regs;
    regs.hv = false;
    regs.lpidr = tree.lpid;
    [regs.ptcrHi, regs.ptcrLo] = tree.ptcr();
    regs.ir = true;
    regs.dr = true;
  }

  // The miss path of every access: the flag and mask values are written as literals (an imported
  // constant costs a module-binding load and a hole check per use in V8's optimised code; see
  // RadixWalker.walkTree). Access: WRITE 1, FETCH 2, USER 4, IMPLICIT 8. RadixAccess: LOAD 0,
  // STORE 1, FETCH 2. Leaf low half: C 0x80, ATT 0x30 (non-idempotent I/O 0x20), PRIVILEGED 8,
  // EAA READ 4, READ_WRITE 2, EXECUTE 1. RadixProt: READ 1, WRITE 2, EXECUTE 4, ALL 7.
  translate(vpn: number, access: number, out: TranslationResult): number {
    if (!this.activeTree.ready) {
      out.missCode = RadixMissCode.NO_PARTITION_TABLE;
      return -1;
    }
    const regs = this.regs;
    regs.pr = (access & 12) === 4;
    // vpn < 2^52: EA bits 63..32 are vpn >> 20, bits 31..12 its low 20 bits (int32 arithmetic below 2^31).
    const eaHi = vpn < 0x8000_0000 ? vpn >>> 20 : Math.floor(vpn / TWO_POW_20);
    const eaLo = ((vpn & 0xf_ffff) << 12) >>> 0;
    const fetch = (access & 2) !== 0;
    const t = this.lastWalk;
    const relocated = fetch ? regs.ir : regs.dr;
    const kind = fetch ? 2 : access & 1;
    const ok = relocated ? this.walker.translate(regs, eaHi, eaLo, kind, t) : this.walker.translateGuestReal(regs, eaHi, eaLo, kind, t);
    this.walks++;
    this.walkRefs += t.refs;
    if (!ok) {
      out.missCode = t.vector === 0xe00 || t.vector === 0xe20 ? RadixMissCode.PARTITION : RadixMissCode.GUEST;
      return -1;
    }
    const partProt = partitionProtOf(t.partitionPteLo);
    let userProt = 7;
    let supProt = 7;
    if (relocated) {
      const lo = t.processPteLo;
      let prot = eaaProtOf(lo);
      if ((lo & 0x80) === 0) prot &= ~2;
      if ((lo & 0x30) === 0x20) prot &= ~4;
      if ((lo & 8) !== 0) {
        userProt = 0;
        supProt = prot;
      } else {
        userProt = prot;
        const amr = regs.amrHi >>> 30;
        supProt = prot & ~(((amr & 2) !== 0 ? 2 : 0) | ((amr & 1) !== 0 ? 1 : 0) | (((regs.iamrHi >>> 30) & 1) !== 0 ? 4 : 0));
      }
    }
    out.perm = this.permByProt[(userProt & partProt) * 8 + (supProt & partProt)]! & (regs.ir === regs.dr ? 0xffff : fetch ? this.fetchKinds : this.dataKinds);
    // The real address is below 2^53 (the host pool): its frame from the halves, no float division.
    return t.raHi * TWO_POW_20 + (t.raLo >>> 12);
  }

  /**
   * The retried access of a real-mode L2 after L0 wrote its 4 KiB shadow
   * leaf (`hi`, `lo`) into the bottom entry at real address `addr`, where
   * this vCPU's last walk found it invalid: what `translate` returns for it
   * now — its walk reads exactly that entry, the page walk cache holding
   * the table — set in `out`, with `lastWalk` and the walk counters as that
   * walk leaves them. False, nothing changed, when the access relocates or
   * the leaf refuses it (R/C included): then the walk runs and raises what
   * it raises.
   */
  completeRealModeRetry(access: number, hi: number, lo: number, addr: number, out: TranslationResult): boolean {
    const regs = this.regs;
    const fetch = (access & 2) !== 0;
    if (fetch ? regs.ir : regs.dr) return false;
    if (!this.walker.partitionLeafAllows(fetch ? 2 : access & 1, lo)) return false;
    const t = this.lastWalk;
    const gHi = t.guestRaHi;
    const gLo = t.guestRaLo;
    t.reset();
    t.guestRaHi = gHi;
    t.guestRaLo = gLo;
    t.setRa(hi & 0x01ff_ffff, ((lo & 0xffff_f000) | (gLo & 0xfff)) >>> 0);
    t.pageShift = 12;
    t.prot = eaaProtOf(lo);
    t.partitionPteHi = hi >>> 0;
    t.partitionPteLo = lo >>> 0;
    t.partitionPteAddr = addr;
    t.refs = 1;
    t.ok = true;
    this.walks++;
    this.walkRefs++;
    out.perm = this.permByProt[partitionProtOf(lo) * 9]! & (regs.ir === regs.dr ? 0xffff : fetch ? this.fetchKinds : this.dataKinds);
    out.hfn = t.raHi * TWO_POW_20 + (t.raLo >>> 12);
    out.cacheable = true;
    return true;
  }

  // ------------------------------------------------------------ the guest's registers

  get pid(): number {
    return this.regs.pidr;
  }

  /** mtspr PIDR: run in process `pid` (a context switch, no flush). */
  setPid(pid: number): void {
    if (!Number.isInteger(pid) || pid < 0 || pid > 0xffff_ffff) throw new HvmmuError('BAD_ARGUMENT', `PIDR is a 32-bit value, got ${String(pid)}`);
    this.vcpu.checkAlive();
    this.regs.pidr = pid;
    this.switchContext();
  }

  /** MSR[IR] and MSR[DR]: instruction and data relocation (both off: real mode, partition-scoped only). */
  setRelocation(ir: boolean, dr: boolean): void {
    if (typeof ir !== 'boolean' || typeof dr !== 'boolean') throw new HvmmuError('BAD_ARGUMENT', 'MSR[IR] and MSR[DR] are booleans');
    this.vcpu.checkAlive();
    this.regs.ir = ir;
    this.regs.dr = dr;
    this.switchContext();
  }

  /** mtspr AMR (64 bits): only key 0 (bits 63..62) matters to radix. */
  setAmr(value: bigint | number): void {
    this.vcpu.checkAlive();
    this.regs.setAmr(value);
    this.switchContext();
  }

  /** mtspr IAMR (64 bits): only key 0's execute bit (62) matters to radix. */
  setIamr(value: bigint | number): void {
    this.vcpu.checkAlive();
    this.regs.setIamr(value);
    this.switchContext();
  }

  /** The context mode bits of the current registers. */
  get mode(): number {
    const r = this.regs;
    const amr = r.amrHi >>> 30;
    return (
      (r.ir ? RadixMode.IR : 0) |
      (r.dr ? RadixMode.DR : 0) |
      ((amr & 2) !== 0 ? RadixMode.AMR_WRITE : 0) |
      ((amr & 1) !== 0 ? RadixMode.AMR_READ : 0) |
      (((r.iamrHi >>> 30) & 1) !== 0 ? RadixMode.IAMR_EXEC : 0)
    );
  }

  /** The guest-visible translation registers (for inspection and the conformance suite). */
  registers(): RadixVcpuRegisters {
    const r = this.regs;
    return { pid: r.pidr, ir: r.ir ? 1 : 0, dr: r.dr ? 1 : 0, amrKey0: r.amrHi >>> 30, iamrKey0: r.iamrHi >>> 30 };
  }

  /**
   * The guest real address `ea` has under this vCPU's registers, or null: a
   * debugger's lookup (QEMU's gva2gpa) with the guest's process-scoped tree
   * read straight from guest memory, as KVM's software walker reads it
   * (kvmppc_mmu_radix_translate_table through kvm_read_guest) — no fault,
   * no R/C, no partition-scoped leaf made. `user` is MSR[PR].
   */
  debugTranslate(ea: bigint, user = false): bigint | null {
    const regs = new RadixRegisters().copyFrom(this.regs);
    const [dw0Hi, dw0Lo, dw1Hi, dw1Lo] = this.tree.pate();
    regs.setVirtualHypervisorPate((BigInt(dw0Hi) << 32n) | BigInt(dw0Lo), (BigInt(dw1Hi) << 32n) | BigInt(dw1Lo));
    regs.pr = user === true;
    return radixDebugTranslate(this.guestMemory, regs, ea);
  }

  /** Whether the vCPU runs a nested guest (an L2) now. */
  get inL2(): boolean {
    return this.nested !== null;
  }

  /** MSR[LE] of L1 (the byte order H_ENTER_NESTED reads and writes the L2 state in). */
  setLittleEndian(littleEndian: boolean): void {
    if (typeof littleEndian !== 'boolean') throw new HvmmuError('BAD_ARGUMENT', 'MSR[LE] is a boolean');
    this.vcpu.checkAlive();
    this.littleEndian = littleEndian;
  }

  /**
   * End the running L2's run with interrupt `trap` — what the embedding
   * program reports for exits that are not translation faults (0x980 HDEC,
   * 0x500 external, 0xc00 an L2 hypercall it handled itself, ...): the L2's
   * state is written back to L1 memory, the vCPU runs L1 again, and L1's
   * H_ENTER_NESTED completes with r3 = trap (`vcpu.hcallRegs.ret(0)`).
   * Translation faults L1 must see end the run by themselves (the access
   * returns a fault with destination HYPERVISOR).
   */
  exitNested(trap: number): NestedExit {
    this.vcpu.checkAlive();
    if (!Number.isInteger(trap) || trap <= 0 || trap > 0xfff0 || trap % 0x20 !== 0) {
      throw new HvmmuError('BAD_ARGUMENT', `an L2 exit is an interrupt vector (a multiple of 0x20 in 0x20..0xfff0), got ${String(trap)}`);
    }
    if (this.nested === null) throw new HvmmuError('BAD_ARGUMENT', `vCPU ${this.vcpu.id} is not running a nested guest`);
    return this.nestedHv.completeEntry(this, trap, null);
  }

  /**
   * tlbie of one page of process `pid` (RIC 0, PRS 1, IS 0) issued by the
   * partition this vCPU runs: L1's (as `vm.arch.guestTlbiePage`) or, while
   * it runs an L2, the L2's — the processor applies a guest's tlbie to its
   * own LPID, here the shadow LPID. Every vCPU's TLB drops the page.
   */
  tlbiePage(pid: number, vpn: number): void {
    this.vcpu.checkAlive();
    const run = this.nested;
    this.contexts.flushPidPage(pid, vpn, run === null ? 0 : run.guest.shadowLpid);
  }

  /** tlbie of a whole process (PRS 1, IS 1) by the partition this vCPU runs; RIC 2 also drops cached process-table entries. */
  tlbiePid(pid: number, ric: 0 | 2 = 0): void {
    this.vcpu.checkAlive();
    if (ric === 2) this.nestedHv.dropTableCaches();
    const run = this.nested;
    this.contexts.flushPid(pid, run === null ? 0 : run.guest.shadowLpid);
  }

  /** @internal Switch to the L2 of `run` (H_ENTER_NESTED succeeded). */
  enterL2(run: NestedRun, pid: number, ir: boolean, dr: boolean): void {
    this.nested = run;
    this.activeTree = run.tree;
    this.regs.lpidr = run.guest.shadowLpid;
    this.regs.pidr = pid >>> 0;
    this.regs.ir = ir;
    this.regs.dr = dr;
    this.switchContext();
  }

  /** @internal Back to L1 (the L2's run ended). */
  leaveL2(): void {
    const run = this.nested;
    if (run === null) return;
    this.nested = null;
    this.activeTree = this.tree;
    this.regs.lpidr = this.tree.lpid;
    this.regs.pidr = run.l1Pid;
    this.regs.ir = run.l1Ir;
    this.regs.dr = run.l1Dr;
    this.switchContext();
  }

  /** A partition- or process-table entry changed (tlbie RIC 2): forget the walker's cached table entries and page walk cache. */
  invalidateTableCaches(): void {
    this.walker.invalidateTableCaches();
  }

  /**
   * tlbie RIC 1: forget the page walk cache (the bottom tables of L0's
   * partition-scoped trees, kept per 2 MiB region; the trees' frees drop it
   * by themselves through `HostRealSpace.tableEpoch`).
   */
  invalidatePageWalkCache(): void {
    this.walker.invalidatePageWalkCache();
  }

  /** Re-select the context after a register write; also after the context was revoked. */
  switchContext(): void {
    const run = this.nested;
    this.vcpu.setContext(this.contexts.contextFor(this.regs.pidr, this.mode, run === null ? 0 : run.guest.shadowLpid));
  }
}
