import { Access, FaultKind, HvmmuError, TRANSLATE_FAULT, type Vcpu as CoreVcpu, type Vm as CoreVm } from '@hvmmu/core';
import {
  accessAnswer,
  type ConformanceGuest,
  type ConformanceHarness,
  type DataRegion,
  type GuestAnswer,
  type HostileGuestAction,
  type MmuSnapshot,
} from '@hvmmu/conformance';
import { Dsisr, PpcRadixMmu, RadixGuestAddressSpaces, SRR1_NOEXEC_GUARD, ppcRadixBackend, radixGuestSide, type PpcRadixTypes } from '@hvmmu/ppc-radix';

type Vm = CoreVm<PpcRadixTypes>;
type Vcpu = CoreVcpu<PpcRadixTypes>;

/** The harness's own memslot: the guest's process table and radix trees. */
const SYSTEM_SLOT_ID = 0;
const SYSTEM_PAGES = 256;
/** Guest virtual page of gfn g: VPN_BASE + g (EA 4 GiB + g pages, quadrant 0, PID 0). */
const VPN_BASE = 0x10_0000;
const DATA_REGION: DataRegion = { baseGfn: 0x1000, pages: 0x100, slotIds: [1, 2, 3, 4, 5, 6] };
/** A page the hostile actions map and walk first, so every table page on its path is already in L0's table. */
const WARM_VPN = 0x18_0000; // PMD and PTE index 0, PUD index 6
const WARM_GFN = SYSTEM_PAGES - 1;
const TWO_POW_32 = 0x1_0000_0000;

/**
 * The radix backend's conformance harness: a pseries radix guest whose
 * process table and 4K-geometry trees (the backend's own guest side) live
 * in memslot 0; vpnOf(gfn) = 0x100000 + gfn in PID 0's user quadrant. A
 * guest change is what Linux does: write the leaf, then tlbie the page.
 */
export function createRadixHarness(): ConformanceHarness {
  return {
    name: 'ppc-radix (KVM-HV radix host side)',
    backend: ppcRadixBackend,
    pagingMode: 'radix',
    dataRegion: DATA_REGION,
    variants: ppcRadixBackend.capabilities.memslotInvalidation.map((strategy) => ({
      name: strategy,
      memslotInvalidation: strategy,
      backendOptions: { memslotInvalidation: strategy },
    })),
    attach: (vm) => new RadixConformanceGuest(vm as unknown as Vm),
  };
}

/** A radix guest's own fault code — DSI: DSISR NOPTE or PROTFAULT, with ISSTORE for a store; ISI: SRR1 NOPTE, or NOEXEC_GUARD for a refused fetch. */
export function radixGuestFaultCode(access: number, present: boolean): number {
  if ((access & Access.FETCH) !== 0) return present ? SRR1_NOEXEC_GUARD : Dsisr.NOPTE;
  return ((present ? Dsisr.PROTFAULT : Dsisr.NOPTE) | ((access & Access.WRITE) !== 0 ? Dsisr.STORE : 0)) >>> 0;
}

export class RadixConformanceGuest implements ConformanceGuest {
  readonly mmu: PpcRadixMmu;
  readonly spaces: RadixGuestAddressSpaces;

  constructor(private readonly vm: Vm) {
    if (!(vm.mmu instanceof PpcRadixMmu)) throw new HvmmuError('BACKEND_INVALID', 'the radix harness needs the ppc-radix backend');
    this.mmu = vm.mmu;
    vm.memslots.create({ id: SYSTEM_SLOT_ID, guestPhysAddr: 0, size: SYSTEM_PAGES * 4096 });
    this.spaces = radixGuestSide.create(vm, { baseGfn: 0, pages: SYSTEM_PAGES - 1 });
  }

  initVcpu(vcpu: CoreVcpu): void {
    this.spaces.activate(vcpu as unknown as Vcpu, 0);
  }

  vpnOf(gfn: number): number {
    return VPN_BASE + gfn;
  }

  map(gfn: number, perm: number): void {
    this.spaces.map(0, this.vpnOf(gfn), gfn, perm);
  }

  unmap(gfn: number): void {
    this.spaces.unmap(0, this.vpnOf(gfn));
  }

  guestFaultCode(access: number, present: boolean, _perm?: number): number {
    return radixGuestFaultCode(access, present);
  }

  inspect(): MmuSnapshot {
    return this.mmu.inspect();
  }

  hostileActions(): readonly HostileGuestAction[] {
    const fault = (kind: number, code: number): GuestAnswer => ({
      kind: 'fault',
      fault: kind as GuestAnswer extends { fault: infer F } ? F : never,
      code: code >>> 0,
    });
    const warmRead = (vcpu: CoreVcpu): GuestAnswer => accessAnswer(vcpu, WARM_VPN * 4096, Access.READ);
    return [
      {
        name: 'an EA with bits 61..52 set (data segment interrupt)',
        expected: fault(FaultKind.GUEST, 0),
        prepare: (vcpu) => this.warm(vcpu),
        perform: (vcpu) => accessAnswer(vcpu, 2 ** 52, Access.READ),
      },
      {
        name: 'a guest load from quadrant 1 (data segment interrupt)',
        expected: fault(FaultKind.GUEST, 0),
        prepare: (vcpu) => this.warm(vcpu),
        perform: (vcpu) => answerPage(vcpu, 2 ** 50, Access.READ),
      },
      {
        name: 'a guest fetch from quadrant 2 (instruction segment interrupt)',
        expected: fault(FaultKind.GUEST, 0),
        prepare: (vcpu) => this.warm(vcpu),
        perform: (vcpu) => answerPage(vcpu, 2 ** 51, Access.FETCH),
      },
      {
        name: 'a PMD entry whose next level has NLS 7 (bad radix configuration)',
        expected: fault(FaultKind.GUEST, Dsisr.BADCONFIG),
        prepare: (vcpu) => {
          this.warm(vcpu);
          const [at, hi, lo] = this.entry(WARM_VPN, 2);
          this.store(at, hi, ((lo & ~0x1f) | 7) >>> 0);
        },
        perform: warmRead,
      },
      {
        name: 'a PMD entry pointing at a table outside guest memory (reflected PRTABLE fault)',
        expected: fault(FaultKind.GUEST, Dsisr.NOPTE | Dsisr.PRTABLE_FAULT),
        prepare: (vcpu) => {
          this.warm(vcpu);
          const [at] = this.entry(WARM_VPN, 2);
          this.store(at, 0x8000_0040, 9); // gpa 256 GiB, NLS 9
        },
        perform: warmRead,
      },
      {
        name: 'a PMD entry pointing at its own table (a loop ends after four levels)',
        expected: fault(FaultKind.GUEST, Dsisr.BADCONFIG),
        prepare: (vcpu) => {
          this.warm(vcpu);
          const [at] = this.entry(WARM_VPN, 2);
          const table = at - (at % 4096);
          this.store(at, (0x8000_0000 | Math.floor(table / TWO_POW_32)) >>> 0, ((table % TWO_POW_32) | 9) >>> 0);
        },
        perform: warmRead,
      },
      {
        name: 'a leaf naming a guest real address no memslot backs (exit to the VMM)',
        expected: fault(FaultKind.NO_MEMORY, 0),
        prepare: (vcpu) => {
          this.warm(vcpu);
          const [at, , lo] = this.entry(WARM_VPN, 3);
          this.store(at, 0xc000_0040, lo & 0xfff); // ra 256 GiB
        },
        perform: warmRead,
      },
      {
        name: 'a PID whose process-table entry is zero',
        expected: fault(FaultKind.GUEST, Dsisr.BADCONFIG | Dsisr.STORE),
        prepare: (vcpu) => {
          this.warm(vcpu);
          (vcpu as unknown as Vcpu).arch.setPid(77);
        },
        perform: (vcpu) => accessAnswer(vcpu, WARM_VPN * 4096, Access.WRITE),
      },
    ];
  }

  /** Map WARM_VPN and read it once: the tree is ready and every table page on its path is in L0's table. */
  private warm(vcpu: CoreVcpu): void {
    this.spaces.map(0, WARM_VPN, WARM_GFN, 0);
    if (vcpu.translate(WARM_VPN * 4096, Access.READ) === TRANSLATE_FAULT) throw new Error(`harness: warm-up read faulted (${vcpu.fault.kind})`);
  }

  /** [gpa, hi, lo] of the entry translating vpn at `level` (0 root … 3 leaf) in PID 0's tree. */
  private entry(vpn: number, level: number): [number, number, number] {
    const mem = this.vm.memslots;
    let table = this.spaces.treeOf(0).root;
    const shifts = [39, 30, 21, 12];
    const bits = [13, 9, 9, 9];
    for (let l = 0; ; l++) {
      const at = table + (Math.floor((vpn * 4096) / 2 ** shifts[l]!) % 2 ** bits[l]!) * 8;
      const hi = mem.read64Hi(at, false);
      const lo = mem.read64Lo(at, false);
      if (l === level) return [at, hi, lo];
      table = (hi & 0x0fff_ffff) * TWO_POW_32 + ((lo & 0xffff_ff00) >>> 0);
    }
  }

  /** The guest's store of an entry (through its memory), then tlbie of the page. */
  private store(at: number, hi: number, lo: number): void {
    this.vm.memslots.write64Halves(at, hi, lo, false);
    this.mmu.guestTlbiePage(0, WARM_VPN);
  }
}

/** An access to a virtual page number beyond 2^53 bytes, through the page API. */
function answerPage(vcpu: CoreVcpu, vpn: number, access: number): GuestAnswer {
  if (vcpu.translatePage(vpn, access) !== TRANSLATE_FAULT) return { kind: 'completed' };
  return { kind: 'fault', fault: vcpu.fault.kind, code: vcpu.fault.code };
}
