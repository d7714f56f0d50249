import type { BackendModule, BackendTypes } from '@hvmmu/core';
import { ppcHptBackend } from '@hvmmu/ppc-hpt';
import { ppcRadixBackend } from '@hvmmu/ppc-radix';
import { x86ShadowBackend } from '@hvmmu/x86-shadow';
import { WorkloadInputError } from '../workloads/WorkloadInputError.js';

/** A backend `hvmmu run --backend ID` can name: its module, or why it is not available yet. */
export type BackendEntry =
  | { readonly id: string; readonly module: BackendModule<BackendTypes> }
  | { readonly id: string; readonly module: null; readonly notYet: string };

/**
 * Every backend the command knows, by id. A new backend package is added here (and to this
 * package's dependencies and tsconfig references); `hvmmu run` then works with it if its module
 * has a `guestSide`, and says clearly that it has none otherwise. An entry with `module: null`
 * names a backend that is planned but not wired in, with the reason.
 */
export const BACKENDS: readonly BackendEntry[] = [
  { id: x86ShadowBackend.id, module: x86ShadowBackend },
  { id: ppcRadixBackend.id, module: ppcRadixBackend },
  { id: ppcHptBackend.id, module: ppcHptBackend },
];

/** The backend module with this id; a WorkloadInputError naming the ids known otherwise. */
export function findBackend(id: string): BackendModule<BackendTypes> {
  const entry = BACKENDS.find((b) => b.id === id);
  if (entry === undefined) throw new WorkloadInputError(`--backend ${id}`, [`no such backend (known: ${BACKENDS.map((b) => b.id).join(', ')})`]);
  if (entry.module === null) throw new WorkloadInputError(`--backend ${id}`, [entry.notYet]);
  return entry.module;
}
