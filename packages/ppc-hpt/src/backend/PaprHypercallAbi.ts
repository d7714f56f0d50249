import type { HypercallAbi } from '@hvmmu/core';
import { PaprStatus } from '../hcall/HptHypercalls.js';

/** PAPR's hypercall convention (Linux arch/powerpc/include/asm/hvcall.h): r3 the status, arguments r4.., outputs r4... */
export const PAPR_HYPERCALL_ABI: HypercallAbi = {
  name: 'papr',
  success: PaprStatus.H_SUCCESS,
  unknownFunction: PaprStatus.H_FUNCTION,
  badParameter: PaprStatus.H_PARAMETER,
  hardwareError: PaprStatus.H_HARDWARE,
};
