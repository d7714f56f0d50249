// The built-in source of `hvmmu htab save --demo`: a VM on ppcHptBackend whose guest side (a
// pseries kernel's hash MMU, HptGuestSide) maps a few hundred pages with mixed rights through
// H_ENTER, in two address spaces, then unmaps some — a guest view with valid entries in many
// PTEGs, both kernel and user protections, and removed (invalid) entries left behind.
import { GuestRights, Hypervisor } from '@hvmmu/core';
import type { HashPageTable, HtabStore } from '@hvmmu/ppc-hpt';
import type { PpcHptPackage } from '../inspect/PpcPackages.js';

export interface DemoHpt {
  /** The guest view (what H_READ and the HTAB stream see). */
  readonly hpt: HashPageTable;
  /** The VM's HTAB store (the stream reads it, as KVM_PPC_GET_HTAB_FD reads the VM). */
  readonly store: HtabStore;
  readonly mapped: number;
}

export function buildDemoHpt(ppc: PpcHptPackage, pages: number, order: number): DemoHpt {
  const hv = new Hypervisor({ memoryBytes: 64 << 20 });
  const vm = hv.createVm({ backend: ppc.ppcHptBackend, backendOptions: { hptOrder: order } });
  vm.memslots.create({ id: 0, guestPhysAddr: 0, size: 16 << 20 });
  const vcpu = vm.createVcpu();
  const guest = new ppc.HptGuestSide(vm);
  const user = guest.createSpace();
  guest.activate(vcpu, 0);
  const rights = [GuestRights.WRITE, GuestRights.READ, GuestRights.WRITE | GuestRights.USER, GuestRights.USER, GuestRights.EXEC | GuestRights.USER];
  let mapped = 0;
  for (let i = 0; i < pages; i++) {
    const space = i % 3 === 0 ? user : 0;
    // Spread over segments and PTEGs: a stride of 37 pages from 0x1000_0000, and a second segment above 1 TiB.
    const vpn = (i % 2 === 0 ? 0x1_0000 : 0x1000_0000) + i * 37;
    guest.map(space, vpn, i % 4096, rights[i % rights.length]!);
    mapped++;
  }
  for (let i = 0; i < pages; i += 10) {
    const space = i % 3 === 0 ? user : 0;
    guest.unmap(space, (i % 2 === 0 ? 0x1_0000 : 0x1000_0000) + i * 37);
    mapped--;
  }
  return { hpt: vm.arch.hpt.guest, store: vm.arch.htab, mapped };
}
