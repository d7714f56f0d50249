import { describe, expect, it } from 'vitest';
import { Access, FaultDestination, FaultKind, GuestRights, HvmmuError, MemslotFlags, RmapOpsRegistry, TRANSLATE_FAULT } from '@hvmmu/core';
import { RADIX_PTE, RadixFaultWord, type RadixRmapOps } from '@hvmmu/ppc-radix';
import { DATA_BASE_GFN, radixTestVm } from './helpers/radixVm.js';

const VPN = 0x10_0000;
const va = (k: number): number => (VPN + k) * 4096 + 0x24;

describe('PpcRadixMmu: process-scoped faults go to the guest with their registers', () => {
  it('a load, store and fetch of an unmapped page: DSI NOPTE (| ISSTORE) with DAR, ISI NOPTE in SRR1', () => {
    const { vcpu } = radixTestVm();
    expect(vcpu.translate(va(1), Access.READ)).toBe(TRANSLATE_FAULT);
    const f = vcpu.fault;
    expect([f.kind, f.destination, f.vector, f.code >>> 0]).toEqual([FaultKind.GUEST, FaultDestination.GUEST, 0x300, 0x4000_0000]);
    expect(f.word(RadixFaultWord.DAR)).toBe((VPN + 1) * 4096);
    expect(f.word(RadixFaultWord.SRR1)).toBe(0);
    vcpu.translate(va(1), Access.WRITE);
    expect([f.vector, f.code >>> 0]).toEqual([0x300, 0x4200_0000]);
    vcpu.translate(va(1), Access.FETCH);
    expect([f.vector, f.code >>> 0, f.word(RadixFaultWord.SRR1)]).toEqual([0x400, 0x4000_0000, 0x4000_0000]);
  });

  it('EAA, privilege and AMR/IAMR key 0: PROTFAULT for data, NOEXEC_GUARD for fetches', () => {
    const { vm, guest, vcpu } = radixTestVm();
    guest.map(0, VPN + 1, DATA_BASE_GFN + 1, GuestRights.READ); // privileged, read-only, no exec
    guest.map(0, VPN + 2, DATA_BASE_GFN + 2, GuestRights.WRITE | GuestRights.USER);
    const f = vcpu.fault;
    expect(vcpu.translate(va(1), Access.READ)).not.toBe(TRANSLATE_FAULT);
    vcpu.translate(va(1), Access.WRITE);
    expect([f.vector, f.code >>> 0]).toEqual([0x300, 0x0a00_0000]);
    vcpu.translate(va(1), Access.READ | Access.USER);
    expect([f.vector, f.code >>> 0]).toEqual([0x300, 0x0800_0000]);
    vcpu.translate(va(1), Access.FETCH);
    expect([f.vector, f.code >>> 0]).toEqual([0x400, 0x1000_0000]);
    // A user page: supervisor and user stores both allowed, until AMR bit 63 (KUAP) closes key 0 to the supervisor.
    expect(vcpu.translate(va(2), Access.WRITE)).not.toBe(TRANSLATE_FAULT);
    vcpu.arch.setAmr(1n << 63n);
    expect(vcpu.translate(va(2), Access.WRITE)).toBe(TRANSLATE_FAULT);
    expect([f.vector, f.code >>> 0]).toEqual([0x300, 0x0a00_0000]);
    expect(vcpu.translate(va(2), Access.WRITE | Access.USER)).not.toBe(TRANSLATE_FAULT);
    expect(vcpu.translate(va(2), Access.READ)).not.toBe(TRANSLATE_FAULT);
    expect(vm.stats().ppcRadixGuestDsi).toBe(3);
    expect(vm.stats().ppcRadixGuestIsi).toBe(1);
  });

  it("R and C of the guest's own leaf: POWER9 raises DSI ATOMIC_RC, and the TLB never serves a store while C is clear", () => {
    const { guest, vcpu } = radixTestVm();
    guest.map(0, VPN + 3, DATA_BASE_GFN + 3, GuestRights.WRITE);
    const tree = guest.treeOf(0);
    tree.updateLeaf((VPN + 3) * 4096, 0, RADIX_PTE.C);
    vcpu.arch.vcpu.tlb.flushAll();
    expect(vcpu.translate(va(3), Access.READ)).not.toBe(TRANSLATE_FAULT);
    expect(vcpu.translate(va(3), Access.WRITE)).toBe(TRANSLATE_FAULT);
    expect([vcpu.fault.vector, vcpu.fault.code >>> 0]).toEqual([0x300, 0x0204_0000]);
    tree.updateLeaf((VPN + 3) * 4096, 0, RADIX_PTE.R);
    vcpu.tlb.flushAll();
    expect(vcpu.translate(va(3), Access.READ)).toBe(TRANSLATE_FAULT);
    expect(vcpu.fault.code >>> 0).toBe(0x0004_0000);
  });

  it('segment interrupts: EA bits 61..52 set (DSEG with DAR), a guest fetch from quadrant 1 (ISEG)', () => {
    const { vcpu } = radixTestVm();
    expect(vcpu.translatePage(2 ** 40, Access.READ)).toBe(TRANSLATE_FAULT);
    expect([vcpu.fault.vector, vcpu.fault.code, vcpu.fault.word(RadixFaultWord.DAR)]).toEqual([0x380, 0, 2 ** 52]);
    expect(vcpu.translatePage(2 ** 50, Access.FETCH)).toBe(TRANSLATE_FAULT);
    expect([vcpu.fault.vector, vcpu.fault.code]).toEqual([0x480, 0]);
  });
});

describe('PpcRadixMmu: partition-scoped faults (kvmppc_book3s_radix_page_fault)', () => {
  it('a 2-D walk reads 9 entries with the table caches and page walk cache warm (four tree levels 4 × (1 + 1), final gpa 1), 12 after a tlbie RIC 1 (the first partition-scoped walk fills the region the tables share: 4 + 1, 3 × (1 + 1), 1), 16 after a tlbie RIC 2, which drops the page walk cache too (PATE 2, process-table entry 4 + 1, 4 × (1 + 1), 1)', () => {
    const { vm, guest, vcpu } = radixTestVm();
    guest.map(0, VPN + 4, DATA_BASE_GFN + 4, GuestRights.WRITE);
    expect(vcpu.translate(va(4), Access.READ)).not.toBe(TRANSLATE_FAULT);
    vcpu.tlb.flushAll();
    // Every partition-scoped walk: one read, its 2 MiB region's bottom table cached.
    expect(vcpu.translate(va(4), Access.READ)).not.toBe(TRANSLATE_FAULT);
    expect(vcpu.arch.lastWalk.refs).toBe(9);
    vcpu.tlb.flushAll();
    vcpu.arch.invalidatePageWalkCache();
    expect(vcpu.translate(va(4), Access.READ)).not.toBe(TRANSLATE_FAULT);
    expect(vcpu.arch.lastWalk.refs).toBe(12);
    vcpu.tlb.flushAll();
    vm.arch.guestTlbiePid(0, 2);
    expect(vcpu.translate(va(4), Access.READ)).not.toBe(TRANSLATE_FAULT);
    expect(vcpu.arch.lastWalk.refs).toBe(16);
  });

  it('an untouched page is read through the zero frame without RW; the first store copies it (one invalidation retry) and maps RW | C', () => {
    const { vm, guest, vcpu } = radixTestVm();
    const gfn = DATA_BASE_GFN + 5;
    guest.map(0, VPN + 5, gfn, GuestRights.WRITE);
    const zero = vm.memslots.host.zeroFrame;
    expect(Math.floor(vcpu.translate(va(5), Access.READ) / 4096)).toBe(zero);
    const tree = vm.arch.tree;
    let off = tree.pteOffset(gfn);
    expect(tree.hfnAt(off)).toBe(zero);
    expect(tree.loAt(off) & 0xfff).toBe(RADIX_PTE.R | RADIX_PTE.READ | RADIX_PTE.EXECUTE);
    const hpa = vcpu.translate(va(5), Access.WRITE);
    const slot = vm.memslots.get(1);
    expect(Math.floor(hpa / 4096)).toBe(slot.frames[5]);
    off = tree.pteOffset(gfn);
    expect(tree.loAt(off) & 0xfff).toBe(RADIX_PTE.R | RADIX_PTE.C | RADIX_PTE.READ | RADIX_PTE.READ_WRITE | RADIX_PTE.EXECUTE);
    expect(vm.stats().ppcRadixInvalidationRetries).toBe(1);
  });

  it('a read of a writable private page maps it RW | C at once (KVM upgrade_write)', () => {
    const { vm, guest, vcpu } = radixTestVm();
    const gfn = DATA_BASE_GFN + 6;
    vm.memslots.write32(gfn * 4096, 0x1234, true);
    guest.map(0, VPN + 6, gfn, GuestRights.WRITE);
    expect(vcpu.translate(va(6), Access.READ)).not.toBe(TRANSLATE_FAULT);
    const tree = vm.arch.tree;
    expect(tree.loAt(tree.pteOffset(gfn)) & (RADIX_PTE.READ_WRITE | RADIX_PTE.C)).toBe(RADIX_PTE.READ_WRITE | RADIX_PTE.C);
    // So the store that follows is a TLB hit.
    const misses = vcpu.tlb.misses;
    expect(vcpu.translate(va(6), Access.WRITE)).not.toBe(TRANSLATE_FAULT);
    expect(vcpu.tlb.misses).toBe(misses);
  });

  it('aging clears R; the next walked access raises the R/C fault, kvmppc_hv_handle_set_rc sets R and the access completes', () => {
    const { vm, guest, vcpu } = radixTestVm();
    guest.map(0, VPN + 7, DATA_BASE_GFN + 7, GuestRights.WRITE);
    const hfn = Math.floor(vcpu.translate(va(7), Access.WRITE) / 4096);
    expect(vm.ageHostRange(hfn, hfn + 1)).toBe(true);
    expect(vm.testAgeHostRange(hfn, hfn + 1)).toBe(false);
    vcpu.tlb.flushAll();
    const before = vm.stats().ppcRadixSetRc;
    expect(vcpu.translate(va(7), Access.READ)).toBe(hfn * 4096 + 0x24);
    expect(vm.stats().ppcRadixSetRc).toBe(before + 1);
    expect(vm.testAgeHostRange(hfn, hfn + 1)).toBe(true);
  });

  it('dirty logging through C: read maps without RW, the store maps RW | C and logs, a harvest clears C only, the next store logs again', () => {
    const { vm, guest, vcpu } = radixTestVm({ dataFlags: MemslotFlags.LOG_DIRTY_PAGES });
    const gfn = DATA_BASE_GFN + 8;
    vm.memslots.write32(gfn * 4096, 1, true); // a private frame, so only logging keeps RW off
    vm.memslots.getDirtyLog(1);
    guest.map(0, VPN + 8, gfn, GuestRights.WRITE);
    const tree = vm.arch.tree;
    expect(vcpu.translate(va(8), Access.READ)).not.toBe(TRANSLATE_FAULT);
    expect(tree.loAt(tree.pteOffset(gfn)) & RADIX_PTE.READ_WRITE).toBe(0);
    expect(vcpu.translate(va(8), Access.WRITE)).not.toBe(TRANSLATE_FAULT);
    expect(Array.from(vm.memslots.getDirtyLog(1))).toEqual([1 << 8, 0]);
    expect(tree.loAt(tree.pteOffset(gfn)) & (RADIX_PTE.READ_WRITE | RADIX_PTE.C)).toBe(RADIX_PTE.READ_WRITE);
    const setRc = vm.stats().ppcRadixSetRc;
    expect(vcpu.translate(va(8), Access.WRITE)).not.toBe(TRANSLATE_FAULT);
    expect(vm.stats().ppcRadixSetRc).toBe(setRc + 1);
    expect(Array.from(vm.memslots.getDirtyLog(1))).toEqual([1 << 8, 0]);
    expect(vm.stats().ppcRadixDirtyReprotects).toBe(2);
  });

  it('a store to a READONLY slot exits READ_ONLY at its gpa, or (guest-dsi) is a DSI with ISSTORE | PROTFAULT as KVM-HV queues it', () => {
    for (const readOnlyStore of ['vmm-exit', 'guest-dsi'] as const) {
      const { vm, guest, vcpu } = radixTestVm({ dataFlags: MemslotFlags.READONLY, backendOptions: { readOnlyStore } });
      guest.map(0, VPN + 9, DATA_BASE_GFN + 9, GuestRights.WRITE);
      expect(vcpu.translate(va(9), Access.READ)).not.toBe(TRANSLATE_FAULT);
      expect(vcpu.translate(va(9), Access.WRITE)).toBe(TRANSLATE_FAULT);
      const f = vcpu.fault;
      if (readOnlyStore === 'vmm-exit') {
        expect([f.kind, f.destination, f.gpa]).toEqual([FaultKind.READ_ONLY, FaultDestination.VMM, (DATA_BASE_GFN + 9) * 4096 + 0x24]);
      } else {
        expect([f.kind, f.destination, f.vector, f.code >>> 0]).toEqual([FaultKind.GUEST, FaultDestination.GUEST, 0x300, 0x0a00_0000]);
      }
      expect(vm.stats().ppcRadixLeaves).toBeGreaterThan(0);
    }
  });

  it('a guest real address no memslot backs is MMIO: an exit to the VMM (NO_MEMORY) at that gpa, nothing mapped', () => {
    const { vm, guest, vcpu } = radixTestVm();
    guest.map(0, VPN + 10, 0x9000, GuestRights.WRITE);
    const leaves = vm.stats().ppcRadixLeaves;
    expect(vcpu.translate(va(10), Access.WRITE)).toBe(TRANSLATE_FAULT);
    expect([vcpu.fault.kind, vcpu.fault.destination, vcpu.fault.gpa]).toEqual([FaultKind.NO_MEMORY, FaultDestination.VMM, 0x9000 * 4096 + 0x24]);
    expect(vm.stats().ppcRadixLeaves).toBeGreaterThanOrEqual(leaves);
    expect(vm.arch.tree.pteOffset(0x9000)).toBe(-1);
  });

  it('host out of memory: the access exits HOST_OUT_OF_MEMORY with nothing changed, and completes once frames are free', () => {
    const { vm, guest, vcpu, hv } = radixTestVm({ memoryBytes: 64 * 4096 });
    guest.map(0, VPN + 11, DATA_BASE_GFN + 11, GuestRights.WRITE);
    expect(vcpu.translate(va(11), Access.READ)).not.toBe(TRANSLATE_FAULT);
    guest.map(0, VPN + 0x400, DATA_BASE_GFN + 12, GuestRights.WRITE); // another PMD range: a new process-scoped table page
    const held: number[] = [];
    while (hv.memory.framesFree > 0) held.push(hv.memory.allocFrame());
    expect(vcpu.translate(va(0x400), Access.WRITE)).toBe(TRANSLATE_FAULT);
    expect(vcpu.fault.kind).toBe(FaultKind.HOST_OUT_OF_MEMORY);
    // The guest's new table page was mapped (it has its frame); the data page, which needs one, was not.
    expect(vm.arch.tree.isLeaf(vm.arch.tree.pteOffset(DATA_BASE_GFN + 12))).toBe(false);
    expect(vm.stats().ppcRadixHostOutOfMemory).toBe(1);
    for (const f of held) hv.memory.freeFrame(f);
    expect(vcpu.translate(va(0x400), Access.WRITE)).not.toBe(TRANSLATE_FAULT);
  });

  it('host page migration: radix KVM unmaps on change_pte; the next access maps the new frame with the same contents', () => {
    const { vm, guest, vcpu } = radixTestVm();
    guest.map(0, VPN + 13, DATA_BASE_GFN + 13, GuestRights.WRITE);
    const hpa = vcpu.translate(va(13), Access.WRITE);
    vm.memslots.host.write32(hpa, 0xfeed, true);
    const moved = vm.migrateHostFrame(Math.floor(hpa / 4096));
    expect(vm.arch.tree.isLeaf(vm.arch.tree.pteOffset(DATA_BASE_GFN + 13))).toBe(false);
    const again = vcpu.translate(va(13), Access.READ);
    expect(Math.floor(again / 4096)).toBe(moved);
    expect(vm.memslots.host.read32(again, true)).toBe(0xfeed);
  });
});

describe('PpcRadixMmu: memslot delete and move through the rmap strategy switch', () => {
  function touched(memslotInvalidation: 'invalid-rmap' | 'fast-zap') {
    const t = radixTestVm({ backendOptions: { memslotInvalidation } });
    t.vm.memslots.create({ id: 2, guestPhysAddr: 0x200 * 4096, size: 8 * 4096 });
    t.guest.map(0, VPN + 1, DATA_BASE_GFN + 1, GuestRights.WRITE);
    t.guest.map(0, VPN + 2, 0x201, GuestRights.WRITE);
    t.vcpu.translate(va(1), Access.WRITE);
    t.vcpu.translate(va(2), Access.WRITE);
    return t;
  }

  it('invalid-rmap: only the deleted slot is unmapped (through the invalid table), its nested rmap lists are freed, other slots keep their leaves', () => {
    const { vm } = touched('invalid-rmap');
    const slot = vm.memslots.get(2);
    expect(slot.rmapOps.insertNested(slot, 0x201, 3, 0x777)).toBe(true);
    expect(slot.arch.nested.entries(1)).toEqual([[3, 0x777]]);
    const nestedBytes = vm.stats().ppcRadixNestedRmapBytes;
    vm.memslots.delete(2);
    const tree = vm.arch.tree;
    expect(tree.isLeaf(tree.pteOffset(0x201))).toBe(false);
    expect(tree.isLeaf(tree.pteOffset(DATA_BASE_GFN + 1))).toBe(true);
    expect(vm.stats().ppcRadixNestedRmapBytes).toBe(nestedBytes - 8 * 8);
    expect(vm.stats().ppcRadixZapAlls).toBe(0);
    expect(vm.stats().ppcRadixInvalidSlotWarnings).toBe(0);
  });

  it('fast-zap: the whole table goes at once, every slot faults back in', () => {
    const { vm, vcpu } = touched('fast-zap');
    vm.memslots.move(2, 0x300 * 4096);
    expect(vm.stats().ppcRadixZapAlls).toBe(1);
    expect(vm.stats().ppcRadixLeaves).toBe(0);
    expect(vcpu.tlb.countValid()).toBe(0);
    expect(vcpu.translate(va(1), Access.READ)).not.toBe(TRANSLATE_FAULT);
    expect(vcpu.translate(va(2), Access.READ)).toBe(TRANSLATE_FAULT);
    expect(vcpu.fault.kind).toBe(FaultKind.NO_MEMORY);
  });

  it('the invalid table drops what it finds and refuses to add or re-arm (warned, nothing done)', () => {
    const { vm } = touched('invalid-rmap');
    const invalid = vm.container.resolve(RmapOpsRegistry).get('invalid') as RadixRmapOps;
    const slot = vm.memslots.get(1);
    expect(invalid.clearDirty(slot, DATA_BASE_GFN + 1)).toBe(false);
    expect(invalid.insertNested(slot, DATA_BASE_GFN + 1, 1, 5)).toBe(false);
    expect(vm.stats().ppcRadixInvalidSlotWarnings).toBe(2);
    expect(invalid.testAge(slot, DATA_BASE_GFN + 1)).toBe(true);
    expect(vm.arch.tree.isLeaf(vm.arch.tree.pteOffset(DATA_BASE_GFN + 1))).toBe(false);
  });

  it('zapAll and VM teardown return every host frame, the partition table and root window included', () => {
    const { hv, vm } = touched('invalid-rmap');
    const baseline = 1; // the zero frame
    vm.zapAll();
    expect(vm.stats().ppcRadixTablePages).toBe(0);
    hv.destroyVm(vm);
    expect(hv.memory.framesInUse).toBe(baseline);
  });

  it('refuses the guest-register API of a destroyed VM', () => {
    const { hv, vm, vcpu } = radixTestVm();
    hv.destroyVm(vm);
    expect(() => vm.arch.setProcessTable(0)).toThrow(/destroyed/);
    expect(() => vm.arch.guestTlbiePage(0, 1)).toThrow(/destroyed/);
    expect(() => vcpu.arch.setPid(1)).toThrow(/destroyed/);
  });

  it('refuses a process-table value with bits outside PRTB and PRTS', () => {
    const { vm } = radixTestVm();
    expect(() => vm.arch.setProcessTable(0x1000 | 0x40)).toThrow(HvmmuError);
    expect(() => vm.arch.setProcessTable(1n << 62n)).toThrow(HvmmuError);
  });
});
