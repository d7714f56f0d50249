import { HvmmuError } from '@hvmmu/core';
export { HashPageTable, QemuHtabSectionWriter, loadQemuHtabSection } from '@hvmmu/ppc-hpt';

/** Runs `fn`: 'ok', an HvmmuError's code, or rethrows anything else. */
export function HvmmuErrorProbe(fn: () => unknown): string {
  try {
    fn();
    return 'ok';
  } catch (e) {
    if (e instanceof HvmmuError) return e.code;
    throw e;
  }
}
