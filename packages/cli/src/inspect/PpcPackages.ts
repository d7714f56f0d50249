// The PowerPC backends are optional peer dependencies of the CLI (BackendRegistry.ts): the
// commands that need one load it on first use and say which package to install when it is missing.
import { inputError } from './InspectInput.js';

export type PpcRadixPackage = typeof import('@hvmmu/ppc-radix');
export type PpcHptPackage = typeof import('@hvmmu/ppc-hpt');

async function load<T>(name: string, why: string, importer: () => Promise<T>): Promise<T> {
  try {
    return await importer();
  } catch (error) {
    // The loader's error, or one wrapping it (a bundler's or test runner's loader).
    const codes = [(error as NodeJS.ErrnoException).code, (error as { cause?: NodeJS.ErrnoException }).cause?.code];
    if (codes.includes('ERR_MODULE_NOT_FOUND') || codes.includes('MODULE_NOT_FOUND')) {
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
