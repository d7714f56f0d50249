import type { BackendModule, BackendTypes } from '@hvmmu/core';
import { x86ShadowBackend } from '@hvmmu/x86-shadow';
import { WorkloadInputError } from '../workloads/WorkloadInputError.js';

/** A backend `hvmmu run --backend ID` can name: its module, or why it is not available yet. */
export type BackendEntry =
  | { readonly id: string; readonly module: BackendModule<BackendTypes> }
  | { readonly id: string; readonly module: null; readonly notYet: string };

/**
 * Every backend the command knows, by id. A backend package is added here (and to this
 * package's dependencies) once its module exists; `hvmmu run` then works with it if the module
 * has a `guestSide`, and says clearly that it has none otherwise.
 */
export const BACKENDS: readonly BackendEntry[] = [
  { id: x86ShadowBackend.id, module: x86ShadowBackend },
  // The PowerPC backends: import `ppcRadixBackend` from '@hvmmu/ppc-radix' and `ppcHptBackend`
  // from '@hvmmu/ppc-hpt' here (and add both packages to packages/cli/package.json and its
  // tsconfig references) once their modules are exported with a guestSide.
  { id: 'ppc-radix', module: null, notYet: 'the PowerPC radix backend is not wired into hvmmu yet (packages/cli/src/backends/BackendRegistry.ts)' },
  { id: 'ppc-hpt', module: null, notYet: 'the PowerPC hashed-page-table backend is not wired into hvmmu yet (packages/cli/src/backends/BackendRegistry.ts)' },
];

/** The backend module with this id; a WorkloadInputError naming the ids known otherwise. */
export function findBackend(id: string): BackendModule<BackendTypes> {
  const entry = BACKENDS.find((b) => b.id === id);
  if (entry === undefined) throw new WorkloadInputError(`--backend ${id}`, [`no such backend (known: ${BACKENDS.map((b) => b.id).join(', ')})`]);
  if (entry.module === null) throw new WorkloadInputError(`--backend ${id}`, [entry.notYet]);
  return entry.module;
}
