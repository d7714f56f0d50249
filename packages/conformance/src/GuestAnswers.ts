import { Access, TRANSLATE_FAULT, type Vcpu } from '@hvmmu/core';
import { GuestPerm, type GuestAnswer } from './ConformanceHarness.js';

/** A 64-bit hypercall argument: a number below 2^53, or [high, low] 32-bit halves. */
export type HypercallArgument = number | readonly [number, number];

/** Perform a guest access and report how it ended. */
export function accessAnswer(vcpu: Vcpu, va: number, access: number): GuestAnswer {
  if (vcpu.translate(va, access) !== TRANSLATE_FAULT) return { kind: 'completed' };
  return { kind: 'fault', fault: vcpu.fault.kind, code: vcpu.fault.code };
}

/** Issue a hypercall with these arguments (other registers zero) and report its status. */
export function hypercallAnswer(vcpu: Vcpu, number: number, args: readonly HypercallArgument[]): GuestAnswer {
  const regs = vcpu.hcallRegs;
  regs.clear();
  args.forEach((arg, i) => {
    if (typeof arg === 'number') regs.setArg(i, arg);
    else regs.setArgHalves(i, arg[0], arg[1]);
  });
  return { kind: 'hypercall', status: vcpu.hypercall(number) };
}

/** Does a guest mapping with `GuestPerm` bits `perm` allow `access`, under the suite's guest rules? */
export function guestPermAllows(perm: number, access: number): boolean {
  if ((access & Access.WRITE) !== 0 && (perm & GuestPerm.WRITE) === 0) return false;
  if ((access & Access.FETCH) !== 0 && (perm & GuestPerm.EXEC) === 0) return false;
  const user = (access & Access.USER) !== 0 && (access & Access.IMPLICIT) === 0;
  return !user || (perm & GuestPerm.USER) !== 0;
}

export function describeAnswer(answer: GuestAnswer): string {
  switch (answer.kind) {
    case 'completed':
      return 'completed';
    case 'fault':
      return `fault kind ${answer.fault} code 0x${answer.code.toString(16)}`;
    case 'hypercall':
      return `hypercall status ${answer.status}`;
    case 'exception':
      return `exception vector ${answer.vector} code 0x${answer.code.toString(16)}`;
  }
}
