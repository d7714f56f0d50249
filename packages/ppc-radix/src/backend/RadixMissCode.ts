/**
 * Why the radix translator missed (`TranslationResult.missCode`), for
 * `PpcRadixMmu.handleFault`; the interrupt's registers are in the vCPU's
 * last `RadixTranslation`.
 */
export const RadixMissCode = {
  /** The process scope refused: a DSI, ISI or segment interrupt for the guest. */
  GUEST: 1,
  /** The partition scope refused: an HDSI or HISI L0 resolves (kvmppc_book3s_radix_page_fault). */
  PARTITION: 2,
  /** L0 has not built the partition-table entry yet (or zapped everything): build it and retry. */
  NO_PARTITION_TABLE: 3,
} as const;
