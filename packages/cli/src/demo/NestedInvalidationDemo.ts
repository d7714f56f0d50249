import { Access, FaultDestination, GuestRights, Hypervisor, type Vcpu } from '@hvmmu/core';
import type { PpcRadixTypes, RadixNestedGuestAddressSpaces } from '@hvmmu/ppc-radix';

/** What `hvmmu demo` shows of a host invalidation under a running L2 (`DemoOutput.nestedInvalidation`). */
export interface NestedInvalidationFigures {
  /** L1's LPID for the L2, and the shadow LPID L0 runs it under. */
  readonly l2Lpid: number;
  readonly shadowLpid: number;
  /** Pages the L2 wrote before the invalidation (one shadow leaf each). */
  readonly pagesTouched: number;
  /** The page invalidated: the L2's virtual page, the L1 page behind it (= the L2 real page: L1 maps its L2 at the same addresses), its host frame. */
  readonly l2Vpn: number;
  readonly l1Gfn: number;
  readonly hfn: number;
  /** Entries of that L1 page's nested rmap list just before (the shadow entries L0 knows it must remove). */
  readonly rmapEntriesNamed: number;
  /** What `vm.memslots.invalidateHostRange` returned: L0's own leaves dropped (the shadow leaves are counted below). */
  readonly l0MappingsDropped: number;
  readonly shadowLeavesBefore: number;
  readonly shadowLeavesAfter: number;
  /** The vCPU still ran the L2 after the invalidation (no exit to L1). */
  readonly stillInL2: boolean;
  /** The L2's next access to the page. */
  readonly refault: {
    /** L2 partition-scoped faults it took, and of those reflected to L1 (0: L0 resolved it alone). */
    readonly l2Faults: number;
    readonly reflectedToL1: number;
    /** L0's leaf for the L1 page rebuilt, and the shadow leaf. */
    readonly l0Instantiations: number;
    readonly shadowInserts: number;
    /** The same host frame as before (the notifier dropped mappings, not the page), and the bytes the L2 wrote there still read back. */
    readonly sameFrame: boolean;
    readonly bytesKept: boolean;
  };
}

const TABLE_GFN = 0x1000;
const DATA_GFN = 0x4000;
const PAGES = 16;
const VPN_BASE = 0x1_0000;
/** The page the host invalidates. */
const VICTIM = 5;

/**
 * A host invalidation under a running nested guest: an L2 (the radix
 * nested guest side: an L1 hypervisor that registered its partition table,
 * built its tree for the L2 and entered it) writes 16 pages; L0's MMU
 * notifier then invalidates the host frame behind one of them
 * (`vm.memslots.invalidateHostRange`, as when the host swaps or migrates the
 * page). L0's leaf for the L1 page goes, and through the page's nested rmap
 * list the L2's shadow leaf too, while the vCPU stays in the L2; its next
 * access to the page faults, and L0 alone rebuilds both leaves. Null when
 * `@hvmmu/ppc-radix` is not installed.
 */
export async function runNestedInvalidationDemo(): Promise<NestedInvalidationFigures | null> {
  let radix: typeof import('@hvmmu/ppc-radix');
  try {
    radix = await import('@hvmmu/ppc-radix');
  } catch {
    return null;
  }
  const hv = new Hypervisor({ memoryBytes: 64 << 20 });
  const vm = hv.createVm({ backend: radix.ppcRadixBackend, backendOptions: { nestedHv: true } });
  try {
    const side = radix.radixNestedGuestSide;
    const tablePages = side.tablePagesFor(PAGES, 1);
    vm.memslots.create({ id: 0, guestPhysAddr: TABLE_GFN * 4096, size: tablePages * 4096 });
    vm.memslots.create({ id: 1, guestPhysAddr: DATA_GFN * 4096, size: PAGES * 4096 });
    const guest = side.create(vm, { baseGfn: TABLE_GFN, pages: tablePages });
    const vcpu = vm.createVcpu();
    guest.activate(vcpu, 0);
    for (let p = 0; p < PAGES; p++) {
      guest.map(0, VPN_BASE + p, DATA_GFN + p, GuestRights.WRITE | GuestRights.USER);
      const hpa = l2Access(guest, vcpu, (VPN_BASE + p) * 4096, Access.WRITE | Access.USER);
      hv.memory.view.setUint32(hpa, 0xc0de_0000 + p, true);
    }
    const slot = vm.memslots.get(1);
    const hfn = slot.frames[VICTIM]!;
    const before = vm.stats();
    const rmapEntriesNamed = slot.arch.nested.entries(VICTIM).length;
    const l0MappingsDropped = vm.memslots.invalidateHostRange(hfn, hfn + 1);
    const after = vm.stats();
    const stillInL2 = vcpu.arch.inL2;
    const shadowLpid = vcpu.arch.nested?.guest.shadowLpid ?? -1;
    const hpa = l2Access(guest, vcpu, (VPN_BASE + VICTIM) * 4096, Access.READ | Access.USER);
    const again = vm.stats();
    return {
      l2Lpid: guest.lpid,
      shadowLpid,
      pagesTouched: PAGES,
      l2Vpn: VPN_BASE + VICTIM,
      l1Gfn: DATA_GFN + VICTIM,
      hfn,
      rmapEntriesNamed,
      l0MappingsDropped,
      shadowLeavesBefore: before.ppcRadixShadowLeaves,
      shadowLeavesAfter: after.ppcRadixShadowLeaves,
      stillInL2,
      refault: {
        l2Faults: again.ppcRadixL2Faults - after.ppcRadixL2Faults,
        reflectedToL1: again.ppcRadixL2Reflected - after.ppcRadixL2Reflected,
        l0Instantiations: again.ppcRadixInstantiations - after.ppcRadixInstantiations,
        shadowInserts: again.ppcRadixShadowInserts - after.ppcRadixShadowInserts,
        sameFrame: Math.floor(hpa / 4096) === hfn,
        bytesKept: hv.memory.view.getUint32(hpa, true) === 0xc0de_0000 + VICTIM,
      },
    };
  } finally {
    hv.destroyVm(vm);
  }
}

/** An L2 access, with L1 mapping L2 real pages its tree lacks (the exits reflected to it); the host address. */
function l2Access(guest: RadixNestedGuestAddressSpaces, vcpu: Vcpu<PpcRadixTypes>, va: number, access: number): number {
  for (let attempt = 0; attempt < 8; attempt++) {
    const hpa = vcpu.translate(va, access);
    if (hpa >= 0) return hpa;
    if (vcpu.fault.destination !== FaultDestination.HYPERVISOR || !guest.handleHypervisorFault(vcpu, vcpu.fault)) break;
  }
  throw new Error(`demo: the L2's access to 0x${va.toString(16)} faulted (vector 0x${vcpu.fault.vector.toString(16)}, kind ${vcpu.fault.kind})`);
}
