import { Access, DEFAULT_CONTEXT, FaultKind, HvmmuError, type BackendModule, type Vcpu, type Vm } from '@hvmmu/core';
import { GuestPerm, type ConformanceGuest, type ConformanceHarness, type DataRegion, type HostileGuestAction } from './ConformanceHarness.js';
import { accessAnswer, hypercallAnswer } from './GuestAnswers.js';
import type { MmuSnapshot } from '@hvmmu/core';
import {
  IDENTITY_HYPERCALL_ABI,
  IDENTITY_PAGING_MODE,
  IdentityFaultCode,
  IdentityHypercall,
  IdentityMmu,
  ProtectionBits,
  accessFaultBits,
  identityMapBackend,
} from '@hvmmu/reference';

/** The harness's own memslot: one page at gpa 0 holding the protection table. */
const SYSTEM_SLOT_ID = 0;
const PROTECTION_TABLE_GPA = 0;
/** One byte per guest page: the one-page table covers gfns [0, 4096). */
const PROTECTION_TABLE_PAGES = 4096;
/** A gfn the table covers but no memslot backs, for hostile entries. */
const HOSTILE_GFN = 0x800;
/** A guest physical address no memslot backs. */
const HOLE_GPA = 0x4000_0000;

const DATA_REGION: DataRegion = { baseGfn: 0x100, pages: 0x100, slotIds: [1, 2, 3, 4, 5, 6] };

/**
 * The conformance harness of the identity backend, and an example of one:
 * the guest's "page tables" are the protection table (one byte per page in
 * memslot 0, loaded into each vCPU's register at start), virtual page = gfn,
 * and a guest invalidation of a page is a flush of that page in each vCPU's
 * TLB (what INVLPG does to the CPU's own TLB).
 */
export function createIdentityMapHarness(backend: BackendModule = identityMapBackend): ConformanceHarness {
  return {
    name: backend.id,
    backend,
    pagingMode: IDENTITY_PAGING_MODE,
    dataRegion: DATA_REGION,
    variants: backend.capabilities.memslotInvalidation.map((strategy) => ({
      name: strategy,
      memslotInvalidation: strategy,
      backendOptions: { memslotInvalidation: strategy },
    })),
    attach: (vm) => new IdentityMapGuest(vm),
  };
}

class IdentityMapGuest implements ConformanceGuest {
  private readonly mmu: IdentityMmu;

  constructor(private readonly vm: Vm) {
    if (!(vm.mmu instanceof IdentityMmu)) {
      throw new HvmmuError('BACKEND_INVALID', `the identity harness needs a VM of the identity backend, got '${vm.backend.id}'`);
    }
    this.mmu = vm.mmu;
    vm.memslots.create({ id: SYSTEM_SLOT_ID, guestPhysAddr: PROTECTION_TABLE_GPA, size: 4096 });
  }

  initVcpu(vcpu: Vcpu): void {
    this.mmu.translatorOf(vcpu).setProtectionTable(PROTECTION_TABLE_GPA, PROTECTION_TABLE_PAGES);
  }

  vpnOf(gfn: number): number {
    return gfn;
  }

  map(gfn: number, perm: number): void {
    this.setProtection(
      gfn,
      ProtectionBits.PRESENT |
        ((perm & GuestPerm.WRITE) !== 0 ? ProtectionBits.WRITE : 0) |
        ((perm & GuestPerm.EXEC) !== 0 ? ProtectionBits.EXEC : 0) |
        ((perm & GuestPerm.USER) !== 0 ? ProtectionBits.USER : 0),
    );
  }

  unmap(gfn: number): void {
    this.setProtection(gfn, 0);
  }

  guestFaultCode(access: number, present: boolean): number {
    return (present ? IdentityFaultCode.PRESENT : 0) | accessFaultBits(access);
  }

  inspect(): MmuSnapshot {
    return this.mmu.inspect();
  }

  hostileActions(): readonly HostileGuestAction[] {
    const maxGpa = 2 ** this.vm.config.guestPhysBits;
    const guestFault = (code: number) => ({ kind: 'fault', fault: FaultKind.GUEST, code }) as const;
    const actions: HostileGuestAction[] = [
      {
        name: 'a protection byte with reserved bits set',
        expected: guestFault(IdentityFaultCode.PRESENT | IdentityFaultCode.RSVD | IdentityFaultCode.WRITE),
        prepare: () => this.setProtection(HOSTILE_GFN, 0x80 | ProtectionBits.PRESENT | ProtectionBits.WRITE),
        perform: (vcpu) => accessAnswer(vcpu, HOSTILE_GFN * 4096, Access.WRITE),
      },
      {
        name: 'an access beyond the guest physical address width',
        expected: guestFault(IdentityFaultCode.RSVD),
        perform: (vcpu) => accessAnswer(vcpu, maxGpa, Access.READ),
      },
      {
        name: 'an access to a page beyond the protection table',
        expected: guestFault(IdentityFaultCode.USER | IdentityFaultCode.FETCH),
        perform: (vcpu) => accessAnswer(vcpu, PROTECTION_TABLE_PAGES * 4096, Access.USER | Access.FETCH),
      },
      {
        name: 'a protection table outside guest memory',
        expected: guestFault(IdentityFaultCode.TABLE),
        prepare: (vcpu) => this.mmu.translatorOf(vcpu).setProtectionTable(HOLE_GPA, PROTECTION_TABLE_PAGES),
        perform: (vcpu) => accessAnswer(vcpu, (DATA_REGION.baseGfn + 1) * 4096, Access.READ),
      },
    ];
    if (!this.mmu.features.hypercalls) return actions;
    const bad = { kind: 'hypercall', status: IDENTITY_HYPERCALL_ABI.badParameter } as const;
    const setTable = IdentityHypercall.SET_PROTECTION_TABLE;
    const query = IdentityHypercall.QUERY_PAGE;
    return [
      ...actions,
      { name: 'SET_PROTECTION_TABLE with an unaligned base', expected: bad, perform: (vcpu) => hypercallAnswer(vcpu, setTable, [0x123, 16]) },
      { name: 'SET_PROTECTION_TABLE over a memory hole', expected: bad, perform: (vcpu) => hypercallAnswer(vcpu, setTable, [HOLE_GPA, 16]) },
      {
        name: 'SET_PROTECTION_TABLE running from memory into a hole',
        expected: bad,
        perform: (vcpu) => hypercallAnswer(vcpu, setTable, [PROTECTION_TABLE_GPA, 2 * 4096]),
      },
      { name: 'SET_PROTECTION_TABLE with a base above 2^53', expected: bad, perform: (vcpu) => hypercallAnswer(vcpu, setTable, [[0xffff_ffff, 0], 16]) },
      {
        name: 'SET_PROTECTION_TABLE past the guest physical space',
        expected: bad,
        perform: (vcpu) => hypercallAnswer(vcpu, setTable, [maxGpa - 4096, 2 * 4096]),
      },
      { name: 'SET_PROTECTION_TABLE with a base but no pages', expected: bad, perform: (vcpu) => hypercallAnswer(vcpu, setTable, [0x1000, 0]) },
      { name: 'QUERY_PAGE beyond the guest physical space', expected: bad, perform: (vcpu) => hypercallAnswer(vcpu, query, [maxGpa]) },
      { name: 'QUERY_PAGE with bit 63 set', expected: bad, perform: (vcpu) => hypercallAnswer(vcpu, query, [[0x8000_0000, 0x1000]]) },
    ];
  }

  /** The guest writes its protection byte, then invalidates the page on every vCPU. */
  private setProtection(gfn: number, prot: number): void {
    this.vm.memslots.write8(PROTECTION_TABLE_GPA + gfn, prot);
    for (const vcpu of this.vm.vcpus) vcpu.tlb.flushPage(DEFAULT_CONTEXT, gfn);
  }
}
