import { describe, expect, it } from 'vitest';
import { Hypervisor, HvmmuError } from '@hvmmu/core';
import { GuestPageTables, x86ShadowBackend } from '@hvmmu/x86-shadow/internal';

function vmWithRam() {
  const hv = new Hypervisor({ memoryBytes: 8 << 20 });
  const vm = hv.createVm({ backend: x86ShadowBackend });
  vm.memslots.create({ id: 0, guestPhysAddr: 0, size: 4 << 20 });
  return vm.memslots;
}

describe("GuestPageTables (the VMM writing a guest's tables)", () => {
  it('4-level: entries land at the SDM indices with P|W|U above and the leaf flags asked for', () => {
    const mem = vmWithRam();
    const t = new GuestPageTables(mem, 'long4', 0x10_0000, 0x20_0000);
    // va 0x0000_7f12_3456_7000: PML4 index 0xfe, PDPT 0x48, PD 0x1a2, PT 0x167 (hand-split 47:39/38:30/29:21/20:12).
    const va = 0x7f12_3456_7000;
    t.map(va, 0x3_5000, { write: false, user: true, noExec: true });
    expect(t.rootGpa).toBe(0x10_0000);
    // Tables allocated in order: PML4 0x100000, PDPT 0x101000, PD 0x102000, PT 0x103000.
    expect(mem.read64Lo(0x10_0000 + 0xfe * 8, true)).toBe(0x10_1000 | 0x7);
    expect(mem.read64Lo(0x10_1000 + 0x48 * 8, true)).toBe(0x10_2000 | 0x7);
    expect(mem.read64Lo(0x10_2000 + 0x1a2 * 8, true)).toBe(0x10_3000 | 0x7);
    expect(mem.read64Lo(0x10_3000 + 0x167 * 8, true)).toBe(0x3_5000 | 0x5);
    expect(mem.read64Hi(0x10_3000 + 0x167 * 8, true)).toBe(0x8000_0000);
    expect(t.entryGpa(va, 1)).toBe(0x10_3000 + 0x167 * 8);
    expect(t.entryGpa(va, 4)).toBe(0x10_0000 + 0xfe * 8);
    expect(t.controlRegisters()).toEqual({ cr0: 0x8001_0001, cr3: 0x10_0000, cr4: 0x20, efer: 0x900 });
  });

  it('PAE: PDPTEs carry only P (bits 1-2 and 5-8 are reserved), 2 MiB leaves set PS', () => {
    const mem = vmWithRam();
    const t = new GuestPageTables(mem, 'pae', 0x10_0000, 0x20_0000);
    t.map(0xc020_0000, 0x40_0000, { pageSize: 2 << 20, accessedDirty: true });
    // PDPT index 3, PD index 1.
    expect(mem.read64Lo(0x10_0000 + 3 * 8, true)).toBe(0x10_1000 | 0x1);
    expect(mem.read64Lo(0x10_1000 + 1 * 8, true)).toBe(0x40_0000 | 0x80 | 0x40 | 0x20 | 0x7);
    expect(() => t.map(0xc020_1000, 0x5000)).toThrow(HvmmuError);
  });

  it('32-bit: 4-byte entries, 4 MiB PSE pages with PA 35:32 in bits 16:13', () => {
    const mem = vmWithRam();
    const t = new GuestPageTables(mem, 'bits32', 0x10_0000, 0x20_0000);
    t.map(0x8040_0000, 0x3_0040_0000, { pageSize: 4 << 20 });
    expect(mem.read32(0x10_0000 + 0x201 * 4, true)).toBe((0x0040_0000 | (3 << 13) | 0x80 | 0x7) >>> 0);
    t.map(0x1000, 0x2000, { user: false });
    expect(mem.read32(0x10_0000, true)).toBe(0x10_1000 | 0x7);
    expect(mem.read32(0x10_1000 + 4, true)).toBe(0x2000 | 0x3);
    expect(() => t.map(0x2000, 0x2000, { noExec: true })).toThrow(HvmmuError);
    t.unmap(0x1000);
    expect(mem.read32(0x10_1000 + 4, true)).toBe(0);
  });

  it('refuses misaligned requests, unknown page sizes and running out of table memory', () => {
    const mem = vmWithRam();
    const t = new GuestPageTables(mem, 'long4', 0x10_0000, 0x10_3000);
    expect(() => t.map(0x1001, 0x2000)).toThrow(HvmmuError);
    expect(() => t.map(0, 0, { pageSize: 4 << 20 })).toThrow(HvmmuError);
    expect(() => t.map(0x1000, 0x2000)).toThrow(/exhausted/);
  });
});
