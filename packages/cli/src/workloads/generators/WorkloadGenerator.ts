import type { WorkloadInput } from '../WorkloadSchema.js';

/** One numeric parameter of a built-in workload, with its default and bounds. */
export interface GeneratorParameter {
  readonly default: number;
  readonly min: number;
  readonly max: number;
  /** Only powers of two (e.g. accesses per page, so that they divide a page evenly). */
  readonly powerOfTwo?: boolean;
  readonly description: string;
}

/**
 * A built-in workload: a named, parameterised generator of the JSON workload format. The same
 * parameters always give the same workload (randomness is seeded).
 */
export interface WorkloadGenerator {
  readonly name: string;
  readonly description: string;
  readonly parameters: Readonly<Record<string, GeneratorParameter>>;
  /** The workload for `params` (every key of `parameters` present, each within its bounds). */
  generate(params: Readonly<Record<string, number>>): WorkloadInput;
}

/** Where the generators put the guest's user pages: va 0x40_0000 (4 MiB), as an ELF program's text. */
export const USER_VPN = 0x400;
/** The data memslot every generator creates first: slot 0 from gfn 0. */
export const DATA_SLOT = 0;
