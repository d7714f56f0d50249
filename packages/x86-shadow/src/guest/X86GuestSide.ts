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
/** Virtual pages a 32-bit PAE guest maps here: user space below Linux's 3 GiB split (PAGE_OFFSET 0xc000_0000). */
export const X86_PAE_GUEST_VPN_LIMIT = 0xc_0000;
/** The 32-bit kernel's direct map (PAGE_OFFSET), covering the first GiB of guest-physical memory with 2 MiB pages. */
export const X86_PAE_DIRECT_MAP = 0xc000_0000n;
/**
 * Where the guest kernel sees guest-physical memory: Linux's direct map (PAGE_OFFSET
 * 0xffff_8880_0000_0000 without KASLR), va = PAGE_OFFSET + gpa, in the upper canonical half
 * that every address space shares. The kernel writes its page tables through it.
 */
export const X86_DIRECT_MAP = 0xffff_8880_0000_0000n;
/** Guest-physical pages a leaf may name: below MAXPHYADDR 40 (the vCPU default), so no entry has reserved address bits. */
const GFN_LIMIT = 2 ** 28;
const TWO_POW_32 = 0x1_0000_0000;
const PAGE = 4096;
/** Pages one 2 MiB direct-map entry covers, and one page directory (1 GiB). */
const PAGES_PER_2M = 512;
const PAGES_PER_1G = 512 * 512;
/** Upper-level entries of user space grant everything; rights are restricted at the leaf (as GuestPageTables does). */
const USER_TABLE_FLAGS = GuestPte.P | GuestPte.W | GuestPte.U;
/** The direct map's entries: supervisor only (Linux's _KERNPG_TABLE, and PAGE_KERNEL_LARGE at the leaf). */
const KERNEL_TABLE_FLAGS = GuestPte.P | GuestPte.W;
/** XD, bit 63 of an entry: bit 31 of its high half. */
const XD_HI = 0x8000_0000;
/** Table levels of 4-level paging above the leaf table: PML4, PDPT, PD. */
const UPPER_LEVELS = 3;
const DIRECT_MAP_VPN = Number(X86_DIRECT_MAP >> 12n);

/**
 * The context of a PTE store made before any vCPU runs the guest: trackWrite
 * reads only `cpuLevel` (a 4-byte PAE write is widened), and this guest
 * always writes 8-byte entries of 4-level tables.
 */
const LONG_MODE_WRITER: GuestPteContext = {
  rootRole: 0,
  cpuLevel: 4,
  pkeActive: false,
  gpteReserved: () => false,
};
/** The same for a PAE guest's 8-byte entries. */
const PAE_WRITER: GuestPteContext = { ...LONG_MODE_WRITER, cpuLevel: 3 };

/** The two guest paging modes this guest side builds. */
export type X86GuestSideMode = 'long4' | 'pae';

/**
 * Index of the entry that translates `vpn` in a table of `level` (1 = PT …
 * 4 = PML4), SDM 4.5; under PAE the level-3 table is the 4-entry PDPT
 * (VA bits 31:30, SDM 4.4.1).
 */
function entryIndex(vpn: number, level: number, pae: boolean): number {
  if (pae && level === 3) return Math.floor(vpn / 2 ** 18) % 4;
  // vpn < 2^52: shift in floating point above 32 bits, then mask (the sign-extension bits fall off).
  return Math.floor(vpn / 2 ** (9 * (level - 1))) % 512;
}

/** Direct-map pages (a PDPT per 512 GiB, a PD per GiB, 2 MiB leaves) for an area of `pages` at most. */
function directMapPagesFor(pages: number): number {
  // The area may straddle one more GiB and one more 512 GiB boundary than its size needs.
  return 2 + Math.ceil(pages / PAGES_PER_1G) + 1;
}

/**
 * The guest operating system's side of x86 translation, as a workload drives
 * it: a long-mode Linux-like guest with 4-level tables — one PML4 (one CR3)
 * per address space — in guest memory, built in the table area its caller
 * gives. The lower half is user space; the upper half holds the kernel's
 * direct map of the table area (2 MiB pages at X86_DIRECT_MAP + gpa), the
 * same PML4 entries in every address space.
 *
 * A map or unmap is what the guest kernel does: store the 8-byte PTE through
 * its direct map, on the first vCPU running the guest, then INVLPG on every
 * vCPU running it. So the shadow MMU sees the store as KVM does: a write to a
 * table it shadows traps and is emulated (kvm_mmu_track_write), a write to a
 * leaf table it let go unsync goes through and INVLPG resyncs it — the cost
 * of shadow paging shows in `emulatedWrites`, `unsyncs` and `syncs`. Before
 * any vCPU runs the guest, the VMM writes the entries itself (and tells the
 * shadow MMU). A new table page is zeroed by the VMM (no vCPU has seen it)
 * and linked into its parent by the kernel's store. Upper-level entries of
 * user space are P|W|U (rights are restricted at the leaf, as
 * `GuestPageTables` builds them); a leaf has R/W for WRITE, U/S for USER
 * and XD unless EXEC (EFER.NXE is on). Tables are never freed: an unmap
 * clears the leaf only, as Linux keeps a process's page tables until munmap
 * frees whole ranges.
 *
 * The entry layout and registers are `GuestPageTables`'s; the tables are
 * not built with it because every address space here allocates from one
 * shared area, while a `GuestPageTables` has its own private range.
 */
export class X86GuestAddressSpaces implements GuestAddressSpaces<X86ShadowTypes> {
  readonly vpnLimit: number;
  /** Table levels (4 in long mode; 3 under PAE: PDPT, PD, PT). */
  private readonly levels: number;
  private readonly pae: boolean;
  /** The kernel's direct map (virtual address of gpa 0). */
  private readonly directMap: bigint;
  private readonly writer: GuestPteContext;
  /** PML4 gpa (the CR3 value) of each address space. */
  private readonly roots: number[] = [];
  private readonly baseGfn: number;
  private readonly endGfn: number;
  private nextGfn: number;
  /** Space 0's PML4 entries of the direct map (gpa of the entry → its two halves), copied into every new PML4. */
  private readonly kernelEntries: number[] = [];
  /** vCPUs whose paging registers this guest side has loaded (an array: INVLPG walks it on every store). */
  private readonly activated: Vcpu<X86ShadowTypes>[] = [];

  constructor(
    private readonly vm: Vm<X86ShadowTypes>,
    area: GuestTableArea,
    readonly mode: X86GuestSideMode = 'long4',
  ) {
    if (mode !== 'long4' && mode !== 'pae') throw new HvmmuError('BAD_ARGUMENT', `the x86 guest side builds 'long4' or 'pae' tables, got ${String(mode)}`);
    this.pae = mode === 'pae';
    this.levels = this.pae ? 3 : 4;
    this.vpnLimit = this.pae ? X86_PAE_GUEST_VPN_LIMIT : X86_GUEST_VPN_LIMIT;
    this.directMap = this.pae ? X86_PAE_DIRECT_MAP : X86_DIRECT_MAP;
    this.writer = this.pae ? PAE_WRITER : LONG_MODE_WRITER;
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
    if (this.pae) {
      this.initPae();
      return;
    }
    const first2M = area.baseGfn - (area.baseGfn % PAGES_PER_2M);
    const chunks = Math.ceil((this.endGfn - first2M) / PAGES_PER_2M);
    // The PML4, a PDPT per 512 GiB and a PD per GiB the direct map touches (X86_DIRECT_MAP is 512 GiB aligned).
    const last = this.endGfn - 1;
    const kernelPages =
      1 +
      (Math.floor(last / (512 * PAGES_PER_1G)) - Math.floor(first2M / (512 * PAGES_PER_1G)) + 1) +
      (Math.floor(last / PAGES_PER_1G) - Math.floor(first2M / PAGES_PER_1G) + 1);
    if (area.pages < kernelPages) {
      throw new HvmmuError('GUEST_NO_MEMORY', `the table area has ${area.pages} pages; the PML4 and the kernel's direct map of it need ${kernelPages}`);
    }
    const root = this.allocTable();
    this.roots.push(root);
    // The kernel's direct map of the area, written by the VMM before the guest runs (as firmware and early boot do).
    for (let i = 0; i < chunks; i++) {
      const gfn = first2M + i * PAGES_PER_2M;
      const pde = this.entryGpa(root, DIRECT_MAP_VPN + gfn, 2, KERNEL_TABLE_FLAGS, true);
      const gpa = gfn * PAGE;
      this.vm.memslots.write64Halves(pde, Math.floor(gpa / TWO_POW_32) + XD_HI, ((gpa % TWO_POW_32) | KERNEL_TABLE_FLAGS | GuestPte.PS) >>> 0, true);
    }
    for (let i = 0; i < 512; i++) {
      const at = root + i * 8;
      const lo = this.vm.memslots.read64Lo(at, true);
      if ((lo & GuestPte.P) !== 0) this.kernelEntries.push(i, this.vm.memslots.read64Hi(at, true), lo);
    }
  }

  /**
   * A PAE guest: a PDPT per address space with all four page directories
   * allocated with it (Linux's PREALLOCATED_PMDS: PDPTEs are loaded at MOV
   * CR3, SDM 4.4.1, so they are never changed afterwards); the fourth,
   * the kernel's, shared by every space and holding the direct map of the
   * table area with 2 MiB pages (which must then lie in the first GiB).
   */
  private initPae(): void {
    if (this.endGfn > PAGES_PER_1G) {
      throw new HvmmuError(
        'BAD_ARGUMENT',
        `a PAE guest's table area must lie in the first GiB (its kernel maps it at ${hex(Number(X86_PAE_DIRECT_MAP))}), got up to gfn ${hex(this.endGfn)}`,
      );
    }
    if (this.endGfn - this.baseGfn < 5) throw new HvmmuError('GUEST_NO_MEMORY', 'a PAE guest needs 5 table pages: the PDPT and its four page directories');
    const root = this.allocTable();
    const kernelPd = this.allocTable();
    this.kernelEntries.push(3, 0, (kernelPd | GuestPte.P) >>> 0);
    this.vm.memslots.write64Halves(root + 3 * 8, 0, (kernelPd | GuestPte.P) >>> 0, true);
    for (let i = 0; i < 3; i++) this.vm.memslots.write64Halves(root + i * 8, 0, (this.allocTable() | GuestPte.P) >>> 0, true);
    for (let gfn = this.baseGfn - (this.baseGfn % PAGES_PER_2M); gfn < this.endGfn; gfn += PAGES_PER_2M) {
      const gpa = gfn * PAGE;
      this.vm.memslots.write64Halves(kernelPd + (gfn / PAGES_PER_2M) * 8, XD_HI, (gpa | KERNEL_TABLE_FLAGS | GuestPte.PS) >>> 0, true);
    }
    this.roots.push(root);
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

  /** The kernel's virtual address of guest-physical `gpa` (in the direct map). */
  directMapAddress(gpa: number): bigint {
    return this.directMap + BigInt(gpa);
  }

  createSpace(): number {
    if (this.pae) {
      // The PDPT and its three user page directories (PREALLOCATED_PMDS); the kernel's is shared.
      this.reserve(4);
      const pdpt = this.allocTable();
      for (let i = 0; i < 3; i++) this.vm.memslots.write64Halves(pdpt + i * 8, 0, (this.allocTable() | GuestPte.P) >>> 0, true);
      this.vm.memslots.write64Halves(pdpt + 3 * 8, this.kernelEntries[1]!, this.kernelEntries[2]!, true);
      this.roots.push(pdpt);
      return this.roots.length - 1;
    }
    this.reserve(1);
    const root = this.allocTable();
    // The kernel half is the same in every address space (Linux copies it in pgd_alloc).
    const k = this.kernelEntries;
    for (let i = 0; i < k.length; i += 3) this.vm.memslots.write64Halves(root + k[i]! * 8, k[i + 1]!, k[i + 2]!, true);
    this.roots.push(root);
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
    const pte = this.entryGpa(this.roots[space]!, vpn, 1, USER_TABLE_FLAGS, true);
    let lo = GuestPte.P;
    if ((rights & GuestRights.WRITE) !== 0) lo |= GuestPte.W;
    if ((rights & GuestRights.USER) !== 0) lo |= GuestPte.U;
    const gpa = gfn * PAGE;
    const hi = Math.floor(gpa / TWO_POW_32) + ((rights & GuestRights.EXEC) !== 0 ? 0 : XD_HI);
    this.kernelStore(pte, hi, ((gpa % TWO_POW_32) | lo) >>> 0);
    this.invlpg(vpn);
  }

  unmap(space: number, vpn: number): void {
    this.checkSpace(space);
    this.checkVpn(vpn);
    const pte = this.entryGpa(this.roots[space]!, vpn, 1, USER_TABLE_FLAGS, false);
    if (pte < 0 || (this.vm.memslots.read64Lo(pte, true) & GuestPte.P) === 0) return;
    this.kernelStore(pte, 0, 0);
    this.invlpg(vpn);
  }

  activate(vcpu: Vcpu<X86ShadowTypes>, space: number): void {
    this.checkSpace(space);
    if (this.vm.vcpus[vcpu.id] !== vcpu) throw new HvmmuError('BAD_ARGUMENT', `vCPU ${vcpu.id} is not a vCPU of VM '${this.vm.name}'`);
    const cr3 = this.roots[space]!;
    const x = vcpu.arch;
    if (!this.activated.includes(vcpu)) {
      // Long mode with 4-level paging (SDM 9.8.5), or 32-bit PAE paging; write protection for the kernel and NX.
      const ok = x.loadControlRegisters({
        cr0: (CR0.PE | CR0.PG | CR0.WP) >>> 0,
        cr3,
        cr4: CR4.PAE,
        efer: this.pae ? EFER.NXE : EFER.LME | EFER.NXE,
      });
      if (!ok) throw new HvmmuError('BAD_ARGUMENT', `vCPU ${vcpu.id} refused the ${this.mode} control registers`);
      this.activated.push(vcpu);
      return;
    }
    if (!x.setCr3(cr3)) throw new HvmmuError('BAD_ARGUMENT', `vCPU ${vcpu.id} refused CR3 ${hex(cr3)}`);
  }

  /**
   * The guest kernel's store of a table entry: through the direct map on the first vCPU
   * running the guest (the shadow MMU traps and emulates it, or lets it into an unsync page);
   * before any vCPU runs it, the VMM's own store, which the shadow MMU is told of.
   */
  private kernelStore(entryGpa: number, hi: number, lo: number): void {
    const vcpu = this.activated[0];
    if (vcpu === undefined) {
      this.vm.memslots.write64Halves(entryGpa, hi, lo, true);
      this.vm.arch.pages.trackWrite(this.writer, entryGpa, 8);
      return;
    }
    if (!vcpu.write64(this.directMap + BigInt(entryGpa), hi, lo, true)) {
      throw new HvmmuError('GUEST_NO_MEMORY', `the guest kernel's store to its table entry at gpa ${hex(entryGpa)} faulted (fault kind ${vcpu.fault.kind})`);
    }
  }

  /** INVLPG of a user page on every vCPU running the guest. */
  private invlpg(vpn: number): void {
    const vcpus = this.activated;
    for (let i = 0; i < vcpus.length; i++) vcpus[i]!.arch.invlpgPage(vpn);
  }

  /**
   * Gpa of the entry for `vpn` in its table of `level` under `root`, creating missing tables
   * (linked with `flags`) if `create`; -1 if one is missing and not created.
   */
  private entryGpa(root: number, vpn: number, level: number, flags: number, create: boolean): number {
    const mem = this.vm.memslots;
    let table = root;
    for (let l = this.levels; l > level; l--) {
      const at = table + entryIndex(vpn, l, this.pae) * 8;
      const lo = mem.read64Lo(at, true);
      if ((lo & GuestPte.P) === 0) {
        if (!create) return -1;
        const child = this.allocTable();
        this.kernelStore(at, Math.floor(child / TWO_POW_32), ((child % TWO_POW_32) | flags) >>> 0);
        table = child;
      } else {
        table = (mem.read64Hi(at, true) & 0xfffff) * TWO_POW_32 + ((lo & 0xffff_f000) >>> 0);
      }
    }
    return table + entryIndex(vpn, level, this.pae) * 8;
  }

  /** Tables the path to vpn's leaf lacks (0..3). */
  private missingTables(root: number, vpn: number): number {
    const mem = this.vm.memslots;
    let table = root;
    for (let level = this.levels; level > 1; level--) {
      const at = table + entryIndex(vpn, level, this.pae) * 8;
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

  /** A fresh table page, zeroed by the VMM (no vCPU has seen it: pages are never freed and reused). */
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
    if (!Number.isSafeInteger(vpn) || vpn < 0 || vpn >= this.vpnLimit) {
      throw new HvmmuError('BAD_ARGUMENT', `vpn must be an integer in [0, ${hex(this.vpnLimit)}) (user space), got ${String(vpn)}`);
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
    // A PML4 per space; each mapping may need its own PDPT, PD and PT at worst; the direct map of all of it.
    const user = spaces + UPPER_LEVELS * mappings;
    return user + directMapPagesFor(user + directMapPagesFor(user));
  },
  create(vm: Vm<X86ShadowTypes>, area: GuestTableArea): X86GuestAddressSpaces {
    return new X86GuestAddressSpaces(vm, area);
  },
};

/**
 * A 32-bit PAE guest side (Linux's 3G/1G split, PREALLOCATED_PMDS): one
 * PDPT per address space, so the shadow MMU builds its PAE special root
 * (KVM's pae_root) for each. For a backend module with this guest side:
 * `{ ...x86ShadowBackend, guestSide: x86PaeGuestSide }`.
 */
export const x86PaeGuestSide: X86GuestSideFactory = {
  pagingMode: 'x86-pae',
  // The 32-bit kernel reaches its tables through its direct map of the first GiB.
  tableAreaEndGfn: PAGES_PER_1G,
  tablePagesFor(mappings: number, spaces: number): number {
    if (!Number.isSafeInteger(mappings) || mappings < 0 || !Number.isSafeInteger(spaces) || spaces < 1) {
      throw new HvmmuError('BAD_ARGUMENT', `tablePagesFor takes mappings ≥ 0 and spaces ≥ 1, got ${String(mappings)}, ${String(spaces)}`);
    }
    // A PDPT and three page directories per space, the kernel's directory, a page table per mapping at worst.
    return 4 * spaces + 1 + mappings;
  },
  create(vm: Vm<X86ShadowTypes>, area: GuestTableArea): X86GuestAddressSpaces {
    return new X86GuestAddressSpaces(vm, area, 'pae');
  },
};
