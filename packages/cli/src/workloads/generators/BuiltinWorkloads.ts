import { WorkloadInputError } from '../WorkloadInputError.js';
import type { WorkloadInput } from '../WorkloadSchema.js';
import { hostEventsWorkload } from './HostEventsWorkload.js';
import { manyAddressSpacesWorkload } from './ManyAddressSpacesWorkload.js';
import { randomWorkload } from './RandomWorkload.js';
import { sequentialWorkload } from './SequentialWorkload.js';
import { stridedWorkload } from './StridedWorkload.js';
import type { WorkloadGenerator } from './WorkloadGenerator.js';
import { workingSetChurnWorkload } from './WorkingSetChurnWorkload.js';

/** The built-in workloads by name (`hvmmu run --workload NAME[:key=value,…]`). */
export const BUILTIN_WORKLOADS: readonly WorkloadGenerator[] = [
  sequentialWorkload,
  randomWorkload,
  stridedWorkload,
  workingSetChurnWorkload,
  manyAddressSpacesWorkload,
  hostEventsWorkload,
];

export function findBuiltinWorkload(name: string): WorkloadGenerator | undefined {
  return BUILTIN_WORKLOADS.find((g) => g.name === name);
}

/**
 * The workload a spec names: `random` or `random:seed=7,pages=100` (decimal or 0x… values).
 * Unknown names and parameters and values out of bounds are WorkloadInputErrors naming them.
 */
export function generateBuiltinWorkload(spec: string): WorkloadInput {
  const colon = spec.indexOf(':');
  const name = colon < 0 ? spec : spec.slice(0, colon);
  const generator = findBuiltinWorkload(name);
  if (generator === undefined) {
    throw new WorkloadInputError(`--workload ${spec}`, [
      `no built-in workload '${name}' (built-in: ${BUILTIN_WORKLOADS.map((g) => g.name).join(', ')}) and no such file`,
    ]);
  }
  const params: Record<string, number> = {};
  for (const [key, p] of Object.entries(generator.parameters)) params[key] = p.default;
  const problems: string[] = [];
  if (colon >= 0) {
    for (const pair of spec.slice(colon + 1).split(',')) {
      const eq = pair.indexOf('=');
      const key = eq < 0 ? pair : pair.slice(0, eq);
      const p = generator.parameters[key];
      if (p === undefined) {
        problems.push(`${name} has no parameter '${key}' (it has ${Object.keys(generator.parameters).join(', ')})`);
        continue;
      }
      const text = eq < 0 ? '' : pair.slice(eq + 1).replace(/_/g, '');
      const value = /^(0x[0-9a-f]+|\d+)$/i.test(text) ? Number(text) : Number.NaN;
      if (!Number.isSafeInteger(value) || value < p.min || value > p.max || (p.powerOfTwo === true && (value & (value - 1)) !== 0)) {
        problems.push(`${key}: expected an integer in ${p.min}..${p.max}${p.powerOfTwo === true ? ', a power of two' : ''}, got '${text}'`);
        continue;
      }
      params[key] = value;
    }
  }
  if (problems.length > 0) throw new WorkloadInputError(`--workload ${spec}`, problems);
  return generator.generate(params);
}
