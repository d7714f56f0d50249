// `hvmmu htab load --into-vm`: a table loaded into a VM on ppcHptBackend the way a migration's
// destination loads it — the stream written through KvmHtabWriter into the VM's HTAB store, so
// every entry goes in through the backend's H_ENTER path (its real HPT and reverse map follow),
// and a record holding an entry the host would refuse in H_ENTER is refused whole (KVM's
// kvm_htab_write fails with EIO).
import { HvmmuError, Hypervisor } from '@hvmmu/core';
import type { HashPageTable } from '@hvmmu/ppc-hpt';
import { inputError } from '../inspect/InspectInput.js';
import type { PpcHptPackage } from '../inspect/PpcPackages.js';
import { diffHtabs, validCount } from './HtabStreams.js';

export interface IntoVmResult {
  readonly memslotMib: number;
  /** Bytes of KVM records written into the VM. */
  readonly streamBytes: number;
  /** Valid entries in the VM's guest view afterwards. */
  readonly valid: number;
  /** Entries of the VM's guest view that differ from the table loaded (0: the VM holds it exactly). */
  readonly differing: number;
}

export function loadIntoVm(ppc: PpcHptPackage, hpt: HashPageTable, file: string, memslotMib: number): IntoVmResult {
  const hv = new Hypervisor({ memoryBytes: Math.max(16, memslotMib + 16) << 20 });
  const vm = hv.createVm({ backend: ppc.ppcHptBackend, backendOptions: { hptOrder: hpt.order } });
  if (memslotMib > 0) vm.memslots.create({ id: 0, guestPhysAddr: 0, size: memslotMib << 20 });
  const reader = new ppc.KvmHtabReader(new ppc.HashPageTableStore(hpt));
  const writer = new ppc.KvmHtabWriter(vm.arch.htab);
  const buffer = new Uint8Array(1 << 20);
  let streamBytes = 0;
  try {
    for (let n = reader.read(buffer); n > 0; n = reader.read(buffer)) {
      const used = writer.write(buffer.subarray(0, n));
      if (used !== n) throw inputError(`'${file}': the VM took ${used} of ${n} bytes of a read`);
      streamBytes += n;
    }
  } catch (error) {
    if (error instanceof HvmmuError && error.code === 'STREAM_INVALID') {
      throw inputError(`'${file}' cannot be loaded into the VM (memslot of ${memslotMib} MiB at 0): ${error.message.replace(/^[A-Z_]+: /, '')}`);
    }
    throw error;
  }
  const guestView = vm.arch.hpt.guest;
  return { memslotMib, streamBytes, valid: validCount(guestView), differing: diffHtabs(hpt, guestView, 0).count };
}
