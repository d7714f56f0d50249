import { describe, expect, it } from 'vitest';
import { Access, GuestRights, HvmmuError, TRANSLATE_FAULT } from '@hvmmu/core';
import { RADIX_PTE, radixGuestSide, ppcRadixBackend } from '@hvmmu/ppc-radix';
import { DATA_BASE_GFN, radixTestVm } from './helpers/radixVm.js';

const VPN = 0x10_0000;

describe('radixGuestSide: the guest operating system of a radix guest', () => {
  it('is the backend module’s guest side, in its paging mode', () => {
    expect(ppcRadixBackend.guestSide).toBe(radixGuestSide);
    expect(ppcRadixBackend.capabilities.pagingModes).toContain(radixGuestSide.pagingMode);
  });

  it('registers its process table (PRTB | PRTS 0) in PATE dw1 and writes PID 0’s root (RTS 52, RPDS 13) in entry 0', () => {
    const { vm, guest } = radixTestVm();
    // The process table is the area's first page (gpa 0); the root the first 64 KiB-aligned block after it.
    expect(guest.processTableValue()).toBe(0n);
    expect(vm.arch.tree.processTable).toEqual([0, 0]);
    expect(guest.treeOf(0).root).toBe(0x1_0000);
    expect([vm.memslots.read64Hi(0, false), vm.memslots.read64Lo(0, false)]).toEqual([0x4000_0000, 0x0001_00ad]);
  });

  it('turns GuestRights into EAA: read always, RW for WRITE, X for EXEC, privileged unless USER; R set, C with WRITE', () => {
    const { vm, guest } = radixTestVm();
    const leafLo = (vpn: number): number => {
      let table = guest.treeOf(0).root;
      const shifts = [39, 30, 21, 12];
      const bits = [13, 9, 9, 9];
      for (let l = 0; ; l++) {
        const at = table + (Math.floor((vpn * 4096) / 2 ** shifts[l]!) % 2 ** bits[l]!) * 8;
        const hi = vm.memslots.read64Hi(at, false);
        const lo = vm.memslots.read64Lo(at, false);
        if (l === 3) return lo;
        table = (hi & 0x0fff_ffff) * 2 ** 32 + ((lo & 0xffff_ff00) >>> 0);
      }
    };
    guest.map(0, VPN, DATA_BASE_GFN, GuestRights.READ);
    expect(leafLo(VPN)).toBe(((DATA_BASE_GFN * 4096) | RADIX_PTE.R | RADIX_PTE.READ | RADIX_PTE.PRIVILEGED) >>> 0);
    guest.map(0, VPN, DATA_BASE_GFN, GuestRights.WRITE | GuestRights.EXEC | GuestRights.USER);
    expect(leafLo(VPN)).toBe(((DATA_BASE_GFN * 4096) | RADIX_PTE.R | RADIX_PTE.C | RADIX_PTE.READ | RADIX_PTE.READ_WRITE | RADIX_PTE.EXECUTE) >>> 0);
    guest.unmap(0, VPN);
    expect(leafLo(VPN)).toBe(0);
  });

  it('map and unmap are followed by the tlbie the guest issues: a cached translation does not outlive them', () => {
    const { vm, guest, vcpu } = radixTestVm();
    guest.map(0, VPN + 1, DATA_BASE_GFN + 1, GuestRights.WRITE);
    const a = vcpu.translate((VPN + 1) * 4096, Access.WRITE);
    guest.map(0, VPN + 1, DATA_BASE_GFN + 2, GuestRights.WRITE);
    const b = vcpu.translate((VPN + 1) * 4096, Access.WRITE);
    expect(Math.floor(b / 4096)).toBe(vm.memslots.get(1).frames[2]);
    expect(b).not.toBe(a);
    guest.unmap(0, VPN + 1);
    expect(vcpu.translate((VPN + 1) * 4096, Access.READ)).toBe(TRANSLATE_FAULT);
  });

  it('bounds its tables: tablePagesFor covers the worst case, a full area refuses before writing, misuse throws', () => {
    const { vm, guest } = radixTestVm();
    // 49 more for the guest's own tables should it host nested guests: a partition table, a 16-page root
    // with 15 of alignment, a PUD, and 16 vCPUs' state pages (allocated only by enterNested).
    expect(radixGuestSide.tablePagesFor(0, 1)).toBe(32 + 49);
    expect(radixGuestSide.tablePagesFor(10, 2)).toBe(1 + 62 + 30 + 49);
    // The area is 128 pages: the process table, 15 pages of alignment, a 16-page root; six more spaces fill it.
    expect(guest.tablePages).toBe(32);
    guest.map(0, VPN, DATA_BASE_GFN, GuestRights.READ); // PUD, PMD and PTE tables
    expect(guest.tablePages).toBe(35);
    guest.map(0, VPN + 2 ** 18, DATA_BASE_GFN, GuestRights.READ); // another GiB: PMD and PTE tables
    expect(guest.tablePages).toBe(37);
    for (let i = 0; i < 5; i++) guest.createSpace();
    expect(guest.tablePages).toBe(128);
    expect(() => guest.createSpace()).toThrow(HvmmuError);
    expect(guest.spaceCount).toBe(6);
    guest.map(0, VPN + 1, DATA_BASE_GFN, GuestRights.READ); // in an existing PTE table: no page needed
    expect(() => guest.map(0, VPN + 2 * 2 ** 18, DATA_BASE_GFN, GuestRights.READ)).toThrow(/full/);
    expect(guest.tablePages).toBe(128);
    expect(() => guest.map(9, VPN, DATA_BASE_GFN, 0)).toThrow(/address space/);
    expect(() => guest.map(0, 2 ** 40, DATA_BASE_GFN, 0)).toThrow(/vpn/);
    expect(() => guest.map(0, VPN, DATA_BASE_GFN, 16)).toThrow(/rights/);
    expect(() => radixGuestSide.create(vm, { baseGfn: 0x5000, pages: 4 })).toThrow(/writable memslot/);
  });
});
