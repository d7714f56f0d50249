import { Access, GuestRights, Hypervisor } from '@hvmmu/core';

/** One pass of the demo's live migration. */
export interface MigrationPassFigures {
  readonly pass: number;
  readonly bytes: number;
  readonly entries: number;
}

export interface HptMigrationFigures {
  readonly passes: readonly MigrationPassFigures[];
  /** The destination's valid entries equal the source's, word for word. */
  readonly identical: boolean;
  readonly reachable: number;
  readonly mapped: number;
}

const PAGES = 2048;
const CONVERGED_ENTRIES = 64;

/**
 * A live migration of a POWER hash guest's HPT between two VMs over Node
 * streams (KVM's HTAB format), the guest entering and removing HPTEs between
 * passes with less and less churn; once a pass is small the guest stops and a
 * last pass makes the destination exact. Undefined if @hvmmu/ppc-hpt is not
 * installed.
 */
export async function runHptMigrationDemo(): Promise<HptMigrationFigures | undefined> {
  let hpt: typeof import('@hvmmu/ppc-hpt');
  let node: typeof import('@hvmmu/ppc-hpt/node');
  try {
    hpt = await import('@hvmmu/ppc-hpt');
    node = await import('@hvmmu/ppc-hpt/node');
  } catch {
    return undefined;
  }
  const hv = new Hypervisor({ memoryBytes: 64 << 20 });
  const make = () => {
    const vm = hv.createVm({ backend: hpt.ppcHptBackend, backendOptions: { hptOrder: 18 } });
    vm.memslots.create({ id: 0, guestPhysAddr: 0, size: PAGES * 4096 });
    const vcpu = vm.createVcpu();
    const guest = new hpt.HptGuestSide(vm);
    guest.activate(vcpu, 0);
    return { vm, vcpu, guest };
  };
  const source = make();
  const target = make();
  const mapped = new Set<number>();
  let seed = 0x2545_f491;
  const next = (n: number): number => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) % n;
  };
  for (let p = 0; p < PAGES / 2; p++) {
    source.guest.map(0, 0x1_0000 + p, p, GuestRights.WRITE | GuestRights.USER);
    mapped.add(p);
  }
  const migration = new node.HtabLiveMigration(source.vm.arch.htab, { readBytes: 16384 });
  const passes: MigrationPassFigures[] = [];
  for (let churn = 400; ; churn = Math.floor(churn / 3)) {
    const sent = await migration.pass(new node.HtabWriteStream(target.vm.arch.htab));
    passes.push({ pass: sent.pass, bytes: sent.bytes, entries: sent.entries });
    for (let k = 0; k < churn; k++) {
      const p = next(PAGES);
      if (mapped.delete(p)) source.guest.unmap(0, 0x1_0000 + p);
      else {
        source.guest.map(0, 0x1_0000 + p, p, GuestRights.WRITE | GuestRights.USER);
        mapped.add(p);
      }
    }
    if (sent.pass > 0 && sent.entries <= CONVERGED_ENTRIES) break;
  }
  const last = await migration.pass(new node.HtabWriteStream(target.vm.arch.htab));
  passes.push({ pass: last.pass, bytes: last.bytes, entries: last.entries });
  const a = source.vm.arch.hpt.guest;
  const b = target.vm.arch.hpt.guest;
  let identical = true;
  for (let i = 0; i < a.entries && identical; i++) {
    if (a.isValid(i) !== b.isValid(i)) identical = false;
    else if (a.isValid(i)) for (let k = 0; k < 16; k++) if (a.bytes[i * 16 + k] !== b.bytes[i * 16 + k]) identical = false;
  }
  let reachable = 0;
  for (const p of mapped) {
    const va = (0x1_0000 + p) * 4096;
    let hpa = target.vcpu.translate(va, Access.USER);
    if (hpa < 0 && target.guest.handleGuestFault(target.vcpu, target.vcpu.fault)) hpa = target.vcpu.translate(va, Access.USER);
    if (hpa >= 0) reachable++;
  }
  hv.destroyVm(source.vm);
  hv.destroyVm(target.vm);
  return { passes, identical, reachable, mapped: mapped.size };
}
