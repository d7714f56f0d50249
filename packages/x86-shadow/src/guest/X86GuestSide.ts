import {
  GUEST_RIGHTS_ALL,
  GuestRights,
  HvmmuError,
  hex,
  type GuestAddressSpaces,
  type GuestSideFactory,
  type GuestTableArea,
  type Vcpu,
  type Vm,
} from '@hvmmu/core';
import type { X86ShadowTypes } from '../X86ShadowTypes.js';
import type { GuestPteContext } from '../mmu/GuestPteContext.js';
import { CR0, CR4, EFER } from '../walker/X86Registers.js';
import { GuestPte } from './GuestPageTables.js';

/** Virtual pages a 4-level guest maps here: the lower canonical half (va < 2^47), where a user process lives. */
export const X86_GUEST_VPN_LIMIT = 2 ** 35;
/** Guest-physical pages a leaf may name: below MAXPHYADDR 40 (the vCPU default), so no entry has reserved address bits. */
const GFN_LIMIT = 2 ** 28;
const TWO_POW_32 = 0x1_0000_0000;
const PAGE = 4096;
/** Upper-level entries grant everything; rights are restricted at the leaf (as GuestPageTables does). */
const UPPER_FLAGS = GuestPte.P | GuestPte.W | GuestPte.U;
/** XD, bit 63 of an entry: bit 31 of its high half. */
const XD_HI = 0x8000_0000;
/** Table levels of 4-level paging above the leaf table: PML4, PDPT, PD. */
const UPPER_LEVELS = 3;

/**
 * The context a PTE write is tracked in: trackWrite reads only `cpuLevel`
 * (a 4-byte PAE write is widened), and this guest always writes 8-byte
 * entries of 4-level tables.
 */
const LONG_MODE_WRITER: GuestPteContext = {
  rootRole: 0,
  cpuLevel: 4,
  pkeActive: false,
  gpteReserved: () => false,
};

/** Index of the entry that translates `vpn` in a table of `level` (1 = PT … 4 = PML4), SDM 4.5. */
function entryIndex(vpn: number, level: number): number {
  // vpn < 2^35: shift in floating point above 32 bits, then mask.
  return Math.floor(vpn / 2 ** (9 * (level - 1))) % 512;
}

/**
 * The guest operating system's side of x86 translation, as a workload drives
 * it: a long-mode guest with 4-level tables (one PML4 — one CR3 — per address
 * space) in guest memory, built in the table area its caller gives.
 *
 * A map or unmap is what a guest kernel does: store the 8-byte PTE, then
 * INVLPG on every vCPU that runs this guest. The store is the guest's own,
 * so the shadow MMU sees it as KVM does a guest write to a table it
 * shadows (kvm_page_track_write): `trackWrite` zaps the shadow entries the
 * write touched in write-protected tables; INVLPG resyncs unsync ones.
 * Upper-level entries are P|W|U (rights are restricted at the leaf, as
 * `GuestPageTables` builds them); a leaf has R/W for WRITE, U/S for USER and
 * XD unless EXEC (EFER.NXE is on). Tables are never freed: an unmap clears
 * the leaf only, as Linux keeps a process's page tables until munmap frees
 * whole ranges.
 *
 * The entry layout and registers are `GuestPageTables`'s; the tables are
 * not built with it because every address space here allocates from one
 * shared area, while a `GuestPageTables` has its own private range.
 */
export class X86GuestAddressSpaces implements GuestAddressSpaces<X86ShadowTypes> {
  readonly vpnLimit = X86_GUEST_VPN_LIMIT;
  /** PML4 gpa (the CR3 value) of each address space. */
  private readonly roots: number[] = [];
  private readonly baseGfn: number;
  private readonly endGfn: number;
  private nextGfn: number;
  /** vCPUs whose paging registers this guest side has loaded (an array: INVLPG walks it on every store). */
  private readonly activated: Vcpu<X86ShadowTypes>[] = [];

  constructor(
    private readonly vm: Vm<X86ShadowTypes>,
    area: GuestTableArea,
  ) {
    if (area === null || typeof area !== 'object' || !Number.isSafeInteger(area.baseGfn) || !Number.isSafeInteger(area.pages)) {
      throw new HvmmuError('BAD_ARGUMENT', 'the table area must be { baseGfn, pages } with integers');
    }
    if (area.baseGfn < 0 || area.pages < 1 || area.baseGfn + area.pages > GFN_LIMIT) {
      throw new HvmmuError(
        'BAD_ARGUMENT',
        `the table area [${hex(area.baseGfn)}, ${hex(area.baseGfn + area.pages)}) must be non-empty and below gfn ${hex(GFN_LIMIT)} (MAXPHYADDR 40)`,
      );
    }
    // Every page of the area must be writable guest memory: the tables are the guest's.
    for (let gfn = area.baseGfn; gfn < area.baseGfn + area.pages; ) {
      const slot = vm.memslots.findByGfn(gfn);
      if (slot === undefined || slot.readOnly) {
        throw new HvmmuError('BAD_ARGUMENT', `the table area's gfn ${hex(gfn)} is not in a writable memslot`);
      }
      gfn = slot.endGfn;
    }
    this.baseGfn = area.baseGfn;
    this.endGfn = area.baseGfn + area.pages;
    this.nextGfn = area.baseGfn;
    this.roots.push(this.allocTable());
  }

  get spaceCount(): number {
    return this.roots.length;
  }

  get tablePages(): number {
    return this.nextGfn - this.baseGfn;
  }

  /** The CR3 value (PML4 gpa) of `space`. */
  cr3Of(space: number): number {
    this.checkSpace(space);
    return this.roots[space]!;
  }

  createSpace(): number {
    this.reserve(1);
    this.roots.push(this.allocTable());
    return this.roots.length - 1;
  }

  map(space: number, vpn: number, gfn: number, rights: number): void {
    this.checkSpace(space);
    this.checkVpn(vpn);
    if (!Number.isSafeInteger(gfn) || gfn < 0 || gfn >= GFN_LIMIT) {
      throw new HvmmuError('BAD_ARGUMENT', `gfn must be an integer in [0, ${hex(GFN_LIMIT)}) (MAXPHYADDR 40), got ${String(gfn)}`);
    }
    if (!Number.isInteger(rights) || (rights & ~GUEST_RIGHTS_ALL) !== 0 || rights < 0) {
      throw new HvmmuError('BAD_ARGUMENT', `rights must be GuestRights bits (WRITE | EXEC | USER), got ${String(rights)}`);
    }
    // Count the tables the path lacks first, so a full area refuses before anything is written.
    this.reserve(this.missingTables(this.roots[space]!, vpn));
    const pte = this.leafEntryGpa(this.roots[space]!, vpn, true);
    let lo = GuestPte.P;
    if ((rights & GuestRights.WRITE) !== 0) lo |= GuestPte.W;
    if ((rights & GuestRights.USER) !== 0) lo |= GuestPte.U;
    const gpa = gfn * PAGE;
    const hi = Math.floor(gpa / TWO_POW_32) + ((rights & GuestRights.EXEC) !== 0 ? 0 : XD_HI);
    this.storePte(pte, hi, ((gpa % TWO_POW_32) | lo) >>> 0, vpn);
  }

  unmap(space: number, vpn: number): void {
    this.checkSpace(space);
    this.checkVpn(vpn);
    const pte = this.leafEntryGpa(this.roots[space]!, vpn, false);
    if (pte < 0 || (this.vm.memslots.read64Lo(pte, true) & GuestPte.P) === 0) return;
    this.storePte(pte, 0, 0, vpn);
  }

  activate(vcpu: Vcpu<X86ShadowTypes>, space: number): void {
    this.checkSpace(space);
    if (this.vm.vcpus[vcpu.id] !== vcpu) throw new HvmmuError('BAD_ARGUMENT', `vCPU ${vcpu.id} is not a vCPU of VM '${this.vm.name}'`);
    const cr3 = this.roots[space]!;
    const x = vcpu.arch;
    if (!this.activated.includes(vcpu)) {
      // Long mode with 4-level paging, write protection for the kernel and NX (SDM 9.8.5).
      const ok = x.loadControlRegisters({
        cr0: (CR0.PE | CR0.PG | CR0.WP) >>> 0,
        cr3,
        cr4: CR4.PAE,
        efer: EFER.LME | EFER.NXE,
      });
      if (!ok) throw new HvmmuError('BAD_ARGUMENT', `vCPU ${vcpu.id} refused 4-level long-mode control registers`);
      this.activated.push(vcpu);
      return;
    }
    if (!x.setCr3(cr3)) throw new HvmmuError('BAD_ARGUMENT', `vCPU ${vcpu.id} refused CR3 ${hex(cr3)}`);
  }

  /** The guest's store of a leaf entry, seen by the shadow MMU, then INVLPG on every vCPU this guest runs on. */
  private storePte(pte: number, hi: number, lo: number, vpn: number): void {
    this.vm.memslots.write64Halves(pte, hi, lo, true);
    this.vm.arch.pages.trackWrite(LONG_MODE_WRITER, pte, 8);
    const vcpus = this.activated;
    for (let i = 0; i < vcpus.length; i++) vcpus[i]!.arch.invlpgPage(vpn);
  }

  /** Gpa of the PT entry for vpn under `root`, creating missing tables if `create`; -1 if one is missing and not created. */
  private leafEntryGpa(root: number, vpn: number, create: boolean): number {
    const mem = this.vm.memslots;
    let table = root;
    for (let level = UPPER_LEVELS + 1; level > 1; level--) {
      const at = table + entryIndex(vpn, level) * 8;
      const lo = mem.read64Lo(at, true);
      if ((lo & GuestPte.P) === 0) {
        if (!create) return -1;
        const child = this.allocTable();
        mem.write64Halves(at, Math.floor(child / TWO_POW_32), ((child % TWO_POW_32) | UPPER_FLAGS) >>> 0, true);
        table = child;
      } else {
        table = (mem.read64Hi(at, true) & 0xfffff) * TWO_POW_32 + ((lo & 0xffff_f000) >>> 0);
      }
    }
    return table + entryIndex(vpn, 1) * 8;
  }

  /** Tables the path to vpn's leaf lacks (0..3). */
  private missingTables(root: number, vpn: number): number {
    const mem = this.vm.memslots;
    let table = root;
    for (let level = UPPER_LEVELS + 1; level > 1; level--) {
      const at = table + entryIndex(vpn, level) * 8;
      const lo = mem.read64Lo(at, true);
      if ((lo & GuestPte.P) === 0) return level - 1;
      table = (mem.read64Hi(at, true) & 0xfffff) * TWO_POW_32 + ((lo & 0xffff_f000) >>> 0);
    }
    return 0;
  }

  private reserve(tables: number): void {
    if (this.nextGfn + tables > this.endGfn) {
      throw new HvmmuError(
        'GUEST_NO_MEMORY',
        `the guest table area [${hex(this.baseGfn)}, ${hex(this.endGfn)}) is full: ${tables} more table page(s) needed, ${this.endGfn - this.nextGfn} left`,
      );
    }
  }

  private allocTable(): number {
    const gpa = this.nextGfn * PAGE;
    this.nextGfn++;
    this.vm.memslots.writeBytes(gpa, ZERO_PAGE);
    return gpa;
  }

  private checkSpace(space: number): void {
    if (!Number.isInteger(space) || space < 0 || space >= this.roots.length) {
      throw new HvmmuError('BAD_ARGUMENT', `no address space ${String(space)} (there are ${this.roots.length})`);
    }
  }

  private checkVpn(vpn: number): void {
    if (!Number.isSafeInteger(vpn) || vpn < 0 || vpn >= X86_GUEST_VPN_LIMIT) {
      throw new HvmmuError('BAD_ARGUMENT', `vpn must be an integer in [0, ${hex(X86_GUEST_VPN_LIMIT)}) (the lower canonical half), got ${String(vpn)}`);
    }
  }
}

const ZERO_PAGE = new Uint8Array(PAGE);

/** The x86 guest side's factory: `create` gives the x86 class (with `cr3Of`). */
export interface X86GuestSideFactory extends GuestSideFactory<X86ShadowTypes> {
  create(vm: Vm<X86ShadowTypes>, area: GuestTableArea): X86GuestAddressSpaces;
}

/**
 * The x86 shadow backend's guest side (`x86ShadowBackend.guestSide`):
 * 4-level long-mode guests, one PML4 per address space.
 */
export const x86GuestSide: X86GuestSideFactory = {
  pagingMode: 'x86-4level',
  tablePagesFor(mappings: number, spaces: number): number {
    if (!Number.isSafeInteger(mappings) || mappings < 0 || !Number.isSafeInteger(spaces) || spaces < 1) {
      throw new HvmmuError('BAD_ARGUMENT', `tablePagesFor takes mappings ≥ 0 and spaces ≥ 1, got ${String(mappings)}, ${String(spaces)}`);
    }
    // A PML4 per space; each mapping may need its own PDPT, PD and PT at worst.
    return spaces + UPPER_LEVELS * mappings;
  },
  create(vm: Vm<X86ShadowTypes>, area: GuestTableArea): X86GuestAddressSpaces {
    return new X86GuestAddressSpaces(vm, area);
  },
};
