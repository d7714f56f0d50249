import { describe, expect, it } from 'vitest';
import { Access, Hypervisor, type MemslotTable } from '@hvmmu/core';
import { CR0, CR4, EFER, GuestWalk, GuestWalker, X86Registers, X86ShadowMmu, x86ShadowBackend } from '@hvmmu/x86-shadow/internal';

// The walker remembers, per level, the host frame of the last table it read over a VM's memslots.
// These tests change what backs a table page in every way the memslot table allows and check that
// the next walk reads the new bytes, never the old frame.

const P = 1,
  W = 2,
  U = 4,
  A = 0x20,
  D = 0x40;
const PML4 = 0x1000,
  PDPT = 0x2000,
  PD = 0x3000,
  PT = 0x4000;

/** A VM whose slot 0 (64 KiB) holds PML4 → PDPT → PD → PT for va 0, the PTE mapping `leafGpa`. */
function vmWithTables(leafGpa: number, hv = new Hypervisor({ memoryBytes: 4 << 20 })) {
  const vm = hv.createVm({ backend: x86ShadowBackend });
  vm.memslots.create({ id: 0, guestPhysAddr: 0, size: 0x1_0000 });
  writeTables(vm.memslots, leafGpa);
  return { vm, mem: (vm.mmu as X86ShadowMmu).pages.guestMem };
}

function writeTables(memslots: MemslotTable, leafGpa: number): void {
  const f = P | W | U | A;
  memslots.write32(PML4, PDPT | f, true);
  memslots.write32(PDPT, PD | f, true);
  memslots.write32(PD, PT | f, true);
  memslots.write32(PT, leafGpa | f | D, true);
}

function regs(): X86Registers {
  const r = new X86Registers();
  r.cr0 = (CR0.PE | CR0.PG | CR0.WP) >>> 0;
  r.cr4 = CR4.PAE;
  r.efer = EFER.LME | EFER.LMA | EFER.NXE;
  r.cr3 = PML4;
  return r;
}

function gfnOfVa0(walker: GuestWalker, mem: Parameters<GuestWalker['walk']>[1]): number {
  const out = new GuestWalk();
  expect(walker.walk(regs(), mem, 0, Access.READ, out, false)).toBe(true);
  return out.gfn;
}

describe('GuestWalker over memslot memory: the per-level table frame it remembers', () => {
  it('follows a host frame migration of a table page (the old frame is freed, its bytes stale)', () => {
    const { vm, mem } = vmWithTables(0x8000);
    const walker = new GuestWalker();
    expect(gfnOfVa0(walker, mem)).toBe(8);
    const slot = vm.memslots.get(0)!;
    const oldFrame = slot.frames[PT / 4096]!;
    const newFrame = vm.memslots.migrateHostFrame(oldFrame);
    expect(newFrame).not.toBe(oldFrame);
    // The VMM rewrites the PTE: the bytes land in the new frame only.
    vm.memslots.write32(PT, 0x9000 | P | W | U | A | D, true);
    expect(gfnOfVa0(walker, mem)).toBe(9);
  });

  it('follows a delete and re-create of the slot holding the tables', () => {
    const { vm, mem } = vmWithTables(0x8000);
    const walker = new GuestWalker();
    expect(gfnOfVa0(walker, mem)).toBe(8);
    vm.memslots.delete(0);
    // Fill freshly allocated frames first, so the new tables get other host frames than before.
    vm.memslots.create({ id: 1, guestPhysAddr: 0x10_0000, size: 0x1_0000 });
    for (let gpa = 0x10_0000; gpa < 0x11_0000; gpa += 4096) vm.memslots.write32(gpa, 0xdead_0000, true);
    vm.memslots.create({ id: 0, guestPhysAddr: 0, size: 0x1_0000 });
    writeTables(vm.memslots, 0xa000);
    expect(gfnOfVa0(walker, mem)).toBe(0xa);
    // And a walk into a hole afterwards fails instead of reading a freed frame.
    vm.memslots.delete(0);
    const out = new GuestWalk();
    expect(walker.walk(regs(), mem, 0, Access.READ, out, false)).toBe(false);
    expect(out.badTableGpa).toBe(true);
  });

  it('keeps two VMs of one host apart when one walker walks both (same gpas, same history, other tables)', () => {
    const hv = new Hypervisor({ memoryBytes: 4 << 20 });
    const a = vmWithTables(0x8000, hv);
    const b = vmWithTables(0xb000, hv);
    const walker = new GuestWalker();
    for (let k = 0; k < 3; k++) {
      expect(gfnOfVa0(walker, a.mem)).toBe(8);
      expect(gfnOfVa0(walker, b.mem)).toBe(0xb);
    }
  });

  it('reads a table page that still maps the zero frame through the slot, and its first write afterwards', () => {
    const { vm, mem } = vmWithTables(0x8000);
    const walker = new GuestWalker();
    // Point the PDE at a never-written page: its PT reads as zeros (not present) through the zero frame.
    vm.memslots.write32(PD, 0x6000 | P | W | U | A, true);
    const out = new GuestWalk();
    expect(walker.walk(regs(), mem, 0, Access.READ, out, false)).toBe(false);
    expect(out.errorCode & 1).toBe(0);
    // The page gets its own frame on the first write (copy of the zero frame).
    vm.memslots.write32(0x6000, 0xc000 | P | W | U | A | D, true);
    expect(gfnOfVa0(walker, mem)).toBe(0xc);
  });
});
