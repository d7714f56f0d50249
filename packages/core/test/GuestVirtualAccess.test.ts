import { describe, expect, it } from 'vitest';
import { FaultDestination, FaultKind, Hypervisor, MemslotFlags, TRANSLATE_FAULT } from '@hvmmu/core';
import { expectHvmmuError } from './fixtures/assertions.js';
import { makeTestBackend } from './fixtures/testBackend.js';

// Guest-virtual access through any backend: the fixture backend maps virtual page N to guest
// frame N, so the expected bytes are read back host-side from guest physical memory.

const PAGE = 4096;

function machine() {
  const hv = new Hypervisor({ memoryBytes: 64 * PAGE });
  const vm = hv.createVm({ backend: makeTestBackend(), tlbEntries: 16 });
  vm.memslots.create({ id: 0, guestPhysAddr: 0, size: 4 * PAGE });
  vm.memslots.create({ id: 1, guestPhysAddr: 8 * PAGE, size: PAGE, flags: MemslotFlags.READONLY });
  const vcpu = vm.createVcpu();
  const bytesAt = (gpa: number, n: number) => Array.from({ length: n }, (_, k) => vm.memslots.read8(gpa + k));
  return { hv, vm, vcpu, bytesAt };
}

describe('guest-virtual writes and reads', () => {
  it('stores 16/32/64-bit values in the byte order asked for', () => {
    const { vcpu, bytesAt } = machine();
    expect(vcpu.write16(0x100, 0x1234, true)).toBe(true);
    expect(vcpu.write16(0x102, 0x1234, false)).toBe(true);
    expect(bytesAt(0x100, 4)).toEqual([0x34, 0x12, 0x12, 0x34]);
    expect(vcpu.write32(0x200, 0x0a0b0c0d, false)).toBe(true);
    expect(bytesAt(0x200, 4)).toEqual([0x0a, 0x0b, 0x0c, 0x0d]);
    expect(vcpu.write64(0x300, 0x01020304, 0x05060708, true)).toBe(true);
    expect(bytesAt(0x300, 8)).toEqual([8, 7, 6, 5, 4, 3, 2, 1]);
    expect(vcpu.write64Big(0x400, 0x1122334455667788n, false)).toBe(true);
    expect(bytesAt(0x400, 8)).toEqual([0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88]);
    expect(vcpu.read32(0x200, false)).toBe(0x0a0b0c0d);
    expect(vcpu.read32(0x200, true)).toBe(0x0d0c0b0a);
    expect(vcpu.read64Big(0x400, false)).toBe(0x1122334455667788n);
    expect(vcpu.read64Big(0x300, true)).toBe(0x0102030405060708n);
    expect(vcpu.read64(0x300, false)).toBe(true);
    expect([vcpu.valueHi, vcpu.valueLo]).toEqual([0x08070605, 0x04030201]);
    expect(vcpu.read8(0x301)).toBe(7);
    expect(vcpu.read16(0x100, true)).toBe(0x1234);
  });

  it('crosses a page boundary as the access does', () => {
    const { vcpu, bytesAt } = machine();
    expect(vcpu.write64(PAGE - 3, 0x11223344, 0x55667788, true)).toBe(true);
    expect(bytesAt(PAGE - 3, 8)).toEqual([0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11]);
    expect(vcpu.read64Big(PAGE - 3, true)).toBe(0x1122334455667788n);
    expect(vcpu.read32(2 * PAGE - 2, false)).toBe(0);
  });

  it('faults on the second page before writing the first, with the byte-exact address', () => {
    const { vcpu, bytesAt } = machine();
    expect(vcpu.write32(4 * PAGE - 2, 0xffffffff, true)).toBe(false);
    expect(vcpu.fault.kind).toBe(FaultKind.NO_MEMORY);
    expect(vcpu.fault.destination).toBe(FaultDestination.VMM);
    expect(vcpu.fault.gpa).toBe(4 * PAGE);
    expect(vcpu.fault.address).toBe(4 * PAGE);
    expect(bytesAt(4 * PAGE - 2, 2)).toEqual([0, 0]);
    expect(vcpu.read32(4 * PAGE + 0x10, true)).toBe(TRANSLATE_FAULT);
    expect([vcpu.fault.gpa, vcpu.fault.offset, vcpu.fault.vaLo]).toEqual([4 * PAGE + 0x10, 0x10, 4 * PAGE + 0x10]);
  });

  it('reports a write to read-only memory as READ_ONLY and leaves it unchanged', () => {
    const { vm, vcpu } = machine();
    vm.memslots.write8(8 * PAGE + 5, 0x42);
    expect(vcpu.write8(8 * PAGE + 5, 1)).toBe(false);
    expect(vcpu.fault.kind).toBe(FaultKind.READ_ONLY);
    expect(vcpu.fault.gpa).toBe(8 * PAGE + 5);
    expect(vcpu.read8(8 * PAGE + 5)).toBe(0x42);
  });

  it('takes BigInt addresses at the API edge, and refuses addresses outside 64 bits', () => {
    const { vcpu } = machine();
    expect(vcpu.write32(0x80n, 7, true)).toBe(true);
    expect(vcpu.read32(0x80, true)).toBe(7);
    expect(vcpu.read32(0xc000_0000_0000_0000n, true)).toBe(TRANSLATE_FAULT);
    expect([vcpu.fault.vaHi, vcpu.fault.vaLo]).toEqual([0xc000_0000, 0]);
    expect(vcpu.fault.addressBig).toBe(0xc000_0000_0000_0000n);
    expectHvmmuError(() => vcpu.read32(1n << 64n, true), 'BAD_ARGUMENT');
    expectHvmmuError(() => vcpu.read32(-1n, true), 'BAD_ARGUMENT');
  });

  it.each([
    ['write8 256', (v: ReturnType<typeof machine>['vcpu']) => v.write8(0, 256)],
    ['write8 -129', (v: ReturnType<typeof machine>['vcpu']) => v.write8(0, -129)],
    ['write16 0x10000', (v: ReturnType<typeof machine>['vcpu']) => v.write16(0, 0x10000, true)],
    ['write32 2^32', (v: ReturnType<typeof machine>['vcpu']) => v.write32(0, 2 ** 32, true)],
    ['write32 NaN', (v: ReturnType<typeof machine>['vcpu']) => v.write32(0, Number.NaN, true)],
    ['write32 1.5', (v: ReturnType<typeof machine>['vcpu']) => v.write32(0, 1.5, true)],
    ['write64 hi 2^32', (v: ReturnType<typeof machine>['vcpu']) => v.write64(0, 2 ** 32, 0, true)],
    ['write64Big 2^64', (v: ReturnType<typeof machine>['vcpu']) => v.write64Big(0, 1n << 64n, true)],
    ['size 3', (v: ReturnType<typeof machine>['vcpu']) => v.read(0, 3, true)],
    ['byte order missing', (v: ReturnType<typeof machine>['vcpu']) => v.read32(0, undefined as unknown as boolean)],
    ['negative address', (v: ReturnType<typeof machine>['vcpu']) => v.read8(-1)],
  ])('%s is a typed error that writes nothing', (_name, call) => {
    const { vcpu, bytesAt } = machine();
    expectHvmmuError(() => call(vcpu), 'BAD_ARGUMENT');
    expect(bytesAt(0, 8)).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
  });

  it("accepts the two's-complement form of a value that fits", () => {
    const { vcpu, bytesAt } = machine();
    expect(vcpu.write8(0, -1)).toBe(true);
    expect(vcpu.write32(4, -2, true)).toBe(true);
    expect(bytesAt(0, 8)).toEqual([0xff, 0, 0, 0, 0xfe, 0xff, 0xff, 0xff]);
  });
});
