import { HvmmuError } from '../errors/HvmmuError.js';

/**
 * One backend option: what it means, its default, and how a user's value is
 * checked. `parse` returns the value to use, or `undefined` if the value is
 * not acceptable (then `expected` says what is).
 */
export interface BackendOptionSpec<V> {
  readonly description: string;
  readonly defaultValue: V;
  /** What a valid value looks like, for error messages (e.g. "one of 'fast-zap', 'invalid-rmap'"). */
  readonly expected: string;
  parse(value: unknown): V | undefined;
}

/** The option specs of a backend: one per key of its options type. */
export type BackendOptionSpecs<O> = { readonly [K in keyof O]-?: BackendOptionSpec<O[K]> };

/** What a user may pass as `backendOptions`: any subset of the keys. */
export type BackendOptionsInput<O> = { readonly [K in keyof O]?: O[K] };

/** Ready-made specs for the common shapes. */
export const OptionSpec = {
  /** One of a fixed set of strings. */
  oneOf<const S extends string>(values: readonly S[], defaultValue: S, description: string): BackendOptionSpec<S> {
    return {
      description,
      defaultValue,
      expected: `one of ${values.map((v) => `'${v}'`).join(', ')}`,
      parse: (value) => (typeof value === 'string' && (values as readonly string[]).includes(value) ? (value as S) : undefined),
    };
  },
  /** One of a fixed set of integers. */
  oneOfNumbers<const N extends number>(values: readonly N[], defaultValue: N, description: string): BackendOptionSpec<N> {
    return {
      description,
      defaultValue,
      expected: `one of ${values.join(', ')}`,
      parse: (value) => (typeof value === 'number' && (values as readonly number[]).includes(value) ? (value as N) : undefined),
    };
  },
  /** An integer in [min, max], or `undefined` (the backend's own default) when the default is undefined. */
  integer<D extends number | undefined>(min: number, max: number, defaultValue: D, description: string): BackendOptionSpec<number | D> {
    return {
      description,
      defaultValue,
      expected: `an integer in ${min}..${max}`,
      parse: (value) => (typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max ? value : undefined),
    };
  },
  boolean(defaultValue: boolean, description: string): BackendOptionSpec<boolean> {
    return { description, defaultValue, expected: 'true or false', parse: (value) => (typeof value === 'boolean' ? value : undefined) };
  },
} as const;

/**
 * The backend's options with every key resolved: defaults for the keys the
 * user left out, the parsed value for the others. An unknown key or a bad
 * value is host misuse: a typed error naming the valid keys or values, and
 * nothing is created.
 */
export function resolveBackendOptions<O extends object>(backendId: string, specs: BackendOptionSpecs<O>, input: unknown): O {
  if (input === undefined) input = {};
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    throw new HvmmuError('BACKEND_BAD_OPTION', `backendOptions for '${backendId}' must be an object, got ${String(input)}`);
  }
  const keys = Object.keys(specs) as (keyof O & string)[];
  const given = input as Record<string, unknown>;
  for (const key of Object.keys(given)) {
    if (!Object.hasOwn(specs, key)) {
      throw new HvmmuError(
        'BACKEND_UNKNOWN_OPTION',
        `backend '${backendId}' has no option '${key}'; valid options: ${keys.length === 0 ? '(none)' : keys.join(', ')}`,
        { key },
      );
    }
  }
  const out: Record<string, unknown> = {};
  for (const key of keys) {
    const spec = specs[key] as BackendOptionSpec<unknown>;
    const raw = given[key];
    if (raw === undefined) {
      out[key] = spec.defaultValue;
      continue;
    }
    const value = spec.parse(raw);
    if (value === undefined) {
      throw new HvmmuError('BACKEND_BAD_OPTION', `backendOptions.${key} of '${backendId}' must be ${spec.expected}, got ${describe(raw)}`, { key });
    }
    out[key] = value;
  }
  return Object.freeze(out) as O;
}

function describe(value: unknown): string {
  return typeof value === 'string' ? `'${value}'` : String(value);
}
