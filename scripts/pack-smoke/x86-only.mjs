// @hvmmu/x86-shadow installed with only @hvmmu/core: a 4-level guest under shadow paging.
import { Access, Hypervisor } from '@hvmmu/core';
import { GuestPageTables, x86ShadowBackend } from '@hvmmu/x86-shadow';

const hv = new Hypervisor({ memoryBytes: 16 << 20 });
const vm = hv.createVm({ backend: x86ShadowBackend });
vm.memslots.create({ id: 0, guestPhysAddr: 0, size: 8 << 20 });
const tables = new GuestPageTables(vm.memslots, 'long4', 1 << 20, 2 << 20);
tables.map(0x7f00_0000_0000, 4 << 20, { write: false, user: true });
const vcpu = vm.createVcpu();
if (!vcpu.arch.loadControlRegisters(tables.controlRegisters())) throw new Error('control registers refused');
if (vcpu.translate(0x7f00_0000_0000, Access.READ | Access.USER) < 0) throw new Error('read faulted');
// A user write to a read-only page is a guest #PF with error code P|W|U = 7 (SDM 4.7).
if (vcpu.translate(0x7f00_0000_0000, Access.WRITE | Access.USER) !== -1 || vcpu.fault.code !== 7) {
  throw new Error(`expected #PF 7, got kind ${vcpu.fault.kind} code ${vcpu.fault.code}`);
}
console.log('x86-only smoke: ok');
