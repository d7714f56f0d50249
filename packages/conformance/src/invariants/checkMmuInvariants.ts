import type { Vm } from '@hvmmu/core';
import type { MmuSnapshot } from '@hvmmu/core';
import { checkDirtyLogArmed, checkFrameAccounting, checkMappingsMatchMemslots } from './checkMappingsMatchMemslots.js';
import { RmapModel, checkRmapConsistency, type RmapModelName } from './checkRmapConsistency.js';
import { checkTlbCoherence } from './checkTlbCoherence.js';
import type { GuestView } from './GuestView.js';

export interface InvariantOptions {
  /** The guest's mappings; without it the TLB is not checked (the suite only knows them for its own guests). */
  readonly guestView?: GuestView;
  /** Check that dirty logging is armed (only for backends that declare dirty logging). */
  readonly dirtyLogging: boolean;
  /** The backend's rmap model (default `one-per-leaf`). */
  readonly rmapModel?: RmapModelName;
}

/** Every invariant the suite holds a backend to at rest, as a list of violations (empty: all hold). */
export function checkMmuInvariants(vm: Vm, snapshot: MmuSnapshot, options: InvariantOptions): string[] {
  return [
    ...checkRmapConsistency(snapshot, options.rmapModel ?? RmapModel.ONE_PER_LEAF),
    ...checkMappingsMatchMemslots(vm, snapshot),
    ...checkFrameAccounting(vm),
    ...(options.dirtyLogging ? checkDirtyLogArmed(vm, snapshot) : []),
    ...(options.guestView !== undefined ? checkTlbCoherence(vm, snapshot, options.guestView) : []),
  ];
}
