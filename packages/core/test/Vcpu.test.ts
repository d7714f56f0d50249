import { describe, expect, it } from 'vitest';
import {
  Access,
  FaultInfo,
  FaultDestination,
  FaultKind,
  FaultOutcome,
  HitCountingVcpu,
  HypercallDispatcher,
  Hypervisor,
  MAX_FAULT_RETRIES,
  MemslotFlags,
  NO_HYPERCALL_ABI,
  PERM_ALL,
  TRANSLATE_FAULT,
  TranslationResult,
  Vcpu,
  type FaultOutcomeValue,
  type Memslot,
  type MemslotTable,
  type Mmu,
  type Translator,
} from '@hvmmu/core';
import { expectHvmmuError } from './fixtures/assertions.js';
import { AddHypercall, PAPR_LIKE_ABI } from './fixtures/hypercalls.js';
import { PERM_READ_ONLY } from './fixtures/IdentityMmu.js';
import { identityMmu, makeTestBackend } from './fixtures/testBackend.js';

const PAGE = 4096;
const MISS_ABSENT = 0x10;
const MISS_PERM = 0x20;

interface Entry {
  hfn: number;
  perm: number;
  cacheable: boolean;
}

/**
 * A tiny MMU whose "hardware table" is a Map the test edits directly, and
 * whose fault handler is a function the test supplies. Memslot hooks are
 * not used by the vCPU path and do nothing.
 */
class ScriptedMmu implements Mmu {
  readonly arch = {};
  readonly backendId = 'scripted';
  readonly table = new Map<number, Entry>();
  readonly faultCalls: Array<{ vpn: number; access: number; missCode: number }> = [];
  walks = 0;
  onFault: (vpn: number, access: number, fault: FaultInfo, result: TranslationResult) => FaultOutcomeValue = () => FaultOutcome.RETRY;

  attachVcpu(): Translator {
    return {
      translate: (vpn: number, access: number, out: TranslationResult): number => {
        this.walks++;
        const entry = this.table.get(vpn);
        if (entry === undefined) {
          out.missCode = MISS_ABSENT;
          return -1;
        }
        if (((entry.perm >> access) & 1) === 0) {
          out.missCode = MISS_PERM;
          return -1;
        }
        out.perm = entry.perm;
        // Only ever clears `cacheable`; the vCPU resets it before each walk.
        if (!entry.cacheable) out.cacheable = false;
        return entry.hfn;
      },
    };
  }
  detachVcpu(): void {}
  handleFault(_vcpu: Vcpu, vpn: number, access: number, missCode: number, fault: FaultInfo, result: TranslationResult): FaultOutcomeValue {
    this.faultCalls.push({ vpn, access, missCode });
    return this.onFault(vpn, access, fault, result);
  }
  prepareMemslot(): object {
    return {};
  }
  flushMemslot(): void {}
  commitMemslot(): void {}
  invalidateGfnRange(): number {
    return 0;
  }
  changeGfnPte(): void {}
  dirtyLogHarvested(): void {}
  ageGfnRange(_slot: Memslot): boolean {
    return false;
  }
  testAgeGfnRange(_slot: Memslot): boolean {
    return false;
  }
  zapAll(): void {
    this.table.clear();
  }
  stats(): Readonly<Record<string, number>> {
    return { walks: this.walks };
  }
}

/** Vcpu.translate reads only the out-of-memory flag of the memslot table. */
const FAKE_MEMSLOTS = { hostOutOfMemory: false } as unknown as MemslotTable;

/** A vCPU over a scripted MMU; it counts its TLB hits (`HitCountingVcpu`), which these tests check. */
function scripted(tlbEntries = 16): { mmu: ScriptedMmu; vcpu: Vcpu } {
  const mmu = new ScriptedMmu();
  const vcpu = new HitCountingVcpu(0, tlbEntries, mmu, new HypercallDispatcher([], NO_HYPERCALL_ABI, null), FAKE_MEMSLOTS);
  return { mmu, vcpu };
}

/** The same over a plain `Vcpu`, which counts misses but not hits. */
function scriptedPlain(): { mmu: ScriptedMmu; vcpu: Vcpu } {
  const mmu = new ScriptedMmu();
  const vcpu = new Vcpu(0, 16, mmu, new HypercallDispatcher([], NO_HYPERCALL_ABI, null), FAKE_MEMSLOTS);
  return { mmu, vcpu };
}

/** A fault handler that maps vpn → hfn (vpn + 100) with every permission, like a demand-paging MMU. */
function demandPaging(mmu: ScriptedMmu): void {
  mmu.onFault = (vpn) => {
    mmu.table.set(vpn, { hfn: vpn + 100, perm: PERM_ALL, cacheable: true });
    return FaultOutcome.RETRY;
  };
}

describe('Vcpu.translate', () => {
  it('FILLED: the handler fixes the table and answers for the retried access itself — no second walk, the TLB filled from its answer (cacheable or not)', () => {
    const { mmu, vcpu } = scripted();
    mmu.onFault = (vpn, _access, _fault, result) => {
      mmu.table.set(vpn, { hfn: vpn + 100, perm: PERM_READ_ONLY, cacheable: vpn !== 7 });
      result.hfn = vpn + 100;
      result.perm = PERM_READ_ONLY;
      if (vpn === 7) result.cacheable = false;
      return FaultOutcome.FILLED;
    };
    expect(vcpu.translate(5 * PAGE + 0x123, Access.READ)).toBe(105 * PAGE + 0x123);
    expect(mmu.walks).toBe(1);
    expect([vcpu.tlb.misses, vcpu.tableMisses, vcpu.faults]).toEqual([1, 1, 0]);
    expect(vcpu.tlb.lookup(0, 5, Access.READ)).toBe(105);
    expect(vcpu.tlb.lookup(0, 5, Access.WRITE)).toBe(-1);
    // Not cacheable: answered, and the next access walks again (and finds the entry).
    expect(vcpu.translate(7 * PAGE, Access.READ)).toBe(107 * PAGE);
    expect(vcpu.tlb.lookup(0, 7, Access.READ)).toBe(-1);
    expect(vcpu.translate(7 * PAGE + 8, Access.READ)).toBe(107 * PAGE + 8);
    expect(mmu.walks).toBe(3);
  });

  it('FILLED with no host frame in `result` is a backend bug: BACKEND_INVALID', () => {
    const { mmu, vcpu } = scripted();
    mmu.onFault = (_vpn, _access, _fault, result) => {
      result.hfn = -1;
      return FaultOutcome.FILLED;
    };
    expectHvmmuError(() => vcpu.translate(3 * PAGE, Access.READ), 'BACKEND_INVALID');
    expect(vcpu.tlb.lookup(0, 3, Access.READ)).toBe(-1);
  });

  it('constants: at most 16 handler calls per access; -1 means "see vcpu.fault"', () => {
    expect(MAX_FAULT_RETRIES).toBe(16);
    expect(TRANSLATE_FAULT).toBe(-1);
  });

  it('miss → walk → fault handler fixes the table → retry succeeds and fills the TLB; then hits', () => {
    const { mmu, vcpu } = scripted();
    demandPaging(mmu);
    expect(vcpu.translate(5 * PAGE + 0x123, Access.READ)).toBe(105 * PAGE + 0x123);
    expect(mmu.faultCalls).toEqual([{ vpn: 5, access: Access.READ, missCode: MISS_ABSENT }]);
    expect(mmu.walks).toBe(2);
    expect([vcpu.tlb.misses, vcpu.tlb.hits, vcpu.tableMisses, vcpu.faults]).toEqual([1, 0, 1, 0]);
    expect(vcpu.tlb.lookup(0, 5, Access.READ)).toBe(105); // (counts one more hit)
    expect(vcpu.translate(5 * PAGE + 0xfff, Access.WRITE | Access.USER)).toBe(105 * PAGE + 0xfff);
    expect(mmu.walks).toBe(2); // served by the TLB
    expect([vcpu.tlb.misses, vcpu.tlb.hits]).toEqual([1, 2]);
  });

  it('a walk hit (no fault) fills the TLB without calling the fault handler', () => {
    const { mmu, vcpu } = scripted();
    mmu.table.set(7, { hfn: 70, perm: PERM_ALL, cacheable: true });
    expect(vcpu.translate(7 * PAGE, Access.FETCH)).toBe(70 * PAGE);
    expect(mmu.faultCalls).toEqual([]);
    expect(vcpu.tableMisses).toBe(0);
    expect(vcpu.tlb.countValid()).toBe(1);
  });

  it('an access the TLB entry does not allow takes the slow path; the MMU sees a permission miss', () => {
    const { mmu, vcpu } = scripted();
    mmu.table.set(3, { hfn: 30, perm: PERM_READ_ONLY, cacheable: true });
    expect(vcpu.translate(3 * PAGE, Access.READ)).toBe(30 * PAGE);
    mmu.onFault = (vpn) => {
      mmu.table.set(vpn, { hfn: 31, perm: PERM_ALL, cacheable: true }); // e.g. copy-on-write
      return FaultOutcome.RETRY;
    };
    expect(vcpu.translate(3 * PAGE + 8, Access.WRITE)).toBe(31 * PAGE + 8);
    expect(mmu.faultCalls).toEqual([{ vpn: 3, access: Access.WRITE, missCode: MISS_PERM }]);
    // the TLB now holds the writable translation for every kind
    expect(vcpu.translate(3 * PAGE, Access.READ)).toBe(31 * PAGE);
  });

  it('a guest fault returns -1 with vcpu.fault filled in, and caches nothing', () => {
    const { mmu, vcpu } = scripted();
    mmu.onFault = (vpn, access, fault) => {
      fault.deliver(14, 0x7); // x86 #PF: P | W | U
      return FaultOutcome.DONE;
    };
    const va = 0x1234 * PAGE + 0x56;
    const access = Access.WRITE | Access.USER;
    expect(vcpu.translate(va, access)).toBe(TRANSLATE_FAULT);
    expect(vcpu.fault.kind).toBe(FaultKind.GUEST);
    expect(vcpu.fault.code).toBe(7);
    expect(vcpu.fault.vpn).toBe(0x1234);
    expect(vcpu.fault.offset).toBe(0x56);
    expect(vcpu.fault.access).toBe(access);
    expect(vcpu.fault.address).toBe(va);
    expect(vcpu.faults).toBe(1);
    expect(vcpu.tlb.countValid()).toBe(0);
    expect(vcpu.translate(va, access)).toBe(TRANSLATE_FAULT);
    expect(vcpu.faults).toBe(2);
    expect(mmu.faultCalls).toHaveLength(2);
  });

  it('a fault handler that keeps asking for a retry is cut off after MAX_FAULT_RETRIES (RETRY_LIMIT)', () => {
    const { mmu, vcpu } = scripted();
    mmu.onFault = () => FaultOutcome.RETRY; // never fixes anything: a hostile guest's livelock
    expect(vcpu.translate(9 * PAGE + 1, Access.READ)).toBe(TRANSLATE_FAULT);
    expect(vcpu.fault.kind).toBe(FaultKind.RETRY_LIMIT);
    expect(vcpu.fault.vpn).toBe(9);
    expect(vcpu.fault.offset).toBe(1);
    expect(vcpu.fault.gpa).toBe(-1);
    expect(mmu.faultCalls).toHaveLength(MAX_FAULT_RETRIES);
    expect(mmu.walks).toBe(MAX_FAULT_RETRIES);
    expect(vcpu.tableMisses).toBe(MAX_FAULT_RETRIES);
    expect(vcpu.faults).toBe(1);
  });

  it('a handler that succeeds on the last allowed attempt still completes the access', () => {
    const { mmu, vcpu } = scripted();
    mmu.onFault = (vpn) => {
      if (mmu.faultCalls.length === MAX_FAULT_RETRIES - 1) mmu.table.set(vpn, { hfn: 1, perm: PERM_ALL, cacheable: true });
      return FaultOutcome.RETRY;
    };
    expect(vcpu.translate(2 * PAGE, Access.READ)).toBe(PAGE);
    expect(vcpu.faults).toBe(0);
  });

  it('an uncacheable translation is never put in the TLB, and does not make later ones uncacheable', () => {
    const { mmu, vcpu } = scripted();
    mmu.table.set(1, { hfn: 10, perm: PERM_ALL, cacheable: false }); // e.g. MMIO
    mmu.table.set(2, { hfn: 20, perm: PERM_ALL, cacheable: true });
    expect(vcpu.translate(PAGE, Access.READ)).toBe(10 * PAGE);
    expect(vcpu.translate(PAGE, Access.READ)).toBe(10 * PAGE);
    expect(mmu.walks).toBe(2);
    expect(vcpu.tlb.countValid()).toBe(0);
    expect(vcpu.translate(2 * PAGE, Access.READ)).toBe(20 * PAGE);
    expect(vcpu.tlb.lookup(0, 2, Access.READ)).toBe(20);
  });

  it('translatePage handles page numbers of 57-bit addresses', () => {
    const { mmu, vcpu } = scripted();
    const vpn = 2 ** 45 - 3; // the top of a 57-bit address space
    mmu.table.set(vpn, { hfn: 42, perm: PERM_ALL, cacheable: true });
    mmu.table.set(vpn - 2 ** 40, { hfn: 43, perm: PERM_ALL, cacheable: true }); // same low bits
    expect(vcpu.translatePage(vpn, Access.READ)).toBe(42);
    expect(vcpu.translatePage(vpn, Access.READ)).toBe(42);
    expect(vcpu.translatePage(vpn - 2 ** 40, Access.READ)).toBe(43);
    expect(vcpu.tlb.hits).toBe(1);
    mmu.onFault = (_vpn, access, fault) => {
      fault.exit(FaultKind.NO_MEMORY, 0);
      return FaultOutcome.DONE;
    };
    expect(vcpu.translatePage(vpn - 1, Access.READ)).toBe(TRANSLATE_FAULT);
    expect(vcpu.fault.kind).toBe(FaultKind.NO_MEMORY);
    expect(vcpu.fault.vpn).toBe(vpn - 1);
  });

  const badCalls: Array<[string, (v: Vcpu) => number]> = [
    ['a negative address', (v) => v.translate(-1, Access.READ)],
    ['the page below 0 (vpn -1)', (v) => v.translate(-PAGE, Access.READ)],
    ['a NaN address', (v) => v.translate(Number.NaN, Access.READ)],
    ['a fractional address', (v) => v.translate(1.5, Access.READ)],
    ['a write that is also a fetch', (v) => v.translate(0, Access.WRITE | Access.FETCH)],
    ['access kind 16', (v) => v.translate(0, 16)],
    ['access kind -1', (v) => v.translate(0, -1)],
    ['a fractional access kind', (v) => v.translate(0, 0.5)],
    ['a negative page number', (v) => v.translatePage(-2, Access.READ)],
    ['a page number beyond 2^53', (v) => v.translatePage(2 ** 53, Access.READ)],
  ];
  it.each(badCalls)('%s is BAD_ARGUMENT and changes no counter', (_name, call) => {
    const { mmu, vcpu } = scripted();
    demandPaging(mmu);
    // Leave a flushed entry at the index vpn -1 maps to (index 15 of 16).
    vcpu.translate(15 * PAGE, Access.READ);
    vcpu.tlb.flushAll();
    const before = [vcpu.tlb.misses, vcpu.tlb.hits, vcpu.tableMisses, vcpu.faults, mmu.walks];
    expectHvmmuError(() => call(vcpu), 'BAD_ARGUMENT');
    expect([vcpu.tlb.misses, vcpu.tlb.hits, vcpu.tableMisses, vcpu.faults, mmu.walks]).toEqual(before);
  });

  it('a write-and-fetch access is BAD_ARGUMENT even on a page cached with every permission', () => {
    const { mmu, vcpu } = scripted();
    mmu.table.set(4, { hfn: 40, perm: PERM_ALL, cacheable: true });
    expect(vcpu.translate(4 * PAGE, Access.READ)).toBe(40 * PAGE);
    expectHvmmuError(() => vcpu.translate(4 * PAGE, Access.WRITE | Access.FETCH), 'BAD_ARGUMENT');
    expectHvmmuError(() => vcpu.translate(4 * PAGE, Access.WRITE | Access.FETCH | Access.USER | Access.IMPLICIT), 'BAD_ARGUMENT');
    expectHvmmuError(() => vcpu.translate(4 * PAGE, 16), 'BAD_ARGUMENT');
  });

  it('issues hypercalls with its own registers', () => {
    const add = new AddHypercall(0x1000);
    const mmu = new ScriptedMmu();
    const vcpu = new Vcpu(3, 16, mmu, new HypercallDispatcher([add], PAPR_LIKE_ABI, null), FAKE_MEMSLOTS);
    vcpu.hcallRegs.setArg(0, 2).setArg(1, 3);
    expect(vcpu.hypercall(0x1000)).toBe(0);
    expect(vcpu.hcallRegs.ret(0)).toBe(5);
    expect(add.seen).toEqual([{ vcpu: 3, a: 2, b: 3 }]);
    expect(vcpu.hypercall(0x1001)).toBe(PAPR_LIKE_ABI.unknownFunction);
  });
});

describe('FaultInfo', () => {
  it('is overwritten in place; clear resets kind, code and gpa', () => {
    const f = new FaultInfo();
    f.exit(FaultKind.EMULATE, 0x3000);
    f.setAccess(0x10, 0x20, Access.WRITE);
    expect(f.address).toBe(0x10020);
    expect(f.gpa).toBe(0x3020);
    expect([f.vaHi, f.vaLo]).toEqual([0, 0x10020]);
    f.deliver(14, 5);
    expect([f.kind, f.destination, f.vector, f.code, f.wordCount]).toEqual([FaultKind.GUEST, FaultDestination.GUEST, 14, 5, 1]);
    f.setAccess(2 ** 52 - 1, 0xfff, Access.READ);
    expect(f.addressBig).toBe(2n ** 64n - 1n);
    f.clear();
    expect([f.kind, f.code, f.gpa, f.destination]).toEqual([FaultKind.NONE, 0, -1, FaultDestination.NONE]);
  });

  it('TranslationResult starts empty and cacheable', () => {
    const r = new TranslationResult();
    expect([r.hfn, r.perm, r.cacheable, r.missCode]).toEqual([-1, 0, true, 0]);
  });
});

describe('TLB hit counting', () => {
  it('a plain vCPU counts misses but not hits, and serves the same hits', () => {
    const { mmu, vcpu } = scriptedPlain();
    demandPaging(mmu);
    expect(vcpu.countsTlbHits).toBe(false);
    expect(vcpu.translate(5 * PAGE + 1, Access.READ)).toBe(105 * PAGE + 1);
    for (let k = 0; k < 10; k++) expect(vcpu.translate(5 * PAGE + k, Access.WRITE)).toBe(105 * PAGE + k);
    expect(vcpu.translatePage(5, Access.FETCH)).toBe(105);
    expect(mmu.walks).toBe(2); // the first access: walk, handler, walk; the rest from the TLB
    expect([vcpu.tlb.misses, vcpu.tlb.hits]).toEqual([1, 0]);
  });

  it('a HitCountingVcpu counts every hit of translate and translatePage, and lookup() hits as before', () => {
    const { mmu, vcpu } = scripted();
    demandPaging(mmu);
    expect(vcpu.countsTlbHits).toBe(true);
    vcpu.translate(5 * PAGE, Access.READ);
    for (let k = 0; k < 10; k++) vcpu.translate(5 * PAGE + k, Access.WRITE);
    vcpu.translatePage(5, Access.FETCH);
    vcpu.tlb.lookup(0, 5, Access.READ);
    expect([vcpu.tlb.misses, vcpu.tlb.hits]).toEqual([1, 12]);
  });

  it('createVcpu({ countTlbHits }) picks the kind; bad options are BAD_ARGUMENT and create nothing', () => {
    const hv = new Hypervisor({ memoryBytes: 16 * PAGE });
    const vm = hv.createVm({ backend: makeTestBackend() });
    expect(vm.createVcpu()).not.toBeInstanceOf(HitCountingVcpu);
    expect(vm.createVcpu({})).not.toBeInstanceOf(HitCountingVcpu);
    expect(vm.createVcpu({ countTlbHits: false }).countsTlbHits).toBe(false);
    const counting = vm.createVcpu({ countTlbHits: true });
    expect(counting).toBeInstanceOf(HitCountingVcpu);
    expect(counting.id).toBe(3);
    for (const bad of [null, 1, 'yes', [], { countTlbHit: true }, { countTlbHits: 1 }, { countTlbHits: 'true' }]) {
      expectHvmmuError(() => vm.createVcpu(bad as never), 'BAD_ARGUMENT');
    }
    expect(vm.vcpus.length).toBe(4);
    expect(vm.createVcpu().id).toBe(4);
  });
});

describe('Vcpu on the identity test backend (memslots underneath)', () => {
  function vmWith(flags = 0) {
    const hv = new Hypervisor({ memoryBytes: 64 * PAGE });
    const vm = hv.createVm({ backend: makeTestBackend(), tlbEntries: 64 });
    vm.memslots.create({ id: 0, guestPhysAddr: 0x10000, size: 8 * PAGE, flags });
    return { hv, vm, vcpu: vm.createVcpu() };
  }

  it('a read maps the zero frame read-only; the first write copies on write and the TLB never serves the zero frame again', () => {
    const { hv, vm, vcpu } = vmWith();
    const zero = hv.memory.zeroFrame;
    expect(vcpu.translate(0x11008, Access.READ)).toBe(zero * PAGE + 8);
    expect(vcpu.translate(0x11008, Access.READ)).toBe(zero * PAGE + 8);
    const w = vcpu.translate(0x11008, Access.WRITE);
    expect(w >> 12).not.toBe(zero);
    expect(vm.memslots.get(0).frames[1]).toBe(w >> 12);
    expect(vcpu.translate(0x11008, Access.READ)).toBe(w);
    expect(identityMmu(vm).events.some((e) => e.event === 'invalidate' && e.a === 0x11 && e.b === 0x12)).toBe(true);
  });

  it('an address with no memslot is a NO_MEMORY fault with the gpa; a write to a READONLY slot is READ_ONLY', () => {
    const { vcpu } = vmWith(MemslotFlags.READONLY);
    expect(vcpu.translate(0x20abc, Access.READ)).toBe(TRANSLATE_FAULT);
    expect(vcpu.fault.kind).toBe(FaultKind.NO_MEMORY);
    expect(vcpu.fault.gpa).toBe(0x20abc); // byte-exact
    expect(vcpu.fault.offset).toBe(0xabc);
    expect(vcpu.translate(0x10000, Access.READ)).toBeGreaterThanOrEqual(0);
    expect(vcpu.translate(0x10000, Access.WRITE)).toBe(TRANSLATE_FAULT);
    expect(vcpu.fault.kind).toBe(FaultKind.READ_ONLY);
    expect(vcpu.fault.gpa).toBe(0x10000);
  });

  it('dirty logging: writes are logged; harvesting write-protects, so the next write faults and is logged again', () => {
    const { vm, vcpu } = vmWith(MemslotFlags.LOG_DIRTY_PAGES);
    vcpu.translate(0x10000, Access.WRITE);
    vcpu.translate(0x13000, Access.WRITE);
    vcpu.translate(0x14000, Access.READ);
    expect([...vm.memslots.getDirtyLog(0)]).toEqual([0b1001]);
    const misses = vcpu.tableMisses;
    vcpu.translate(0x10004, Access.READ); // still readable from the TLB
    expect(vcpu.tableMisses).toBe(misses);
    vcpu.translate(0x10004, Access.WRITE); // write-protected by the harvest
    expect(vcpu.tableMisses).toBe(misses + 1);
    expect([...vm.memslots.getDirtyLog(0)]).toEqual([0b0001]);
  });

  it('deleting the slot removes its translations from the TLB', () => {
    const { vm, vcpu } = vmWith();
    vcpu.translate(0x10000, Access.WRITE);
    vm.memslots.delete(0);
    expect(vcpu.tlb.countValid()).toBe(0);
    expect(vcpu.translate(0x10000, Access.READ)).toBe(TRANSLATE_FAULT);
    expect(vcpu.fault.kind).toBe(FaultKind.NO_MEMORY);
  });
});
