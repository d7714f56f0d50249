import { Access, FaultKind, HvmmuError, TRANSLATE_FAULT, type Vcpu as CoreVcpu, type Vm as CoreVm } from '@hvmmu/core';
import type { X86ShadowTypes, X86VcpuMmu } from '@hvmmu/x86-shadow/internal';
import {
  GuestPerm,
  type ConformanceGuest,
  type ConformanceHarness,
  type DataRegion,
  type GuestAnswer,
  type HostileGuestAction,
  type MappingLeaf,
  type MmuSnapshot,
  type RmapRecord,
} from '@hvmmu/conformance';
import { PTE_LIST_SPTE_SKIP, SlotRmap, VECTOR_GP, X86ShadowMmu, x86ShadowBackend } from '@hvmmu/x86-shadow/internal';
import { NX_HI, P, PS, U, W } from './guest.js';
type Vcpu = CoreVcpu<X86ShadowTypes>;
type Vm = CoreVm<X86ShadowTypes>;

/** The harness's own memslot (page tables), below the data region. */
const SYSTEM_SLOT_ID = 0;
const SYSTEM_PAGES = 256;
/** The guest maps its own page-table pages here (window vpn = this + system page). */
const WINDOW_VPN = 0x1000;
/** Guest virtual page of gfn g: VPN_BASE + g (VA 4 GiB + g pages). */
const VPN_BASE = 0x10_0000;
const DATA_REGION: DataRegion = { baseGfn: 0x1000, pages: 0x100, slotIds: [1, 2, 3, 4, 5, 6] };

// #PF error-code bits (SDM 4.7).
const PF_P = 1;
const PF_W = 2;
const PF_U = 4;
const PF_RSVD = 8;
const PF_ID = 16;

/**
 * The x86 shadow backend's conformance harness: a 4-level long-mode guest
 * (CR0.WP=1, EFER.NXE=1, SMEP/SMAP off) whose page tables live in memslot 0;
 * vpnOf(gfn) = 0x100000 + gfn. The guest edits its own tables the way a
 * guest does — stores through its own mapping of them (so write protection,
 * emulation and unsync all apply), then INVLPG on every vCPU.
 */
export function createX86Harness(): ConformanceHarness {
  return {
    name: 'x86-shadow (4-level guest)',
    backend: x86ShadowBackend,
    pagingMode: 'x86-4level',
    dataRegion: DATA_REGION,
    variants: x86ShadowBackend.capabilities.memslotInvalidation.map((strategy) => ({
      name: strategy,
      memslotInvalidation: strategy,
      backendOptions: { memslotInvalidation: strategy },
    })),
    attach: (vm) => new X86Guest(vm as unknown as Vm),
  };
}

class X86Guest implements ConformanceGuest {
  private next = 0;
  private readonly pml4: number;
  private readonly mmu: X86ShadowMmu;

  constructor(private readonly vm: Vm) {
    if (!(vm.mmu instanceof X86ShadowMmu)) throw new HvmmuError('BACKEND_INVALID', 'the x86 harness needs the x86 shadow backend');
    this.mmu = vm.mmu;
    vm.memslots.create({ id: SYSTEM_SLOT_ID, guestPhysAddr: 0, size: SYSTEM_PAGES * 4096 });
    this.pml4 = this.alloc();
    // The window onto the system slot: vpn WINDOW_VPN + p → gpa p pages, writable, supervisor.
    for (let p = 0; p < SYSTEM_PAGES; p++) this.setPte((WINDOW_VPN + p) * 4096, p * 4096, P | W, 0, false);
  }

  initVcpu(vcpu: Vcpu): void {
    const ok = vcpu.arch.loadControlRegisters({
      cr0: 0x8001_0001, // PG | WP | PE
      cr3: this.pml4,
      cr4: 0x20, // PAE
      efer: 0x900, // NXE | LME
    });
    if (!ok) throw new Error('harness: control registers refused');
  }

  vpnOf(gfn: number): number {
    return VPN_BASE + gfn;
  }

  map(gfn: number, perm: number): void {
    const gpa = gfn * 4096;
    const lo = ((gpa % 0x1_0000_0000) | P | ((perm & GuestPerm.WRITE) !== 0 ? W : 0) | ((perm & GuestPerm.USER) !== 0 ? U : 0)) >>> 0;
    const hi = (Math.floor(gpa / 0x1_0000_0000) | ((perm & GuestPerm.EXEC) !== 0 ? 0 : NX_HI)) >>> 0;
    this.setPte(this.vpnOf(gfn) * 4096, 0, lo, hi, true);
  }

  unmap(gfn: number): void {
    this.setPte(this.vpnOf(gfn) * 4096, 0, 0, 0, true);
  }

  guestFaultCode(access: number, present: boolean): number {
    const user = (access & Access.USER) !== 0 && (access & Access.IMPLICIT) === 0;
    return (present ? PF_P : 0) | ((access & Access.WRITE) !== 0 ? PF_W : 0) | (user ? PF_U : 0) | ((access & Access.FETCH) !== 0 ? PF_ID : 0);
  }

  inspect(): MmuSnapshot {
    const pages = this.mmu.pages;
    const spt = pages.spt;
    const leaves: MappingLeaf[] = [];
    for (let sp = 1; sp < spt.capacity; sp++) {
      if (!spt.isInUse(sp) || (spt.role[sp]! & 0xf) !== 1) continue;
      for (let i = 0; i < 512; i++) {
        const e = sp * 512 + i;
        const lo = spt.sptLo[e]!;
        if ((lo & (1 << 11)) === 0) continue;
        const gfn = pages.getGfn(sp, i);
        const slot = this.vm.memslots.findByGfn(gfn);
        leaves.push({
          entry: e,
          slotId: slot?.id ?? -1,
          gfn,
          level: 1,
          pages: 1,
          hfn: (spt.sptHi[e]! & 0xfffff) * 0x10_0000 + (lo >>> 12),
          writable: (lo & 2) !== 0,
        });
      }
    }
    const rmap: RmapRecord[] = [];
    for (const slot of this.vm.memslots.slots()) {
      const r = slot.arch;
      if (!(r instanceof SlotRmap)) continue;
      for (let level = 1; level <= 3; level++) {
        const heads = r.heads[level - 1]!;
        const span = 2 ** (9 * (level - 1));
        for (let i = 0; i < heads.length; i++) {
          if (heads[i] === 0) continue;
          const entries: number[] = [];
          r.pool.collect(heads[i]!, entries);
          for (const entry of entries) {
            if (entry !== PTE_LIST_SPTE_SKIP) rmap.push({ slotId: slot.id, gfn: (Math.floor(slot.baseGfn / span) + i) * span, level, entry });
          }
        }
      }
    }
    const registers = this.vm.vcpus.map((v) => {
      const r = v.arch.regs;
      return { cr0: r.cr0, cr3: r.cr3, cr4: r.cr4, efer: r.efer };
    });
    return { leaves, rmap, registers };
  }

  hostileActions(): readonly HostileGuestAction[] {
    const fault = (code: number): GuestAnswer => ({ kind: 'fault', fault: FaultKind.GUEST, code });
    const gfnA = DATA_REGION.baseGfn + 3;
    const vaA = this.vpnOf(gfnA) * 4096;
    const read = (va: number) => (vcpu: Vcpu) => answer(vcpu, va, Access.READ);
    const write = (va: number) => (vcpu: Vcpu) => answer(vcpu, va, Access.WRITE);
    // A VA whose every table index is `k`, for the self-referencing PML4 entry.
    const k = 0x11;
    const selfVa = (((k * 512 + k) * 512 + k) * 512 + k) * 4096;
    return [
      {
        name: 'a PTE with a reserved address bit (bit 51, above MAXPHYADDR)',
        expected: fault(PF_P | PF_RSVD),
        prepare: () => this.setPte(vaA, 0, (gfnA * 4096) | P | W, 0x0008_0000, true),
        perform: read(vaA),
      },
      {
        name: 'PS set in a PML4 entry (reserved)',
        expected: fault(PF_P | PF_RSVD | PF_W),
        prepare: (vcpu) => this.guestWrite(vcpu, this.pml4 + 0x20 * 8, (this.pml4 | P | W | PS) >>> 0, 0),
        perform: write(0x20 * 512 ** 3 * 4096),
      },
      {
        name: 'a 2 MiB PDE with reserved address bits 13..20',
        expected: fault(PF_P | PF_RSVD),
        prepare: (vcpu) => this.setPde(vcpu, 0x2_0000_0000, (0x20_0000 | (1 << 13) | P | W | PS) >>> 0),
        perform: read(0x2_0000_0000),
      },
      {
        name: 'a PDE pointing at a page table outside guest memory',
        expected: fault(0),
        prepare: (vcpu) => this.setPde(vcpu, 0x2_0000_0000, (0xf000_0000 | P | W | U) >>> 0),
        perform: read(0x2_0000_1000),
      },
      {
        name: 'a self-referencing PML4 entry walked as every level, written',
        expected: fault(PF_P | PF_W),
        prepare: (vcpu) => this.guestWrite(vcpu, this.pml4 + k * 8, (this.pml4 | P) >>> 0, 0),
        perform: write(selfVa),
      },
      {
        name: 'NX set while the leaf is fetched',
        expected: fault(PF_P | PF_ID),
        prepare: () => this.setPte(vaA, 0, (gfnA * 4096) | P | W | U, NX_HI, true),
        perform: (vcpu) => answer(vcpu, vaA, Access.FETCH),
      },
      {
        name: 'a non-canonical address (#GP, no walk)',
        expected: { kind: 'exception', vector: VECTOR_GP, code: 0 },
        perform: read(2 ** 47),
      },
    ];
  }

  // -------------------------------------------------------------- tables

  private alloc(): number {
    const gpa = this.next * 4096;
    this.next++;
    if (this.next > SYSTEM_PAGES) throw new Error('harness: system slot full');
    return gpa;
  }

  /** The guest stores `lo/hi` at gpa (in the system slot) through its window, or host-side before any vCPU runs. */
  private guestWrite(vcpu: CoreVcpu | undefined, gpa: number, lo: number, hi: number): void {
    if (vcpu === undefined) {
      this.vm.memslots.write64Halves(gpa, hi, lo, true);
      return;
    }
    const x = vcpu.arch as X86VcpuMmu;
    const va = WINDOW_VPN * 4096 + gpa;
    if (!x.write(va, 8, lo, hi)) {
      throw new Error(`harness: the guest could not write its page table at ${gpa.toString(16)} (fault ${vcpu.fault.kind}/${vcpu.fault.code})`);
    }
    // Drop the window's TLB entry (INVLPG), so the vCPU's TLB only caches pages the suite maps.
    x.invlpg(va - (va % 4096));
  }

  /** Write the PTE for va, creating missing tables (P|W|U) as the guest would. */
  private setPte(va: number, gpa: number, lo: number, hi: number, invalidate: boolean): void {
    const vcpu = this.vm.vcpus[0];
    this.guestWrite(vcpu, this.tableAt(vcpu, va, 1) + (Math.floor(va / 4096) % 512) * 8, (gpa | lo) >>> 0, hi);
    if (invalidate) for (const v of this.vm.vcpus) v.arch.invlpg(va);
  }

  /** Write the PDE for va (tables above it are created). */
  private setPde(vcpu: CoreVcpu, va: number, lo: number): void {
    this.guestWrite(vcpu, this.tableAt(vcpu, va, 2) + (Math.floor(va / 2 ** 21) % 512) * 8, lo, 0);
    (vcpu.arch as X86VcpuMmu).invlpg(va);
  }

  /** The table holding va's entry at `level`, creating missing tables above it (P|W|U) as the guest would. */
  private tableAt(vcpu: CoreVcpu | undefined, va: number, level: number): number {
    let table = this.pml4;
    for (let l = 4; l > level; l--) {
      const at = table + (Math.floor(va / 2 ** (12 + 9 * (l - 1))) % 512) * 8;
      const e = this.vm.memslots.read64Lo(at, true);
      if ((e & P) === 0) {
        const child = this.alloc();
        this.guestWrite(vcpu, at, (child | P | W | U) >>> 0, 0);
        table = child;
      } else {
        table = (e & 0xfffff000) >>> 0;
      }
    }
    return table;
  }
}

/** An access and how the architecture answered it (#GP reported as an exception). */
function answer(vcpu: CoreVcpu, va: number, access: number): GuestAnswer {
  if (vcpu.translate(va, access) !== TRANSLATE_FAULT) return { kind: 'completed' };
  if (vcpu.fault.kind === FaultKind.GUEST && vcpu.fault.vector === VECTOR_GP) {
    return { kind: 'exception', vector: VECTOR_GP, code: 0 };
  }
  return { kind: 'fault', fault: vcpu.fault.kind, code: vcpu.fault.code };
}
