import { describe, expect, it } from 'vitest';
import { Access, FaultKind } from '@hvmmu/core';
import { ROOT_NORMAL, VECTOR_GP, VECTOR_PF } from '@hvmmu/x86-shadow/internal';
import { A, D, NX_HI, P, TableBuilder, U, W, controlsFor, makeVm } from './helpers/guest.js';

// #PF error-code bits (SDM 4.7), spelled out independently of the package.
const PF_P = 1;
const PF_W = 2;
const PF_U = 4;
const PF_ID = 16;

function long4Guest() {
  const t = makeVm();
  const b = new TableBuilder(t.mem, 'long4', 0x10_0000);
  const pml4 = b.root();
  expect(t.x.loadControlRegisters(controlsFor('long4', pml4))).toBe(true);
  return { ...t, b, pml4 };
}

describe('4-level guest under shadow paging', () => {
  it('maps a guest page on first touch, sets guest A/D, and later hits the TLB', () => {
    const { x, vm, mem, b, pml4 } = long4Guest();
    const leaf = b.map4k(pml4, 0x40_0000, 0x20_0000, P | W | U);
    expect(x.write(0x40_0123, 4, 0xdeadbeef)).toBe(true);
    // The bytes land at the guest physical page the guest maps.
    expect(mem.read32(0x20_0123, true)).toBe(0xdeadbeef);
    // SDM 4.8: a write sets A in every entry used and D in the leaf.
    expect(b.read(leaf).lo & (A | D)).toBe(A | D);
    expect(b.read(b.entryAt(pml4, 0x40_0000, 4)).lo & A).toBe(A);
    expect(x.rootKind).toBe(ROOT_NORMAL);
    const s1 = vm.stats();
    expect(s1['shadowFaults']).toBe(1);
    // 4 shadow levels: root + PDPT + PD + PT shadow pages.
    expect(s1['shadowPages']).toBe(4);
    expect(s1['rmapEntries']).toBe(1);
    expect(x.read(0x40_0123, 4)).toBe(true);
    expect(x.readLo).toBe(0xdeadbeef);
    expect(vm.stats()['shadowFaults']).toBe(1);
  });

  it('reflects guest faults with the exact #PF error code', () => {
    const { x, vcpu, b, pml4 } = long4Guest();
    b.map4k(pml4, 0x40_0000, 0x20_0000, P | U); // read-only user page
    b.map4k(pml4, 0x40_1000, 0x20_1000, P | W); // supervisor page
    b.map4k(pml4, 0x40_2000, 0x20_2000, P | W | U, NX_HI); // no-execute
    // Not present: P=0, W from the access.
    expect(x.write(0x50_0000, 4, 1)).toBe(false);
    expect(vcpu.fault.kind).toBe(FaultKind.GUEST);
    expect(vcpu.fault.code).toBe(PF_W);
    expect(x.lastExceptionVector).toBe(VECTOR_PF);
    // Supervisor write to a read-only page with CR0.WP=1.
    expect(x.write(0x40_0000, 4, 1)).toBe(false);
    expect(vcpu.fault.code).toBe(PF_P | PF_W);
    // User read of a supervisor page.
    expect(x.read(0x40_1000, 4, Access.USER)).toBe(false);
    expect(vcpu.fault.code).toBe(PF_P | PF_U);
    // Fetch from an NX page (EFER.NXE=1 → I/D reported).
    expect(x.read(0x40_2000, 4, Access.FETCH)).toBe(false);
    expect(vcpu.fault.code).toBe(PF_P | PF_ID);
    // The same page is readable.
    expect(x.read(0x40_2000, 4)).toBe(true);
  });

  it('raises #GP for a non-canonical address without reading tables', () => {
    const { x, vcpu } = long4Guest();
    // 0x0000_8000_0000_0000 is non-canonical with 48-bit addresses.
    expect(x.read(2 ** 47, 4)).toBe(false);
    expect(vcpu.fault.kind).toBe(FaultKind.GUEST);
    expect(x.lastExceptionVector).toBe(VECTOR_GP);
  });

  it('hands MMIO holes and read-only slots to the VMM', () => {
    const { x, vcpu, vm, b, pml4 } = long4Guest();
    vm.memslots.create({ id: 1, guestPhysAddr: 0x4000_0000, size: 0x10_0000, flags: 2 /* READONLY */ });
    b.map4k(pml4, 0x60_0000, 0x3000_0000, P | W); // no memslot there
    b.map4k(pml4, 0x60_1000, 0x4000_0000, P | W); // read-only slot
    expect(x.read(0x60_0000, 4)).toBe(false);
    expect(vcpu.fault.kind).toBe(FaultKind.NO_MEMORY);
    expect(vcpu.fault.gpa).toBe(0x3000_0000);
    expect(x.read(0x60_1000, 4)).toBe(true);
    expect(x.write(0x60_1000, 4, 7)).toBe(false);
    expect(vcpu.fault.kind).toBe(FaultKind.READ_ONLY);
  });
});
