// The PowerPC backends are optional peer dependencies of the CLI (BackendRegistry.ts): the
// commands that need one load it on first use and say which package to install when it is missing.
import { inputError } from './InspectInput.js';

export type PpcRadixPackage = typeof import('@hvmmu/ppc-radix');
export type PpcHptPackage = typeof import('@hvmmu/ppc-hpt');

async function load<T>(name: string, why: string, importer: () => Promise<T>): Promise<T> {
  try {
    return await importer();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') {
      throw inputError(`${why} needs the package ${name}, which is not installed (npm install ${name})`);
    }
    throw error;
  }
}

export function loadPpcRadix(why: string): Promise<PpcRadixPackage> {
  return load('@hvmmu/ppc-radix', why, () => import('@hvmmu/ppc-radix'));
}

export function loadPpcHpt(why: string): Promise<PpcHptPackage> {
  return load('@hvmmu/ppc-hpt', why, () => import('@hvmmu/ppc-hpt'));
}
