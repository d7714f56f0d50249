import { Access, FaultDestination, GuestRights, Hypervisor, type BackendModule, type BackendTypes, type Vcpu } from '@hvmmu/core';
import { hypervisorFaultHandlerOf, type HypervisorFaultHandler } from '../workloads/NestedGuestControl.js';

const TABLE_GFN = 0x1000;
const DATA_GFN = 0x10_0000;
const VPN_BASE = 0x1_0000;

/**
 * What deleting a memslot costs under one memslot-invalidation strategy:
 * `pages` pages mapped by the guest and written (so each has a leaf, an rmap
 * entry and its own frame), then the slot deleted; the delete's wall time in
 * microseconds, the median of three VMs.
 */
export function memslotDeleteMicros(
  backend: BackendModule<BackendTypes>,
  backendOptions: Readonly<Record<string, unknown>>,
  strategy: string,
  pages: number,
): number {
  const times: number[] = [];
  // One untimed round first: the first VM of a backend also pays for compiling its code.
  deleteOnce(backend, { ...backendOptions, memslotInvalidation: strategy }, pages);
  for (let round = 0; round < 3; round++) times.push(deleteOnce(backend, { ...backendOptions, memslotInvalidation: strategy }, pages));
  times.sort((a, b) => a - b);
  return times[1]!;
}

function deleteOnce(backend: BackendModule<BackendTypes>, backendOptions: Readonly<Record<string, unknown>>, pages: number): number {
  const side = backend.guestSide!;
  const hv = new Hypervisor({ memoryBytes: (pages + 4096) * 4096 * 2 });
  const vm = hv.createVm({ backend, backendOptions: backendOptions as never });
  try {
    const tablePages = Math.max(1, side.tablePagesFor(pages, 1));
    vm.memslots.create({ id: 0, guestPhysAddr: TABLE_GFN * 4096, size: tablePages * 4096 });
    vm.memslots.create({ id: 1, guestPhysAddr: DATA_GFN * 4096, size: pages * 4096 });
    const guest = side.create(vm, { baseGfn: TABLE_GFN, pages: tablePages });
    const vcpu = vm.createVcpu();
    guest.activate(vcpu, 0);
    const l1 = hypervisorFaultHandlerOf(guest);
    for (let p = 0; p < pages; p++) {
      guest.map(0, VPN_BASE + p, DATA_GFN + p, GuestRights.WRITE);
      write(vcpu, (VPN_BASE + p) * 4096, guest.handleGuestFault?.bind(guest), l1);
    }
    const start = performance.now();
    vm.memslots.delete(1);
    return (performance.now() - start) * 1000;
  } finally {
    hv.destroyVm(vm);
  }
}

/**
 * A write the guest's kernel may have to help with (an SLB reload on POWER hash), or its
 * hypervisor (a nested L2's L1 mapping the page in its tree for the L2).
 */
function write(
  vcpu: Vcpu<BackendTypes>,
  va: number,
  resolve: ((v: Vcpu<BackendTypes>, f: Vcpu<BackendTypes>['fault']) => boolean) | undefined,
  l1: HypervisorFaultHandler | undefined,
): void {
  for (let attempt = 0; attempt < 8; attempt++) {
    if (vcpu.translate(va, Access.WRITE) >= 0) return;
    const fault = vcpu.fault;
    const handled = fault.destination === FaultDestination.HYPERVISOR ? l1?.handleHypervisorFault(vcpu, fault) : resolve?.(vcpu, fault);
    if (handled !== true) break;
  }
  throw new Error(`demo: the write to ${va.toString(16)} faulted (kind ${vcpu.fault.kind})`);
}
