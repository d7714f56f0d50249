import { expect, it } from 'vitest';
import { Access, GuestRights, Hypervisor, TRANSLATE_FAULT } from '@hvmmu/core';
import { ppcRadixBackend } from '@hvmmu/ppc-radix';

it('runs the example of docs/ppc-radix.md "The L0 backend"', () => {
  const hv = new Hypervisor({ memoryBytes: 64 << 20 });
  const vm = hv.createVm({ backend: ppcRadixBackend, backendOptions: { memslotInvalidation: 'invalid-rmap' } });
  vm.memslots.create({ id: 0, guestPhysAddr: 0, size: 16 << 20 });
  const guest = ppcRadixBackend.guestSide!.create(vm, { baseGfn: 0, pages: 256 });
  const vcpu = vm.createVcpu();
  guest.activate(vcpu, 0);
  guest.map(0, 0x10_0000, 0x800, GuestRights.WRITE);
  const hpa = vcpu.translate(0x1_0000_0000, Access.WRITE);
  expect(hpa).not.toBe(TRANSLATE_FAULT);
  expect(Math.floor(hpa / 4096)).toBe(vm.memslots.get(0).frames[0x800]);
  // The process table page, PID 0's root page and three table pages, and the data page.
  expect(vm.stats().ppcRadixInstantiations).toBe(6);
  expect(vm.arch.listPartitionScoped().leaves.map((l) => Number(l.address) / 4096)).toEqual([0, 0x10, 0x20, 0x21, 0x22, 0x800]);
});
