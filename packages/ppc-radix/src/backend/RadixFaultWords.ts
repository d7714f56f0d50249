import type { FaultInfo } from '@hvmmu/core';
import { RadixVector } from '../format/RadixInterrupt.js';

/**
 * How a radix interrupt for the guest is laid out in core's `FaultInfo`
 * words: word 0 is the cause (DSISR for a DSI, SRR1's cause bits for an
 * ISI, 0 for a segment interrupt) and so `fault.code`; word 1 is SRR1's
 * cause bits (ISI; 0 for data interrupts, whose cause is in DSISR); word 2
 * is DAR (DSI, DSEG). POWER ISA v3.0 Book III 7.5.3–7.5.6.
 */
export const RadixFaultWord = {
  CAUSE: 0,
  SRR1: 1,
  DAR: 2,
  /** An exit to the nested guest's hypervisor (HDSI/HISI): ASDR, the guest real address (or the failing table entry's). DAR then holds HDAR. */
  ASDR: 3,
} as const;

/** Deliver interrupt `vector` with `cause` and the faulting EA (as DAR for data interrupts). */
export function deliverRadixInterrupt(fault: FaultInfo, vector: number, cause: number, eaHi: number, eaLo: number): void {
  const data = vector === RadixVector.DSI || vector === RadixVector.DSEG;
  fault.deliver(vector, cause);
  fault.setWord(RadixFaultWord.SRR1, 0, vector === RadixVector.ISI ? cause : 0);
  fault.setWord(RadixFaultWord.DAR, data ? eaHi : 0, data ? eaLo : 0);
}
