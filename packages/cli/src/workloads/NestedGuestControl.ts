import type { BackendTypes, GuestAddressSpaces, Vcpu } from '@hvmmu/core';

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

/** The guest side's nested control, or undefined if it has none. */
export function nestedControlOf<T extends BackendTypes>(side: GuestAddressSpaces<T>): NestedGuestControl<T> | undefined {
  const candidate = side as GuestAddressSpaces<T> & Partial<NestedGuestControl<T>>;
  if (typeof candidate.enterNested !== 'function' || typeof candidate.exitNested !== 'function') return undefined;
  return candidate as NestedGuestControl<T>;
}
