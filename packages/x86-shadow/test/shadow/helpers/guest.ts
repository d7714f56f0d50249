import { Hypervisor, type BackendOptionsInput, type MemslotTable, type Vcpu as CoreVcpu, type Vm as CoreVm } from '@hvmmu/core';
import type { X86ShadowOptions, X86ShadowTypes } from '@hvmmu/x86-shadow/internal';
import { CR0, CR4, EFER, x86ShadowBackend, type X86VcpuMmu } from '@hvmmu/x86-shadow/internal';
type Vcpu = CoreVcpu<X86ShadowTypes>;
type Vm = CoreVm<X86ShadowTypes>;

/** Guest entry bits (SDM 4.3-4.5), written independently of the MMU's constants. */
export const P = 1;
export const W = 2;
export const U = 4;
export const PWT = 8;
export const A = 0x20;
export const D = 0x40;
export const PS = 0x80;
/** Bit 63 in the high half. */
export const NX_HI = 0x8000_0000;

export type GuestMode = 'long4' | 'long5' | 'pae' | 'bits32';

export interface TestVm {
  readonly hv: Hypervisor;
  readonly vm: Vm;
  readonly vcpu: Vcpu;
  readonly x: X86VcpuMmu;
  readonly mem: MemslotTable<X86ShadowTypes>;
}

export interface TestVmOptions {
  readonly memoryBytes?: number;
  /** Size of slot 0 at gpa 0. */
  readonly slotBytes?: number;
  readonly backendOptions?: BackendOptionsInput<X86ShadowOptions>;
  readonly tlbEntries?: number;
}

export function makeVm(options: TestVmOptions = {}): TestVm {
  const hv = new Hypervisor({ memoryBytes: options.memoryBytes ?? 64 << 20 });
  const vm = hv.createVm({
    backend: x86ShadowBackend,
    backendOptions: options.backendOptions ?? {},
    tlbEntries: options.tlbEntries ?? 256,
  });
  vm.memslots.create({ id: 0, guestPhysAddr: 0, size: options.slotBytes ?? 16 << 20 });
  const vcpu = vm.createVcpu();
  return { hv, vm, vcpu, x: vcpu.arch, mem: vm.memslots };
}

/** Control registers of each mode (paging on, WP on, NX on where it exists). */
export function controlsFor(
  mode: GuestMode,
  cr3: number,
  extra: { cr0?: number; cr4?: number; efer?: number } = {},
): { cr0: number; cr3: number; cr4: number; efer: number } {
  const cr0 = (CR0.PE | CR0.PG | CR0.WP | (extra.cr0 ?? 0)) >>> 0;
  switch (mode) {
    case 'bits32':
      return { cr0, cr3, cr4: CR4.PSE | (extra.cr4 ?? 0), efer: extra.efer ?? 0 };
    case 'pae':
      return { cr0, cr3, cr4: CR4.PAE | (extra.cr4 ?? 0), efer: EFER.NXE | (extra.efer ?? 0) };
    case 'long4':
      return { cr0, cr3, cr4: CR4.PAE | (extra.cr4 ?? 0), efer: EFER.LME | EFER.NXE | (extra.efer ?? 0) };
    case 'long5':
      return { cr0, cr3, cr4: CR4.PAE | CR4.LA57 | (extra.cr4 ?? 0), efer: EFER.LME | EFER.NXE | (extra.efer ?? 0) };
  }
}

/**
 * Builds guest page tables in guest memory with host-side writes (as
 * firmware would before the guest runs), from a bump allocator of zeroed
 * pages.
 */
export class TableBuilder {
  private next: number;

  constructor(
    readonly mem: MemslotTable,
    readonly mode: GuestMode,
    firstTableGpa: number,
  ) {
    this.next = firstTableGpa;
  }

  /** The gpa the next `page()` will return. */
  get nextGpa(): number {
    return this.next;
  }

  get levels(): number {
    return this.mode === 'long5' ? 5 : this.mode === 'long4' ? 4 : this.mode === 'pae' ? 3 : 2;
  }

  get entrySize(): number {
    return this.mode === 'bits32' ? 4 : 8;
  }

  /** A fresh zeroed page (its gpa). */
  page(): number {
    const gpa = this.next;
    this.next += 4096;
    for (let off = 0; off < 4096; off += 4) this.mem.write32(gpa + off, 0, true);
    return gpa;
  }

  /** The root table (PDPT for PAE, 32-byte aligned; a page here). */
  root(): number {
    return this.page();
  }

  index(va: number, level: number): number {
    if (this.mode === 'bits32') return level === 2 ? Math.floor(va / 2 ** 22) % 1024 : Math.floor(va / 4096) % 1024;
    if (this.mode === 'pae' && level === 3) return Math.floor(va / 2 ** 30) % 4;
    return Math.floor(va / 2 ** (12 + 9 * (level - 1))) % 512;
  }

  entryGpa(table: number, va: number, level: number): number {
    return table + this.index(va, level) * this.entrySize;
  }

  write(gpa: number, lo: number, hi = 0): void {
    if (this.entrySize === 4) this.mem.write32(gpa, lo >>> 0, true);
    else this.mem.write64Halves(gpa, hi >>> 0, lo >>> 0, true);
  }

  read(gpa: number): { lo: number; hi: number } {
    if (this.entrySize === 4) return { lo: this.mem.read32(gpa, true), hi: 0 };
    return { lo: this.mem.read64Lo(gpa, true), hi: this.mem.read64Hi(gpa, true) };
  }

  /**
   * Map the 4 KiB page at va to gpa in the tables under root with leaf
   * flags `lo`/`hi`; missing intermediate tables are created with
   * `upperFlags` (PDPTEs in PAE mode get P only). Returns the leaf entry's gpa.
   */
  map4k(root: number, va: number, gpa: number, lo: number, hi = 0, upperFlags = P | W | U): number {
    let table = root;
    for (let level = this.levels; level > 1; level--) {
      const at = this.entryGpa(table, va, level);
      const e = this.read(at);
      if ((e.lo & P) === 0) {
        const child = this.page();
        const flags = this.mode === 'pae' && level === 3 ? P : upperFlags;
        this.write(at, (child + flags) >>> 0, 0);
        table = child;
      } else {
        table = (e.lo & 0xfffff000) >>> 0;
      }
    }
    const leaf = this.entryGpa(table, va, 1);
    this.write(leaf, (gpa + lo) >>> 0, hi);
    return leaf;
  }

  /** The gpa of the entry mapping va at `level` (tables must exist above it). */
  entryAt(root: number, va: number, level: number): number {
    let table = root;
    for (let l = this.levels; l > level; l--) {
      const e = this.read(this.entryGpa(table, va, l));
      table = (e.lo & 0xfffff000) >>> 0;
    }
    return this.entryGpa(table, va, level);
  }
}
