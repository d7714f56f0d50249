import { HvmmuError } from '../errors/HvmmuError.js';

/** Options of `vm.createVcpu`. */
export interface VcpuOptions {
  /**
   * Count TLB hits in `vcpu.tlb.hits` (default false: only misses are
   * counted, as a hardware TLB and QEMU's fast path do; a hit counter costs
   * about 8% of a hit).
   */
  readonly countTlbHits?: boolean;
}

const KNOWN_KEYS: readonly string[] = ['countTlbHits'];

/** Checks `createVcpu`'s argument; throws BAD_ARGUMENT naming the valid keys. */
export function checkVcpuOptions(options: unknown): VcpuOptions {
  if (options === undefined) return {};
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new HvmmuError('BAD_ARGUMENT', `createVcpu takes an options object { ${KNOWN_KEYS.join(', ')} }, got ${String(options)}`);
  }
  for (const key of Object.keys(options)) {
    if (!KNOWN_KEYS.includes(key)) {
      throw new HvmmuError('BAD_ARGUMENT', `createVcpu: unknown option '${key}' (valid: ${KNOWN_KEYS.join(', ')})`);
    }
  }
  const count = (options as { countTlbHits?: unknown }).countTlbHits;
  if (count !== undefined && typeof count !== 'boolean') {
    throw new HvmmuError('BAD_ARGUMENT', `createVcpu: countTlbHits must be a boolean, got ${String(count)}`);
  }
  return options as VcpuOptions;
}
