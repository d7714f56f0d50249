/**
 * What the identity MMU shows of its mappings and rmaps (`IdentityMmu.inspect`),
 * in the shape the conformance suite's `MmuSnapshot` asks of every backend.
 */
export interface IdentityLeaf {
  /** Host-stage entry index; the number the rmap records. */
  readonly entry: number;
  readonly slotId: number;
  readonly gfn: number;
  readonly level: number;
  readonly pages: number;
  readonly hfn: number;
  readonly writable: boolean;
}

export interface IdentityRmapRecord {
  readonly slotId: number;
  readonly gfn: number;
  readonly level: number;
  readonly entry: number;
}

export interface IdentitySnapshot {
  readonly leaves: readonly IdentityLeaf[];
  readonly rmap: readonly IdentityRmapRecord[];
  /** Per vCPU: its protection-table register. */
  readonly registers: readonly Readonly<Record<string, number>>[];
}
