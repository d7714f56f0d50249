import type { Memslot } from '../memslot/Memslot.js';
import type { MemslotListener } from '../memslot/MemslotListener.js';
import type { Vcpu } from '../vm/Vcpu.js';
import type { FaultInfo, FaultOutcomeValue } from './FaultInfo.js';
import type { Translator } from './Translator.js';

/**
 * The hypervisor side of a backend's MMU, one per VM.
 *
 * It learns about memslot changes and host-side events through
 * `MemslotListener` (registered by the VM), gives each vCPU a hardware-side
 * `Translator`, and resolves the misses that translator reports.
 */
export interface Mmu extends MemslotListener {
  /** The backend id this MMU belongs to. */
  readonly backendId: string;

  /** Set up per-vCPU MMU state (roots, caches) and return its translator. */
  attachVcpu(vcpu: Vcpu): Translator;

  /** Tear down per-vCPU state (release roots). */
  detachVcpu(vcpu: Vcpu): void;

  /**
   * A translator miss on `vpn` for `access` (`missCode` from the translator).
   * Fix the hardware tables and return RETRY, or fill `fault` and return DONE
   * (a guest fault to reflect, or an access the VMM must emulate). Never
   * throws for anything the guest controls.
   */
  handleFault(vcpu: Vcpu, vpn: number, access: number, missCode: number, fault: FaultInfo): FaultOutcomeValue;

  /** Clear accessed state of every mapping of [startGfn, endGfn); true if any was young (clear_young). */
  ageGfnRange(slot: Memslot, startGfn: number, endGfn: number): boolean;

  /** True if any mapping of [startGfn, endGfn) is young; changes nothing (test_young). */
  testAgeGfnRange(slot: Memslot, startGfn: number, endGfn: number): boolean;

  /** Drop every mapping the MMU holds (VM teardown, notifier release). */
  zapAll(): void;

  /** Counters for display and tests (names are backend-specific). */
  stats(): Readonly<Record<string, number>>;
}
