import { FaultKind } from '@hvmmu/core';

/** The `FaultKind` name of a fault kind value, for reports. */
export function faultName(kind: number): string {
  return Object.entries(FaultKind).find(([, v]) => v === kind)?.[0] ?? String(kind);
}
