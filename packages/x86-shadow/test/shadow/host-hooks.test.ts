import { describe, expect, it } from 'vitest';
import { MemslotFlags } from '@hvmmu/core';
import { X86ShadowMmu } from '@hvmmu/x86-shadow/internal';
import { P, TableBuilder, U, W, controlsFor, makeVm } from './helpers/guest.js';
import { checkInvariants } from './helpers/invariants.js';

const DATA_GPA = 0x20_0000;

function guest(pages = 8) {
  const t = makeVm();
  const b = new TableBuilder(t.mem, 'long4', 0x10_0000);
  const pml4 = b.root();
  for (let i = 0; i < pages; i++) {
    b.map4k(pml4, 0x40_0000 + i * 4096, DATA_GPA + i * 4096, P | W | U);
    t.mem.write32(DATA_GPA + i * 4096, 0x1000 + i, true);
  }
  expect(t.x.loadControlRegisters(controlsFor('long4', pml4))).toBe(true);
  for (let i = 0; i < pages; i++) expect(t.x.read(0x40_0000 + i * 4096, 4)).toBe(true);
  const mmu = t.vm.mmu as X86ShadowMmu;
  const hfn = (i: number) => t.mem.get(0).frames[DATA_GPA / 4096 + i]!;
  const spteOf = (i: number) => {
    const e = mmu.findLeaf(t.x, 0x400 + i);
    return e < 0 ? { lo: 0, hi: 0 } : { lo: mmu.pages.spt.sptLo[e]!, hi: mmu.pages.spt.sptHi[e]! };
  };
  return { ...t, b, pml4, mmu, hfn, spteOf };
}

describe('host-side hooks', () => {
  it('MMU notifier invalidation drops the mappings of the host frames and flushes', () => {
    const t = guest();
    const faults = t.vm.stats()['shadowFaults']!;
    expect(t.vm.invalidateHostRange(t.hfn(2), t.hfn(2) + 1)).toBe(1);
    expect(t.spteOf(2).lo).toBe(0);
    expect(t.spteOf(3).lo).not.toBe(0);
    expect(t.vcpu.tlb.countValid()).toBe(0);
    expect(checkInvariants(t.vm)).toEqual([]);
    expect(t.x.read(0x40_2000, 4)).toBe(true);
    expect(t.x.readLo).toBe(0x1002);
    expect(t.vm.stats()['shadowFaults']).toBe(faults + 1);
  });

  it('age clears accessed bits (young once), test-age reports without clearing; hardware sets A again', () => {
    const t = guest();
    const f = t.hfn(1);
    expect(t.vm.testAgeHostRange(f, f + 1)).toBe(true);
    expect(t.vm.ageHostRange(f, f + 1)).toBe(true);
    expect(t.spteOf(1).lo & 0x20).toBe(0);
    expect(t.vm.testAgeHostRange(f, f + 1)).toBe(false);
    expect(t.vm.ageHostRange(f, f + 1)).toBe(false);
    // The TLB was flushed on aging, so the next access walks the shadow table and sets A.
    expect(t.x.read(0x40_1000, 4)).toBe(true);
    expect(t.spteOf(1).lo & 0x20).toBe(0x20);
    expect(t.vm.testAgeHostRange(f, f + 1)).toBe(true);
  });

  it('change_pte re-points the spte read-only at the new frame; a write makes it writable again', () => {
    const t = guest();
    expect(t.x.write(0x40_3000, 4, 0x3333)).toBe(true);
    const old = t.hfn(3);
    const faults = t.vm.stats()['shadowFaults']!;
    const moved = t.vm.migrateHostFrame(old);
    expect(moved).not.toBe(old);
    const s = t.spteOf(3);
    expect(s.lo >>> 12).toBe(moved);
    expect(s.lo & (0x2 | 0x200 | 0x400)).toBe(0); // no W, host-W, MMU-W
    expect(t.x.read(0x40_3000, 4)).toBe(true);
    expect(t.x.readLo).toBe(0x3333);
    expect(t.vm.stats()['shadowFaults']).toBe(faults);
    expect(t.x.write(0x40_3000, 4, 0x4444)).toBe(true);
    expect(t.vm.stats()['shadowFaults']).toBe(faults + 1);
    expect(t.mem.host.read32(moved * 4096, true)).toBe(0x4444);
    expect(checkInvariants(t.vm)).toEqual([]);
  });

  it('dirty logging: write-protect on enable, log each first write, re-arm on harvest', () => {
    const t = guest();
    for (let i = 0; i < 4; i++) expect(t.x.write(0x40_0000 + i * 4096, 4, i)).toBe(true);
    t.mem.setFlags(0, MemslotFlags.LOG_DIRTY_PAGES);
    for (let i = 0; i < 8; i++) expect(t.spteOf(i).lo & 0x2).toBe(0);
    expect(checkInvariants(t.vm)).toEqual([]);
    const faults = t.vm.stats()['shadowFaults']!;
    expect(t.x.write(0x40_1000, 4, 7)).toBe(true);
    expect(t.x.write(0x40_1000, 4, 8)).toBe(true);
    expect(t.x.read(0x40_2000, 4)).toBe(true);
    expect(t.vm.stats()['shadowFaults']).toBe(faults + 1);
    const bit = DATA_GPA / 4096 + 1;
    let log = t.mem.getDirtyLog(0);
    expect((log[bit >>> 5]! >>> (bit & 31)) & 1).toBe(1);
    const other = DATA_GPA / 4096 + 2;
    expect((log[other >>> 5]! >>> (other & 31)) & 1).toBe(0);
    // Harvest re-armed write protection: the next write faults and is logged again.
    expect(t.spteOf(1).lo & 0x2).toBe(0);
    expect(checkInvariants(t.vm)).toEqual([]);
    expect(t.x.write(0x40_1000, 4, 9)).toBe(true);
    expect(t.vm.stats()['shadowFaults']).toBe(faults + 2);
    log = t.mem.getDirtyLog(0);
    expect((log[bit >>> 5]! >>> (bit & 31)) & 1).toBe(1);
    // Logging off: writes are no longer logged (the bitmap goes away).
    t.mem.setFlags(0, 0);
    expect(t.x.write(0x40_1000, 4, 10)).toBe(true);
    expect(checkInvariants(t.vm)).toEqual([]);
  });

  it('zapAll drops every shadow page; the guest rebuilds on demand', () => {
    const t = guest();
    t.vm.zapAll();
    expect(t.vm.stats()['rmapEntries']).toBe(0);
    expect(checkInvariants(t.vm)).toEqual([]);
    for (let i = 0; i < 8; i++) {
      expect(t.x.read(0x40_0000 + i * 4096, 4)).toBe(true);
      expect(t.x.readLo).toBe(0x1000 + i);
    }
    expect(checkInvariants(t.vm)).toEqual([]);
  });

  it('VM teardown leaves no shadow page and no rmap entry', () => {
    const t = guest();
    const mmu = t.mmu;
    t.hv.destroyVm(t.vm);
    expect(mmu.pages.usedPages).toBe(0);
    expect(mmu.pages.spt.allocated).toBe(0);
  });
});

describe('shadow-page budget (make_mmu_pages_available)', () => {
  it('keeps the number of shadow pages near maxShadowPages by zapping the oldest non-root pages', () => {
    const t = makeVm({ backendOptions: { maxShadowPages: 12 } });
    const b = new TableBuilder(t.mem, 'long4', 0x10_0000);
    const pml4 = b.root();
    // 40 page tables (one page in each 2 MiB region): far more shadow pages than the budget.
    for (let i = 0; i < 40; i++) b.map4k(pml4, 0x4000_0000 + i * 0x20_0000, DATA_GPA + i * 4096, P | W | U);
    expect(t.x.loadControlRegisters(controlsFor('long4', pml4))).toBe(true);
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < 40; i++) {
        expect(t.x.read(0x4000_0000 + i * 0x20_0000, 4)).toBe(true);
        // Soft limit: a fault may allocate a few pages past it before the next reclaim.
        expect(t.vm.stats()['shadowPages']).toBeLessThanOrEqual(12 + 4);
      }
    }
    expect(t.vm.stats()['pagesReclaimed']).toBeGreaterThan(0);
    expect(checkInvariants(t.vm)).toEqual([]);
  });
});
