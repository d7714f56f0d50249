import { Access, Hypervisor, MemslotFlags, type Vcpu, type Vm } from '@hvmmu/core';
import { IDENTITY_HYPERCALL_ABI, IdentityHypercall, IdentityPageState, identityMapBackend } from '@hvmmu/reference';
import { faultName } from '../report/faultName.js';
import { TextTable, percent } from '../report/TextTable.js';

const MiB = 1 << 20;

/** What the core demo did, for the report and for tests. */
export interface CoreDemoResult {
  readonly lines: string[];
  readonly accesses: number;
  readonly tlbHits: number;
  readonly tlbMisses: number;
  readonly romWriteFault: number;
  readonly unknownHcallStatus: number;
  readonly badHcallStatus: number;
  readonly dirtyPagesHarvested: number;
  readonly framesFreedByDelete: number;
}

function pageState(state: number): string {
  const names = Object.entries(IdentityPageState)
    .filter(([, bit]) => (state & bit) !== 0)
    .map(([name]) => name.toLowerCase());
  return names.length === 0 ? 'none' : names.join('+');
}

/**
 * The core at work on the minimal reference backend: a VM with RAM, ROM and a
 * dirty-logged slot, a vCPU whose TLB serves repeated accesses, hypercalls
 * through the dispatcher (including an unknown number and a malformed
 * argument, which get the ABI's statuses, not exceptions), a dirty-log
 * harvest, and a memslot delete that returns its host frames.
 */
export function runCoreDemo(): CoreDemoResult {
  const lines: string[] = [];
  const hv = new Hypervisor({ memoryBytes: 32 * MiB });
  const vm: Vm = hv.createVm({ backend: identityMapBackend, name: 'core-demo', tlbEntries: 256 });
  vm.memslots.create({ id: 0, guestPhysAddr: 0, size: 4 * MiB });
  vm.memslots.create({ id: 1, guestPhysAddr: 0xfff0_0000, size: 64 * 1024, flags: MemslotFlags.READONLY });
  vm.memslots.create({ id: 2, guestPhysAddr: 16 * MiB, size: 2 * MiB, flags: MemslotFlags.LOG_DIRTY_PAGES });
  vm.memslots.writeBytes(0xfff0_0000, new TextEncoder().encode('hvmmu ROM'));
  const vcpu: Vcpu = vm.createVcpu({ countTlbHits: true });

  // An access pattern with locality: 64 hot pages read and written over and
  // over, then a sweep over 512 pages (more than the 256-entry TLB holds).
  let accesses = 0;
  for (let round = 0; round < 200; round++) {
    for (let p = 0; p < 64; p++) {
      const hpa = vcpu.translate(p * 4096 + 8, round % 4 === 0 ? Access.WRITE : Access.READ);
      if (hpa < 0) throw new Error(`demo: access to page ${p} faulted (${faultName(vcpu.fault.kind)})`);
      accesses++;
    }
  }
  for (let p = 0; p < 512; p++) {
    vcpu.translate(p * 4096, Access.READ);
    accesses++;
  }

  // The ROM: reads see the VMM's bytes, writes end in READ_ONLY for the VMM to emulate.
  const romHpa = vcpu.translate(0xfff0_0000, Access.READ);
  const romText = new TextDecoder().decode(vm.memslots.host.bytes.subarray(romHpa, romHpa + 9));
  vcpu.translate(0xfff0_0010, Access.WRITE);
  const romWriteFault = vcpu.fault.kind;

  // A hole: no memslot, so the VMM gets NO_MEMORY (MMIO) with the gpa.
  vcpu.translate(0x8000_0000, Access.READ);
  const holeFault = vcpu.fault.kind;

  // Hypercalls through the dispatcher.
  vcpu.hcallRegs.clear();
  vcpu.hcallRegs.setArg(0, 8);
  const queryStatus = vcpu.hypercall(IdentityHypercall.QUERY_PAGE);
  const queryState = vcpu.hcallRegs.ret(0);
  const unknownHcallStatus = vcpu.hypercall(0x99);
  vcpu.hcallRegs.clear();
  vcpu.hcallRegs.setArg(0, 0x123); // unaligned table base
  vcpu.hcallRegs.setArg(1, 1);
  const badHcallStatus = vcpu.hypercall(IdentityHypercall.SET_PROTECTION_TABLE);

  // Dirty logging: write 10 pages of slot 2, harvest, write 3 again, harvest.
  for (let p = 0; p < 10; p++) vcpu.translate(16 * MiB + p * 4096, Access.WRITE);
  const first = popcount(vm.memslots.getDirtyLog(2));
  for (let p = 0; p < 3; p++) vcpu.translate(16 * MiB + p * 4096, Access.WRITE);
  const second = popcount(vm.memslots.getDirtyLog(2));

  // Delete the RAM slot: KVM's order (invalid rmap table, MMU flush, free).
  const framesBefore = hv.memory.framesInUse;
  vm.memslots.delete(0);
  const framesFreedByDelete = framesBefore - hv.memory.framesInUse;
  vcpu.translate(8, Access.READ);
  const afterDelete = vcpu.fault.kind;

  const stats = vm.stats();
  const tlbHits = vcpu.tlb.hits;
  const tlbMisses = vcpu.tlb.misses;
  const table = new TextTable(['what', 'result'])
    .add(['guest accesses', accesses])
    .add(['TLB hits / misses', `${tlbHits} / ${tlbMisses} (hit rate ${percent(tlbHits, tlbHits + tlbMisses)})`])
    .add(['MMU faults handled', vcpu.tableMisses])
    .add(['ROM read', JSON.stringify(romText)])
    .add(['ROM write', faultName(romWriteFault)])
    .add(['access to a hole (0x80000000)', faultName(holeFault)])
    .add(['hcall QUERY_PAGE(0x8)', `status ${queryStatus}, state ${pageState(queryState)}`])
    .add(['hcall 0x99 (unknown)', `status ${unknownHcallStatus} (ABI unknownFunction ${IDENTITY_HYPERCALL_ABI.unknownFunction})`])
    .add(['hcall SET_PROTECTION_TABLE(0x123)', `status ${badHcallStatus} (ABI badParameter ${IDENTITY_HYPERCALL_ABI.badParameter})`])
    .add(['dirty log: 10 writes, harvest', `${first} pages`])
    .add(['dirty log: 3 more writes, harvest', `${second} pages`])
    .add(['delete 4 MiB RAM slot', `${framesFreedByDelete} host frames freed, next access: ${faultName(afterDelete)}`])
    .add(['memslot generation', stats['memslotGeneration'] ?? 0]);
  lines.push(`VM '${vm.name}' on backend '${vm.backend.id}': RAM 4 MiB @0, ROM 64 KiB @0xfff00000, dirty-logged 2 MiB @16 MiB`);
  lines.push(table.render());
  hv.destroyVm(vm);
  return {
    lines,
    accesses,
    tlbHits,
    tlbMisses,
    romWriteFault,
    unknownHcallStatus,
    badHcallStatus,
    dirtyPagesHarvested: first,
    framesFreedByDelete,
  };
}

function popcount(bitmap: Uint32Array): number {
  let n = 0;
  for (const word of bitmap) {
    let w = word;
    while (w !== 0) {
      w &= w - 1;
      n++;
    }
  }
  return n;
}
