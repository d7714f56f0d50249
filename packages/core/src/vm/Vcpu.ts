import { HvmmuError } from '../errors/HvmmuError.js';
import { FaultInfo, FaultKind, FaultOutcome } from '../mmu/FaultInfo.js';
import type { Mmu } from '../mmu/Mmu.js';
import { TranslationResult } from '../mmu/Translator.js';
import { isValidAccess } from '../mmu/Access.js';
import type { MemslotTable } from '../memslot/MemslotTable.js';
import { SoftTlb } from '../tlb/SoftTlb.js';
import { HypercallRegisters } from '../hcall/HypercallRegisters.js';
import type { HypercallDispatcher } from '../hcall/HypercallDispatcher.js';
import { GuestVirtualAccess } from './GuestVirtualAccess.js';
import type { BackendTypes } from './BackendTypes.js';

/** Misses a single access may turn into before it is reported as RETRY_LIMIT. */
export const MAX_FAULT_RETRIES = 16;

/** A guest memory access failed; the details are in `vcpu.fault`. */
export const TRANSLATE_FAULT = -1;

/**
 * A virtual CPU: its software TLB, the translation context it runs in, its
 * backend's per-vCPU MMU object (`arch`: the hardware-side translator and
 * the architecture's vCPU API) and the VM's MMU that resolves misses.
 *
 * `translate` is the access path: a TLB hit is a tag compare and a bit test;
 * a miss walks the hardware tables; a table miss calls the MMU's fault
 * handler and retries. A failed access returns -1 with `fault` filled in; no
 * access allocates. Guest-virtual reads and writes of 8 to 64 bits in either
 * byte order, crossing pages, are in `read*` / `write*`.
 */
export class Vcpu<T extends BackendTypes = BackendTypes> extends GuestVirtualAccess {
  readonly id: number;
  readonly tlb: SoftTlb;
  // The TLB's arrays, held directly so a hit is one load fewer per array
  // (measured: raw/hit ratio 0.45–0.58 → 0.58–0.77 in `npm run bench core`).
  protected readonly tlbTags: Float64Array;
  protected readonly tlbPerms: Uint16Array;
  protected readonly tlbFrames: Int32Array;
  protected readonly tlbMask: number;
  /**
   * The translation context the vCPU runs in (see `SoftTlb`): part of every
   * TLB lookup. Change it with `setContext`.
   */
  context = 0;
  readonly fault = new FaultInfo();
  readonly hcallRegs = new HypercallRegisters();
  /** The backend's per-vCPU MMU object: its translator and the architecture's vCPU API (x86: control registers, INVLPG). */
  readonly arch: T['vcpu'];
  private readonly result = new TranslationResult();
  private readonly mmu: Mmu<T>;
  private readonly hypercalls: HypercallDispatcher;
  /** Accesses that ended in a fault. */
  faults = 0;
  /** MMU fault-handler invocations (table misses). */
  tableMisses = 0;
  /** Set when the VM is destroyed: the MMU has let go of this vCPU. */
  private released = false;

  constructor(id: number, tlbEntries: number, mmu: Mmu<T>, hypercalls: HypercallDispatcher, memslots: MemslotTable<T>) {
    super(memslots);
    this.id = id;
    this.tlb = new SoftTlb(tlbEntries);
    this.tlbTags = this.tlb.tags;
    this.tlbPerms = this.tlb.perms;
    this.tlbFrames = this.tlb.frames;
    this.tlbMask = this.tlb.mask;
    this.mmu = mmu;
    this.hypercalls = hypercalls;
    this.arch = mmu.attachVcpu(this);
  }

  /** The hardware-side translator (the backend's per-vCPU MMU object). */
  get translator(): T['vcpu'] {
    return this.arch;
  }

  /**
   * Run in translation context `context` from now on: no flush, the TLB
   * keeps every context's entries apart. Context ids come from the VM's
   * `TranslationContexts` (0 is every vCPU's initial one).
   */
  setContext(context: number): void {
    this.tlb.checkContext(context);
    this.context = context;
  }

  /**
   * Whether `tlb.hits` counts this vCPU's hits (`createVcpu({ countTlbHits:
   * true })`). By default it does not: a counter on the hit path costs about
   * 8% of a hit (`npm run bench -- core.tlb`), and neither a hardware TLB nor
   * QEMU's softmmu fast path counts hits; misses are always counted.
   */
  get countsTlbHits(): boolean {
    return false;
  }

  /**
   * Host physical address for guest virtual address `va` (< 2^53), or -1
   * (`TRANSLATE_FAULT`) with `this.fault` describing why.
   */
  translate(va: number, access: number): number {
    const offset = va & 0xfff;
    const vpn = (va - offset) / 4096;
    const i = (vpn & this.tlbMask) ^ this.context;
    // `(access & 0xf) === access` holds only for an integer kind 0..15 (ACCESS_MASK), so a
    // bad value (32, -32, 0.5, '0') never hits through a wrapped shift count; it misses
    // and the slow path refuses it. The mask is a literal: the imported constant cost a
    // module-binding load and hole check per hit (core.tlb.hitVsRawLookup 0.53 → 0.59).
    if (this.tlbTags[i] === vpn && (access & 0xf) === access && ((this.tlbPerms[i]! >> access) & 1) !== 0) {
      return this.tlbFrames[i]! * 4096 + offset;
    }
    // The miss path is a call (see `translateSlow`). Passing `va` rather than vpn and
    // offset keeps them out of the call's live state, and the unary plus tells
    // TurboFan the call returns a number, so the hit's result is never boxed where
    // the two paths meet (core.tlb.hitVsRawLookup 0.466 → 0.52).
    return +this.translateMiss(va, access);
  }

  /** Like `translate` for a virtual page number (any 64-bit address: vpn < 2^52); returns the host frame or -1. */
  translatePage(vpn: number, access: number): number {
    const i = (vpn & this.tlbMask) ^ this.context;
    if (this.tlbTags[i] === vpn && (access & 0xf) === access && ((this.tlbPerms[i]! >> access) & 1) !== 0) {
      return this.tlbFrames[i]!;
    }
    const hpa = this.translateSlow(vpn, 0, access);
    return hpa < 0 ? TRANSLATE_FAULT : hpa / 4096;
  }

  /** `translate`'s miss path for a byte address. */
  protected translateMiss(va: number, access: number): number {
    const offset = va & 0xfff;
    return this.translateSlow((va - offset) / 4096, offset, access);
  }

  // The whole miss path — walk, TLB fill, fault handler, retries — is one
  // method on purpose: larger than TurboFan inlines (460 bytes of bytecode),
  // it stays a call, so `translate` stays small enough to be inlined into
  // every caller. When it was split into smaller pieces V8 inlined them into
  // `translate`'s own optimised code, and a caller compiled after that found
  // `translate` too big to inline: a hit then cost twice as much
  // (core.tlb.hitVsRawLookup 0.34 or 0.52 depending on compile order).
  protected translateSlow(vpn: number, offset: number, access: number): number {
    // Validate before counting, so a rejected call changes nothing.
    if (!(vpn >= 0 && vpn < 2 ** 52 && Number.isInteger(vpn)) || !isValidAccess(access)) this.throwBadAccess(vpn, access);
    if (this.released) this.throwReleased();
    this.tlb.misses++;
    const result = this.result;
    const fault = this.fault;
    const memslots = this.memslots;
    for (let attempt = 0; attempt < MAX_FAULT_RETRIES; attempt++) {
      // `cacheable` defaults to true for every walk; a translator only clears it.
      result.cacheable = true;
      const hfn = this.arch.translate(vpn, access, result);
      if (hfn >= 0) {
        if (result.cacheable) this.tlb.insert(this.context, vpn, hfn, result.perm);
        return hfn * 4096 + offset;
      }
      this.tableMisses++;
      fault.clear();
      // Recorded before the handler runs too, so a handler that must store the faulting
      // address itself (a nested guest's exit writing HDAR to its hypervisor) has it byte-exact.
      fault.setAccess(vpn, offset, access);
      memslots.hostOutOfMemory = false;
      let outcome: number;
      try {
        // `cacheable` as for a walk; a handler that answers FILLED sets hfn and perm.
        result.cacheable = true;
        outcome = this.mmu.handleFault(this, vpn, access, result.missCode, fault, result);
      } catch (error) {
        // The host ran out of frames somewhere in the handler: an exit to the VMM, not a crash.
        if (!(error instanceof HvmmuError && error.code === 'HOST_OUT_OF_MEMORY')) throw error;
        memslots.hostOutOfMemory = true;
        outcome = FaultOutcome.DONE;
      }
      if (memslots.hostOutOfMemory) {
        // KVM_RUN returns -ENOMEM: whatever the handler answered, the access did not complete.
        memslots.hostOutOfMemory = false;
        fault.exit(FaultKind.HOST_OUT_OF_MEMORY, -1);
        outcome = FaultOutcome.DONE;
      }
      if (outcome === FaultOutcome.DONE) {
        fault.setAccess(vpn, offset, access);
        this.faults++;
        return TRANSLATE_FAULT;
      }
      if (outcome === FaultOutcome.FILLED) {
        // The retried access, completed from what its walk would have returned.
        const hfn = result.hfn;
        if (!(hfn >= 0 && Number.isSafeInteger(hfn))) this.throwBadFill(hfn);
        if (result.cacheable) this.tlb.insert(this.context, vpn, hfn, result.perm);
        return hfn * 4096 + offset;
      }
    }
    fault.exit(FaultKind.RETRY_LIMIT, -1);
    fault.setAccess(vpn, offset, access);
    this.faults++;
    return TRANSLATE_FAULT;
  }

  private throwBadFill(hfn: number): never {
    throw new HvmmuError('BACKEND_INVALID', `handleFault answered FILLED with host frame ${String(hfn)}`);
  }

  private throwBadAccess(vpn: number, access: number): never {
    throw new HvmmuError('BAD_ARGUMENT', `translate: bad virtual page ${String(vpn)} or access ${String(access)}`);
  }

  /** Issue hypercall `number` with the arguments already placed in `hcallRegs`; returns the status. */
  hypercall(number: number): number {
    if (this.released) this.throwReleased();
    // A nested guest's hypercall belongs to its own hypervisor, not to this VM's handlers.
    if (this.mmu.interceptHypercall !== undefined) {
      const status = this.mmu.interceptHypercall(this, number, this.hcallRegs);
      if (status !== null) return status;
    }
    return this.hypercalls.dispatch(this, number, this.hcallRegs);
  }

  /**
   * Called by the VM on teardown, after the MMU detached this vCPU: drop every
   * cached translation (their host frames are about to be freed and reused)
   * so later accesses cannot reach them, and refuse further use.
   */
  release(): void {
    this.released = true;
    this.tlb.flushAll();
  }

  get isReleased(): boolean {
    return this.released;
  }

  /** Throws VM_DESTROYED if the VM is gone (for backends' vCPU APIs). */
  checkAlive(): void {
    if (this.released) this.throwReleased();
  }

  protected override emulateWrite(gpa: number, data: Uint8Array, from: number, len: number): boolean {
    const mmu = this.mmu;
    return mmu.emulateWrite !== undefined && mmu.emulateWrite(this, gpa, data, from, len);
  }

  private throwReleased(): never {
    throw new HvmmuError('VM_DESTROYED', `vCPU ${this.id} belongs to a destroyed VM`);
  }
}
