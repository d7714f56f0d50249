import type { BackendTypes, FaultInfo, GuestAddressSpaces, Vcpu } from '@hvmmu/core';

/**
 * Nested enter/exit as a workload drives it: a guest side that can run a nested (L2) guest on a
 * vCPU offers these two methods beside `GuestAddressSpaces`'s. Core's interface has no nesting
 * yet, so the runner looks for them on the guest side object; a backend whose guest side lacks
 * them cannot run a workload with `enterNested`/`exitNested`, and the runner says so before
 * replaying anything.
 */
export interface NestedGuestControl<T extends BackendTypes = BackendTypes> {
  /** Run nested guest `guest` on `vcpu` (POWER: H_ENTER_NESTED with that L2's LPID). */
  enterNested(vcpu: Vcpu<T>, guest: number): void;
  /** Return `vcpu` from its nested guest to the guest itself. */
  exitNested(vcpu: Vcpu<T>): void;
}

/**
 * A guest side whose guest is itself a nested guest (an L2), with its hypervisor (the L1) played
 * by the guest side: a fault reflected to the guest's hypervisor (`FaultDestination.HYPERVISOR`,
 * the nested run ended with the exit) is handed to it. It handles the exit as its L1 would —
 * POWER radix: map the L2 real page in its partition-scoped tree for the L2 — and resumes the
 * nested guest on the vCPU, whatever the outcome, so the workload's next access is the nested
 * guest's again. Found on the guest side object as `NestedGuestControl` is (core has no nesting).
 */
export interface HypervisorFaultHandler<T extends BackendTypes = BackendTypes> {
  /** True if the fault was resolved and the access should run again; the vCPU runs the nested guest again either way. */
  handleHypervisorFault(vcpu: Vcpu<T>, fault: FaultInfo): boolean;
}

/** The guest side's handler of faults reflected to its hypervisor, or undefined if it has none. */
export function hypervisorFaultHandlerOf<T extends BackendTypes>(side: GuestAddressSpaces<T>): HypervisorFaultHandler<T> | undefined {
  const candidate = side as GuestAddressSpaces<T> & Partial<HypervisorFaultHandler<T>>;
  return typeof candidate.handleHypervisorFault === 'function' ? (candidate as HypervisorFaultHandler<T>) : undefined;
}

/** The guest side's nested control, or undefined if it has none. */
export function nestedControlOf<T extends BackendTypes>(side: GuestAddressSpaces<T>): NestedGuestControl<T> | undefined {
  const candidate = side as GuestAddressSpaces<T> & Partial<NestedGuestControl<T>>;
  if (typeof candidate.enterNested !== 'function' || typeof candidate.exitNested !== 'function') return undefined;
  return candidate as NestedGuestControl<T>;
}
