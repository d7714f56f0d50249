import { describe, expect, it } from 'vitest';
import { Access, DEFAULT_CONTEXT, Hypervisor, PERM_ALL, SoftTlb, TRANSLATE_FAULT, type TranslationContextOwner } from '@hvmmu/core';
import { expectHvmmuError } from './fixtures/assertions.js';
import { identityMmu, makeTestBackend } from './fixtures/testBackend.js';

const PAGE = 4096;

/** An owner that records the ids taken from it. */
function owner(): TranslationContextOwner & { revoked: number[] } {
  const revoked: number[] = [];
  return { revoked, contextRevoked: (id) => revoked.push(id) };
}

describe('SoftTlb contexts', () => {
  it('keeps the same page of different contexts apart: no flush on a switch', () => {
    const tlb = new SoftTlb(64);
    tlb.insert(0, 5, 100, PERM_ALL);
    tlb.insert(1, 5, 200, PERM_ALL);
    tlb.insert(63, 5, 300, PERM_ALL);
    expect([tlb.lookup(0, 5, Access.READ), tlb.lookup(1, 5, Access.READ), tlb.lookup(63, 5, Access.READ)]).toEqual([100, 200, 300]);
    expect(tlb.lookup(2, 5, Access.READ)).toBe(-1);
    expect(tlb.countValid()).toBe(3);
    expect([tlb.countValid(0), tlb.countValid(1), tlb.countValid(2)]).toEqual([1, 1, 0]);
  });

  it('never aliases (context, vpn) pairs that share an entry index', () => {
    // Every (context, vpn) with (vpn & mask) ^ context = 7 lands in entry 7: only the last one filled may hit.
    const tlb = new SoftTlb(16);
    const pairs: Array<[number, number]> = [];
    for (let context = 0; context < 16; context++) pairs.push([context, (7 ^ context) + 16 * context]);
    for (const [context, vpn] of pairs) {
      tlb.insert(context, vpn, 1000 + context, PERM_ALL);
      for (const [c, v] of pairs) expect(tlb.lookup(c, v, Access.READ)).toBe(c === context && v === vpn ? 1000 + context : -1);
    }
  });

  it('flushes one context, one page in a context, or a page in every context', () => {
    const tlb = new SoftTlb(64);
    // Distinct entries: context c's pages are 8c+1..8c+3 (index (vpn & 63) ^ c), plus page 40 in contexts 0 and 2.
    for (const context of [0, 1, 2]) for (let k = 1; k <= 3; k++) tlb.insert(context, 8 * context + k, 10 * context + k, PERM_ALL);
    tlb.insert(0, 40, 400, PERM_ALL);
    tlb.insert(2, 40, 402, PERM_ALL);
    expect([tlb.countValid(0), tlb.countValid(1), tlb.countValid(2)]).toEqual([4, 3, 4]);
    tlb.flushContext(1);
    expect([tlb.countValid(0), tlb.countValid(1), tlb.countValid(2)]).toEqual([4, 0, 4]);
    tlb.flushPage(2, 19);
    expect(tlb.lookup(2, 19, 0)).toBe(-1);
    expect(tlb.lookup(2, 18, 0)).toBe(22);
    tlb.flushPageAllContexts(40);
    expect([tlb.lookup(0, 40, 0), tlb.lookup(2, 40, 0), tlb.lookup(0, 3, 0), tlb.lookup(2, 17, 0)]).toEqual([-1, -1, 3, 21]);
    expect(tlb.contextFlushes).toBe(1);
  });

  it('refuses a context it cannot hold', () => {
    const tlb = new SoftTlb(8);
    for (const bad of [-1, 8, 0.5, Number.NaN]) expectHvmmuError(() => tlb.flushContext(bad), 'TLB_BAD_CONTEXT');
  });

  it.each([32, 48, -32, 0.5, 1.5, Number.NaN, '0' as unknown as number])('never hits with an invalid access value %s', (access) => {
    const tlb = new SoftTlb(16);
    tlb.insert(0, 1, 5, PERM_ALL);
    expect(tlb.lookup(0, 1, access)).toBe(-1);
  });
});

describe('Vcpu contexts and access values', () => {
  function vm() {
    const hv = new Hypervisor({ memoryBytes: 64 * PAGE });
    const v = hv.createVm({ backend: makeTestBackend(), tlbEntries: 16 });
    v.memslots.create({ id: 0, guestPhysAddr: 0, size: 16 * PAGE });
    return v;
  }

  it('refuses an invalid access value on a TLB hit as on a miss, changing nothing', () => {
    const v = vm();
    const vcpu = v.createVcpu({ countTlbHits: true });
    const hpa = vcpu.translate(3 * PAGE, Access.WRITE);
    expect(hpa).toBeGreaterThanOrEqual(0);
    const hits = vcpu.tlb.hits;
    for (const bad of [32, 48, -32, 0.5, '0' as unknown as number]) {
      expectHvmmuError(() => vcpu.translate(3 * PAGE, bad), 'BAD_ARGUMENT');
      expectHvmmuError(() => vcpu.translatePage(3, bad), 'BAD_ARGUMENT');
    }
    expect(vcpu.tlb.hits).toBe(hits);
    expect(vcpu.translate(3 * PAGE, Access.READ)).toBe(hpa);
  });

  it('a context switch needs no flush, and each context fills its own entries', () => {
    const v = vm();
    const vcpu = v.createVcpu({ countTlbHits: true });
    const id = v.contexts.allocate(owner());
    expect(vcpu.translate(2 * PAGE, Access.READ)).not.toBe(TRANSLATE_FAULT);
    const walks = identityMmu(v).faultsHandled;
    vcpu.setContext(id);
    expect(vcpu.context).toBe(id);
    expect(vcpu.translate(2 * PAGE, Access.READ)).not.toBe(TRANSLATE_FAULT);
    vcpu.setContext(DEFAULT_CONTEXT);
    const hits = vcpu.tlb.hits;
    expect(vcpu.translate(2 * PAGE, Access.READ)).not.toBe(TRANSLATE_FAULT);
    expect(vcpu.tlb.hits).toBe(hits + 1);
    expect(vcpu.tlb.flushes).toBe(0);
    expect(identityMmu(v).faultsHandled).toBe(walks);
    expect(vcpu.tlb.countValid(id)).toBe(1);
    expect(vcpu.tlb.countValid(DEFAULT_CONTEXT)).toBe(1);
    expectHvmmuError(() => vcpu.setContext(16), 'TLB_BAD_CONTEXT');
    expect(vcpu.context).toBe(DEFAULT_CONTEXT);
  });
});

describe('TranslationContexts', () => {
  function contexts(tlbEntries: number, vcpus = 1) {
    const hv = new Hypervisor({ memoryBytes: 16 * PAGE });
    const v = hv.createVm({ backend: makeTestBackend(), tlbEntries });
    for (let i = 0; i < vcpus; i++) v.createVcpu();
    return v;
  }

  it("hands out 1..capacity-1 (0 is every vCPU's initial context) and takes them back flushed", () => {
    const v = contexts(4);
    const o = owner();
    const ids = [v.contexts.allocate(o), v.contexts.allocate(o), v.contexts.allocate(o)];
    expect(ids.sort()).toEqual([1, 2, 3]);
    expect(v.contexts.allocated).toBe(3);
    const vcpu = v.vcpus[0]!;
    vcpu.tlb.insert(2, 9, 9, PERM_ALL);
    v.contexts.release(2);
    expect(vcpu.tlb.countValid(2)).toBe(0);
    expect(v.contexts.allocated).toBe(2);
    expect(v.contexts.allocate(o)).toBe(2);
    expectHvmmuError(() => v.contexts.release(0), 'TLB_BAD_CONTEXT');
    v.contexts.release(1);
    expectHvmmuError(() => v.contexts.release(1), 'TLB_BAD_CONTEXT');
  });

  it('recycles the least recently allocated context no vCPU runs in, flushed, telling its owner', () => {
    const v = contexts(4, 2);
    const [a, b] = [owner(), owner()];
    const first = v.contexts.allocate(a);
    const second = v.contexts.allocate(a);
    const third = v.contexts.allocate(a);
    v.vcpus[0]!.setContext(first); // in use: never taken
    v.vcpus[1]!.tlb.insert(second, 4, 4, PERM_ALL);
    v.contexts.touch(third);
    const taken = v.contexts.allocate(b);
    expect(taken).toBe(second);
    expect(a.revoked).toEqual([second]);
    expect(v.vcpus[1]!.tlb.countValid(second)).toBe(0);
    expect(v.contexts.ownerOf(second)).toBe(b);
    expect(v.contexts.recycled).toBe(1);
    // A guest creating address spaces without end makes the host allocate nothing more.
    for (let i = 0; i < 1000; i++) v.contexts.allocate(b);
    expect(v.contexts.allocated).toBe(3);
  });

  it("refuses only when every context is some vCPU's current one", () => {
    const v = contexts(2, 2);
    const o = owner();
    const id = v.contexts.allocate(o);
    v.vcpus[1]!.setContext(id);
    expectHvmmuError(() => v.contexts.allocate(o), 'TLB_BAD_CONTEXT');
  });
});
