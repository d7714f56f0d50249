// Live migration of a POWER hash-MMU guest between two VMs over a Node
// stream, while the guest keeps changing its HPT: the first pass sends
// every entry, each later pass only what changed since (KVM's modified
// bits, KVM_PPC_GET_HTAB_FD's format), and when a pass is small the guest
// stops for a last one. The destination's guest view ends identical, and
// its own real HPT and reverse map follow (every entry goes in through
// H_ENTER / H_REMOVE).
//
//   npm run build && node examples/dist/hptLiveMigration.js
import { Access, GuestRights, Hypervisor } from '@hvmmu/core';
import { HptGuestSide, ppcHptBackend } from '@hvmmu/ppc-hpt';
import { HtabLiveMigration, HtabWriteStream, type HtabPass } from '@hvmmu/ppc-hpt/node';
import { fileURLToPath } from 'node:url';

const PAGES = 2048;
/** A pass with at most this many entries is small enough to stop the guest for the last one. */
const CONVERGED_ENTRIES = 64;

export interface LiveMigrationResult {
  readonly passes: readonly HtabPass[];
  readonly identical: boolean;
  /** Mapped pages the destination translates to its own frame of the same guest page. */
  readonly reachable: number;
  readonly mapped: number;
}

function makeVm(hv: Hypervisor) {
  const vm = hv.createVm({ backend: ppcHptBackend, backendOptions: { hptOrder: 18 } });
  vm.memslots.create({ id: 0, guestPhysAddr: 0, size: PAGES * 4096 });
  const vcpu = vm.createVcpu();
  const guest = new HptGuestSide(vm);
  guest.activate(vcpu, 0);
  return { vm, vcpu, guest };
}

export async function runHptLiveMigration(): Promise<LiveMigrationResult> {
  const hv = new Hypervisor({ memoryBytes: 64 << 20 });
  const source = makeVm(hv);
  const target = makeVm(hv);
  const mapped = new Set<number>();
  let seed = 7;
  // xorshift32: deterministic, exact in 32-bit integer arithmetic.
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
  const migration = new HtabLiveMigration(source.vm.arch.htab, { readBytes: 16384 });
  const passes: HtabPass[] = [];
  // The guest runs on while each pass is sent, changing fewer entries as it settles (a working
  // set that stabilises); once a pass is small, the guest is stopped.
  for (let churn = 400; ; churn = Math.floor(churn / 3)) {
    const sent = await migration.pass(new HtabWriteStream(target.vm.arch.htab));
    passes.push(sent);
    for (let k = 0; k < churn; k++) {
      const p = next(PAGES);
      if (mapped.has(p)) {
        source.guest.unmap(0, 0x1_0000 + p);
        mapped.delete(p);
      } else {
        source.guest.map(0, 0x1_0000 + p, p, GuestRights.WRITE | GuestRights.USER);
        mapped.add(p);
      }
    }
    if (sent.pass > 0 && sent.entries <= CONVERGED_ENTRIES) break;
  }
  // Stopped: the last pass.
  passes.push(await migration.pass(new HtabWriteStream(target.vm.arch.htab)));
  // The same valid entries, word for word (an invalid entry's stale dword1 is not migrated: H_REMOVE leaves it, the stream does not carry it).
  const a = source.vm.arch.hpt.guest;
  const b = target.vm.arch.hpt.guest;
  let identical = true;
  for (let i = 0; i < a.entries && identical; i++) {
    if (a.isValid(i) !== b.isValid(i)) identical = false;
    else if (a.isValid(i)) identical = Buffer.from(a.bytes.subarray(i * 16, i * 16 + 16)).equals(Buffer.from(b.bytes.subarray(i * 16, i * 16 + 16)));
  }
  let reachable = 0;
  target.guest.activate(target.vcpu, 0);
  for (const p of mapped) {
    const va = (0x1_0000 + p) * 4096;
    let hpa = target.vcpu.translate(va, Access.USER);
    // The destination's kernel loads its SLB on the first touch of the segment.
    if (hpa < 0 && target.guest.handleGuestFault(target.vcpu, target.vcpu.fault)) hpa = target.vcpu.translate(va, Access.USER);
    if (hpa >= 0 && hpa === target.vm.memslots.gfnToHfn(target.vm.memslots.get(0), p, false) * 4096) reachable++;
  }
  return { passes, identical, reachable, mapped: mapped.size };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const r = await runHptLiveMigration();
  for (const p of r.passes) console.log(`pass ${p.pass}: ${p.bytes} bytes, ${p.records} records, ${p.entries} entries`);
  console.log(`guest views identical: ${r.identical}; ${r.reachable} of ${r.mapped} mapped pages reachable on the destination`);
}
