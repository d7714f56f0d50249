import {
  GuestRights,
  HvmmuError,
  HypercallRegisters,
  type FaultInfo,
  type GuestAddressSpaces,
  type GuestSideFactory,
  type GuestTableArea,
  type Vcpu,
  type Vm,
} from '@hvmmu/core';
import { PaprStatus } from '../hcall/HptHypercalls.js';
import { HptCause, HptVector } from '../mmu/HptTranslation.js';
import type { PpcHptTypes } from './PpcHptTypes.js';

/** Effective addresses below 2^48: 2^20 segments of 256 MiB, 2^36 pages. */
const VPN_LIMIT = 2 ** 36;
/** Address spaces: space × 2^36 + vpn stays an exact number. */
const MAX_SPACES = 2 ** 16;
const TWO_POW_16 = 0x1_0000;
const TWO_POW_20 = 0x10_0000;
/** SLB VSID word flags: Kp = 1 (problem state uses key 1), Ks = 0; 4K base pages. */
const SLB_VSID_KP = 0x400;
/** HPTE dword1: M (memory coherence), the WIMG a pseries kernel uses for memory. */
const HPTE_R_M = 0x10;
const HPTE_R_N = 0x4;
const HPTE_V_BOLTED = 0x10;
const H_AVPN_LO = 0x8000_0000;

/**
 * The guest side of the HPT backend: a pseries kernel's hash MMU as Linux
 * runs it (arch/powerpc/mm/book3s64/hash_*.c). The kernel's own page table
 * is the truth (here a map per address space); the HPT is a cache of it,
 * filled with H_ENTER (primary group, then secondary, then an eviction from
 * the primary group, as hpte_insert_repeating / hpte_remove do) and emptied
 * with H_REMOVE. Address space s gives effective segment e the VSID
 * (s + 1) · 2^20 + e, with Ks = 0 and Kp = 1, so rights become PP as Linux
 * makes them: user read/write PP 2, user read-only PP 3, kernel read/write
 * PP 0, kernel read-only PP0|PP 2 (6); no EXEC sets N. A segment interrupt
 * loads the SLB (round robin over its entries) and a hash miss on a page
 * the kernel maps re-inserts it (`handleGuestFault`).
 */
export class HptGuestSide implements GuestAddressSpaces<PpcHptTypes> {
  readonly vpnLimit = VPN_LIMIT;
  readonly tablePages = 0;
  /** Per space: vpn → gfn · 8 + rights (the kernel's page table). */
  private readonly ptes: Map<number, number>[] = [new Map()];
  /** Per space: vpn → HPTE index (what is in the HPT now). */
  private readonly inHpt: Map<number, number>[] = [new Map()];
  /** Per HPTE: space · 2^36 + vpn + 1 of the page it holds, 0 if none of ours. */
  private owner: Float64Array;
  private readonly current: number[] = [];
  private readonly nextSlbSlot: number[] = [];
  private readonly regs = new HypercallRegisters();
  private victim = 0;
  /** HPTEs evicted to make room (each comes back on its next use). */
  evictions = 0;

  constructor(private readonly vm: Vm<PpcHptTypes>) {
    this.owner = new Float64Array(vm.arch.hpt.guest.entries);
  }

  get spaceCount(): number {
    return this.ptes.length;
  }

  createSpace(): number {
    if (this.ptes.length >= MAX_SPACES) throw new HvmmuError('BAD_ARGUMENT', `at most ${MAX_SPACES} address spaces`);
    this.ptes.push(new Map());
    this.inHpt.push(new Map());
    return this.ptes.length - 1;
  }

  map(space: number, vpn: number, gfn: number, rights: number): void {
    this.check(space, vpn);
    if (!Number.isSafeInteger(gfn) || gfn < 0 || gfn >= 2 ** 40) throw new HvmmuError('BAD_ARGUMENT', `gfn must be an integer in 0..2^40, got ${String(gfn)}`);
    if (!Number.isInteger(rights) || rights < 0 || rights > 7) throw new HvmmuError('BAD_ARGUMENT', `rights must be GuestRights bits, got ${String(rights)}`);
    this.removeHpte(space, vpn);
    this.ptes[space]!.set(vpn, gfn * 8 + rights);
    this.insertHpte(space, vpn);
  }

  unmap(space: number, vpn: number): void {
    this.check(space, vpn);
    this.ptes[space]!.delete(vpn);
    this.removeHpte(space, vpn);
  }

  activate(vcpu: Vcpu<PpcHptTypes>, space: number): void {
    this.check(space, 0);
    const mmu = vcpu.arch;
    if (this.current[vcpu.id] === undefined) mmu.setRelocation(true, true);
    if (this.current[vcpu.id] === space) return;
    // A process switch: the kernel drops the old process's segments (slbia, and slot 0 by hand).
    mmu.slbmte(0, 0, 0, 0);
    mmu.slbia();
    this.current[vcpu.id] = space;
    this.nextSlbSlot[vcpu.id] = 0;
  }

  handleGuestFault(vcpu: Vcpu<PpcHptTypes>, fault: FaultInfo): boolean {
    const space = this.current[vcpu.id];
    if (space === undefined) return false;
    const vpn = fault.vpn;
    if (vpn >= VPN_LIMIT) return false;
    if (fault.vector === HptVector.DSEG || fault.vector === HptVector.ISEG) return this.loadSegment(vcpu, vpn);
    if ((fault.vector === HptVector.DSI || fault.vector === HptVector.ISI) && (fault.code & HptCause.NOPTE) !== 0) {
      // The hash fault: the kernel's page table has the page, the HPT lost it.
      if (!this.ptes[space]!.has(vpn) || this.inHpt[space]!.has(vpn)) return false;
      return this.insertHpte(space, vpn);
    }
    return false;
  }

  /**
   * Load the SLB entry of the segment holding `vpn` in the vCPU's current
   * address space (do_slb_fault), into the next entry round robin. False if
   * the vCPU has no address space yet.
   */
  loadSegment(vcpu: Vcpu<PpcHptTypes>, vpn: number): boolean {
    const space = this.current[vcpu.id];
    if (space === undefined || !Number.isSafeInteger(vpn) || vpn < 0 || vpn >= VPN_LIMIT) return false;
    const esid = Math.floor(vpn / TWO_POW_16);
    const vsid = (space + 1) * TWO_POW_20 + esid;
    const slot = this.nextSlbSlot[vcpu.id]!;
    this.nextSlbSlot[vcpu.id] = (slot + 1) % vcpu.arch.slb.size;
    // RB: ESID in bits 63..28, V, the slot; RS: the VSID word.
    const rbHi = Math.floor(esid / 16);
    const rbLo = ((esid % 16) * 0x1000_0000 + 0x0800_0000 + slot) >>> 0;
    return vcpu.arch.slbmte(rbHi, rbLo, Math.floor(vsid / TWO_POW_20), ((vsid % TWO_POW_20) * 4096 + SLB_VSID_KP) >>> 0);
  }

  /**
   * Resize the HPT as Linux's pseries_lpar_resize_hpt does:
   * H_RESIZE_HPT_PREPARE then H_RESIZE_HPT_COMMIT with `order`. On success
   * every entry this kernel made is gone (none is bolted); its pages come
   * back on their next hash fault. Returns the PAPR status of the call that
   * ended it.
   */
  resizeHpt(order: number): number {
    const mmu = this.vm.arch;
    const prepared = mmu.resizePrepare(0, 0, order);
    if (prepared !== PaprStatus.H_SUCCESS) return prepared;
    const committed = mmu.resizeCommit(0, 0, order);
    if (committed !== PaprStatus.H_SUCCESS) return committed;
    this.owner = new Float64Array(mmu.hpt.guest.entries);
    for (const m of this.inHpt) m.clear();
    return committed;
  }

  /** Put the page's HPTE in: primary group, secondary group, else evict from the primary group. */
  private insertHpte(space: number, vpn: number): boolean {
    const pte = this.ptes[space]!.get(vpn)!;
    const gfn = Math.floor(pte / 8);
    const rights = pte % 8;
    const vsid = (space + 1) * TWO_POW_20 + Math.floor(vpn / TWO_POW_16);
    const pageIndex = vpn % TWO_POW_16;
    // dword0: B = 0, the VSID, the AVPN's page bits (EA bits 27..23), V.
    const v0Hi = Math.floor(vsid / TWO_POW_20);
    const v0Lo = ((vsid % TWO_POW_20) * 4096 + (pageIndex >>> 11) * 0x80 + 1) >>> 0;
    let pp: number;
    let pp0 = 0;
    if ((rights & GuestRights.USER) !== 0) pp = (rights & GuestRights.WRITE) !== 0 ? 2 : 3;
    else if ((rights & GuestRights.WRITE) !== 0) pp = 0;
    else {
      pp = 2;
      pp0 = 0x8000_0000;
    }
    const r1Hi = (pp0 | Math.floor(gfn / TWO_POW_20)) >>> 0;
    const r1Lo = ((gfn % TWO_POW_20) * 4096 + HPTE_R_M + ((rights & GuestRights.EXEC) !== 0 ? 0 : HPTE_R_N) + pp) >>> 0;
    const hpt = this.vm.arch.hpt.guest;
    const hash = ((vsid % 2 ** 32) ^ pageIndex) >>> 0;
    const primary = ((hash & hpt.hashMask) >>> 0) * 8;
    const secondary = ((~hash & hpt.hashMask) >>> 0) * 8;
    let ptex = this.enter(primary, v0Hi, v0Lo, r1Hi, r1Lo);
    if (ptex === PaprStatus.H_PTEG_FULL) ptex = this.enter(secondary, v0Hi, (v0Lo | 2) >>> 0, r1Hi, r1Lo);
    if (ptex === PaprStatus.H_PTEG_FULL) {
      // hpte_remove: a victim from the primary group (never a bolted one), then try again.
      const view = hpt.view;
      for (let n = 0; n < 8; n++) {
        const slot = primary + ((this.victim + n) & 7);
        if ((view.getUint32(slot * 16 + 4, false) & HPTE_V_BOLTED) !== 0) continue;
        this.evict(slot);
        this.victim = (this.victim + n + 1) & 7;
        break;
      }
      ptex = this.enter(primary, v0Hi, v0Lo, r1Hi, r1Lo);
    }
    if (ptex < 0) return false;
    this.inHpt[space]!.set(vpn, ptex);
    this.owner[ptex] = space * VPN_LIMIT + vpn + 1;
    return true;
  }

  /** H_ENTER into a group: the index used, or the negative PAPR status. */
  private enter(ptex: number, v0Hi: number, v0Lo: number, r1Hi: number, r1Lo: number): number {
    const regs = this.regs;
    regs.clear();
    regs.setArgHalves(0, 0, 0).setArgHalves(1, 0, ptex).setArgHalves(2, v0Hi, v0Lo).setArgHalves(3, r1Hi, r1Lo);
    const status = this.vm.arch.hcalls.enter(regs);
    return status === PaprStatus.H_SUCCESS ? regs.ret(0) : status;
  }

  private evict(ptex: number): void {
    const key = this.owner[ptex]! - 1;
    this.hRemove(ptex);
    if (key >= 0) {
      const space = Math.floor(key / VPN_LIMIT);
      this.inHpt[space]!.delete(key % VPN_LIMIT);
    }
    this.evictions++;
  }

  private removeHpte(space: number, vpn: number): void {
    const ptex = this.inHpt[space]!.get(vpn);
    if (ptex === undefined) return;
    this.hRemove(ptex);
    this.inHpt[space]!.delete(vpn);
  }

  /** H_REMOVE(H_AVPN): KVM invalidates the entry's translations on every vCPU. */
  private hRemove(ptex: number): void {
    const view = this.vm.arch.hpt.guest.view;
    const regs = this.regs;
    regs.clear();
    regs
      .setArgHalves(0, 0, H_AVPN_LO)
      .setArgHalves(1, 0, ptex)
      .setArgHalves(2, view.getUint32(ptex * 16, false), view.getUint32(ptex * 16 + 4, false) & ~0x7f);
    this.vm.arch.hcalls.remove(regs);
    this.owner[ptex] = 0;
  }

  private check(space: number, vpn: number): void {
    if (!Number.isInteger(space) || space < 0 || space >= this.ptes.length) throw new HvmmuError('BAD_ARGUMENT', `no address space ${String(space)}`);
    if (!Number.isSafeInteger(vpn) || vpn < 0 || vpn >= VPN_LIMIT)
      throw new HvmmuError('BAD_ARGUMENT', `vpn must be an integer in 0..2^36, got ${String(vpn)}`);
  }
}

/** The HPT backend's guest side: no guest memory is needed (a pseries kernel's HPT lives in the hypervisor). */
export class HptGuestSideFactory implements GuestSideFactory<PpcHptTypes> {
  readonly pagingMode = 'ppc-hash';

  tablePagesFor(_mappings: number, _spaces: number): number {
    return 0;
  }

  create(vm: Vm<PpcHptTypes>, _area: GuestTableArea): HptGuestSide {
    return new HptGuestSide(vm);
  }
}
