import { Access, FaultKind, type Vcpu as CoreVcpu, type Vm as CoreVm } from '@hvmmu/core';
import {
  GuestPerm,
  hypercallAnswer,
  type ConformanceGuest,
  type ConformanceHarness,
  type DataRegion,
  type GuestAnswer,
  type HostileGuestAction,
  type MmuSnapshot,
} from '@hvmmu/conformance';
import { HptCause, HptGuestSide, HptHcall, PaprStatus, ppcHptBackend, type PpcHptTypes } from '@hvmmu/ppc-hpt';

type Vcpu = CoreVcpu<PpcHptTypes>;
type Vm = CoreVm<PpcHptTypes>;

/** Guest virtual page of gfn g: VPN_BASE + g, all in one 256 MiB segment (ESID 1). */
const VPN_BASE = 0x1_0000;
const DATA_REGION: DataRegion = { baseGfn: 0x1000, pages: 0x100, slotIds: [1, 2, 3, 4, 5, 6] };

/**
 * The HPT backend's conformance harness: a pseries guest whose kernel maps
 * pages with H_ENTER and removes them with H_REMOVE (`HptGuestSide`), one
 * address space, its segment loaded in every vCPU's SLB. The DSISR / SRR1
 * cause bits are the fault code (POWER ISA v2.07 Book III 6.5.3, 6.5.5):
 * NOPTE for no entry, PROTFAULT for a refused right, NOEXEC_GUARD for a
 * fetch from a no-execute page, STORE for data stores.
 */
export function createHptHarness(): ConformanceHarness {
  return {
    name: 'ppc-hpt (pseries guest, 4K pages)',
    backend: ppcHptBackend,
    pagingMode: 'ppc-hash',
    dataRegion: DATA_REGION,
    // Each strategy, with the real HPT in POWER8's layout and in POWER9's (the guest must see no difference).
    variants: ppcHptBackend.capabilities.memslotInvalidation.flatMap((strategy) =>
      (['power8', 'power9'] as const).map((cpu) => ({
        name: `${strategy}, ${cpu}`,
        memslotInvalidation: strategy,
        backendOptions: { memslotInvalidation: strategy, hptOrder: 18, cpu },
      })),
    ),
    attach: (vm) => new HptGuest(vm as unknown as Vm),
  };
}

class HptGuest implements ConformanceGuest {
  private readonly side: HptGuestSide;

  constructor(private readonly vm: Vm) {
    this.side = new HptGuestSide(vm);
  }

  initVcpu(vcpu: Vcpu): void {
    this.side.activate(vcpu, 0);
    this.side.loadSegment(vcpu, VPN_BASE);
  }

  vpnOf(gfn: number): number {
    return VPN_BASE + gfn;
  }

  map(gfn: number, perm: number): void {
    this.side.map(0, this.vpnOf(gfn), gfn, perm);
  }

  unmap(gfn: number): void {
    this.side.unmap(0, this.vpnOf(gfn));
  }

  guestFaultCode(access: number, present: boolean, perm = 0): number {
    const store = (access & Access.WRITE) !== 0 ? HptCause.STORE : 0;
    if (!present) return HptCause.NOPTE | store;
    if ((access & Access.FETCH) !== 0) return (perm & GuestPerm.EXEC) === 0 ? HptCause.NOEXEC_GUARD : HptCause.PROTFAULT;
    return HptCause.PROTFAULT | store;
  }

  inspect(): MmuSnapshot {
    return this.vm.arch.inspect();
  }

  hostileActions(): readonly HostileGuestAction[] {
    const status = (s: number): GuestAnswer => ({ kind: 'hypercall', status: s });
    const entries = this.vm.arch.hpt.guest.entries;
    const gfnA = DATA_REGION.baseGfn + 3;
    const v0 = (vpn: number, extraLo = 0): [number, number] => [
      0,
      (((1 * 0x10_0000 + (vpn >>> 16)) % 0x10_0000) * 4096 + ((vpn & 0xffff) >>> 11) * 0x80 + 1 + extraLo) >>> 0,
    ];
    return [
      {
        name: 'H_ENTER with a ptex past the table',
        expected: status(PaprStatus.H_PARAMETER),
        perform: (vcpu) => hypercallAnswer(vcpu, HptHcall.H_ENTER, [0, entries, v0(this.vpnOf(gfnA)), gfnA * 4096 + 0x12]),
      },
      {
        name: 'H_ENTER with an L/LP encoding no page size has',
        expected: status(PaprStatus.H_PARAMETER),
        perform: (vcpu) => hypercallAnswer(vcpu, HptHcall.H_ENTER, [0, 0, v0(this.vpnOf(gfnA), 0x4), 0x2000 + 0x12]),
      },
      {
        name: 'H_ENTER of a 16M page over a memslot backed by 4K host pages',
        expected: status(PaprStatus.H_PARAMETER),
        prepare: () => this.vm.memslots.create({ id: 9, guestPhysAddr: 0x4000_0000, size: 16 * 1024 * 1024 }),
        perform: (vcpu) => hypercallAnswer(vcpu, HptHcall.H_ENTER, [0, 0, v0(0x40_0000, 0x4), 0x4000_0000 + 0x12]),
      },
      {
        name: 'H_REMOVE of an empty entry',
        expected: status(PaprStatus.H_NOT_FOUND),
        perform: (vcpu) => hypercallAnswer(vcpu, HptHcall.H_REMOVE, [0, 5, 0]),
      },
      {
        name: 'H_PROTECT with a ptex of 2^63',
        expected: status(PaprStatus.H_PARAMETER),
        perform: (vcpu) => hypercallAnswer(vcpu, HptHcall.H_PROTECT, [0, [0x8000_0000, 0], 0]),
      },
      {
        name: 'H_BULK_REMOVE with a request of type 2',
        expected: status(PaprStatus.H_PARAMETER),
        perform: (vcpu) => hypercallAnswer(vcpu, HptHcall.H_BULK_REMOVE, [[0x8000_0000, 0], 0, [0xc000_0000, 0], 0]),
      },
      {
        name: 'an unknown hcall number',
        expected: status(PaprStatus.H_FUNCTION),
        perform: (vcpu) => hypercallAnswer(vcpu, 0xf000, []),
      },
      {
        name: 'a load from a segment the SLB does not hold (data segment interrupt)',
        expected: { kind: 'fault', fault: FaultKind.GUEST, code: 0 },
        perform: (vcpu) => {
          vcpu.translate(0x7000_0000_0000, Access.READ);
          return { kind: 'fault', fault: vcpu.fault.kind, code: vcpu.fault.vector === 0x380 ? 0 : -1 };
        },
      },
    ];
  }
}
