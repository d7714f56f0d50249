import { inject, injectable, injectAll } from 'tsyringe';
import { HvmmuError, hex } from '../errors/HvmmuError.js';
import { HYPERCALL_ABI, HYPERCALL_HANDLER, TRACE_HOOK } from '../di/tokens.js';
import type { TraceHook } from '../trace/TraceHook.js';
import type { Vcpu } from '../vm/Vcpu.js';
import type { HypercallAbi, HypercallHandler } from './Hypercall.js';
import type { HypercallRegisters } from './HypercallRegisters.js';

/**
 * Routes a guest hypercall to its handler. The guest chooses the number and
 * the arguments, so nothing it passes can make this throw: an unknown number
 * gets `abi.unknownFunction`, a handler that throws gets `abi.hardwareError`
 * (and is counted and traced, because that is a host bug).
 */
@injectable()
export class HypercallDispatcher {
  private readonly byNumber = new Map<number, HypercallHandler>();
  calls = 0;
  unknown = 0;
  handlerErrors = 0;
  /** The last exception a handler threw, for diagnosis. */
  lastHandlerError: unknown = undefined;

  constructor(
    @injectAll(HYPERCALL_HANDLER) handlers: HypercallHandler[],
    @inject(HYPERCALL_ABI) readonly abi: HypercallAbi,
    @inject(TRACE_HOOK) private readonly trace: TraceHook | null,
  ) {
    for (const h of handlers) {
      if (!Number.isInteger(h.number) || h.number < 0) {
        throw new HvmmuError('BACKEND_INVALID', `hypercall '${h.name}' has an invalid number ${h.number}`);
      }
      const other = this.byNumber.get(h.number);
      if (other !== undefined) {
        throw new HvmmuError('HCALL_DUPLICATE', `hypercall ${hex(h.number)} is registered twice ('${other.name}' and '${h.name}')`);
      }
      this.byNumber.set(h.number, h);
    }
  }

  has(number: number): boolean {
    return this.byNumber.has(number);
  }

  /** Registered hypercalls, by number. */
  list(): ReadonlyArray<{ readonly number: number; readonly name: string }> {
    return [...this.byNumber.values()].map((h) => ({ number: h.number, name: h.name })).sort((a, b) => a.number - b.number);
  }

  dispatch(vcpu: Vcpu, number: number, regs: HypercallRegisters): number {
    this.calls++;
    const handler = this.byNumber.get(number);
    let status: number;
    if (handler === undefined) {
      this.unknown++;
      status = this.abi.unknownFunction;
    } else {
      try {
        status = handler.handle(vcpu, regs);
      } catch (error) {
        this.handlerErrors++;
        this.lastHandlerError = error;
        status = this.abi.hardwareError;
      }
    }
    if (this.trace !== null) {
      this.trace({ kind: 'hcall', vcpu: vcpu.id, number, name: handler?.name ?? 'unknown', status });
    }
    return status;
  }
}
