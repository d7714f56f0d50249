import { MemslotInvalidation, OptionSpec, memslotInvalidationOption, type BackendOptionSpecs } from '@hvmmu/core';

/** The x86 shadow backend's options. */
export interface X86ShadowOptions {
  /** How a memslot delete or move tears down mappings: 'fast-zap' (default, as upstream KVM) or 'invalid-rmap'. */
  readonly memslotInvalidation: 'fast-zap' | 'invalid-rmap';
  /**
   * The smallest level of the hardware root: 3 shadows as KVM does; 4 or 5
   * model a 64-bit host shadowing an L1 NPT and exercise the pml4/pml5
   * special levels.
   */
  readonly hostRootLevel: 3 | 4 | 5;
  /** Soft budget of shadow pages; undefined: 2% of guest pages, at least 64, as KVM. */
  readonly maxShadowPages: number | undefined;
}

export const X86_SHADOW_OPTIONS: BackendOptionSpecs<X86ShadowOptions> = {
  memslotInvalidation: memslotInvalidationOption([MemslotInvalidation.FAST_ZAP, MemslotInvalidation.INVALID_RMAP], MemslotInvalidation.FAST_ZAP),
  hostRootLevel: OptionSpec.oneOfNumbers(
    [3, 4, 5] as const,
    3,
    'smallest level of the hardware root (3: as KVM shadows; 4/5: a 64-bit host shadowing an L1 NPT)',
  ),
  maxShadowPages: OptionSpec.integer(1, 2 ** 31 - 1, undefined, 'soft budget of shadow pages (default: 2% of guest pages, at least 64)'),
};
