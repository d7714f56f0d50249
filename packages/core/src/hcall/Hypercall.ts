import type { Vcpu } from '../vm/Vcpu.js';
import type { HypercallRegisters } from './HypercallRegisters.js';

/**
 * The architecture's hypercall return convention. PAPR: H_SUCCESS 0,
 * H_FUNCTION -2, H_PARAMETER -4, H_HARDWARE -1. KVM x86: 0, -KVM_ENOSYS
 * (-1000), -KVM_EINVAL (-22), -KVM_EFAULT (-14).
 */
export interface HypercallAbi {
  readonly name: string;
  readonly success: number;
  /** Returned for a number no handler serves. */
  readonly unknownFunction: number;
  /** Returned for malformed arguments. */
  readonly badParameter: number;
  /** Returned when the handler itself failed (a host bug, never the guest's fault). */
  readonly hardwareError: number;
}

/**
 * One hypercall. Handlers are multi-registered on `HYPERCALL_HANDLER` and
 * collected by the dispatcher. `handle` validates every argument the guest
 * passed and returns a status of the ABI; it writes outputs to `regs.ret*`.
 */
export interface HypercallHandler {
  readonly number: number;
  readonly name: string;
  handle(vcpu: Vcpu, regs: HypercallRegisters): number;
}
