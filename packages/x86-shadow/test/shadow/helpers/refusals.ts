import { expect } from 'vitest';
import { HvmmuError } from '@hvmmu/core';
import type { TestVm } from './guest.js';

/**
 * Everything a refused write must leave as it was: the registers (their
 * write count and the cached PDPTEs included), the MMU's roles, roots and
 * pending requests, the vCPU's TLB (contents and counters) and the VM's
 * statistics. Compare two snapshots with `toEqual`.
 */
export function vcpuState(t: TestVm): Record<string, unknown> {
  const { x, vcpu, vm } = t;
  const r = x.regs;
  return {
    regs: {
      cr0: r.cr0,
      cr3: r.cr3,
      cr4: r.cr4,
      efer: r.efer,
      pkru: r.pkru,
      cpl: r.cpl,
      rflagsAc: r.rflagsAc,
      maxPhyAddr: r.maxPhyAddr,
      gbPages: r.gbPages,
      amd: r.amd,
      generation: r.generation,
      pdpteLo: [...r.pdpteLo],
      pdpteHi: [...r.pdpteHi],
    },
    mmu: {
      cpuRole: x.cpuRole,
      cpuExtRole: x.cpuExtRole,
      rootRole: x.rootRole,
      cpuLevel: x.cpuLevel,
      pkeActive: x.pkeActive,
      requests: x.requests,
      rootSp: x.rootSp,
      rootKind: x.rootKind,
      rootPgd: x.rootPgd,
      rootLevel: x.rootLevel,
      prevSp: [...x.prevSp],
      prevPgd: [...x.prevPgd],
      lastExceptionVector: x.lastExceptionVector,
    },
    tlb: {
      flushes: vcpu.tlb.flushes,
      pageFlushes: vcpu.tlb.pageFlushes,
      misses: vcpu.tlb.misses,
      hits: vcpu.tlb.hits,
      valid: vcpu.tlb.countValid(),
    },
    stats: vm.stats(),
  };
}

/** `action` must throw HvmmuError BAD_ARGUMENT (host misuse). */
export function expectBadArgument(action: () => unknown): void {
  let thrown: unknown;
  try {
    action();
  } catch (error) {
    thrown = error;
  }
  expect(thrown, 'expected HvmmuError BAD_ARGUMENT').toBeInstanceOf(HvmmuError);
  expect((thrown as HvmmuError).code).toBe('BAD_ARGUMENT');
}
