// Smoke test of every package installed from its tarball into a fresh project:
// compose a hypervisor with each backend, run a PAE guest under shadow
// paging, use the walker alone on a flat image, and load the conformance
// entry points.
import { Access, FaultKind, FlatGuestMemory, Hypervisor } from '@hvmmu/core';
import { CR0, CR4, GuestPageTables, GuestWalk, GuestWalker, X86Registers, x86ShadowBackend } from '@hvmmu/x86-shadow';
import { identityMapBackend } from '@hvmmu/reference';

const hv = new Hypervisor({ memoryBytes: 16 << 20 });

// x86 shadow paging, 32-bit PAE guest.
const vm = hv.createVm({ backend: x86ShadowBackend, backendOptions: { memslotInvalidation: 'invalid-rmap' } });
vm.memslots.create({ id: 0, guestPhysAddr: 0, size: 4 << 20 }); // page tables
vm.memslots.create({ id: 1, guestPhysAddr: 8 << 20, size: 1 << 20 }); // data
const tables = new GuestPageTables(vm.memslots, 'pae', 0x10_0000, 0x20_0000);
tables.map(0x4000_0000, 8 << 20, { write: true, user: true });
const vcpu = vm.createVcpu();
if (!vcpu.arch.loadControlRegisters(tables.controlRegisters())) throw new Error('PAE control registers refused');
const hpa = vcpu.translate(0x4000_0123, Access.WRITE | Access.USER);
if (hpa < 0 || hpa % 4096 !== 0x123) throw new Error(`PAE translate failed: ${hpa}, fault ${vcpu.fault.kind}`);
vm.memslots.delete(1);
// The tables still resolve, the data page no longer exists: the VMM sees NO_MEMORY.
if (vcpu.translate(0x4000_0123, Access.READ | Access.USER) !== -1 || vcpu.fault.kind !== FaultKind.NO_MEMORY) {
  throw new Error('translation survived a memslot delete');
}

// The walker alone over a raw image (4-level: PML4 at 0x1000 → PDPT 0x2000 → PD 0x3000 → PT 0x4000 → 0x5000).
const image = new Uint8Array(0x6000);
const view = new DataView(image.buffer);
for (const [table, next] of [
  [0x1000, 0x2000],
  [0x2000, 0x3000],
  [0x3000, 0x4000],
  [0x4000, 0x5000],
])
  view.setUint32(table, next | 0x7, true);
const regs = new X86Registers();
regs.cr0 = CR0.PG | CR0.PE;
regs.cr4 = CR4.PAE;
regs.efer = 0x500; // LME | LMA
regs.cr3 = 0x1000;
const walk = new GuestWalk();
if (!new GuestWalker().walk(regs, new FlatGuestMemory(image, { readOnly: true }), 0, Access.READ, walk, false) || walk.gfn !== 5) {
  throw new Error('walker on a flat image failed');
}

// The minimal reference backend.
const idVm = hv.createVm({ backend: identityMapBackend });
idVm.memslots.create({ id: 0, guestPhysAddr: 0, size: 1 << 20 });
const idVcpu = idVm.createVcpu();
if (idVcpu.translate(0x2345, Access.WRITE) < 0) throw new Error('identity backend translate failed');

console.log('all-packages smoke: ok');
