// Smoke test of @hvmmu/core installed alone from its tarball.
import { HostMemory, HvmmuError, Hypervisor, SoftTlb } from '@hvmmu/core';

const mem = new HostMemory({ bytes: 16 * 4096 });
const hfn = mem.allocFrame();
mem.write32(hfn * 4096, 0x11223344, false);
if (mem.read8(hfn * 4096) !== 0x11) throw new Error('big-endian write32 broken');
try {
  mem.read32(16 * 4096, true);
  throw new Error('out-of-bounds read did not throw');
} catch (e) {
  if (!(e instanceof HvmmuError) || e.code !== 'HOST_OUT_OF_BOUNDS') throw e;
}
const tlb = new SoftTlb(64);
tlb.insert(3, 5, 7, 1);
if (tlb.lookup(3, 5, 0) !== 7 || tlb.lookup(0, 5, 0) !== -1) throw new Error('TLB lookup by context broken');
const hv = new Hypervisor({ memoryBytes: 1 << 20 });
try {
  hv.createVm({ backend: {} });
  throw new Error('invalid backend accepted');
} catch (e) {
  if (!(e instanceof HvmmuError) || e.code !== 'BACKEND_INVALID') throw e;
}
console.log('core-only smoke: ok');
