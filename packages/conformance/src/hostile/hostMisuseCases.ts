import { Access, MemslotFlags, MEMSLOT_MAX_ID, type HvmmuErrorCode, type Memslot } from '@hvmmu/core';
import type { ConformanceFixture } from '../ConformanceFixture.js';

/** The slots a misuse case runs against: A and B exist (A mapped and written), `freeId` is unused. */
export interface MisuseScene {
  readonly a: Memslot;
  readonly b: Memslot;
  readonly freeId: number;
}

/** One misuse of the host API: the call, and the `HvmmuError` code it must throw (changing nothing). */
export interface HostMisuseCase {
  readonly name: string;
  readonly code: HvmmuErrorCode;
  run(fixture: ConformanceFixture, scene: MisuseScene): unknown;
}

/**
 * Host-API misuse every backend must survive: the VM refuses with a typed
 * error before anything changes (core validates; the backend's listener must
 * not have been half-run). Capability-gated refusals are in the suite's
 * capability sections.
 */
export const HOST_MISUSE_CASES: readonly HostMisuseCase[] = [
  {
    name: 'create a memslot with an id in use',
    code: 'MEMSLOT_EXISTS',
    run: (f, s) => f.vm.memslots.create({ id: s.a.id, guestPhysAddr: 0x7000_0000, size: 4096 }),
  },
  {
    name: 'create a memslot overlapping another',
    code: 'MEMSLOT_OVERLAP',
    run: (f, s) => f.vm.memslots.create({ id: s.freeId, guestPhysAddr: (s.a.baseGfn + 2) * 4096, size: 8 * 4096 }),
  },
  {
    name: 'create a memslot at an unaligned address',
    code: 'MEMSLOT_UNALIGNED',
    run: (f, s) => f.vm.memslots.create({ id: s.freeId, guestPhysAddr: s.b.endGfn * 4096 + 1, size: 4096 }),
  },
  {
    name: 'create a memslot of a size that is not whole pages',
    code: 'MEMSLOT_UNALIGNED',
    run: (f, s) => f.vm.memslots.create({ id: s.freeId, guestPhysAddr: s.b.endGfn * 4096, size: 4097 }),
  },
  {
    name: 'create a memslot of size zero',
    code: 'MEMSLOT_ZERO_SIZE',
    run: (f, s) => f.vm.memslots.create({ id: s.freeId, guestPhysAddr: s.b.endGfn * 4096, size: 0 }),
  },
  {
    name: 'create a memslot with unknown flags',
    code: 'MEMSLOT_BAD_FLAGS',
    run: (f, s) => f.vm.memslots.create({ id: s.freeId, guestPhysAddr: s.b.endGfn * 4096, size: 4096, flags: 1 << 7 }),
  },
  {
    name: 'create a memslot beyond the guest physical space',
    code: 'MEMSLOT_OUT_OF_RANGE',
    run: (f, s) => f.vm.memslots.create({ id: s.freeId, guestPhysAddr: 2 ** f.vm.config.guestPhysBits, size: 4096 }),
  },
  { name: 'create a memslot with a negative id', code: 'MEMSLOT_BAD_ID', run: (f) => f.vm.memslots.create({ id: -1, guestPhysAddr: 0x7000_0000, size: 4096 }) },
  {
    name: 'create a memslot with an id above the limit',
    code: 'MEMSLOT_BAD_ID',
    run: (f) => f.vm.memslots.create({ id: MEMSLOT_MAX_ID + 1, guestPhysAddr: 0x7000_0000, size: 4096 }),
  },
  { name: 'delete a memslot that does not exist', code: 'MEMSLOT_UNKNOWN', run: (f, s) => f.vm.memslots.delete(s.freeId) },
  { name: 'move a memslot that does not exist', code: 'MEMSLOT_UNKNOWN', run: (f, s) => f.vm.memslots.move(s.freeId, 0x7000_0000) },
  { name: 'move a memslot onto another', code: 'MEMSLOT_OVERLAP', run: (f, s) => f.vm.memslots.move(s.a.id, s.b.baseGfn * 4096) },
  { name: 'move a memslot to an unaligned address', code: 'MEMSLOT_UNALIGNED', run: (f, s) => f.vm.memslots.move(s.a.id, s.b.endGfn * 4096 + 8) },
  { name: 'set unknown memslot flags', code: 'MEMSLOT_BAD_FLAGS', run: (f, s) => f.vm.memslots.setFlags(s.a.id, 1 << 9) },
  { name: 'turn READONLY on after creation', code: 'MEMSLOT_BAD_FLAGS', run: (f, s) => f.vm.memslots.setFlags(s.a.id, MemslotFlags.READONLY) },
  { name: 'get the dirty log of a memslot that does not log', code: 'MEMSLOT_BAD_FLAGS', run: (f, s) => f.vm.memslots.getDirtyLog(s.a.id) },
  {
    name: 'translate a write-and-fetch access',
    code: 'BAD_ARGUMENT',
    run: (f, s) => f.vcpus[0]!.translate(f.guest.vpnOf(s.a.baseGfn) * 4096, Access.WRITE | Access.FETCH),
  },
  {
    name: 'translate an access with bits beyond the access kinds',
    code: 'BAD_ARGUMENT',
    run: (f, s) => f.vcpus[0]!.translate(f.guest.vpnOf(s.a.baseGfn) * 4096, 1 << 4),
  },
  { name: 'translate a negative address', code: 'BAD_ARGUMENT', run: (f) => f.vcpus[0]!.translate(-4096, Access.READ) },
  { name: 'ask for a vCPU that does not exist', code: 'VCPU_BAD_ID', run: (f) => f.vm.vcpu(f.vcpus.length + 5) },
  { name: 'migrate a host frame that backs nothing of the VM', code: 'HOST_BAD_FRAME', run: (f) => f.vm.migrateHostFrame(f.vm.memslots.host.frameCount - 1) },
  { name: 'migrate the shared zero frame', code: 'HOST_BAD_FRAME', run: (f) => f.vm.migrateHostFrame(f.vm.memslots.host.zeroFrame) },
];
