import type { BackendModule, BackendTypes } from '@hvmmu/core';
import { x86ShadowBackend } from '@hvmmu/x86-shadow';
import { WorkloadInputError } from '../workloads/WorkloadInputError.js';

/**
 * A backend `hvmmu run --backend ID` can name: the package it lives in and how to load its
 * module. The PowerPC packages are optional peer dependencies of the CLI (a user installs the
 * backends they want), loaded only when asked for.
 */
export interface BackendEntry {
  readonly id: string;
  readonly packageName: string;
  load(): Promise<BackendModule<BackendTypes>>;
}

/**
 * Every backend the command knows, by id. A new backend package is added here (and to this
 * package's peer dependencies and tsconfig references); `hvmmu run` then works with it if its
 * module has a `guestSide`, and says clearly that it has none otherwise.
 */
export const BACKENDS: readonly BackendEntry[] = [
  { id: 'x86-shadow', packageName: '@hvmmu/x86-shadow', load: async () => x86ShadowBackend },
  { id: 'ppc-radix', packageName: '@hvmmu/ppc-radix', load: async () => (await import('@hvmmu/ppc-radix')).ppcRadixBackend },
  { id: 'ppc-hpt', packageName: '@hvmmu/ppc-hpt', load: async () => (await import('@hvmmu/ppc-hpt')).ppcHptBackend },
];

/** The backend module with this id; a WorkloadInputError naming the ids known, or the package to install. */
export async function findBackend(id: string): Promise<BackendModule<BackendTypes>> {
  const entry = BACKENDS.find((b) => b.id === id);
  if (entry === undefined) throw new WorkloadInputError(`--backend ${id}`, [`no such backend (known: ${BACKENDS.map((b) => b.id).join(', ')})`]);
  try {
    return await entry.load();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') {
      throw new WorkloadInputError(`--backend ${id}`, [`needs the package ${entry.packageName}, which is not installed (npm install ${entry.packageName})`]);
    }
    throw error;
  }
}
