import { describe, expect, it } from 'vitest';
import { Access, FaultDestination, FaultKind, GuestRights, HvmmuError, Hypervisor, MemslotFlags, TRANSLATE_FAULT } from '@hvmmu/core';
import {
  HPTE_V_ABSENT_LO,
  HptCause,
  HptGuestSide,
  HptHcall,
  HptVector,
  KvmHtabReader,
  KvmHtabWriter,
  type HashPageTable,
  PaprStatus,
  ppcHptBackend,
} from '@hvmmu/ppc-hpt';

// Expected words are worked out by hand from the ISA and KVM (book3s_64_mmu_hv.c,
// book3s_hv_rm_mmu.c), not read back from the backend.
const SEGMENT_VPN = 0x1_0000; // EA 0x1000_0000: ESID 1
const VSID_SPACE0_ESID1 = 0x10_0001; // (space 0 + 1) · 2^20 + ESID 1

function vmWithSlot(options: { flags?: number; hptOrder?: number; memslotInvalidation?: 'invalid-rmap' | 'fast-zap' } = {}) {
  const hv = new Hypervisor({ memoryBytes: 8 << 20 });
  const vm = hv.createVm({
    backend: ppcHptBackend,
    backendOptions: { hptOrder: options.hptOrder ?? 18, memslotInvalidation: options.memslotInvalidation ?? 'invalid-rmap' },
  });
  vm.memslots.create({ id: 1, guestPhysAddr: 0, size: 256 * 4096, flags: options.flags ?? 0 });
  const vcpu = vm.createVcpu();
  const side = new HptGuestSide(vm);
  side.activate(vcpu, 0);
  expect(side.loadSegment(vcpu, SEGMENT_VPN)).toBe(true);
  return { hv, vm, vcpu, side };
}

/** The HPTE index the guest side chose for vpn: the primary group of hash VSID ^ page index. */
function primaryGroup(vpn: number, hashMask: number): number {
  return ((VSID_SPACE0_ESID1 ^ (vpn % 0x1_0000)) & hashMask) * 8;
}

function words(t: HashPageTable, ptex: number): [number, number, number, number] {
  const v = t.view;
  return [v.getUint32(ptex * 16), v.getUint32(ptex * 16 + 4), v.getUint32(ptex * 16 + 8), v.getUint32(ptex * 16 + 12)];
}

describe('ppc-hpt backend: guest view and real HPT (KVM HV)', () => {
  it('H_ENTER of an untouched page leaves the real entry ABSENT; the first access faults it in with the host frame as RPN', () => {
    const { vm, vcpu, side } = vmWithSlot();
    const vpn = SEGMENT_VPN + 5;
    side.map(0, vpn, 7, GuestRights.WRITE | GuestRights.USER);
    const hpt = vm.arch.hpt;
    const ptex = primaryGroup(vpn, hpt.guest.hashMask);
    // Guest view: VSID 0x100001 << 12, AVPN page bits 0 (page 5 < 2^11), V; dword1 gfn 7, M, N (no EXEC), PP 2.
    expect(words(hpt.guest, ptex)).toEqual([0x1, 0x0000_1001, 0, 0x7000 | 0x10 | 0x4 | 0x2]);
    // Real: ABSENT instead of V, the key cleared, same dword1 (the host page is not mapped yet).
    expect(words(hpt.real, ptex)).toEqual([0x1, 0x0000_1000 | HPTE_V_ABSENT_LO, 0, 0x7000 | 0x10 | 0x4 | 0x2]);
    const hpa = vcpu.translate(vpn * 4096 + 8, Access.WRITE);
    expect(hpa).not.toBe(TRANSLATE_FAULT);
    const hfn = Math.floor(hpa / 4096);
    expect(hfn).toBe(vm.memslots.get(1).frameAt(7));
    // Valid now: RPN = host frame, R and C set by the store; the guest view keeps gpa 7 and gains R and C.
    expect(words(hpt.real, ptex)).toEqual([0x1, 0x0000_1001, 0, ((hfn * 4096) | 0x100 | 0x80 | 0x10 | 0x4 | 0x2) >>> 0]);
    expect(words(hpt.guest, ptex)[3]).toBe(0x7000 | 0x100 | 0x80 | 0x10 | 0x4 | 0x2);
    expect(vm.stats().hptHostFaults).toBe(1);
  });

  it('H_READ returns the guest view (the guest physical address), never the host frame', () => {
    const { vm, vcpu, side } = vmWithSlot();
    const vpn = SEGMENT_VPN + 9;
    side.map(0, vpn, 0x21, GuestRights.WRITE);
    vcpu.translate(vpn * 4096, Access.READ);
    const ptex = primaryGroup(vpn, vm.arch.hpt.guest.hashMask);
    const regs = vcpu.hcallRegs;
    regs.clear();
    regs.setArg(1, ptex);
    expect(vcpu.hypercall(HptHcall.H_READ)).toBe(PaprStatus.H_SUCCESS);
    expect(regs.ret(1) & 0xffff_f000).toBe(0x21000);
    expect(regs.ret(1) & 0x100).toBe(0x100); // R from the hardware's walk
  });

  it('an H_ENTER with no memslot behind it is emulated MMIO: ABSENT with key 31, and an access exits to the VMM at its address', () => {
    const { vm, vcpu, side } = vmWithSlot();
    const vpn = SEGMENT_VPN + 3;
    side.map(0, vpn, 0x9_0000, GuestRights.WRITE);
    const ptex = primaryGroup(vpn, vm.arch.hpt.guest.hashMask);
    const [, lo0, hi1, lo1] = words(vm.arch.hpt.real, ptex);
    expect(lo0 & 0x21).toBe(HPTE_V_ABSENT_LO);
    expect(hi1 & 0x3000_0000).toBe(0x3000_0000);
    expect(lo1 & 0xe00).toBe(0xe00);
    expect(vcpu.translate(vpn * 4096 + 0x10, Access.READ)).toBe(TRANSLATE_FAULT);
    expect(vcpu.fault.kind).toBe(FaultKind.NO_MEMORY);
    expect(vcpu.fault.destination).toBe(FaultDestination.VMM);
    expect(vcpu.fault.gpa).toBe(0x9_0000 * 4096 + 0x10);
  });

  it('H_ENTER refuses a 16M page over a memslot (host pages are 4 KiB), and accepts it as MMIO', () => {
    const { vcpu } = vmWithSlot();
    const regs = vcpu.hcallRegs;
    // dword0: VSID word, AVPN 0, L, V; dword1: RPN 0 (memslot 1), LP 0 → 16M.
    regs.clear();
    regs.setArg(1, 0).setArgHalves(2, 0x1, 0x0000_1005).setArgHalves(3, 0, 0x12);
    expect(vcpu.hypercall(HptHcall.H_ENTER)).toBe(PaprStatus.H_PARAMETER);
    regs.clear();
    regs
      .setArg(1, 0)
      .setArgHalves(2, 0x1, 0x0000_1005)
      .setArgHalves(3, 0, 0x4000_0000 + 0x12);
    expect(vcpu.hypercall(HptHcall.H_ENTER)).toBe(PaprStatus.H_SUCCESS);
  });

  it('H_REMOVE takes the page out of every TLB: the next access is a DSI with NOPTE, DAR the address', () => {
    const { hv, vm, vcpu, side } = vmWithSlot();
    void hv;
    const other = vm.createVcpu();
    side.activate(other, 0);
    side.loadSegment(other, SEGMENT_VPN);
    const vpn = SEGMENT_VPN + 0x7ff3; // page index bits above 11 come from the AVPN
    side.map(0, vpn, 4, GuestRights.WRITE);
    for (const v of [vcpu, other]) expect(v.translate(vpn * 4096, Access.READ)).not.toBe(TRANSLATE_FAULT);
    for (const v of [vcpu, other]) expect(v.translate(vpn * 4096, Access.READ)).not.toBe(TRANSLATE_FAULT); // TLB hits
    side.unmap(0, vpn);
    for (const v of [vcpu, other]) {
      expect(v.translate(vpn * 4096 + 0x44, Access.WRITE)).toBe(TRANSLATE_FAULT);
      expect(v.fault.vector).toBe(HptVector.DSI);
      expect(v.fault.code).toBe(HptCause.NOPTE | HptCause.STORE);
      expect(v.fault.word(2)).toBe(vpn * 4096 + 0x44);
    }
  });

  it('an entry in the secondary group is invalidated at the right page too', () => {
    const { vm, vcpu, side } = vmWithSlot();
    const hashMask = vm.arch.hpt.guest.hashMask;
    const vpn = SEGMENT_VPN + 0x123;
    // Fill the primary group with 8 other pages of the same hash group (page indexes differing above the mask).
    const group = primaryGroup(vpn, hashMask);
    let filled = 0;
    for (let p = 0; filled < 8 && p < 0x1_0000; p++) {
      const other = SEGMENT_VPN + p;
      if (other !== vpn && primaryGroup(other, hashMask) === group) {
        side.map(0, other, 10 + filled, GuestRights.WRITE);
        filled++;
      }
    }
    expect(filled).toBe(8);
    side.map(0, vpn, 40, GuestRights.WRITE);
    const secondary = ((~(VSID_SPACE0_ESID1 ^ 0x123) & hashMask) >>> 0) * 8;
    expect(words(vm.arch.hpt.guest, secondary)[1] & 0x3).toBe(0x3); // H and V
    expect(vcpu.translate(vpn * 4096, Access.READ)).not.toBe(TRANSLATE_FAULT);
    side.unmap(0, vpn);
    expect(vcpu.translate(vpn * 4096, Access.READ)).toBe(TRANSLATE_FAULT);
    expect(vcpu.fault.code).toBe(HptCause.NOPTE);
  });

  it('a 1T segment: the page is rebuilt from the 17 AVPN bits and the hash', () => {
    const { vm, vcpu, side } = vmWithSlot();
    const mmu = vcpu.arch;
    // slbmte: ESID of EA 0x100_0000_0000 (1T segment 1), V, slot 5; VSID word: B = 01, VSID 0x77, Kp.
    expect(mmu.slbmte(0x100, 0x0800_0005, 0x4000_0000, 0x7700_0400)).toBe(true);
    const ea = 0x100_0000_0000 + 0x3_4567_8000;
    const page = (ea - 0x100_0000_0000) / 4096; // page index in the segment: 0x345678
    const vsid = 0x77;
    const hash = (vsid ^ (vsid << 25) ^ page) >>> 0;
    const ptex = (hash & vm.arch.hpt.guest.hashMask) * 8;
    // dword0: B = 01, VSID << 24 ... AVPN bits 23..7 = EA bits 39..23, V.
    const avpnBits = Math.floor(page / 0x800) * 0x80;
    const regs = vcpu.hcallRegs;
    regs.clear();
    regs
      .setArg(0, 0x80_0000_0000)
      .setArg(1, ptex)
      .setArgHalves(2, 0x4000_0000, (0x7700_0000 | avpnBits | 1) >>> 0)
      .setArgHalves(3, 0, 0x5000 | 0x10 | 2);
    expect(vcpu.hypercall(HptHcall.H_ENTER)).toBe(PaprStatus.H_SUCCESS); // H_EXACT
    const hpa = vcpu.translate(ea, Access.WRITE);
    expect(hpa).toBe(vm.memslots.get(1).frameAt(5) * 4096);
    regs.clear();
    regs.setArg(1, ptex);
    expect(vcpu.hypercall(HptHcall.H_REMOVE)).toBe(PaprStatus.H_SUCCESS);
    expect(vcpu.translate(ea, Access.READ)).toBe(TRANSLATE_FAULT);
    expect(side.spaceCount).toBe(1);
  });

  it('a reserved PP (7) grants nothing, in the guest view and the real entry alike (ISA table, QEMU ppc_hash64_pte_prot)', () => {
    const { vm, vcpu } = vmWithSlot();
    const vpn = SEGMENT_VPN + 11;
    const ptex = primaryGroup(vpn, vm.arch.hpt.guest.hashMask);
    const regs = vcpu.hcallRegs;
    regs.clear();
    // dword1: PP0 (high half bit 31) with PP 3, gfn 12, M.
    regs
      .setArg(1, ptex)
      .setArgHalves(2, 0x1, 0x0000_1001)
      .setArgHalves(3, 0x8000_0000, 0xc000 | 0x10 | 3);
    expect(vcpu.hypercall(HptHcall.H_ENTER)).toBe(PaprStatus.H_SUCCESS);
    vm.memslots.resolve(12 * 4096, false); // the host maps the page (the shared zero frame): the real entry is valid, read-only
    regs.clear();
    regs
      .setArg(1, ptex)
      .setArgHalves(2, 0x1, 0x0000_1001)
      .setArgHalves(3, 0x8000_0000, 0xc000 | 0x10 | 3);
    expect(vcpu.hypercall(HptHcall.H_REMOVE)).toBe(PaprStatus.H_SUCCESS);
    expect(vcpu.hypercall(HptHcall.H_ENTER)).toBe(PaprStatus.H_SUCCESS);
    expect(words(vm.arch.hpt.real, ptex)[1] & 1).toBe(1);
    const [, , hi1, lo1] = words(vm.arch.hpt.real, ptex);
    expect([hi1 >>> 31, lo1 & 3]).toEqual([1, 3]);
    for (const a of [Access.READ, Access.USER, Access.WRITE]) {
      expect(vcpu.translate(vpn * 4096, a)).toBe(TRANSLATE_FAULT);
      expect(vcpu.fault.code & HptCause.PROTFAULT).toBe(HptCause.PROTFAULT);
    }
  });

  it('on POWER9 the real HPT holds the ISA v3.0 layout (B in dword1 bits 59:58), the guest view and H_READ the old one', () => {
    const hv = new Hypervisor({ memoryBytes: 8 << 20 });
    const vm = hv.createVm({ backend: ppcHptBackend, backendOptions: { hptOrder: 18, cpu: 'power9' } });
    vm.memslots.create({ id: 1, guestPhysAddr: 0, size: 64 * 4096 });
    const vcpu = vm.createVcpu();
    vcpu.arch.setRelocation(true, true);
    // A 1T segment (B = 01): ESID of EA 0x100_0000_0000, VSID 0x77, Kp; the HPTE for page 0x345678 of it.
    expect(vcpu.arch.slbmte(0x100, 0x0800_0000, 0x4000_0000, 0x7700_0400)).toBe(true);
    const page = 0x34_5678;
    const ptex = (((0x77 ^ (0x77 << 25) ^ page) >>> 0) & vm.arch.hpt.guest.hashMask) * 8;
    const v0Lo = (0x7700_0000 | (Math.floor(page / 0x800) * 0x80) | 1) >>> 0;
    const regs = vcpu.hcallRegs;
    regs.clear();
    regs
      .setArgHalves(0, 0x80, 0)
      .setArg(1, ptex)
      .setArgHalves(2, 0x4000_0000, v0Lo)
      .setArgHalves(3, 0, 0x5000 | 0x10 | 2);
    expect(vcpu.hypercall(HptHcall.H_ENTER)).toBe(PaprStatus.H_SUCCESS);
    const ea = 0x100_0000_0000 + page * 4096;
    const hpa = vcpu.translate(ea, Access.WRITE);
    expect(hpa).toBe(vm.memslots.get(1).frameAt(5) * 4096);
    // hpte_old_to_new_v: dword0 keeps bits 51:0 (B gone); hpte_old_to_new_r: B (01) at dword1 bits 59:58.
    const [hi0, lo0, hi1, lo1] = words(vm.arch.hpt.real, ptex);
    expect([hi0, lo0]).toEqual([0, v0Lo]);
    expect(hi1 & 0x0c00_0000).toBe(0x0400_0000);
    expect(lo1 >>> 12).toBe(hpa / 4096);
    // The guest view and H_READ: the old layout.
    expect(words(vm.arch.hpt.guest, ptex).slice(0, 2)).toEqual([0x4000_0000, v0Lo]);
    regs.clear();
    regs.setArg(1, ptex);
    expect(vcpu.hypercall(HptHcall.H_READ)).toBe(PaprStatus.H_SUCCESS);
    expect([regs.retHi[0], regs.retLo[0]]).toEqual([0x4000_0000, v0Lo]);
    // tlbie still finds the page (the B bits come back from dword1).
    regs.clear();
    regs.setArg(1, ptex);
    expect(vcpu.hypercall(HptHcall.H_REMOVE)).toBe(PaprStatus.H_SUCCESS);
    expect(vcpu.translate(ea, Access.READ)).toBe(TRANSLATE_FAULT);
    expect(vcpu.fault.code).toBe(HptCause.NOPTE);
  });

  it('real mode goes through the VRMA KVM sets up on the first real-mode access (kvmppc_hv_setup_htab_rma): bolted 4K entries over memslot 0', () => {
    const { vm, vcpu } = vmWithSlot(); // memslot 1 at gpa 0, 256 pages; order 18 (2048 groups)
    vcpu.arch.setRelocation(false, false);
    expect(vm.stats().hptVrmaEntries).toBe(0);
    const hpa = vcpu.translate(0x5_0123, Access.WRITE); // real address 0x50123: page 0x50
    expect(hpa).toBe(vm.memslots.get(1).frameAt(0x50) * 4096 + 0x123);
    // One entry per page of the slot (fewer pages than groups), each in slot 7 of group i ^ VSID ^ (VSID << 25).
    expect(vm.stats().hptVrmaEntries).toBe(256);
    const vsidHash = (0x1ff_ffff ^ (0x1ff_ffff << 25)) >>> 0;
    const ptex = ((0x50 ^ vsidHash) & vm.arch.hpt.guest.hashMask) * 8 + 7;
    // Guest view: B = 1T, the VRMA VSID, BOLTED, AVPN 0 (0x50000 < 2^23), V; dword1: gpa 0x50000, R, C, M, PP 0.
    expect(words(vm.arch.hpt.guest, ptex)).toEqual([0x4000_0000 | (0x1ff_ffff >>> 8), ((0xff << 24) | 0x10 | 1) >>> 0, 0, 0x5_0000 | 0x180 | 0x10]);
    // Beyond the VRMA (past memslot 0's end): a plain DSI with NOPTE for the guest, DAR the address.
    expect(vcpu.translate(0x100_0010, Access.READ)).toBe(TRANSLATE_FAULT);
    expect([vcpu.fault.vector, vcpu.fault.code, vcpu.fault.word(2)]).toEqual([HptVector.DSI, HptCause.NOPTE, 0x100_0010]);
    // Removing a VRMA entry takes the real-mode translation out of the TLB.
    const regs = vcpu.hcallRegs;
    regs.clear();
    regs.setArg(1, ptex);
    expect(vcpu.hypercall(HptHcall.H_REMOVE)).toBe(PaprStatus.H_SUCCESS);
    expect(vcpu.translate(0x5_0123, Access.READ)).toBe(TRANSLATE_FAULT);
  });

  it('without a memslot at guest physical 0 there is no VRMA: the first real-mode access exits to the VMM', () => {
    const hv = new Hypervisor({ memoryBytes: 4 << 20 });
    const vm = hv.createVm({ backend: ppcHptBackend, backendOptions: { hptOrder: 18 } });
    vm.memslots.create({ id: 1, guestPhysAddr: 0x100_0000, size: 16 * 4096 });
    const vcpu = vm.createVcpu();
    vcpu.arch.setRelocation(false, false);
    expect(vcpu.translate(0x100_0000, Access.READ)).toBe(TRANSLATE_FAULT);
    expect([vcpu.fault.kind, vcpu.fault.gpa]).toEqual([FaultKind.NO_MEMORY, 0]);
  });

  it("realMode 'guest-physical' (a virtual hypervisor, as QEMU's pseries TCG): real addresses are guest physical, no VRMA", () => {
    const hv = new Hypervisor({ memoryBytes: 4 << 20 });
    const vm = hv.createVm({ backend: ppcHptBackend, backendOptions: { hptOrder: 18, realMode: 'guest-physical' } });
    vm.memslots.create({ id: 1, guestPhysAddr: 0x100_0000, size: 16 * 4096 });
    const vcpu = vm.createVcpu();
    vcpu.arch.setRelocation(false, false);
    expect(vcpu.translate(0x100_2008, Access.WRITE)).toBe(vm.memslots.get(1).frameAt(2) * 4096 + 8);
    expect(vm.stats().hptVrmaEntries).toBe(0);
  });

  it('H_RESIZE_HPT_PREPARE/COMMIT through the backend: bolted VRMA entries move and still translate, the rest come back on hash faults, the real HPT follows', () => {
    const { vm, vcpu, side } = vmWithSlot(); // 256 pages at gpa 0: QEMU's order for it is 18, so 19 is the largest a resize may ask
    const regs = vcpu.hcallRegs;
    const call = (n: number, shift: number): number => {
      regs.clear();
      regs.setArg(0, 0).setArg(1, shift);
      return vcpu.hypercall(n);
    };
    // The VRMA first (real mode), then relocated pages through the guest side.
    vcpu.arch.setRelocation(false, false);
    expect(vcpu.translate(0x3000, Access.READ)).not.toBe(TRANSLATE_FAULT);
    vcpu.arch.setRelocation(true, true);
    side.loadSegment(vcpu, SEGMENT_VPN);
    for (let p = 0; p < 16; p++) side.map(0, SEGMENT_VPN + p, 100 + p, GuestRights.WRITE);
    for (let p = 0; p < 16; p++) expect(vcpu.translate((SEGMENT_VPN + p) * 4096, Access.WRITE)).toBe(vm.memslots.get(1).frameAt(100 + p) * 4096);
    expect(call(0x370, 19)).toBe(2); // H_CLOSED: no prepare
    expect(call(0x36c, 20)).toBe(-16); // H_RESOURCE: above the RAM's order + 1
    expect(call(0x36c, 19)).toBe(PaprStatus.H_SUCCESS);
    expect(call(0x370, 19)).toBe(PaprStatus.H_SUCCESS);
    expect(vm.arch.hpt.guest.order).toBe(19);
    expect(vm.arch.hpt.real.order).toBe(19);
    const stats = vm.stats();
    expect([stats.hptResizes, stats.hptVrmaEntries, stats.hptGuestEntries]).toEqual([1, 256, 256]);
    // A relocated page: its entry was dropped, so a DSI with NOPTE, which the guest's hash fault handler resolves.
    expect(vcpu.translate((SEGMENT_VPN + 3) * 4096, Access.READ)).toBe(TRANSLATE_FAULT);
    expect(vcpu.fault.code).toBe(HptCause.NOPTE);
    // Real mode still translates, through the moved VRMA entries.
    vcpu.arch.setRelocation(false, false);
    expect(vcpu.translate(0x3008, Access.WRITE)).toBe(vm.memslots.get(1).frameAt(3) * 4096 + 8);
  });

  it("the guest side's resizeHpt: its pages come back through hash faults at the same frames", () => {
    const { vm, vcpu, side } = vmWithSlot();
    for (let p = 0; p < 8; p++) side.map(0, SEGMENT_VPN + p, 20 + p, GuestRights.WRITE);
    for (let p = 0; p < 8; p++) vcpu.translate((SEGMENT_VPN + p) * 4096, Access.WRITE);
    expect(side.resizeHpt(19)).toBe(PaprStatus.H_SUCCESS);
    for (let p = 0; p < 8; p++) {
      const va = (SEGMENT_VPN + p) * 4096;
      let hpa = vcpu.translate(va, Access.WRITE);
      if (hpa < 0 && side.handleGuestFault(vcpu, vcpu.fault)) hpa = vcpu.translate(va, Access.WRITE);
      expect(hpa).toBe(vm.memslots.get(1).frameAt(20 + p) * 4096);
    }
    expect(vm.arch.inspect().rmap.length).toBe(8);
  });

  it('dirty logging is the C bit: a store logs the page, the harvest clears the host C (the guest keeps its C), the next store logs again', () => {
    const { vm, vcpu, side } = vmWithSlot({ flags: MemslotFlags.LOG_DIRTY_PAGES });
    const vpn = SEGMENT_VPN + 2;
    side.map(0, vpn, 6, GuestRights.WRITE);
    const ptex = primaryGroup(vpn, vm.arch.hpt.guest.hashMask);
    vcpu.translate(vpn * 4096, Access.WRITE);
    expect(vm.memslots.getDirtyLog(1)[0]).toBe(1 << 6);
    expect(words(vm.arch.hpt.real, ptex)[3] & 0x80).toBe(0);
    expect(words(vm.arch.hpt.guest, ptex)[3] & 0x80).toBe(0x80);
    // A store through the TLB now would bypass C: the harvest flushed it, so the store walks again.
    vcpu.translate(vpn * 4096, Access.WRITE);
    expect(vm.memslots.getDirtyLog(1)[0]).toBe(1 << 6);
    expect(vm.memslots.getDirtyLog(1)[0]).toBe(0);
  });

  it('aging clears the host R with a tlbie; the next access walks and makes the page young again', () => {
    const { vm, vcpu, side } = vmWithSlot();
    const vpn = SEGMENT_VPN + 1;
    side.map(0, vpn, 3, GuestRights.WRITE);
    const hpa = vcpu.translate(vpn * 4096, Access.WRITE); // its own frame (a read would map the shared zero frame)
    const hfn = hpa / 4096;
    expect(vm.ageHostRange(hfn, hfn + 1)).toBe(true);
    expect(vm.testAgeHostRange(hfn, hfn + 1)).toBe(false);
    vcpu.translate(vpn * 4096, Access.READ);
    expect(vm.testAgeHostRange(hfn, hfn + 1)).toBe(true);
  });

  it('deleting a memslot turns its valid entries ABSENT and empties their rings; the guest view is untouched', () => {
    const { vm, vcpu, side } = vmWithSlot();
    const vpn = SEGMENT_VPN + 4;
    side.map(0, vpn, 8, GuestRights.WRITE);
    vcpu.translate(vpn * 4096, Access.WRITE);
    const ptex = primaryGroup(vpn, vm.arch.hpt.guest.hashMask);
    const before = words(vm.arch.hpt.guest, ptex);
    vm.memslots.delete(1);
    expect(words(vm.arch.hpt.real, ptex)[1] & 0x21).toBe(HPTE_V_ABSENT_LO);
    expect(words(vm.arch.hpt.guest, ptex)).toEqual(before);
    expect(vm.arch.inspect().rmap).toEqual([]);
    expect(vcpu.translate(vpn * 4096, Access.READ)).toBe(TRANSLATE_FAULT);
    expect(vcpu.fault.kind).toBe(FaultKind.NO_MEMORY);
  });

  it('the guest view streams in KVM’s HTAB format into another VM, whose real HPT and reverse map follow (kvm_htab_write)', () => {
    const a = vmWithSlot();
    for (let p = 0; p < 40; p++) a.side.map(0, SEGMENT_VPN + p * 3, p, GuestRights.WRITE | GuestRights.USER);
    const reader = new KvmHtabReader(a.vm.arch.htab);
    const chunk = new Uint8Array(1 << 16);
    const b = vmWithSlot();
    const writer = new KvmHtabWriter(b.vm.arch.htab);
    for (let n = reader.read(chunk); n > 0; n = reader.read(chunk)) expect(writer.write(chunk.subarray(0, n))).toBe(n);
    expect(Buffer.from(b.vm.arch.hpt.guest.bytes).equals(Buffer.from(a.vm.arch.hpt.guest.bytes))).toBe(true);
    // B's guest reaches the same guest pages through its own real HPT.
    for (let p = 0; p < 40; p++) {
      const hpa = b.vcpu.translate((SEGMENT_VPN + p * 3) * 4096, Access.USER | Access.WRITE);
      expect(hpa).toBe(b.vm.memslots.get(1).frameAt(p) * 4096);
    }
    expect(b.vm.arch.inspect().rmap.length).toBe(40);
  });

  it('a stream record with a 16M page over a memslot is refused whole, as KVM refuses it in H_ENTER', () => {
    const b = vmWithSlot();
    const record = new Uint8Array(8 + 16);
    const v = new DataView(record.buffer);
    v.setUint32(0, 0, true);
    v.setUint16(4, 1, true);
    v.setUint32(8, 0x1);
    v.setUint32(12, 0x0000_1005);
    v.setUint32(20, 0x12);
    const before = Buffer.from(b.vm.arch.hpt.guest.bytes);
    expect(() => new KvmHtabWriter(b.vm.arch.htab).write(record)).toThrow(HvmmuError);
    expect(Buffer.from(b.vm.arch.hpt.guest.bytes).equals(before)).toBe(true);
  });

  it('the example in docs/ppc-hpt.md runs: map with H_ENTER, the SLB miss resolved by the guest, the write lands', () => {
    const vm = new Hypervisor({ memoryBytes: 64 << 20 }).createVm({
      backend: ppcHptBackend,
      backendOptions: { hptOrder: 20, memslotInvalidation: 'invalid-rmap' },
    });
    vm.memslots.create({ id: 0, guestPhysAddr: 0, size: 32 << 20 });
    const vcpu = vm.createVcpu();
    const guest = ppcHptBackend.guestSide!.create(vm, { baseGfn: 0, pages: 0 });
    guest.activate(vcpu, 0);
    guest.map(0, 0x1_0000, 0x100, GuestRights.WRITE);
    let hpa = vcpu.translate(0x1000_0000, Access.WRITE);
    expect(hpa).toBe(TRANSLATE_FAULT);
    expect(vcpu.fault.vector).toBe(HptVector.DSEG);
    if (hpa < 0 && guest.handleGuestFault!(vcpu, vcpu.fault)) hpa = vcpu.translate(0x1000_0000, Access.WRITE);
    expect(hpa).toBe(vm.memslots.get(0).frameAt(0x100) * 4096);
  });

  it('refuses host misuse with typed errors', () => {
    const { vm } = vmWithSlot();
    const side = new HptGuestSide(vm);
    expect(() => side.map(1, 0, 0, 0)).toThrow(HvmmuError);
    expect(() => side.map(0, 2 ** 36, 0, 0)).toThrow(HvmmuError);
    expect(() => side.map(0, 0, -1, 0)).toThrow(HvmmuError);
    expect(() => side.map(0, 0, 0, 8)).toThrow(HvmmuError);
    const hv = new Hypervisor({ memoryBytes: 1 << 20 });
    expect(() => hv.createVm({ backend: ppcHptBackend, backendOptions: { hptOrder: 17 } })).toThrow(HvmmuError);
    expect(() => hv.createVm({ backend: ppcHptBackend, backendOptions: { hptOrdr: 18 } as never })).toThrow(HvmmuError);
  });
});
