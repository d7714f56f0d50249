import { describe, expect, it } from 'vitest';
import { Access, FaultDestination, GuestRights, HvmmuError, Hypervisor, TRANSLATE_FAULT } from '@hvmmu/core';
import { X86_GUEST_VPN_LIMIT, x86GuestSide, x86ShadowBackend } from '@hvmmu/x86-shadow';

const MiB = 1 << 20;
/** Data at gfn 0..1023 (4 MiB), the table area at gfn 0x1000 (16 MiB, 64 pages). */
const AREA = { baseGfn: 0x1000, pages: 64 };
const U = GuestRights.USER;
const W = GuestRights.WRITE;
const X = GuestRights.EXEC;

function guest(vcpus = 1, area = AREA) {
  const hv = new Hypervisor({ memoryBytes: 16 * MiB });
  const vm = hv.createVm({ backend: x86ShadowBackend, backendOptions: { memslotInvalidation: 'invalid-rmap' } });
  vm.memslots.create({ id: 0, guestPhysAddr: 0, size: 4 * MiB });
  vm.memslots.create({ id: 1, guestPhysAddr: AREA.baseGfn * 4096, size: AREA.pages * 4096 });
  const cpus = Array.from({ length: vcpus }, () => vm.createVcpu({ countTlbHits: true }));
  const side = x86GuestSide.create(vm, area);
  return { vm, cpus, side };
}

describe('x86GuestSide: a 4-level long-mode guest OS for workloads', () => {
  it('is the backend module’s guest side, in one of its paging modes', () => {
    expect(x86ShadowBackend.guestSide).toBe(x86GuestSide);
    expect(x86ShadowBackend.capabilities.pagingModes).toContain(x86GuestSide.pagingMode);
    // A PML4 per space, at worst a PDPT, PD and PT per mapping, and the direct map's PDPT and PDs (4 pages at worst for these).
    expect(x86GuestSide.tablePagesFor(0, 1)).toBe(1 + 4);
    expect(x86GuestSide.tablePagesFor(10, 2)).toBe(32 + 4);
    expect(() => x86GuestSide.tablePagesFor(-1, 1)).toThrow(HvmmuError);
  });

  it('map writes the SDM entries (P|W|U above, the rights at the leaf, XD unless EXEC) and activate loads CR3', () => {
    const { vm, cpus, side } = guest();
    const mem = vm.memslots;
    // vpn 0x7f12_3456_7 (va 0x7f12_3456_7000): PML4 0xfe, PDPT 0x48, PD 0x1a2, PT 0x167.
    const vpn = 0x7f12_3456_7;
    const base = AREA.baseGfn * 4096;
    // At creation: the PML4 at 0x1000000, then the kernel's direct map of the area, va 0xffff_8880_0000_0000 + gpa:
    // PML4[0x111] → PDPT +0x1000; PDPT[0] → PD +0x2000; PD[8] a 2 MiB supervisor page at gpa 16 MiB, XD (PS|W|P).
    expect(side.tablePages).toBe(3);
    expect(mem.read64Lo(base + 0x111 * 8, true)).toBe((base + 0x1000) | 0x3);
    expect(mem.read64Lo(base + 0x1000, true)).toBe((base + 0x2000) | 0x3);
    expect(mem.read64Lo(base + 0x2000 + 8 * 8, true)).toBe(0x100_0000 | 0x83);
    expect(mem.read64Hi(base + 0x2000 + 8 * 8, true)).toBe(0x8000_0000);
    expect(side.directMapAddress(base)).toBe(0xffff_8880_0100_0000n);
    side.map(0, vpn, 0x35, U);
    // User tables from the area in order: PDPT +0x3000, PD +0x4000, PT +0x5000.
    expect(side.tablePages).toBe(6);
    expect(mem.read64Lo(base + 0xfe * 8, true)).toBe((base + 0x3000) | 0x7);
    expect(mem.read64Lo(base + 0x3000 + 0x48 * 8, true)).toBe((base + 0x4000) | 0x7);
    expect(mem.read64Lo(base + 0x4000 + 0x1a2 * 8, true)).toBe((base + 0x5000) | 0x7);
    expect(mem.read64Lo(base + 0x5000 + 0x167 * 8, true)).toBe(0x3_5000 | 0x5); // P|U, read-only
    expect(mem.read64Hi(base + 0x5000 + 0x167 * 8, true)).toBe(0x8000_0000); // XD
    side.map(0, vpn + 1, 0x36, W | X);
    expect(mem.read64Lo(base + 0x5000 + 0x168 * 8, true)).toBe(0x3_6000 | 0x3); // P|W, supervisor
    expect(mem.read64Hi(base + 0x5000 + 0x168 * 8, true)).toBe(0);

    const vcpu = cpus[0]!;
    side.activate(vcpu, 0);
    expect(side.cr3Of(0)).toBe(base);
    expect(vcpu.arch.regs.cr3).toBe(base);
    // What the guest reads through the mapping is what the VMM put at gfn 0x35.
    mem.write8(0x3_5000 + 0x10, 0xab);
    expect(vcpu.read8(vpn * 4096 + 0x10)).toBe(0xab);
  });

  it('the leaf rights are what the guest gets: writes, user accesses and fetches fault with the #PF error code', () => {
    const { cpus, side } = guest();
    const vcpu = cpus[0]!;
    side.map(0, 0x100, 0x10, U); // user, read-only, no exec
    side.map(0, 0x101, 0x11, W); // supervisor, writable
    side.map(0, 0x102, 0x12, U | X); // user, exec
    side.activate(vcpu, 0);
    expect(vcpu.translate(0x100 * 4096, Access.READ | Access.USER)).toBeGreaterThanOrEqual(0);
    expect(vcpu.translate(0x100 * 4096, Access.WRITE | Access.USER)).toBe(TRANSLATE_FAULT);
    expect(vcpu.fault.destination).toBe(FaultDestination.GUEST);
    expect(vcpu.fault.vector).toBe(14);
    expect(vcpu.fault.code).toBe(0x7); // P | W/R | U/S
    expect(vcpu.translate(0x101 * 4096, Access.READ | Access.USER)).toBe(TRANSLATE_FAULT);
    expect(vcpu.fault.code).toBe(0x5); // P | U/S
    expect(vcpu.translate(0x101 * 4096, Access.WRITE)).toBeGreaterThanOrEqual(0);
    expect(vcpu.translate(0x100 * 4096, Access.FETCH | Access.USER)).toBe(TRANSLATE_FAULT);
    expect(vcpu.fault.code).toBe(0x15); // P | U/S | I/D
    expect(vcpu.translate(0x102 * 4096, Access.FETCH | Access.USER)).toBeGreaterThanOrEqual(0);
  });

  it('a remap or unmap after the page was used is seen at once (the PTE store is tracked, then INVLPG)', () => {
    const { vm, cpus, side } = guest();
    const vcpu = cpus[0]!;
    side.map(0, 0x200, 0x20, U | W);
    side.activate(vcpu, 0);
    const frameOf = (gfn: number) => vm.memslots.gfnToHfn(vm.memslots.get(0), gfn, true);
    // Several rounds, so the leaf table is shadowed, unsynced and resynced in between.
    for (let round = 0; round < 4; round++) {
      const gfn = 0x20 + round;
      side.map(0, 0x200, gfn, U | W);
      expect(vcpu.translatePage(0x200, Access.WRITE | Access.USER)).toBe(frameOf(gfn));
      expect(vcpu.translatePage(0x200, Access.READ | Access.USER)).toBe(frameOf(gfn));
    }
    side.map(0, 0x200, 0x30, U); // read-only now
    expect(vcpu.translatePage(0x200, Access.WRITE | Access.USER)).toBe(TRANSLATE_FAULT);
    expect(vcpu.fault.code).toBe(0x7);
    side.unmap(0, 0x200);
    expect(vcpu.translatePage(0x200, Access.READ | Access.USER)).toBe(TRANSLATE_FAULT);
    expect(vcpu.fault.code).toBe(0x4); // not present, user read
    // Unmapping what is not mapped (no table, or a clear entry) does nothing.
    side.unmap(0, 0x200);
    side.unmap(0, 0x7_0000_0000);
  });

  it('once a vCPU runs the guest, the kernel writes its tables through the direct map: the shadow MMU emulates or unsyncs', () => {
    const { vm, cpus, side } = guest();
    const vcpu = cpus[0]!;
    side.activate(vcpu, 0);
    side.map(0, 0x200, 0x20, U | W);
    expect(vcpu.translatePage(0x200, Access.READ | Access.USER)).toBeGreaterThanOrEqual(0);
    const before = vm.stats();
    // The leaf table is shadowed now: a new entry in it is a guest write to a write-protected
    // level-1 table, which KVM lets go unsync (and INVLPG syncs).
    side.map(0, 0x201, 0x21, U | W);
    const leaf = vm.stats();
    expect(leaf.unsyncs - before.unsyncs + (leaf.emulatedWrites - before.emulatedWrites)).toBeGreaterThan(0);
    expect(vcpu.translatePage(0x201, Access.WRITE | Access.USER)).toBe(vm.memslots.gfnToHfn(vm.memslots.get(0), 0x21, true));
    // A page under a new PT: the store that links it into the shadowed PD is trapped and emulated.
    side.map(0, 0x200 + 512, 0x22, U);
    expect(vm.stats().emulatedWrites).toBeGreaterThan(leaf.emulatedWrites);
    expect(vcpu.translatePage(0x200 + 512, Access.READ | Access.USER)).toBe(vm.memslots.gfnToHfn(vm.memslots.get(0), 0x22, false));
  });

  it('a map or unmap is seen by every vCPU that runs the guest', () => {
    const { vm, cpus, side } = guest(2);
    const [a, b] = [cpus[0]!, cpus[1]!];
    side.map(0, 0x300, 0x40, U | W);
    side.activate(a, 0);
    side.activate(b, 0);
    expect(b.translatePage(0x300, Access.READ | Access.USER)).toBeGreaterThanOrEqual(0);
    expect(b.translatePage(0x300, Access.READ | Access.USER)).toBeGreaterThanOrEqual(0);
    expect(b.tlb.hits).toBe(1);
    side.unmap(0, 0x300);
    expect(b.translatePage(0x300, Access.READ | Access.USER)).toBe(TRANSLATE_FAULT);
    side.map(0, 0x300, 0x41, U);
    expect(b.translatePage(0x300, Access.READ | Access.USER)).toBe(vm.memslots.gfnToHfn(vm.memslots.get(0), 0x41, false));
  });

  it('address spaces are PML4s: the same page maps differently in each, activate switches CR3', () => {
    const { vm, cpus, side } = guest();
    const vcpu = cpus[0]!;
    expect(side.spaceCount).toBe(1);
    expect(side.createSpace()).toBe(1);
    expect(side.spaceCount).toBe(2);
    side.map(0, 0x400, 0x50, U);
    side.map(1, 0x400, 0x51, U);
    // Two PML4s, the direct map's PDPT and PD (shared), and a PDPT, PD and PT per space.
    expect(side.tablePages).toBe(2 + 2 + 2 * 3);
    expect(side.cr3Of(1)).toBe((AREA.baseGfn + 3) * 4096);
    // The kernel half is the same in both.
    expect(vm.memslots.read64Lo(side.cr3Of(1) + 0x111 * 8, true)).toBe(vm.memslots.read64Lo(side.cr3Of(0) + 0x111 * 8, true));
    const slot0 = vm.memslots.get(0);
    for (const [space, gfn] of [
      [0, 0x50],
      [1, 0x51],
      [0, 0x50],
    ] as const) {
      side.activate(vcpu, space);
      expect(vcpu.arch.regs.cr3).toBe(side.cr3Of(space));
      expect(vcpu.translatePage(0x400, Access.READ | Access.USER)).toBe(vm.memslots.gfnToHfn(slot0, gfn, false));
    }
    // A change to the space not running is seen when it runs again.
    side.map(1, 0x400, 0x52, U);
    side.activate(vcpu, 1);
    expect(vcpu.translatePage(0x400, Access.READ | Access.USER)).toBe(vm.memslots.gfnToHfn(slot0, 0x52, false));
  });

  it('tablePagesFor is enough for any mappings: random pages over the whole half, in several spaces', () => {
    const hv = new Hypervisor({ memoryBytes: 16 * MiB });
    const vm = hv.createVm({ backend: x86ShadowBackend });
    const maps = 200;
    const spaces = 3;
    const pages = x86GuestSide.tablePagesFor(maps, spaces);
    vm.memslots.create({ id: 0, guestPhysAddr: 0, size: pages * 4096 });
    const side = x86GuestSide.create(vm, { baseGfn: 0, pages });
    side.createSpace();
    side.createSpace();
    let seed = 12345;
    const next = () => {
      seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
      return seed;
    };
    for (let i = 0; i < maps; i++) side.map(i % spaces, (next() * 8 + (next() & 7)) % X86_GUEST_VPN_LIMIT, i, U);
    expect(side.tablePages).toBeLessThanOrEqual(pages);
    // Scattered pages rarely share tables: most maps took a PDPT, a PD and a PT of their own.
    expect(side.tablePages).toBeGreaterThan(spaces + 2 * maps);
  });

  it('host misuse throws a typed error and changes nothing', () => {
    const { vm, cpus, side } = guest(1, { baseGfn: AREA.baseGfn, pages: 7 });
    const code = (f: () => void) => {
      try {
        f();
      } catch (error) {
        return error instanceof HvmmuError ? error.code : 'not an HvmmuError';
      }
      return 'no error';
    };
    expect(side.vpnLimit).toBe(X86_GUEST_VPN_LIMIT);
    expect(code(() => side.map(0, X86_GUEST_VPN_LIMIT, 1, 0))).toBe('BAD_ARGUMENT');
    expect(code(() => side.map(0, -1, 1, 0))).toBe('BAD_ARGUMENT');
    expect(code(() => side.map(0, 1.5, 1, 0))).toBe('BAD_ARGUMENT');
    expect(code(() => side.map(1, 1, 1, 0))).toBe('BAD_ARGUMENT');
    expect(code(() => side.map(0, 1, 2 ** 28, 0))).toBe('BAD_ARGUMENT');
    expect(code(() => side.map(0, 1, 1, 8))).toBe('BAD_ARGUMENT');
    expect(code(() => side.unmap(3, 1))).toBe('BAD_ARGUMENT');
    expect(code(() => side.activate(cpus[0]!, 2))).toBe('BAD_ARGUMENT');
    const other = new Hypervisor({ memoryBytes: MiB }).createVm({ backend: x86ShadowBackend }).createVcpu();
    expect(code(() => side.activate(other, 0))).toBe('BAD_ARGUMENT');
    expect(side.tablePages).toBe(3);
    // 7 pages: the PML4, the direct map's 2 and one path of 3; a page in another PML4 slot needs 3 more: refused whole.
    side.map(0, 0, 0x1, U);
    expect(side.tablePages).toBe(6);
    expect(code(() => side.map(0, 2 ** 27, 0x2, U))).toBe('GUEST_NO_MEMORY');
    expect(side.tablePages).toBe(6);
    expect(vm.memslots.read64Lo(AREA.baseGfn * 4096 + 8, true)).toBe(0);
    side.createSpace();
    expect(code(() => side.createSpace())).toBe('GUEST_NO_MEMORY');
    // An area outside memory, or read-only, is refused when the guest side is made.
    expect(code(() => x86GuestSide.create(vm, { baseGfn: 0x2000, pages: 1 }))).toBe('BAD_ARGUMENT');
    vm.memslots.create({ id: 5, guestPhysAddr: 0x3000 * 4096, size: 4096, flags: 2 });
    expect(code(() => x86GuestSide.create(vm, { baseGfn: 0x3000, pages: 1 }))).toBe('BAD_ARGUMENT');
    expect(code(() => x86GuestSide.create(vm, { baseGfn: AREA.baseGfn, pages: 0 }))).toBe('BAD_ARGUMENT');
    // Too small for the PML4 and the direct map.
    expect(code(() => x86GuestSide.create(vm, { baseGfn: AREA.baseGfn, pages: 2 }))).toBe('GUEST_NO_MEMORY');
  });
});
