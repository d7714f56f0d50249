// @hvmmu/reference installed with only @hvmmu/core: a VM runs on the reference backend.
import { Access, Hypervisor } from '@hvmmu/core';
import { identityMapBackend } from '@hvmmu/reference';

const hv = new Hypervisor({ memoryBytes: 1 << 20 });
const vm = hv.createVm({ backend: identityMapBackend, backendOptions: { memslotInvalidation: 'fast-zap' } });
vm.memslots.create({ id: 0, guestPhysAddr: 0, size: 64 * 1024 });
const vcpu = vm.createVcpu();
if (!vcpu.write32(0x1000, 0xdeadbeef, true)) throw new Error('guest write faulted');
if (vcpu.read32(0x1000, true) !== 0xdeadbeef) throw new Error('guest read did not see the write');
if (vcpu.translate(0x1000, Access.READ) < 0) throw new Error('translate faulted');
if (vm.stats().identityMappings !== 1) throw new Error('expected one mapping');
console.log('reference-only: ok');
