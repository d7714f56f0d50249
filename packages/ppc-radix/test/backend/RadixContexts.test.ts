import { describe, expect, it } from 'vitest';
import { Access, DEFAULT_CONTEXT, GuestRights, TRANSLATE_FAULT } from '@hvmmu/core';
import { RadixContexts, RadixMode } from '@hvmmu/ppc-radix';
import { DATA_BASE_GFN, radixTestVm } from './helpers/radixVm.js';

const VPN = 0x10_0000;
const FETCH_KINDS =
  (1 << Access.FETCH) | (1 << (Access.FETCH | Access.USER)) | (1 << (Access.FETCH | Access.IMPLICIT)) | (1 << (Access.FETCH | Access.USER | Access.IMPLICIT));

describe('translation contexts of a radix guest: (PID, MSR[IR/DR], AMR/IAMR key 0)', () => {
  it('keys: real mode ignores the PID; PID 0 with relocation on and AMR open is the default context', () => {
    expect(RadixContexts.key(5, 0)).toBe(RadixContexts.key(9, 0));
    expect(RadixContexts.key(5, RadixMode.IR | RadixMode.DR)).not.toBe(RadixContexts.key(9, RadixMode.IR | RadixMode.DR));
    const { vcpu } = radixTestVm();
    expect(vcpu.context).toBe(DEFAULT_CONTEXT);
  });

  it('a PID switch is a context switch: no flush, and switching back hits the entries cached before', () => {
    const { vm, guest, vcpu } = radixTestVm();
    const pid1 = guest.createSpace();
    guest.map(0, VPN + 1, DATA_BASE_GFN + 1, GuestRights.WRITE);
    guest.map(pid1, VPN + 1, DATA_BASE_GFN + 2, GuestRights.WRITE);
    const a = vcpu.translate((VPN + 1) * 4096, Access.WRITE);
    guest.activate(vcpu, pid1);
    expect(vcpu.context).not.toBe(DEFAULT_CONTEXT);
    const b = vcpu.translate((VPN + 1) * 4096, Access.WRITE);
    expect(Math.floor(b / 4096)).toBe(vm.memslots.get(1).frames[2]);
    expect(b).not.toBe(a);
    const flushes = vm.stats().remoteTlbFlushes;
    const misses = vcpu.tlb.misses;
    guest.activate(vcpu, 0);
    expect(vcpu.context).toBe(DEFAULT_CONTEXT);
    expect(vcpu.translate((VPN + 1) * 4096, Access.WRITE)).toBe(a);
    expect(vcpu.tlb.misses).toBe(misses);
    expect(vm.stats().remoteTlbFlushes).toBe(flushes);
    expect(vm.stats().ppcRadixContexts).toBe(1);
  });

  it("a guest tlbie of one PID's page drops it only in that PID's contexts", () => {
    const { vm, guest, vcpu } = radixTestVm();
    const pid1 = guest.createSpace();
    guest.map(0, VPN + 1, DATA_BASE_GFN + 1, GuestRights.WRITE);
    guest.map(pid1, VPN + 1, DATA_BASE_GFN + 2, GuestRights.WRITE);
    vcpu.translate((VPN + 1) * 4096, Access.READ);
    guest.activate(vcpu, pid1);
    vcpu.translate((VPN + 1) * 4096, Access.READ);
    const pid1Context = vcpu.context;
    vm.arch.guestTlbiePage(0, VPN + 1);
    expect(vcpu.tlb.countValid(DEFAULT_CONTEXT)).toBe(0);
    expect(vcpu.tlb.countValid(pid1Context)).toBe(1);
    vm.arch.guestTlbiePid(pid1);
    expect(vcpu.tlb.countValid(pid1Context)).toBe(0);
  });

  it('real mode: both relocations off, the EA is the guest real address (partition scope only: 4 entries, the PATE cached; 1 with the page walk cache warm)', () => {
    const { vm, vcpu } = radixTestVm();
    vcpu.arch.setRelocation(false, false);
    const gpa = (DATA_BASE_GFN + 3) * 4096 + 0x10;
    const hpa = vcpu.translate(gpa, Access.WRITE);
    expect(hpa).not.toBe(TRANSLATE_FAULT);
    expect(Math.floor(hpa / 4096)).toBe(vm.memslots.get(1).frames[3]);
    vcpu.tlb.flushAll();
    vcpu.translate(gpa, Access.READ);
    expect(vcpu.arch.lastWalk.refs).toBe(1);
    vcpu.tlb.flushAll();
    vcpu.arch.invalidatePageWalkCache();
    vcpu.translate(gpa, Access.READ);
    expect(vcpu.arch.lastWalk.refs).toBe(4);
    expect(vcpu.arch.registers()).toEqual({ pid: 0, ir: 0, dr: 0, amrKey0: 0, iamrKey0: 0 });
  });

  it('with MSR[IR] ≠ MSR[DR] a TLB entry serves only the kind of access that walked it', () => {
    const { vcpu } = radixTestVm();
    vcpu.arch.setRelocation(true, false);
    const gpa = (DATA_BASE_GFN + 4) * 4096;
    expect(vcpu.translate(gpa, Access.READ)).not.toBe(TRANSLATE_FAULT);
    const i = vcpu.tlb.indexOf(vcpu.context, gpa / 4096);
    expect(vcpu.tlb.perms[i]! & FETCH_KINDS).toBe(0);
    expect(vcpu.tlb.perms[i]! & (1 << Access.READ)).not.toBe(0);
  });

  it('AMR writes switch contexts too (KUAP toggles are free), and the register values are validated', () => {
    const { vcpu } = radixTestVm();
    vcpu.arch.setAmr(3n << 62n);
    const closed = vcpu.context;
    expect(closed).not.toBe(DEFAULT_CONTEXT);
    vcpu.arch.setAmr(0);
    expect(vcpu.context).toBe(DEFAULT_CONTEXT);
    vcpu.arch.setAmr(3n << 62n);
    expect(vcpu.context).toBe(closed);
    expect(() => vcpu.arch.setPid(-1)).toThrow(/PIDR/);
    expect(() => vcpu.arch.setAmr(1n << 64n)).toThrow(/AMR/);
  });

  it('more address spaces than context ids: contexts are recycled (flushed, owner told) and every PID still translates to its own page', () => {
    const { vm, guest, vcpu } = radixTestVm({ tlbEntries: 4 });
    const pids = [0];
    for (let i = 1; i < 5; i++) pids.push(guest.createSpace());
    for (const pid of pids) guest.map(pid, VPN, DATA_BASE_GFN + pid, GuestRights.WRITE);
    const frames = vm.memslots.get(1).frames;
    for (let round = 0; round < 3; round++) {
      for (const pid of pids) {
        guest.activate(vcpu, pid);
        const hpa = vcpu.translate(VPN * 4096, round === 0 ? Access.WRITE : Access.READ);
        expect(Math.floor(hpa / 4096)).toBe(frames[pid]);
      }
    }
    expect(vm.contexts.recycled).toBeGreaterThan(0);
    expect(vm.stats().ppcRadixContexts).toBeLessThanOrEqual(3);
  });

  it("debugTranslate answers the guest real address from the guest's own tables, making nothing", () => {
    const { vm, guest, vcpu } = radixTestVm();
    guest.map(0, VPN + 3, DATA_BASE_GFN + 3, GuestRights.WRITE);
    guest.map(0, VPN + 4, DATA_BASE_GFN + 4, GuestRights.EXEC | GuestRights.USER);
    const leaves = vm.stats().ppcRadixLeaves;
    expect(vcpu.arch.debugTranslate(BigInt((VPN + 3) * 4096 + 0x123))).toBe(BigInt((DATA_BASE_GFN + 3) * 4096 + 0x123));
    // Execute-only answers through the fetch; a privileged page has no answer in problem state.
    expect(vcpu.arch.debugTranslate(BigInt((VPN + 4) * 4096), true)).toBe(BigInt((DATA_BASE_GFN + 4) * 4096));
    expect(vcpu.arch.debugTranslate(BigInt((VPN + 3) * 4096), true)).toBeNull();
    expect(vcpu.arch.debugTranslate(BigInt((VPN + 5) * 4096))).toBeNull();
    expect(vm.stats().ppcRadixLeaves).toBe(leaves);
    expect(vcpu.tlb.misses).toBe(0);
  });
});
