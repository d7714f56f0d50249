import type { HypercallRegisters } from '../hcall/HypercallRegisters.js';
import type { Memslot } from '../memslot/Memslot.js';
import type { MemslotListener } from '../memslot/MemslotListener.js';
import type { BackendTypes } from '../vm/BackendTypes.js';
import type { Vcpu } from '../vm/Vcpu.js';
import type { FaultInfo, FaultOutcomeValue } from './FaultInfo.js';
import type { TranslationResult } from './Translator.js';

/**
 * The hypervisor side of a backend's MMU, one per VM.
 *
 * It learns about memslot changes and host-side events through
 * `MemslotListener` (registered by the VM), gives each vCPU its per-vCPU MMU
 * object (the hardware-side translator, and the vCPU's architecture API),
 * and resolves the misses that translator reports.
 */
export interface Mmu<T extends BackendTypes = BackendTypes> extends MemslotListener<T> {
  /** The backend id this MMU belongs to. */
  readonly backendId: string;

  /** The VM-level API users reach as `vm.arch`. */
  readonly arch: T['vm'];

  /** Set up per-vCPU MMU state (roots, caches, registers) and return it; it becomes `vcpu.arch` and the vCPU's translator. */
  attachVcpu(vcpu: Vcpu<T>): T['vcpu'];

  /** Tear down per-vCPU state (release roots). */
  detachVcpu(vcpu: Vcpu<T>): void;

  /**
   * A translator miss on `vpn` for `access` (`missCode` from the translator).
   * Fix the hardware tables and return RETRY, or fill `fault` (`deliver`,
   * `reflect` or `exit`) and return DONE. A handler that knows what the
   * retried access's walk would find may instead set `result`'s hfn, perm
   * and cacheable to exactly that and return FILLED (the vCPU then fills
   * its TLB as after that walk). Never throws for anything the guest
   * controls.
   */
  handleFault(vcpu: Vcpu<T>, vpn: number, access: number, missCode: number, fault: FaultInfo, result: TranslationResult): FaultOutcomeValue;

  /**
   * Perform a guest write the fault handler answered with EMULATE: store
   * `len` bytes of `data` from `from` at gpa and update whatever shadows that
   * memory (x86: kvm_mmu_track_write). False, changing nothing, if no
   * writable memory backs gpa. Backends that never answer EMULATE omit it.
   */
  emulateWrite?(vcpu: Vcpu<T>, gpa: number, data: Uint8Array, from: number, len: number): boolean;

  /**
   * Take a hypercall before the VM's handlers see it, or return null to let
   * them. A backend running a nested guest on the vCPU returns non-null:
   * the nested guest's hypercall is an exit to its own hypervisor (POWER
   * nested HV: L0 reflects an L2's `sc 1` to L1, which sees its
   * H_ENTER_NESTED complete with trap 0xc00). Backends without nested
   * guests omit it.
   */
  interceptHypercall?(vcpu: Vcpu<T>, number: number, regs: HypercallRegisters): number | null;

  /**
   * The VM is being destroyed: every vCPU is detached and `zapAll` has run;
   * release what outlives mappings (POWER nested HV: every nested guest,
   * its shadow LPID and tree, as kvmhv_release_all_nested). Its memslots are
   * deleted after this. Optional.
   */
  teardown?(): void;

  /** Clear accessed state of every mapping of [startGfn, endGfn); true if any was young (clear_young). */
  ageGfnRange(slot: Memslot<T>, startGfn: number, endGfn: number): boolean;

  /** True if any mapping of [startGfn, endGfn) is young; changes nothing (test_young). */
  testAgeGfnRange(slot: Memslot<T>, startGfn: number, endGfn: number): boolean;

  /** Drop every mapping the MMU holds (VM teardown, notifier release). */
  zapAll(): void;

  /** The backend's counters. */
  stats(): T['stats'];
}
