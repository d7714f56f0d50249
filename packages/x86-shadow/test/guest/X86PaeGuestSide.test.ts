import { describe, expect, it } from 'vitest';
import { Access, FaultDestination, GuestRights, HvmmuError, Hypervisor, TRANSLATE_FAULT } from '@hvmmu/core';
import { X86_PAE_GUEST_VPN_LIMIT, x86PaeGuestSide, x86ShadowBackend } from '@hvmmu/x86-shadow';

const MiB = 1 << 20;
/** Data at gfn 0..1023 (4 MiB), the table area at gfn 0x1000 (16 MiB, 64 pages): inside the kernel's first GiB. */
const AREA = { baseGfn: 0x1000, pages: 64 };
const W = GuestRights.WRITE;
const U = GuestRights.USER;

function guest() {
  const hv = new Hypervisor({ memoryBytes: 16 * MiB });
  const vm = hv.createVm({ backend: { ...x86ShadowBackend, guestSide: x86PaeGuestSide }, backendOptions: { memslotInvalidation: 'invalid-rmap' } });
  vm.memslots.create({ id: 0, guestPhysAddr: 0, size: 4 * MiB });
  vm.memslots.create({ id: 1, guestPhysAddr: AREA.baseGfn * 4096, size: AREA.pages * 4096 });
  const vcpu = vm.createVcpu();
  const side = x86PaeGuestSide.create(vm, AREA);
  return { vm, vcpu, side };
}

describe('x86PaeGuestSide: a 32-bit PAE guest OS (3G/1G split, preallocated page directories)', () => {
  it('builds a PDPT with four page directories (PDPTEs P only, SDM 4.4.1), the kernel one mapping the area with 2 MiB pages', () => {
    const { vm, side } = guest();
    const mem = vm.memslots;
    const base = AREA.baseGfn * 4096;
    // PDPT at base, the kernel's PD at +0x1000, user PDs at +0x2000, +0x3000, +0x4000.
    expect(side.tablePages).toBe(5);
    expect([0, 1, 2, 3].map((i) => mem.read64Lo(base + i * 8, true))).toEqual([base + 0x2001, base + 0x3001, base + 0x4001, base + 0x1001]);
    // gpa 16 MiB is PD index 8 of the kernel PD (va 0xc100_0000): PS|W|P, XD in bit 63.
    expect(mem.read64Lo(base + 0x1000 + 8 * 8, true)).toBe(0x100_0000 | 0x83);
    expect(mem.read64Hi(base + 0x1000 + 8 * 8, true)).toBe(0x8000_0000);
    expect(x86PaeGuestSide.tablePagesFor(10, 2)).toBe(4 * 2 + 1 + 10);
  });

  it('maps, remaps through the kernel’s direct map with the vCPU running (the shadow MMU emulates the store), and unmaps', () => {
    const { vm, vcpu, side } = guest();
    side.activate(vcpu, 0);
    expect(vcpu.arch.regs.cr3).toBe(AREA.baseGfn * 4096);
    // vpn 0x8_0123 (va 0x8012_3000): PDPT 2, PD 0, PT 0x123.
    side.map(0, 0x8_0123, 7, W | U);
    expect(vcpu.translate(0x8012_3010, Access.WRITE | Access.USER)).toBe(vm.memslots.get(0).frameAt(7) * 4096 + 0x10);
    expect(vm.stats().specialShadowPages).toBeGreaterThanOrEqual(1); // the PAE root: KVM's pae_root
    side.map(0, 0x8_0123, 9, W | U);
    expect(vcpu.translate(0x8012_3010, Access.WRITE | Access.USER)).toBe(vm.memslots.get(0).frameAt(9) * 4096 + 0x10);
    side.unmap(0, 0x8_0123);
    expect(vcpu.translate(0x8012_3010, Access.READ)).toBe(TRANSLATE_FAULT);
    expect(vcpu.fault.destination).toBe(FaultDestination.GUEST);
    expect(vcpu.fault.code).toBe(0); // #PF, not present, supervisor read
  });

  it('gives each address space its own PDPT and user directories, sharing the kernel directory', () => {
    const { vm, vcpu, side } = guest();
    side.activate(vcpu, 0);
    const space = side.createSpace();
    side.map(0, 0x1000, 1, W);
    side.map(space, 0x1000, 2, W);
    expect(vcpu.translate(0x100_0000, Access.WRITE)).toBe(vm.memslots.get(0).frameAt(1) * 4096);
    side.activate(vcpu, space);
    expect(vcpu.translate(0x100_0000, Access.WRITE)).toBe(vm.memslots.get(0).frameAt(2) * 4096);
    const second = side.cr3Of(space);
    expect(vm.memslots.read64Lo(second + 3 * 8, true)).toBe(vm.memslots.read64Lo(AREA.baseGfn * 4096 + 3 * 8, true));
  });

  it('refuses what a PAE guest cannot do: kernel-half addresses, a table area beyond the first GiB', () => {
    const { vm, side } = guest();
    expect(() => side.map(0, X86_PAE_GUEST_VPN_LIMIT, 1, W)).toThrow(HvmmuError);
    expect(() => x86PaeGuestSide.create(vm, { baseGfn: 0x3_ffff, pages: 8 })).toThrow(HvmmuError);
  });
});
