// What `hvmmu inspect` produces for every architecture: one shape for --json (docs/cli.md).

/** One mapping: a leaf entry (x86, radix) or a valid HPTE translated through the SLB (hpt). */
export interface InspectMapping {
  /** First effective/virtual address mapped, hex (64-bit, upper-half addresses sign-extended). */
  readonly va: string;
  /** First address past the mapping, hex. */
  readonly vaEnd: string;
  /** The (guest-)physical or real address of `va`, hex. */
  readonly pa: string;
  /** Page size: 4K, 2M, 1G …; for a POWER MPSS entry base/actual, e.g. 64K/16M. */
  readonly pageSize: string;
  /** Rights of problem state / CPL 3 and of the kernel, as `rwx` with `-` for a right not granted. */
  readonly user: string;
  readonly supervisor: string;
  /** The architecture's own letters for the entry (x86: QEMU's info tlb letters; radix and hpt: see docs/cli.md). */
  readonly flags: string;
  /** Architecture details: x86 level, pkey and raw entry; radix pid, quadrant, entry, att; hpt index, pp, key, slot. */
  readonly detail: Readonly<Record<string, string | number | boolean>>;
}

export interface InspectResult {
  readonly arch: 'x86' | 'radix' | 'hpt';
  /** The file(s) read. */
  readonly source: string;
  /** Counts and settings (entries read, tables missing, mode …), each architecture its own keys. */
  readonly summary: Readonly<Record<string, string | number | boolean>>;
  readonly mappings: readonly InspectMapping[];
  /** Things worth knowing about the input (quirks read around, entries skipped). */
  readonly notes: readonly string[];
  /** --tree: the table hierarchy, one line per table and leaf (text only, not in --json). */
  readonly tree?: readonly string[];
}

/** Hex with a fixed width of 16 digits, as QEMU prints addresses. */
export function hex16(v: bigint): string {
  return v.toString(16).padStart(16, '0');
}
