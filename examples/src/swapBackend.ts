// Swap one MMU backend for another without touching the rest: the same VMM
// code (memslots, a vCPU, accesses, a memslot delete) runs on the minimal
// identity-mapped reference backend and on x86 shadow paging. Only the
// `backend` argument and the guest's own set-up differ.
//
//   npm run build && node examples/dist/swapBackend.js
import { Access, FaultKind, Hypervisor, type BackendModule, type BackendTypes, type Vcpu, type Vm } from '@hvmmu/core';
import { identityMapBackend } from '@hvmmu/reference';
import { GuestPageTables, x86ShadowBackend } from '@hvmmu/x86-shadow';
import { fileURLToPath } from 'node:url';

const MiB = 1 << 20;
const DATA_GPA = 8 * MiB;

export interface SwapResult {
  readonly backend: string;
  readonly bytesSeen: string;
  readonly tlbHits: number;
  readonly faultAfterDelete: number;
}

/** The VMM side, identical for every backend. */
function runVmm<T extends BackendTypes>(backend: BackendModule<T>, prepareGuest: (vm: Vm<T>, vcpu: Vcpu<T>) => number): SwapResult {
  const hv = new Hypervisor({ memoryBytes: 32 * MiB });
  const vm = hv.createVm({ backend });
  vm.memslots.create({ id: 0, guestPhysAddr: 0, size: 4 * MiB });
  vm.memslots.create({ id: 1, guestPhysAddr: DATA_GPA, size: MiB });
  vm.memslots.writeBytes(DATA_GPA, new TextEncoder().encode('hello from the data slot'));
  const vcpu = vm.createVcpu({ countTlbHits: true });
  const va = prepareGuest(vm, vcpu);
  let hpa = -1;
  for (let i = 0; i < 100; i++) hpa = vcpu.translate(va, Access.READ);
  if (hpa < 0) throw new Error(`access faulted on ${backend.id}: kind ${vcpu.fault.kind}`);
  const bytesSeen = new TextDecoder().decode(hv.memory.bytes.subarray(hpa, hpa + 24));
  vm.memslots.delete(1);
  vcpu.translate(va, Access.READ);
  const result = { backend: backend.id, bytesSeen, tlbHits: vcpu.tlb.hits, faultAfterDelete: vcpu.fault.kind };
  hv.destroyVm(vm);
  return result;
}

export function runSwapBackend(): SwapResult[] {
  return [
    // Identity backend: guest virtual = guest physical.
    runVmm(identityMapBackend, () => DATA_GPA),
    // x86 shadow paging: the guest has 4-level tables of its own; VA 0x4000_0000 maps the data page.
    runVmm(x86ShadowBackend, (vm, vcpu) => {
      const tables = new GuestPageTables(vm.memslots, 'long4', 2 * MiB, 4 * MiB);
      tables.map(0x4000_0000, DATA_GPA, { write: false, user: false });
      if (!vcpu.arch.loadControlRegisters(tables.controlRegisters())) throw new Error('control registers refused');
      return 0x4000_0000;
    }),
  ];
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  for (const r of runSwapBackend()) {
    const then = Object.entries(FaultKind).find(([, v]) => v === r.faultAfterDelete)?.[0];
    console.log(`${r.backend.padEnd(12)} read ${JSON.stringify(r.bytesSeen)}, ${r.tlbHits} TLB hits; after deleting the slot: ${then}`);
  }
}
