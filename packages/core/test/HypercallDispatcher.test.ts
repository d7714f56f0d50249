import { describe, expect, it } from 'vitest';
import {
  HYPERCALL_ABI,
  HYPERCALL_HANDLER,
  HypercallDispatcher,
  HypercallRegisters,
  Hypervisor,
  NO_HYPERCALL_ABI,
  TRACE_HOOK,
  type HypercallHandler,
  type TraceEvent,
  type Vcpu,
} from '@hvmmu/core';
import { container } from 'tsyringe';
import { expectHvmmuError } from './fixtures/assertions.js';
import { AddHypercall, PAPR_LIKE_ABI, ThrowingHypercall } from './fixtures/hypercalls.js';
import { makeTestBackend } from './fixtures/testBackend.js';

/** A real vCPU to pass to handlers (from a VM on the test backend). */
function someVcpu(): Vcpu {
  const hv = new Hypervisor({ memoryBytes: 16 * 4096 });
  const vm = hv.createVm({ backend: makeTestBackend() });
  vm.createVcpu();
  return vm.createVcpu(); // id 1
}

function handler(number: number, name: string, status = 0): HypercallHandler {
  return { number, name, handle: () => status };
}

describe('HypercallDispatcher', () => {
  it('routes a call to its handler, which reads arguments and writes returns', () => {
    const add = new AddHypercall(0x1000);
    const d = new HypercallDispatcher([add, handler(0x2000, 'OTHER', 7)], PAPR_LIKE_ABI, null);
    const vcpu = someVcpu();
    const regs = new HypercallRegisters();
    regs.setArg(0, 0x1_0000_0000).setArg(1, 5);
    expect(d.dispatch(vcpu, 0x1000, regs)).toBe(PAPR_LIKE_ABI.success);
    expect(regs.ret(0)).toBe(0x1_0000_0005);
    expect(add.seen).toEqual([{ vcpu: 1, a: 0x1_0000_0000, b: 5 }]);
    expect(d.dispatch(vcpu, 0x2000, regs)).toBe(7);
    expect(d.calls).toBe(2);
    expect(d.unknown).toBe(0);
  });

  it("a malformed argument gets the handler's bad-parameter status, not an exception", () => {
    const d = new HypercallDispatcher([new AddHypercall(0x1000)], PAPR_LIKE_ABI, null);
    const regs = new HypercallRegisters();
    regs.setArgHalves(0, 0x8000_0000, 0);
    expect(d.dispatch(someVcpu(), 0x1000, regs)).toBe(PAPR_LIKE_ABI.badParameter);
  });

  it.each([0x1001, -1, 2 ** 40, Number.NaN, 1.5])('unknown number %s gets abi.unknownFunction and is counted', (number) => {
    const d = new HypercallDispatcher([new AddHypercall(0x1000)], PAPR_LIKE_ABI, null);
    const regs = new HypercallRegisters();
    expect(d.dispatch(someVcpu(), number, regs)).toBe(PAPR_LIKE_ABI.unknownFunction);
    expect(d.unknown).toBe(1);
    expect(d.calls).toBe(1);
    expect(d.handlerErrors).toBe(0);
  });

  it('a handler that throws gets abi.hardwareError; the error is counted and kept', () => {
    const broken = new ThrowingHypercall(0x1004);
    const d = new HypercallDispatcher([broken, new AddHypercall(0x1000)], PAPR_LIKE_ABI, null);
    const vcpu = someVcpu();
    const regs = new HypercallRegisters();
    expect(d.dispatch(vcpu, 0x1004, regs)).toBe(PAPR_LIKE_ABI.hardwareError);
    expect(d.handlerErrors).toBe(1);
    expect(d.lastHandlerError).toBe(broken.error);
    // the dispatcher keeps working
    regs.setArg(0, 1).setArg(1, 2);
    expect(d.dispatch(vcpu, 0x1000, regs)).toBe(0);
    expect(regs.ret(0)).toBe(3);
  });

  it('rejects two handlers with the same number at construction (HCALL_DUPLICATE)', () => {
    const error = expectHvmmuError(
      () => new HypercallDispatcher([handler(0x10, 'A'), handler(0x20, 'B'), handler(0x10, 'C')], PAPR_LIKE_ABI, null),
      'HCALL_DUPLICATE',
    );
    expect(error.message).toContain("'A'");
    expect(error.message).toContain("'C'");
  });

  it.each([-1, 1.5, Number.NaN])('rejects a handler numbered %s (BACKEND_INVALID)', (number) => {
    expectHvmmuError(() => new HypercallDispatcher([handler(number, 'BAD')], PAPR_LIKE_ABI, null), 'BACKEND_INVALID');
  });

  it('lists its hypercalls by number', () => {
    const d = new HypercallDispatcher([handler(0x30, 'C'), handler(0x10, 'A'), handler(0x20, 'B')], PAPR_LIKE_ABI, null);
    expect(d.list()).toEqual([
      { number: 0x10, name: 'A' },
      { number: 0x20, name: 'B' },
      { number: 0x30, name: 'C' },
    ]);
    expect(d.has(0x20)).toBe(true);
    expect(d.has(0x40)).toBe(false);
    expect(d.abi).toBe(PAPR_LIKE_ABI);
  });

  it('sends one trace event per call when a hook is installed', () => {
    const events: TraceEvent[] = [];
    const d = new HypercallDispatcher([new AddHypercall(0x1000), new ThrowingHypercall(0x1004)], PAPR_LIKE_ABI, (e) => events.push(e));
    const vcpu = someVcpu();
    const regs = new HypercallRegisters();
    d.dispatch(vcpu, 0x1000, regs);
    d.dispatch(vcpu, 0x9999, regs);
    d.dispatch(vcpu, 0x1004, regs);
    expect(events).toEqual([
      { kind: 'hcall', vcpu: 1, number: 0x1000, name: 'TEST_ADD', status: 0 },
      { kind: 'hcall', vcpu: 1, number: 0x9999, name: 'unknown', status: -2 },
      { kind: 'hcall', vcpu: 1, number: 0x1004, name: 'TEST_BROKEN', status: -1 },
    ]);
  });

  it('sends no trace events through a VM built without a hook, and every call through a VM with one', () => {
    const events: TraceEvent[] = [];
    const hv = new Hypervisor({ memoryBytes: 16 * 4096 });
    const backend = makeTestBackend({ hypercalls: () => [new AddHypercall()], abi: PAPR_LIKE_ABI });
    const quiet = hv.createVm({ backend });
    const traced = hv.createVm({ backend, trace: (e) => events.push(e) });
    quiet.createVcpu().hypercall(0x1000);
    expect(events).toEqual([]);
    traced.createVcpu().hypercall(0x1000);
    traced.vcpu(0).hypercall(0x1234);
    expect(events.map((e) => [e['name'], e['status']])).toEqual([
      ['TEST_ADD', 0],
      ['unknown', -2],
    ]);
  });

  it('collects multi-registered handlers from a container (@injectAll)', () => {
    const c = container.createChildContainer();
    c.register(HYPERCALL_HANDLER, { useValue: handler(0x10, 'A', 1) });
    c.register(HYPERCALL_HANDLER, { useValue: handler(0x20, 'B', 2) });
    c.register(HYPERCALL_ABI, { useValue: PAPR_LIKE_ABI });
    c.register(TRACE_HOOK, { useFactory: () => null }); // tsyringe ignores `useValue: null`
    const d = c.resolve(HypercallDispatcher);
    expect(d.list().map((h) => h.name)).toEqual(['A', 'B']);
    expect(d.dispatch(someVcpu(), 0x20, new HypercallRegisters())).toBe(2);
  });

  it('a VM whose backend registers no hypercalls answers every call with the "none" ABI', () => {
    const hv = new Hypervisor({ memoryBytes: 16 * 4096 });
    const vm = hv.createVm({ backend: makeTestBackend() });
    expect(vm.hypercalls.abi).toBe(NO_HYPERCALL_ABI);
    expect(vm.hypercalls.list()).toEqual([]);
    expect(vm.createVcpu().hypercall(0)).toBe(NO_HYPERCALL_ABI.unknownFunction);
    expect(vm.stats()['hypercallsUnknown']).toBe(1);
  });

  it("a VM collects its backend's handlers and ABI; vCPU calls go through its registers", () => {
    const hv = new Hypervisor({ memoryBytes: 16 * 4096 });
    const vm = hv.createVm({ backend: makeTestBackend({ hypercalls: () => [new AddHypercall(0x1000)], abi: PAPR_LIKE_ABI }) });
    const vcpu = vm.createVcpu();
    vcpu.hcallRegs.setArg(0, 40).setArg(1, 2);
    expect(vcpu.hypercall(0x1000)).toBe(0);
    expect(vcpu.hcallRegs.ret(0)).toBe(42);
    expect(vm.stats()['hypercalls']).toBe(1);
  });

  it('a VM whose backend registers two handlers with one number fails to build (HCALL_DUPLICATE)', () => {
    const hv = new Hypervisor({ memoryBytes: 16 * 4096 });
    const backend = makeTestBackend({ hypercalls: () => [new AddHypercall(0x1000), new ThrowingHypercall(0x1000)], abi: PAPR_LIKE_ABI });
    expectHvmmuError(() => hv.createVm({ backend }), 'HCALL_DUPLICATE');
    expect(hv.vms).toEqual([]);
  });
});
