import { Hypervisor, type Vcpu, type Vm } from '@hvmmu/core';
import { ppcRadixBackend, radixGuestSide, type PpcRadixOptions, type PpcRadixTypes, type RadixGuestAddressSpaces } from '@hvmmu/ppc-radix';

/** Guest memory of the test VMs: slot 0 holds the guest's tables, slot 1 its data. */
export const TABLE_PAGES = 128;
export const DATA_BASE_GFN = 0x100;
export const DATA_PAGES = 64;

export interface RadixTestVm {
  readonly hv: Hypervisor;
  readonly vm: Vm<PpcRadixTypes>;
  readonly guest: RadixGuestAddressSpaces;
  readonly vcpu: Vcpu<PpcRadixTypes>;
}

/** A radix guest: tables in slot 0 ([0, 128) pages), data in slot 1 ([0x100, 0x140)), one vCPU in PID 0. */
export function radixTestVm(
  options: { memoryBytes?: number; dataFlags?: number; backendOptions?: Partial<PpcRadixOptions>; tlbEntries?: number } = {},
): RadixTestVm {
  const hv = new Hypervisor({ memoryBytes: options.memoryBytes ?? 4 << 20 });
  void hv.memory.zeroFrame;
  const vm = hv.createVm({ backend: ppcRadixBackend, tlbEntries: options.tlbEntries ?? 64, backendOptions: options.backendOptions ?? {} });
  vm.memslots.create({ id: 0, guestPhysAddr: 0, size: TABLE_PAGES * 4096 });
  vm.memslots.create({ id: 1, guestPhysAddr: DATA_BASE_GFN * 4096, size: DATA_PAGES * 4096, flags: options.dataFlags ?? 0 });
  const guest = radixGuestSide.create(vm, { baseGfn: 0, pages: TABLE_PAGES });
  const vcpu = vm.createVcpu({ countTlbHits: true });
  guest.activate(vcpu, 0);
  return { hv, vm, guest, vcpu };
}
