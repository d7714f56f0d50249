import { describe, expect, it } from 'vitest';
import { Access, FaultDestination, GuestRights, Hypervisor, TRANSLATE_FAULT, type Vcpu, type Vm } from '@hvmmu/core';
import {
  RADIX_NESTED_L2_LPID,
  RadixNestedGuestAddressSpaces,
  ppcRadixBackend,
  radixGuestSide,
  radixNestedGuestSide,
  type PpcRadixTypes,
} from '@hvmmu/ppc-radix';

const TABLE_GFN = 0x1000;
const DATA_GFN = 0x10_0000; // 4 GiB
const VPN = 0x1_0000;

interface Setup {
  vm: Vm<PpcRadixTypes>;
  vcpu: Vcpu<PpcRadixTypes>;
  guest: RadixNestedGuestAddressSpaces;
}

function setup(pages = 64, spaces = 1): Setup {
  const hv = new Hypervisor({ memoryBytes: 64 << 20 });
  const vm = hv.createVm({ backend: ppcRadixBackend, backendOptions: { nestedHv: true } });
  const tablePages = radixNestedGuestSide.tablePagesFor(pages, spaces);
  vm.memslots.create({ id: 0, guestPhysAddr: TABLE_GFN * 4096, size: tablePages * 4096 });
  vm.memslots.create({ id: 1, guestPhysAddr: DATA_GFN * 4096, size: pages * 4096 });
  const guest = radixNestedGuestSide.create(vm, { baseGfn: TABLE_GFN, pages: tablePages });
  const vcpu = vm.createVcpu();
  guest.activate(vcpu, 0);
  return { vm, vcpu, guest };
}

/** An L2 access; each exit reflected to L1 is handed to it (as the workload runner does). Returns [host address, exits L1 handled]. */
function access(s: Setup, va: number, kind: number): [number, number] {
  let exits = 0;
  for (;;) {
    const hpa = s.vcpu.translate(va, kind);
    if (hpa !== TRANSLATE_FAULT || s.vcpu.fault.destination !== FaultDestination.HYPERVISOR) return [hpa, exits];
    exits++;
    if (!s.guest.handleHypervisorFault(s.vcpu, s.vcpu.fault) || exits > 8) return [TRANSLATE_FAULT, exits];
  }
}

describe('radixNestedGuestSide: the workload’s guest as an L2 under an L1 hypervisor', () => {
  it('refuses a VM without nested HV, naming the option', () => {
    const hv = new Hypervisor({ memoryBytes: 16 << 20 });
    const vm = hv.createVm({ backend: ppcRadixBackend });
    vm.memslots.create({ id: 0, guestPhysAddr: 0, size: 8 << 20 });
    expect(() => radixNestedGuestSide.create(vm, { baseGfn: 0, pages: 2048 })).toThrow(/nestedHv: true/);
  });

  it('asks for the L1 guest side’s table pages plus L1’s 2 MiB window and its alignment', () => {
    expect(radixNestedGuestSide.tablePagesFor(100, 2)).toBe(radixGuestSide.tablePagesFor(100, 2) + 1024);
    expect(radixNestedGuestSide.pagingMode).toBe('radix');
  });

  it('the first activate registers L1’s partition table, sets the L2’s entry and enters the L2 with relocation on, PIDR the space', () => {
    const s = setup();
    expect(s.guest.l1.active).toBe(true);
    expect(s.vcpu.arch.inL2).toBe(true);
    expect(s.vcpu.arch.nested!.guest.l1Lpid).toBe(RADIX_NESTED_L2_LPID);
    expect(s.vcpu.arch.registers()).toMatchObject({ pid: 0, ir: 1, dr: 1 });
    expect(s.guest.l1Counters).toEqual({ enters: 1, exits: 0, l1Maps: 0, unresolved: 0 });
    // L1's window is 2 MiB-aligned inside the area, and its pages count as table pages.
    expect(s.guest.windowBase % (2 << 20)).toBe(0);
    expect(s.guest.tablePages).toBeGreaterThan(s.guest.l2.tablePages);
  });

  it('an L2 real page L1 has not mapped comes back to L1 (HDSI exit), which maps its 2 MiB and resumes the L2; then L0 shadows it', () => {
    const s = setup();
    s.guest.map(0, VPN, DATA_GFN, GuestRights.WRITE | GuestRights.USER);
    const [hpa, exits] = access(s, VPN * 4096 + 0x10, Access.WRITE | Access.USER);
    expect(hpa).not.toBe(TRANSLATE_FAULT);
    // The L2's tables (one 2 MiB region past L1's window) and its data page (another): two exits, two L1 maps.
    expect(exits).toBe(2);
    expect(s.guest.l1Counters).toMatchObject({ exits: 2, l1Maps: 2, unresolved: 0, enters: 3 });
    expect(s.vcpu.arch.inL2).toBe(true);
    expect(Math.floor(hpa / 4096)).toBe(s.vm.memslots.get(1).frames[0]);
    const st = s.vm.stats();
    expect(st.ppcRadixL2Reflected).toBe(2);
    expect(st.ppcRadixShadowInserts).toBeGreaterThanOrEqual(2);
    // The next page of the same 2 MiB: L0 alone.
    s.guest.map(0, VPN + 1, DATA_GFN + 1, GuestRights.WRITE | GuestRights.USER);
    expect(access(s, (VPN + 1) * 4096, Access.READ | Access.USER)[1]).toBe(0);
  });

  it('an L2 real address that is no L1 memory is not mapped by L1: the access fails, and the vCPU still runs the L2', () => {
    const s = setup();
    s.guest.map(0, VPN, 0x20_0000, GuestRights.USER); // 8 GiB: no memslot
    const [hpa] = access(s, VPN * 4096, Access.READ | Access.USER);
    expect(hpa).toBe(TRANSLATE_FAULT);
    expect(s.guest.l1Counters.unresolved).toBe(1);
    expect(s.vcpu.arch.inL2).toBe(true);
  });

  it('the L2 kernel’s tlbie reaches the L2’s partition: a remap or unmap is seen at once, a protect refuses the next store', () => {
    const s = setup();
    s.guest.map(0, VPN, DATA_GFN, GuestRights.WRITE | GuestRights.USER);
    const first = access(s, VPN * 4096, Access.WRITE | Access.USER)[0];
    expect(s.vcpu.translate(VPN * 4096, Access.WRITE | Access.USER)).toBe(first); // a TLB hit now
    s.guest.map(0, VPN, DATA_GFN + 1, GuestRights.WRITE | GuestRights.USER);
    const second = access(s, VPN * 4096, Access.WRITE | Access.USER)[0];
    expect(Math.floor(second / 4096)).toBe(s.vm.memslots.get(1).frames[1]);
    s.guest.map(0, VPN, DATA_GFN + 1, GuestRights.USER);
    expect(s.vcpu.translate(VPN * 4096, Access.WRITE | Access.USER)).toBe(TRANSLATE_FAULT);
    expect(s.vcpu.fault.destination).toBe(FaultDestination.GUEST); // the L2's own DSI
    expect(s.vcpu.arch.inL2).toBe(true);
    s.guest.unmap(0, VPN);
    expect(s.vcpu.translate(VPN * 4096, Access.READ | Access.USER)).toBe(TRANSLATE_FAULT);
    expect(s.vcpu.fault.destination).toBe(FaultDestination.GUEST);
  });

  it('address spaces are the L2’s PIDs: a switch in the L2 is an mtspr PIDR, the same page of two spaces maps apart', () => {
    const s = setup(64, 2);
    const other = s.guest.createSpace();
    // Stores: a read of an untouched page would map the shared zero frame in both.
    s.guest.map(0, VPN, DATA_GFN, GuestRights.WRITE | GuestRights.USER);
    s.guest.map(other, VPN, DATA_GFN + 2, GuestRights.WRITE | GuestRights.USER);
    const a = access(s, VPN * 4096, Access.WRITE | Access.USER)[0];
    s.guest.activate(s.vcpu, other);
    expect(s.vcpu.arch.registers().pid).toBe(other);
    expect(s.vcpu.arch.inL2).toBe(true);
    const b = access(s, VPN * 4096, Access.WRITE | Access.USER)[0];
    expect(a).not.toBe(TRANSLATE_FAULT);
    expect(b).not.toBe(TRANSLATE_FAULT);
    expect(Math.floor(a / 4096)).toBe(s.vm.memslots.get(1).frames[0]);
    expect(Math.floor(b / 4096)).toBe(s.vm.memslots.get(1).frames[2]);
  });

  it('a host invalidation under the running L2 drops the shadow leaf through the nested rmap; the next access faults back in through L0 alone', () => {
    const s = setup();
    s.guest.map(0, VPN, DATA_GFN, GuestRights.WRITE | GuestRights.USER);
    const hpa = access(s, VPN * 4096, Access.WRITE | Access.USER)[0];
    const slot = s.vm.memslots.get(1);
    const hfn = slot.frames[0]!;
    expect(slot.arch.nested.entries(0)).toEqual([[RADIX_NESTED_L2_LPID, DATA_GFN]]);
    const leaves = s.vm.stats().ppcRadixShadowLeaves;
    expect(s.vm.memslots.invalidateHostRange(hfn, hfn + 1)).toBe(1);
    expect(s.vm.stats().ppcRadixShadowLeaves).toBe(leaves - 1);
    expect(slot.arch.nested.entries(0)).toEqual([]);
    expect(s.vcpu.arch.inL2).toBe(true);
    const before = s.vm.stats();
    const [again, exits] = access(s, VPN * 4096, Access.WRITE | Access.USER);
    expect(again).toBe(hpa);
    expect(exits).toBe(0);
    const after = s.vm.stats();
    expect(after.ppcRadixL2Faults - before.ppcRadixL2Faults).toBe(1);
    expect(after.ppcRadixShadowInserts - before.ppcRadixShadowInserts).toBe(1);
  });
});
