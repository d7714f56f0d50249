import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Access, FaultDestination, FaultKind, type GuestMemory, TRANSLATE_FAULT } from '@hvmmu/core';
import {
  Dsisr,
  HvGuestStateField,
  NestedHcall,
  NestedHcallStatus,
  PtRegsField,
  RADIX_PTE,
  RadixFaultWord,
  RadixTreeBuilder,
  tlbieP1,
  type RadixTree,
} from '@hvmmu/ppc-radix';
import { propertyRuns } from '../../../../test-support/propertyRuns.js';
import { MiB, type NestedL1, enterNested, hcall, hvPtr, hvState64, nestedL1, ptRegs64, regsPtr, tlbInvalidate, writeL2State } from './helpers/nestedL1.js';

/**
 * A hostile L1 (and L2): every malformed hcall argument, partition table,
 * partition-scoped tree and guest state an L1 can hand L0, with the answer
 * worked out by hand from KVM's rules (book3s_hv_nested.c,
 * book3s_64_mmu_radix.c kvmppc_mmu_walk_radix_tree) and the PAPR return
 * codes (hvcall.h). Nothing an L1 does may throw in L0, loop, grow L0's
 * memory without bound, or leave a vCPU half in an L2.
 */

const { H_SUCCESS, H_PARAMETER, H_NOT_AVAILABLE, H_NOT_FOUND, H_NO_MEM, H_FUNCTION, H_AUTHORITY } = NestedHcallStatus;
const HDSI = 0xe00;
const HISI = 0xe20;
const HDEC = 0x980;
/** L1 memory: slot 0 [0, 4 MiB) (tables, states), slot 1 [8 MiB, 10 MiB) (the L2s' memory); nothing at [4, 8) MiB or past 10 MiB. */
const SLOT1 = 8 * MiB;
const L2_LPID = 5;
const TWO_POW_32 = 0x1_0000_0000;

interface Setup extends NestedL1 {
  tableBase: number;
  tree: RadixTree;
}

/** An L1 with its partition table registered (256 entries) and L2 5's tree mapping L2 real [0, 64K) to L1 [8 MiB, 8 MiB + 64K) read-write-execute. */
function setup(vcpus = 1, entriesShift = 8): Setup {
  const t = nestedL1({ vcpus });
  void t.hv.memory.zeroFrame;
  t.vm.memslots.create({ id: 1, guestPhysAddr: SLOT1, size: 2 * MiB });
  const init = t.l1.init(entriesShift);
  if (!init.ok) throw new Error('L1 init failed');
  const tree = t.builder.createTree('4k');
  for (let p = 0; p < 16; p++) tree.map(p * 4096, SLOT1 + p * 4096, 12, { read: true, write: true, execute: true });
  expect(t.l1.setEntry(L2_LPID, tree.pateDw0(), 0n)).toBe(H_SUCCESS);
  return Object.assign(t, { tableBase: init.tableBase, tree });
}

function enter(s: NestedL1, v: number, lpid = L2_LPID): number {
  writeL2State(s, v, lpid);
  return enterNested(s, v);
}

/** Host frame of an L1 page of slot 1. */
function slot1Frame(s: NestedL1, gpa: number): number {
  return s.vm.memslots.get(1).frames[(gpa - SLOT1) / 4096]!;
}

/** The L2 access ended its run with an HDSI (HISI) for L1 carrying `cause`, HDAR = the address, ASDR = `asdr`, written back to the hv_guest_state. */
function expectL1Exit(s: NestedL1, v: number, addr: number, access: number, cause: number, asdr: number): void {
  const vcpu = s.vcpus[v]!;
  expect(vcpu.translate(addr, access)).toBe(TRANSLATE_FAULT);
  const fetch = (access & Access.FETCH) !== 0;
  const trap = fetch ? HISI : HDSI;
  expect(vcpu.fault.destination).toBe(FaultDestination.HYPERVISOR);
  expect([vcpu.fault.vector, vcpu.fault.code >>> 0, vcpu.fault.word(RadixFaultWord.ASDR)]).toEqual([trap, cause >>> 0, asdr]);
  expect(vcpu.arch.inL2).toBe(false);
  expect(vcpu.arch.lastNestedExit).toEqual({ l1Lpid: L2_LPID, trap, status: trap });
  expect(hvState64(s, v, HvGuestStateField.asdr)).toBe(BigInt(asdr));
  if (fetch) {
    expect(Number(ptRegs64(s, v, PtRegsField.msr) & 0x783f_0000n)).toBe(cause);
  } else {
    expect(hvState64(s, v, HvGuestStateField.hdar)).toBe(BigInt(addr));
    expect(hvState64(s, v, HvGuestStateField.hdsisr)).toBe(BigInt(cause >>> 0));
  }
}

/** Big-endian doubleword in L1 memory. */
function w64(s: NestedL1, gpa: number, [hi, lo]: readonly [number, number]): void {
  const b = new Uint8Array(8);
  const d = new DataView(b.buffer);
  d.setUint32(0, hi >>> 0, false);
  d.setUint32(4, lo >>> 0, false);
  s.vm.memslots.writeBytes(gpa, b);
}

/** Hand-assembled entries (POWER ISA v3.0 Book III 6.7.10.2): PDE = V | NLB | NLS; PTE = V | L | RPN | flags. */
function pde(base: number, nls: number): [number, number] {
  return [(0x8000_0000 | Math.floor(base / TWO_POW_32)) >>> 0, ((base % TWO_POW_32) | nls) >>> 0];
}
function pte(ra: number, flags: number): [number, number] {
  return [(0xc000_0000 | Math.floor(ra / TWO_POW_32)) >>> 0, ((ra % TWO_POW_32) | flags) >>> 0];
}
/** PATE dw0: HR | RTS (RTS1 in 62..61, RTS2 in 7..5) | RPDB | RPDS; RTS 21 is a 52-bit tree. */
function pate0(root: number, rpds: number, rts = 21): bigint {
  return (1n << 63n) | (BigInt(rts >> 3) << 61n) | BigInt(root) | (BigInt(rts & 7) << 5n) | BigInt(rpds);
}

const RWRC = RADIX_PTE.R | RADIX_PTE.C | RADIX_PTE.READ | RADIX_PTE.READ_WRITE;
/** The L2 address the hand-built trees translate: root index 0, PUD 0, PMD 1, PTE 1 (4K pages), offset 8. */
const A = 0x20_1008;

/** A well-formed four-level tree for A (root, PUD, PMD, PTE tables from the arena); `edit` breaks it before the PATE is set. */
function handTree(s: NestedL1, edit: (tables: { root: number; pud: number; pmd: number; pte: number }) => bigint | undefined): bigint {
  const root = s.builder.allocate(8 << 13);
  const pud = s.builder.allocate(4096);
  const pmd = s.builder.allocate(4096);
  const ptePage = s.builder.allocate(4096);
  w64(s, root, pde(pud, 9));
  w64(s, pud, pde(pmd, 9));
  w64(s, pmd + 8, pde(ptePage, 9));
  w64(s, ptePage + 8, pte(SLOT1, RWRC));
  return edit({ root, pud, pmd, pte: ptePage }) ?? pate0(root, 13);
}

describe('H_SET_PARTITION_TABLE from a hostile L1', () => {
  it('a bad PTCR (PATS 5+, base outside L1 memory, table running past it, reserved bits) is H_PARAMETER and changes nothing', () => {
    const s = setup();
    const good = [s.vm.arch.nested.guests.l1PtcrHi, s.vm.arch.nested.guests.l1PtcrLo];
    expect(good).toEqual([0, s.tableBase]); // PATS 0: 256 entries, 4 KiB
    const bad: bigint[] = [];
    for (let pats = 5n; pats < 32n; pats++) bad.push(0x1_0000n | pats);
    bad.push(
      BigInt(64 * MiB), // past all memory
      BigInt(4 * MiB), // the hole after slot 0
      BigInt(6 * MiB) | 4n,
      BigInt(4 * MiB - 4096) | 1n, // 8 KiB from the last page of slot 0: its second page is no memory
      BigInt(10 * MiB - 0x8000) | 4n, // 64 KiB from the last 32 KiB of slot 1
      1n << 53n, // PATB bit 53: beyond any L1 memory
      (1n << 60n) | 0x1_0000n, // reserved bits 63..60
      (1n << 63n) | 0x1_0000n,
      0x1_0020n, // reserved bits 11..5
      0x1_0800n,
      0x1_0fe0n,
    );
    for (const ptcr of bad) {
      expect(hcall(s, 0, NestedHcall.H_SET_PARTITION_TABLE, [ptcr]), `PTCR 0x${ptcr.toString(16)}`).toBe(H_PARAMETER);
      expect([s.vm.arch.nested.guests.l1PtcrHi, s.vm.arch.nested.guests.l1PtcrLo]).toEqual(good);
    }
    // The L2 registered before still runs.
    expect(enter(s, 0)).toBe(H_SUCCESS);
    expect(Math.floor(s.vcpus[0]!.translate(0x3010, Access.WRITE) / 4096)).toBe(slot1Frame(s, SLOT1 + 0x3000));
  });

  it('PATS 0..4 over L1 memory is H_SUCCESS; an LPID at or past 2^(PATS+8) names no guest; 0 turns nesting off', () => {
    const s = setup();
    for (let pats = 0; pats <= 4; pats++) {
      // Tables of 4 KiB .. 64 KiB at 9 MiB (slot 1, all zero: every entry cleared).
      expect(hcall(s, 0, NestedHcall.H_SET_PARTITION_TABLE, [BigInt(SLOT1 + MiB) | BigInt(pats)])).toBe(H_SUCCESS);
      const entries = 2 ** (pats + 8);
      expect(enter(s, 0, entries)).toBe(H_PARAMETER);
      expect(s.vcpus[0]!.arch.inL2).toBe(false);
      // The last LPID exists (its entry is zero: the L2 runs, and its first access is L1's NOPTE).
      expect(enter(s, 0, entries - 1)).toBe(H_SUCCESS);
      s.vcpus[0]!.arch.exitNested(HDEC);
    }
    expect(hcall(s, 0, NestedHcall.H_SET_PARTITION_TABLE, [0n])).toBe(H_SUCCESS);
    expect(enter(s, 0)).toBe(H_NOT_AVAILABLE);
  });
});

describe('LPIDs out of range', () => {
  it('H_ENTER_NESTED with LPID 0, 256 (a 256-entry table) or 2^32 - 1 is H_PARAMETER and creates nothing', () => {
    const s = setup();
    for (const lpid of [0, 256, 0x8000_0000, 0xffff_ffff]) {
      expect(enter(s, 0, lpid)).toBe(H_PARAMETER);
      expect(s.vcpus[0]!.arch.inL2).toBe(false);
    }
    expect([s.vm.arch.nested.guests.size, s.vm.arch.nested.lpids.inUse]).toEqual([0, 1]);
  });

  it('H_TLB_INVALIDATE for an LPID L0 has no guest for is H_SUCCESS and touches no other guest; RS above 32 bits is ignored (get_lpid)', () => {
    const s = setup(2);
    expect(enter(s, 1)).toBe(H_SUCCESS);
    expect(s.vcpus[1]!.translate(0x1000, Access.WRITE)).not.toBe(TRANSLATE_FAULT);
    expect(s.vm.stats().ppcRadixShadowLeaves).toBe(1);
    for (const lpid of [0, 4, 6, 256, 0xffff_ffff]) {
      expect(tlbInvalidate(s, 0, 2, 2, lpid)).toBe(H_SUCCESS);
      expect(tlbInvalidate(s, 0, 0, 0, lpid, 0x1000, 0)).toBe(H_SUCCESS);
    }
    expect(s.vm.stats().ppcRadixShadowLeaves).toBe(1);
    // RS = 2^32 + 5: LPID 5 (RS's low 32 bits).
    expect(hcall(s, 0, NestedHcall.H_TLB_INVALIDATE, [BigInt(tlbieP1(0, 0, 1)), (1n << 32n) | 5n, 2n << 10n])).toBe(H_SUCCESS);
    expect(s.vm.stats().ppcRadixShadowLeaves).toBe(0);
  });

  it('LPID 4095, the last of a 4096-entry table, fills the 12-bit LPID field of its nested rmap entries', () => {
    const s = setup(1, 12);
    expect(s.l1.setEntry(4095, s.tree.pateDw0(), 0n)).toBe(H_SUCCESS);
    expect(enter(s, 0, 4095)).toBe(H_SUCCESS);
    expect(s.vcpus[0]!.translate(0x2000, Access.READ)).not.toBe(TRANSLATE_FAULT);
    expect(s.vm.memslots.get(1).arch.nested.entries(2)).toEqual([[4095, 2]]);
    expect(enter(s, 0, 4096)).toBe(0xc00); // the vCPU runs L2 4095: this is the L2's own hcall, ending its run
    expect(s.vcpus[0]!.arch.inL2).toBe(false);
    expect(enter(s, 0, 4096)).toBe(H_PARAMETER);
  });
});

describe("L1's partition-scoped tree for an L2, malformed", () => {
  /** Enter L2 5 with dw0 as its entry and store to A: L1 gets the HDSI with `cause` (| STORE) and ASDR `asdr`; no shadow entry is made. */
  function storeFaults(s: Setup, dw0: bigint, cause: number, asdr = A - (A % 4096)): void {
    expect(s.l1.setEntry(L2_LPID, dw0, 0n)).toBe(H_SUCCESS);
    expect(enter(s, 0)).toBe(H_SUCCESS);
    expectL1Exit(s, 0, A, Access.WRITE, cause | Dsisr.STORE, asdr);
    expect(s.vm.stats().ppcRadixShadowLeaves).toBe(0);
  }

  it('the hand-built tree works as built (the control case)', () => {
    const s = setup();
    expect(
      s.l1.setEntry(
        L2_LPID,
        handTree(s, () => undefined),
        0n,
      ),
    ).toBe(H_SUCCESS);
    expect(enter(s, 0)).toBe(H_SUCCESS);
    const hpa = s.vcpus[0]!.translate(A, Access.WRITE);
    expect(Math.floor(hpa / 4096)).toBe(slot1Frame(s, SLOT1));
    expect(hpa % 4096).toBe(8);
  });

  it('a tree that is not 52 bits, or NLS other than 13/9/9/(9|5) at any level, is BADCONFIG (KVM: -EINVAL → UNSUPP_MMU)', () => {
    const s = setup();
    storeFaults(
      s,
      handTree(s, ({ root }) => pate0(root, 13, 20)),
      Dsisr.BADCONFIG,
    );
    storeFaults(
      s,
      handTree(s, ({ root }) => pate0(root, 13, 22)),
      Dsisr.BADCONFIG,
    );
    storeFaults(
      s,
      handTree(s, ({ root }) => pate0(root, 12)),
      Dsisr.BADCONFIG,
    );
    storeFaults(
      s,
      handTree(s, ({ root, pud }) => void w64(s, root, pde(pud, 8))),
      Dsisr.BADCONFIG,
    );
    storeFaults(
      s,
      handTree(s, ({ pud, pmd }) => void w64(s, pud, pde(pmd, 10))),
      Dsisr.BADCONFIG,
    );
    storeFaults(
      s,
      handTree(s, ({ pmd, pte: p }) => void w64(s, pmd + 8, pde(p, 6))),
      Dsisr.BADCONFIG,
    );
  });

  it('misaligned table bases are BADCONFIG; a 2^5-entry last level need only be 256-byte aligned', () => {
    const s = setup();
    storeFaults(
      s,
      handTree(s, ({ root }) => pate0(root + 0x800, 13)),
      Dsisr.BADCONFIG,
    );
    storeFaults(
      s,
      handTree(s, ({ root, pud }) => void w64(s, root, pde(pud + 0x100, 9))),
      Dsisr.BADCONFIG,
    );
    storeFaults(
      s,
      handTree(s, ({ pud, pmd }) => void w64(s, pud, pde(pmd + 0x800, 9))),
      Dsisr.BADCONFIG,
    );
    storeFaults(
      s,
      handTree(s, ({ pmd, pte: p }) => void w64(s, pmd + 8, pde(p + 0x100, 9))),
      Dsisr.BADCONFIG,
    );
    // 64K pages: the PTE table (2^5 entries, 256 bytes) at page + 0x100; A is in 64K page 0 of it: L1 8 MiB + 0x1008.
    const dw0 = handTree(s, ({ root, pmd, pte: p }) => {
      w64(s, pmd + 8, pde(p + 0x100, 5));
      w64(s, p + 0x100, pte(SLOT1, RWRC));
      return pate0(root, 13);
    });
    expect(s.l1.setEntry(L2_LPID, dw0, 0n)).toBe(H_SUCCESS);
    expect(enter(s, 0)).toBe(H_SUCCESS);
    const hpa = s.vcpus[0]!.translate(A, Access.WRITE);
    expect(Math.floor(hpa / 4096)).toBe(slot1Frame(s, SLOT1 + 0x1000));
    expect(hpa % 4096).toBe(8);
  });

  it('a leaf at the root, a directory at the bottom, a leaf whose RPN is not aligned to its size: BADCONFIG', () => {
    const s = setup();
    storeFaults(
      s,
      handTree(s, ({ root }) => void w64(s, root, pte(0, RWRC))),
      Dsisr.BADCONFIG,
    );
    storeFaults(
      s,
      handTree(s, ({ pte: p }) => void w64(s, p + 8, pde(p, 9))),
      Dsisr.BADCONFIG,
    );
    // A 2M leaf at the PMD with RPN 8 MiB + 4 KiB (kvmppc_mmu_walk_radix_tree: "gpa & ((1ul << offset) - 1)" → -EINVAL).
    storeFaults(
      s,
      handTree(s, ({ pmd }) => void w64(s, pmd + 8, pte(SLOT1 + 0x1000, RWRC))),
      Dsisr.BADCONFIG,
    );
  });

  it('loops (a directory pointing at its own table, or back at the root) end after four reads, BADCONFIG', () => {
    const s = setup();
    // PUD[0] and PUD[1] → the PUD itself (NLS 9): the PMD and PTE levels (A's indices 1, 1) read PUD[1] again, a directory where a leaf must be.
    storeFaults(
      s,
      handTree(s, ({ pud }) => {
        w64(s, pud, pde(pud, 9));
        w64(s, pud + 8, pde(pud, 9));
        return undefined;
      }),
      Dsisr.BADCONFIG,
    );
    // PUD[0] → the root (NLS 13 where 9 is required).
    storeFaults(
      s,
      handTree(s, ({ root, pud }) => void w64(s, pud, pde(root, 13))),
      Dsisr.BADCONFIG,
    );
    // The root's entries 0 and 1 → the root itself with NLS 9 (its first 4 KiB): a directory at every level.
    storeFaults(
      s,
      handTree(s, ({ root }) => {
        w64(s, root, pde(root, 9));
        w64(s, root + 8, pde(root, 9));
        return undefined;
      }),
      Dsisr.BADCONFIG,
    );
  });

  it("an invalid entry on the way is NOPTE; a table outside L1 memory is PRTABLE_FAULT with ASDR the failing entry's address", () => {
    const s = setup();
    storeFaults(
      s,
      handTree(s, ({ pte: p }) => void w64(s, p + 8, [0, 0])),
      Dsisr.NOPTE,
    );
    // The PMD table at 64 MiB (no memory): its entry 1 is at 64 MiB + 8.
    storeFaults(
      s,
      handTree(s, ({ pud }) => void w64(s, pud, pde(64 * MiB, 9))),
      Dsisr.PRTABLE_FAULT,
      64 * MiB + 8,
    );
    // The root in the hole at 6 MiB: its entry 0.
    storeFaults(s, pate0(6 * MiB, 13), Dsisr.PRTABLE_FAULT, 6 * MiB);
    // A fetch through the same: HISI, the cause in SRR1 (no store bit).
    expect(s.l1.setEntry(L2_LPID, pate0(6 * MiB, 13), 0n)).toBe(H_SUCCESS);
    expect(enter(s, 0)).toBe(H_SUCCESS);
    expectL1Exit(s, 0, A, Access.FETCH, Dsisr.PRTABLE_FAULT, 6 * MiB);
  });

  it('an L2 page L1 maps outside its memory is MMIO: an exit to the VMM at the L1 address, the vCPU still in the L2', () => {
    const s = setup();
    s.tree.map(0x4000, 6 * MiB, 12, { read: true, write: true });
    s.tree.map(0x5000, 2 ** 52 - 4096, 12, { read: true, write: true }); // the last page a 52-bit tree can name
    expect(s.l1.setEntry(L2_LPID, s.tree.pateDw0(), 0n)).toBe(H_SUCCESS);
    expect(enter(s, 0)).toBe(H_SUCCESS);
    const v = s.vcpus[0]!;
    for (const [addr, l1] of [
      [0x4010, 6 * MiB + 0x10],
      [0x5ff8, 2 ** 52 - 8],
    ] as const) {
      expect(v.translate(addr, Access.WRITE)).toBe(TRANSLATE_FAULT);
      expect([v.fault.destination, v.fault.kind, v.fault.gpa]).toEqual([FaultDestination.VMM, FaultKind.NO_MEMORY, l1]);
      expect(v.arch.inL2).toBe(true);
    }
    expect(s.vm.stats().ppcRadixShadowLeaves).toBe(0);
    expect(Math.floor(v.translate(0x3000, Access.READ) / 4096)).toBe(s.vm.memslots.host.zeroFrame);
  });
});

describe('regressions found by the nested property test', () => {
  it('an L1 leaf with RW but not R lets the L2 load (the ISA: RW implies read) over a read-only L0 leaf, without refaulting forever', () => {
    const s = setup();
    // Write-only EAA, R and C set, onto an untouched page (L0 maps it with the zero frame, not writable).
    s.tree.map(0x6000, SLOT1 + 0x6000, 12, { read: false, write: true });
    expect(s.l1.setEntry(L2_LPID, s.tree.pateDw0(), 0n)).toBe(H_SUCCESS);
    expect(enter(s, 0)).toBe(H_SUCCESS);
    const v = s.vcpus[0]!;
    expect(Math.floor(v.translate(0x6040, Access.READ) / 4096)).toBe(s.vm.memslots.host.zeroFrame);
    expect(Math.floor(v.translate(0x6040, Access.WRITE) / 4096)).toBe(slot1Frame(s, SLOT1 + 0x6000));
  });

  it("L1's H_TLB_INVALIDATE reaches an L2 that L0 unlinked (RIC 2 of a cleared entry) while another vCPU still runs it", () => {
    for (const flush of ['page', 'lpid', 'all'] as const) {
      const s = setup(2);
      expect(enter(s, 1)).toBe(H_SUCCESS);
      expect(s.vcpus[1]!.translate(0x2000, Access.READ)).not.toBe(TRANSLATE_FAULT);
      // vCPU 0 (L1): clear the entry (the guest leaves the table; vCPU 1 holds it), then set it again.
      s.caller = 0;
      expect(s.l1.clearEntry(L2_LPID)).toBe(H_SUCCESS);
      expect(s.vm.arch.nested.guests.size).toBe(0);
      expect(s.l1.setEntry(L2_LPID, s.tree.pateDw0(), 0n)).toBe(H_SUCCESS);
      // vCPU 1's L2 faults page 2 in again under the entry it re-reads.
      expect(Math.floor(s.vcpus[1]!.translate(0x2000, Access.READ) / 4096)).toBe(s.vm.memslots.host.zeroFrame);
      // L1 unmaps page 2 and invalidates it: vCPU 1's L2 must not keep the translation.
      s.tree.unmap(0x2000);
      const status =
        flush === 'page' ? tlbInvalidate(s, 0, 0, 0, L2_LPID, 0x2000, 0) : flush === 'lpid' ? tlbInvalidate(s, 0, 0, 2, L2_LPID) : tlbInvalidate(s, 0, 0, 3, 0);
      expect(status).toBe(H_SUCCESS);
      expectL1Exit(s, 1, 0x2000, Access.READ, Dsisr.NOPTE, 0x2000);
      expect(s.vm.arch.nested.lpids.inUse).toBe(1);
    }
  });
});

describe('H_ENTER_NESTED with a hostile hv_guest_state', () => {
  it('an unknown, garbage or too new version is H_PARAMETER; version 1 (232 bytes) is accepted', () => {
    const s = setup();
    for (const version of [0n, 3n, 4n, 0xffn, 1n << 32n, (1n << 64n) - 1n, 0x0200_0000_0000_0000n]) {
      writeL2State(s, 0, L2_LPID, 0n, 0n, version);
      expect(enterNested(s, 0), `version 0x${version.toString(16)}`).toBe(H_PARAMETER);
      expect(s.vcpus[0]!.arch.inL2).toBe(false);
    }
    expect([s.vm.arch.nested.guests.size, s.vm.arch.nested.lpids.inUse]).toEqual([0, 1]);
    writeL2State(s, 0, L2_LPID, 0n, 0n, 1n);
    expect(enterNested(s, 0)).toBe(H_SUCCESS);
  });

  it('a state or register block running past the end of L1 memory, or at an address beyond 2^53, is H_PARAMETER', () => {
    const s = setup();
    const end = 4 * MiB; // slot 0 ends here; [4, 8) MiB is no memory
    const state = (at: number, version = 2n) => {
      const b = new Uint8Array(248);
      const d = new DataView(b.buffer);
      d.setBigUint64(0, version, true);
      d.setUint32(8, L2_LPID, true);
      s.vm.memslots.writeBytes(at, b.subarray(0, Math.min(248, end - at)));
    };
    const call = (hv: bigint, regs: bigint) => hcall(s, 0, NestedHcall.H_ENTER_NESTED, [hv, regs]);
    state(end - 8); // the version is readable, the 248 bytes are not
    expect(call(BigInt(end - 8), BigInt(regsPtr(0)))).toBe(H_PARAMETER);
    state(end - 247);
    expect(call(BigInt(end - 247), BigInt(regsPtr(0)))).toBe(H_PARAMETER);
    state(end - 232, 1n); // version 1 fits in 232
    expect(call(BigInt(end - 232), BigInt(end - 351))).toBe(H_PARAMETER); // pt_regs is 352 bytes
    expect(call(BigInt(end - 232), BigInt(end - 352))).toBe(H_SUCCESS);
    s.vcpus[0]!.arch.exitNested(HDEC);
    writeL2State(s, 0, L2_LPID);
    for (const p of [1n << 53n, 1n << 63n, (1n << 64n) - 8n, BigInt(6 * MiB)]) {
      expect(call(p, BigInt(regsPtr(0)))).toBe(H_PARAMETER);
      expect(call(BigInt(hvPtr(0)), p)).toBe(H_PARAMETER);
    }
    expect(s.vcpus[0]!.arch.inL2).toBe(false);
  });

  it('vcpu_token 2047 is accepted, 2048 (NR_CPUS) is not; a big-endian L1 reading a little-endian state sees a garbage version', () => {
    const s = setup();
    const b = new Uint8Array(8);
    writeL2State(s, 0, L2_LPID);
    new DataView(b.buffer).setUint32(0, 2048, true);
    s.vm.memslots.writeBytes(hvPtr(0) + HvGuestStateField.vcpuToken, b.subarray(0, 4));
    expect(enterNested(s, 0)).toBe(H_PARAMETER);
    new DataView(b.buffer).setUint32(0, 2047, true);
    s.vm.memslots.writeBytes(hvPtr(0) + HvGuestStateField.vcpuToken, b.subarray(0, 4));
    expect(enterNested(s, 0)).toBe(H_SUCCESS);
    s.vcpus[0]!.arch.exitNested(HDEC);
    s.vcpus[0]!.arch.setLittleEndian(false);
    writeL2State(s, 0, L2_LPID);
    expect(enterNested(s, 0)).toBe(H_PARAMETER); // version 2 little-endian is 2^57 big-endian
  });

  it('L1 memory under the state gone while the L2 runs: the exit completes with H_AUTHORITY, the vCPU back in L1, its reference dropped', () => {
    const s = setup();
    // The state in slot 1 this time.
    const hv = SLOT1 + 0x10_0000;
    const b = new Uint8Array(248);
    new DataView(b.buffer).setBigUint64(0, 2n, true);
    new DataView(b.buffer).setUint32(8, L2_LPID, true);
    s.vm.memslots.writeBytes(hv, b);
    expect(hcall(s, 0, NestedHcall.H_ENTER_NESTED, [BigInt(hv), BigInt(hv + 0x1000)])).toBe(H_SUCCESS);
    const g = s.vm.arch.nested.guests.find(L2_LPID)!;
    expect(g.refcnt).toBe(2);
    s.vm.memslots.delete(1);
    expect(s.vcpus[0]!.arch.exitNested(HDEC)).toEqual({ l1Lpid: L2_LPID, trap: HDEC, status: H_AUTHORITY });
    // r3 = H_AUTHORITY as a 64-bit two's complement.
    expect([s.vcpus[0]!.hcallRegs.retHi[0], s.vcpus[0]!.hcallRegs.retLo[0]]).toEqual([0xffff_ffff, H_AUTHORITY >>> 0]);
    expect([s.vcpus[0]!.arch.inL2, g.refcnt]).toEqual([false, 1]);
  });
});

describe('an L1 that exhausts what L0 has', () => {
  it('host memory used up under an L2: its faults exit HOST_OUT_OF_MEMORY in the L2; the write-back into an L1 page never written fails, H_AUTHORITY', () => {
    const t = nestedL1({ memoryBytes: 1 * MiB }); // 256 host frames
    void t.hv.memory.zeroFrame;
    t.vm.memslots.create({ id: 1, guestPhysAddr: SLOT1, size: 2 * MiB });
    const tree = t.builder.createTree('4k');
    tree.map(0, SLOT1, 21, { read: true, write: true });
    expect(t.l1.init(8)).toMatchObject({ ok: true });
    expect(t.l1.setEntry(L2_LPID, tree.pateDw0(), 0n)).toBe(H_SUCCESS);
    // pt_regs in a page of slot 0 L1 never wrote (all zero: a valid register block; it has no host frame of its own).
    const regs = BigInt(0x3f_0000);
    writeL2State(t, 0, L2_LPID);
    expect(hcall(t, 0, NestedHcall.H_ENTER_NESTED, [BigInt(hvPtr(0)), regs])).toBe(H_SUCCESS);
    const v = t.vcpus[0]!;
    let page = 0;
    while (page < 512 && v.translate(page * 4096, Access.WRITE) !== TRANSLATE_FAULT) page++;
    expect(page).toBeLessThan(512);
    expect([v.fault.destination, v.fault.kind, v.arch.inL2]).toEqual([FaultDestination.VMM, FaultKind.HOST_OUT_OF_MEMORY, true]);
    expect(t.hv.memory.framesFree).toBe(0);
    const g = t.vm.arch.nested.guests.find(L2_LPID)!;
    // The exit: the state goes back to L1 memory, but the register block's page would need a frame.
    expect(v.arch.exitNested(HDEC)).toEqual({ l1Lpid: L2_LPID, trap: HDEC, status: H_AUTHORITY });
    expect([v.arch.inL2, g.refcnt, v.hcallRegs.retLo[0]]).toEqual([false, 1, H_AUTHORITY >>> 0]);
    // The same through a fault L1 must see (an L2 page its tree does not map): the run ends with the HDSI, r3 H_AUTHORITY.
    expect(hcall(t, 0, NestedHcall.H_ENTER_NESTED, [BigInt(hvPtr(0)), regs])).toBe(H_SUCCESS);
    expect(v.translate(0x40_0000, Access.READ)).toBe(TRANSLATE_FAULT);
    expect([v.fault.destination, v.fault.vector, v.arch.inL2]).toEqual([FaultDestination.HYPERVISOR, HDSI, false]);
    expect(v.arch.lastNestedExit).toEqual({ l1Lpid: L2_LPID, trap: HDSI, status: H_AUTHORITY });
    expect(g.refcnt).toBe(1);
    t.vm.destroy();
    expect([t.vm.arch.nested.lpids.inUse, t.hv.memory.framesInUse]).toEqual([1, 1]);
  });

  it('more L2s than L0 has shadow LPIDs: the one too many is H_PARAMETER, and clearing an entry gives its LPID back', () => {
    const s = setup();
    const nested = s.vm.arch.nested;
    // One LPID per root-directory window of the host real space (64 by default), L1's own included; LPID 0 is the host's.
    const shadowLpids = nested.lpids.count - 2;
    for (let lpid = 1; lpid <= shadowLpids; lpid++) {
      expect(enter(s, 0, lpid), `L2 ${lpid}`).toBe(H_SUCCESS);
      s.vcpus[0]!.arch.exitNested(HDEC);
    }
    expect(nested.lpids.inUse).toBe(nested.lpids.count - 1);
    expect(enter(s, 0, shadowLpids + 1)).toBe(H_PARAMETER);
    expect([s.vcpus[0]!.arch.inL2, nested.guests.size]).toEqual([false, shadowLpids]);
    // L1 clears L2 7's entry (it was zero already): RIC 2 finds it zero and removes the guest.
    expect(s.l1.clearEntry(7)).toBe(H_SUCCESS);
    expect(nested.guests.find(7)).toBeUndefined();
    expect(enter(s, 0, shadowLpids + 1)).toBe(H_SUCCESS);
    s.vcpus[0]!.arch.exitNested(HDEC);
    // L2 5 (whose entry L1 set) still works.
    expect(enter(s, 0, L2_LPID)).toBe(H_SUCCESS);
    expect(Math.floor(s.vcpus[0]!.translate(0x3010, Access.WRITE) / 4096)).toBe(slot1Frame(s, SLOT1 + 0x3000));
    s.vm.destroy();
    expect([nested.lpids.inUse, nested.guests.allLive().length, s.hv.memory.framesInUse]).toEqual([1, 0, 1]);
  });
});

describe('H_TLB_INVALIDATE forms', () => {
  it('every R/PRS/RIC/IS combination: H_PARAMETER exactly where KVM refuses (R 0, PRS 1, RIC 3, IS 1, IS 0 with RIC 1/2), and then nothing changed', () => {
    const s = setup(2);
    expect(enter(s, 1)).toBe(H_SUCCESS);
    for (let r = 0; r <= 1; r++) {
      for (let prs = 0; prs <= 1; prs++) {
        for (let ric = 0; ric <= 3; ric++) {
          for (let is = 0; is <= 3; is++) {
            if (!s.vcpus[1]!.arch.inL2) expect(enter(s, 1)).toBe(H_SUCCESS);
            expect(s.vcpus[1]!.translate(0x1000, Access.WRITE)).not.toBe(TRANSLATE_FAULT);
            const valid = r === 1 && prs === 0 && ric !== 3 && is !== 1 && (is !== 0 || ric === 0);
            const status = tlbInvalidate(s, 0, ric, is, L2_LPID, 0x1000, 0, prs, r);
            expect(status, `R ${r} PRS ${prs} RIC ${ric} IS ${is}`).toBe(valid ? H_SUCCESS : H_PARAMETER);
            // A valid one removed the page (RIC 1 excepted: L0 caches no page-walk); an invalid one nothing.
            expect(s.vm.stats().ppcRadixShadowLeaves).toBe(valid && ric !== 1 ? 0 : 1);
            expect(s.vm.arch.nested.guests.size).toBe(1);
            if (s.vm.stats().ppcRadixShadowLeaves === 1) tlbInvalidate(s, 0, 0, 2, L2_LPID);
          }
        }
      }
    }
  });

  it('IS 0: AP 0 (4K), 5 (64K), 1 (2M), 2 (1G) are page sizes, every other AP is H_PARAMETER; the EPN is aligned down to the size', () => {
    const s = setup(2);
    expect(enter(s, 1)).toBe(H_SUCCESS);
    const shift: Record<number, number> = { 0: 12, 5: 16, 1: 21, 2: 30 };
    for (let ap = 0; ap < 8; ap++) {
      for (const p of [0x3000, 0x5000]) expect(s.vcpus[1]!.translate(p, Access.READ)).not.toBe(TRANSLATE_FAULT);
      const status = tlbInvalidate(s, 0, 0, 0, L2_LPID, 0x5000, ap);
      expect(status, `AP ${ap}`).toBe(shift[ap] === undefined ? H_PARAMETER : H_SUCCESS);
      // 4K removes page 5 only; 64K and larger, aligned down to 0, remove page 3 as well.
      const left = shift[ap] === undefined ? 2 : shift[ap] === 12 ? 1 : 0;
      expect(s.vm.stats().ppcRadixShadowLeaves, `AP ${ap}`).toBe(left);
      tlbInvalidate(s, 0, 0, 2, L2_LPID);
    }
  });

  it('without nestedHv every nested hcall is H_FUNCTION, whatever the arguments', () => {
    const t = nestedL1({ backendOptions: { nestedHv: false } });
    for (const n of Object.values(NestedHcall)) expect(hcall(t, 0, n, [1n, 2n, 3n, 4n, 5n, 6n])).toBe(H_FUNCTION);
  });
});

describe('H_COPY_TOFROM_GUEST from a hostile L1', () => {
  /**
   * L2 5 with relocation on in process 1: L2 real [0, 2 MiB) is L1 [8, 10)
   * MiB (one 2M leaf); the L2's process table at L2 real 1 MiB, its tree
   * mapping EA 0x10000 → L2 real 0x20000 and EA 0x11000 → 0x21000.
   */
  function relocatedL2(): Setup {
    const s = setup();
    const tree = s.builder.createTree('4k');
    tree.map(0, SLOT1, 21, { read: true, write: true, execute: true });
    const l2Real: GuestMemory = {
      view: s.vm.memslots.view,
      resolve: (gpa, write) => (gpa >= 0 && gpa < 2 * MiB ? s.vm.memslots.resolve(SLOT1 + gpa, write) : -1),
    };
    const l2b = new RadixTreeBuilder(l2Real, 1 * MiB, 1 * MiB);
    const prtb = l2b.createProcessTable(0);
    const proc = l2b.createTree('4k');
    proc.map(0x1_0000, 0x2_0000, 12, { read: true, write: true });
    proc.map(0x1_1000, 0x2_1000, 12, { read: true, write: true });
    prtb.setProcess(1, proc);
    const [pHi, pLo] = prtb.pointer();
    expect(s.l1.setEntry(L2_LPID, tree.pateDw0(), (BigInt((pHi | 0x8000_0000) >>> 0) << 32n) | BigInt(pLo))).toBe(H_SUCCESS);
    writeL2State(s, 0, L2_LPID, 0x30n, 1n); // MSR IR | DR, PIDR 1
    expect(enterNested(s, 0)).toBe(H_SUCCESS);
    return Object.assign(s, { tree });
  }

  const copy = (s: NestedL1, args: { lpid?: bigint; pid?: bigint; ea: bigint; to?: bigint; from?: bigint; n: bigint }) =>
    hcall(s, 0, NestedHcall.H_COPY_TOFROM_GUEST, [args.lpid ?? BigInt(L2_LPID), args.pid ?? 1n, args.ea, args.to ?? 0n, args.from ?? 0n, args.n]);
  const BUF = 0x30_0000; // L1 real, slot 0

  it('both buffers or neither, EA top bits, a huge length, an unknown LPID: H_PARAMETER / H_NO_MEM, nothing written', () => {
    const s = relocatedL2();
    expect(s.vcpus[0]!.translate(0x1_0000, Access.WRITE)).not.toBe(TRANSLATE_FAULT);
    s.vcpus[0]!.arch.exitNested(HDEC);
    const before = new Uint8Array(64);
    s.vm.memslots.readBytes(BUF, before);
    expect(copy(s, { ea: 0x1_0000n, to: BigInt(BUF), from: BigInt(BUF + 64), n: 8n })).toBe(H_PARAMETER);
    expect(copy(s, { ea: 0x1_0000n, n: 8n })).toBe(H_PARAMETER);
    for (const ea of [1n << 52n, 1n << 62n, 1n << 63n, 0xfff0_0000_0001_0000n]) expect(copy(s, { ea, to: BigInt(BUF), n: 8n })).toBe(H_PARAMETER);
    for (const n of [4n * BigInt(MiB) + 1n, 1n << 40n, (1n << 64n) - 1n]) expect(copy(s, { ea: 0x1_0000n, to: BigInt(BUF), n })).toBe(H_NO_MEM);
    for (const lpid of [0n, 4n, 256n, 1n << 40n]) expect(copy(s, { lpid, ea: 0x1_0000n, to: BigInt(BUF), n: 8n })).toBe(H_PARAMETER);
    const after = new Uint8Array(64);
    s.vm.memslots.readBytes(BUF, after);
    expect(after).toEqual(before);
  });

  it('a page not in the shadow tree (or an L1 buffer outside L1 memory) is H_NOT_FOUND and L1 and L2 memory are unchanged; once shadowed, the copy works', () => {
    const s = relocatedL2();
    const v = s.vcpus[0]!;
    const hpa = v.translate(0x1_0ff8, Access.WRITE);
    s.vm.memslots.host.bytes.set([1, 2, 3, 4, 5, 6, 7, 8], hpa);
    v.arch.exitNested(HDEC);
    s.vm.memslots.writeBytes(BUF, new Uint8Array(16).fill(0xee));
    // EA 0x10ff8 + 16 crosses into EA 0x11000 (L2 real 0x21000), which the L2 never touched.
    expect(copy(s, { ea: 0x1_0ff8n, to: BigInt(BUF), n: 16n })).toBe(H_NOT_FOUND);
    const got = new Uint8Array(16);
    s.vm.memslots.readBytes(BUF, got);
    expect([...got]).toEqual(new Array(16).fill(0xee));
    expect(copy(s, { ea: 0x1_0ff8n, from: BigInt(BUF), n: 16n })).toBe(H_NOT_FOUND);
    expect([...s.vm.memslots.host.bytes.subarray(hpa, hpa + 8)]).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    // An L1 buffer in the hole at 6 MiB, or running past slot 0.
    expect(copy(s, { ea: 0x1_0ff8n, to: BigInt(6 * MiB), n: 8n })).toBe(H_NOT_FOUND);
    expect(copy(s, { ea: 0x1_0ff8n, to: BigInt(4 * MiB - 4), n: 8n })).toBe(H_NOT_FOUND);
    // PID 0 has no process-table entry: nothing translates.
    expect(copy(s, { pid: 0n, ea: 0x1_0ff8n, to: BigInt(BUF), n: 8n })).toBe(H_NOT_FOUND);
    // The L2 touches the second page: the copy goes through.
    writeL2State(s, 0, L2_LPID, 0x30n, 1n);
    expect(enterNested(s, 0)).toBe(H_SUCCESS);
    expect(v.translate(0x1_1000, Access.WRITE)).not.toBe(TRANSLATE_FAULT);
    v.arch.exitNested(HDEC);
    expect(copy(s, { ea: 0x1_0ff8n, to: BigInt(BUF), n: 16n })).toBe(H_SUCCESS);
    s.vm.memslots.readBytes(BUF, got);
    expect([...got.subarray(0, 8)]).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  });
});

describe('random hcalls from a hostile L1 (fast-check)', () => {
  it('random 64-bit arguments to the nested hcalls, interleaved with L2 accesses: nothing throws, every vCPU is in L1 or in a live L2, references balance, and L1 can start over', () => {
    const u64 = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
    const plausible = fc.constantFrom(
      0n,
      1n,
      5n,
      256n,
      BigInt(hvPtr(0)),
      BigInt(regsPtr(0)),
      BigInt(hvPtr(1)),
      BigInt(regsPtr(1)),
      BigInt(tlbieP1(0, 0, 1)),
      BigInt(tlbieP1(2, 0, 1)),
      2n << 10n,
      3n << 10n,
      0x1000n,
      0x1_0000n,
      0x1_0004n,
      0x10_0000n,
      BigInt(4 * MiB - 8),
      1n << 63n,
    );
    const arg = fc.oneof(u64, plausible, fc.nat(0xffff).map(BigInt));
    const call = fc.record({
      vcpu: fc.nat(1),
      number: fc.oneof(fc.constantFrom(...Object.values(NestedHcall)), fc.nat(0xffff)),
      args: fc.array(arg, { minLength: 6, maxLength: 9 }),
    });
    const access = fc.record({ vcpu: fc.nat(1), addr: fc.oneof(fc.nat(0xffff), fc.nat(2 ** 52 - 1)), kind: fc.constantFrom(0, 1, 2, 4, 5, 6) });
    // H_ENTER_NESTED with a state L1 wrote (LPID, MSR relocation, PIDR at random) at one vCPU's state area.
    const enterOp = fc.record({
      vcpu: fc.nat(1),
      area: fc.nat(1),
      lpid: fc.oneof(fc.constantFrom(0, 1, 5, 6, 255, 256), fc.nat(0xffff_ffff)),
      msr: fc.constantFrom(0n, 0x30n, 0x10n, 0x20n, (1n << 64n) - 1n),
      pidr: fc.constantFrom(0n, 1n, 0xffff_ffffn),
    });
    fc.assert(
      fc.property(fc.array(fc.oneof(call, access, enterOp), { minLength: 1, maxLength: 40 }), (ops) => {
        const s = setup(2);
        for (const v of [0, 1]) writeL2State(s, v, L2_LPID);
        expect(enterNested(s, 1)).toBe(H_SUCCESS);
        const good = BigInt(s.tableBase);
        for (const op of ops) {
          const vcpu = s.vcpus[op.vcpu]!;
          if ('area' in op) {
            const wasInL2 = vcpu.arch.inL2;
            writeL2State(s, op.area, op.lpid, op.msr, op.pidr);
            const status = hcall(s, op.vcpu, NestedHcall.H_ENTER_NESTED, [BigInt(hvPtr(op.area)), BigInt(regsPtr(op.area))]);
            expect(s.vm.hypercalls.handlerErrors, String(s.vm.hypercalls.lastHandlerError)).toBe(0);
            if (wasInL2) expect([status, vcpu.arch.inL2]).toEqual([0xc00, false]);
            else expect([H_SUCCESS, H_PARAMETER, H_NOT_AVAILABLE]).toContain(status);
            if (!wasInL2) expect(vcpu.arch.inL2).toBe(status === H_SUCCESS);
          } else if ('number' in op) {
            const wasInL2 = vcpu.arch.inL2;
            const status = hcall(s, op.vcpu, op.number, op.args);
            expect(Number.isInteger(status)).toBe(true);
            // The dispatcher turns a handler's exception into H_HARDWARE: none may have thrown.
            expect(s.vm.hypercalls.handlerErrors, String(s.vm.hypercalls.lastHandlerError)).toBe(0);
            // An hcall made in an L2 is L1's: the run ends with 0xc00.
            if (wasInL2) expect([status, vcpu.arch.inL2]).toEqual([0xc00, false]);
          } else if (vcpu.arch.inL2) {
            if (vcpu.translate(op.addr, op.kind) === TRANSLATE_FAULT) {
              const f = vcpu.fault;
              expect([FaultDestination.HYPERVISOR, FaultDestination.VMM, FaultDestination.GUEST]).toContain(f.destination);
              expect(f.kind).not.toBe(FaultKind.RETRY_LIMIT);
              if (f.destination === FaultDestination.HYPERVISOR) expect(vcpu.arch.inL2).toBe(false);
            }
          }
          // Every vCPU: in L1, or running a guest not yet released that counts it.
          const live = s.vm.arch.nested.guests.allLive();
          for (const v of s.vcpus) {
            const run = v.arch.nested;
            if (run === null) continue;
            expect(live).toContain(run.guest);
          }
          for (const g of live) {
            const runs = s.vcpus.filter((v) => v.arch.nested?.guest === g).length;
            expect(g.refcnt).toBe((s.vm.arch.nested.guests.find(g.l1Lpid) === g ? 1 : 0) + runs);
          }
          expect(s.vm.arch.nested.lpids.inUse).toBe(1 + live.length);
        }
        // L1 starts over: its table registered again, L2 5's entry set, both vCPUs back in L1; L2 5 runs and maps correctly.
        for (const v of s.vcpus) if (v.arch.inL2) v.arch.exitNested(HDEC);
        expect(hcall(s, 0, NestedHcall.H_SET_PARTITION_TABLE, [good])).toBe(H_SUCCESS);
        s.caller = 0;
        expect(s.l1.setEntry(L2_LPID, s.tree.pateDw0(), 0n)).toBe(H_SUCCESS);
        expect(enter(s, 0)).toBe(H_SUCCESS);
        const hpa = s.vcpus[0]!.translate(0x3010, Access.WRITE);
        expect(Math.floor(hpa / 4096)).toBe(slot1Frame(s, SLOT1 + 0x3000));
        s.vm.destroy();
        expect([s.vm.arch.nested.lpids.inUse, s.vm.arch.nested.guests.allLive().length, s.hv.memory.framesInUse]).toEqual([1, 0, 1]);
      }),
      { numRuns: propertyRuns(100) },
    );
  });
});

describe('rmap memory under a repeating fault', () => {
  /** Two L2 pages (3 and 4) of L2 5 map one L1 page: its list has two entries, one in a node. */
  function repeating(): Setup {
    const s = setup(2);
    s.tree.map(0x4000, SLOT1 + 0x3000, 12, { read: true, write: true });
    expect(s.l1.setEntry(L2_LPID, s.tree.pateDw0(), 0n)).toBe(H_SUCCESS);
    return s;
  }

  it('an L1 that repeats the same L2 fault 10^6 times (its other vCPU flushing the page with RIC 0 after each) leaves rmap memory flat', () => {
    const s = repeating();
    expect(enter(s, 0)).toBe(H_SUCCESS);
    const l2 = s.vcpus[0]!;
    const l1 = s.vcpus[1]!.hcallRegs;
    const p1 = tlbieP1(0, 0, 1);
    const fault = (page: number): void => {
      if (l2.translate(page * 4096 + 8, Access.WRITE) === TRANSLATE_FAULT) throw new Error(`fault on L2 page ${page}`);
    };
    const flushPage = (page: number): void => {
      // IS 0, AP 0 (4K) for the page, from L1 on vCPU 1 (raw halves: no BigInt in the loop).
      l1.setArgHalves(0, 0, p1)
        .setArgHalves(1, 0, L2_LPID)
        .setArgHalves(2, 0, page * 4096);
      if (s.vcpus[1]!.hypercall(NestedHcall.H_TLB_INVALIDATE) !== H_SUCCESS) throw new Error('H_TLB_INVALIDATE failed');
    };
    for (const page of [3, 4]) {
      fault(page);
      flushPage(page);
    }
    const st = s.vm.stats();
    const [bytes, entries, inserts] = [st.ppcRadixNestedRmapBytes, st.ppcRadixNestedRmapEntries, st.ppcRadixShadowInserts];
    expect(entries).toBe(2);
    for (let i = 0; i < 1_000_000; i++) {
      const page = 3 + (i & 1);
      fault(page);
      flushPage(page);
    }
    const end = s.vm.stats();
    expect(end.ppcRadixShadowInserts - inserts).toBe(1_000_000);
    expect([end.ppcRadixNestedRmapBytes, end.ppcRadixNestedRmapEntries]).toEqual([bytes, entries]);
    expect(s.vm.memslots.get(1).arch.nested.entries(3)).toEqual([
      [L2_LPID, 4],
      [L2_LPID, 3],
    ]);
  });

  it('... and 10^5 times with an exit to L1, an LPID flush (IS 2, RIC 0) and a new H_ENTER_NESTED each time', () => {
    const s = repeating();
    const v = s.vcpus[0]!;
    const h = v.hcallRegs;
    const p1 = tlbieP1(0, 0, 1);
    writeL2State(s, 0, L2_LPID);
    const round = (page: number): void => {
      h.setArgHalves(0, 0, hvPtr(0)).setArgHalves(1, 0, regsPtr(0));
      if (v.hypercall(NestedHcall.H_ENTER_NESTED) !== H_SUCCESS) throw new Error('H_ENTER_NESTED failed');
      if (v.translate(page * 4096 + 8, Access.WRITE) === TRANSLATE_FAULT) throw new Error(`fault on L2 page ${page}`);
      v.arch.exitNested(HDEC);
      h.setArgHalves(0, 0, p1)
        .setArgHalves(1, 0, L2_LPID)
        .setArgHalves(2, 0, 2 << 10);
      if (v.hypercall(NestedHcall.H_TLB_INVALIDATE) !== H_SUCCESS) throw new Error('H_TLB_INVALIDATE failed');
    };
    round(3);
    round(4);
    const st = s.vm.stats();
    expect(st.ppcRadixNestedRmapEntries).toBe(2);
    for (let i = 0; i < 100_000; i++) round(3 + (i & 1));
    const end = s.vm.stats();
    expect([end.ppcRadixNestedRmapBytes, end.ppcRadixNestedRmapEntries]).toEqual([st.ppcRadixNestedRmapBytes, 2]);
    expect(end.ppcRadixNestedEnters - st.ppcRadixNestedEnters).toBe(100_000);
    expect([s.vm.arch.nested.lpids.inUse, s.vm.arch.nested.guests.find(L2_LPID)!.refcnt]).toEqual([2, 1]);
  });
});

describe('two vCPUs of one L1 create the same L2 at once', () => {
  it('"someone else beat us to it": one guest in the table with both references, the loser’s shadow LPID and tree released', () => {
    const s = setup(2);
    const guests = s.vm.arch.nested.guests;
    const nested = s.vm.arch.nested;
    // Both vCPUs miss the lookup and allocate outside the lock…
    const first = guests.beginCreate(L2_LPID)!;
    const second = guests.beginCreate(L2_LPID)!;
    expect(first.guest.shadowLpid).not.toBe(second.guest.shadowLpid);
    expect(nested.lpids.inUse).toBe(3); // L1's own LPID and two shadow LPIDs
    expect(nested.shadowTree(second.guest.shadowLpid)).toBeDefined();
    // …then insert under it, one after the other: the second finds the first's.
    const a = guests.finishCreate(first);
    const b = guests.finishCreate(second);
    expect(b).toBe(a);
    expect(a).toBe(first.guest);
    expect([guests.size, guests.find(L2_LPID), a.refcnt]).toEqual([1, a, 3]); // the table's and each caller's
    expect(second.guest.released).toBe(true);
    expect(nested.lpids.isUsed(second.guest.shadowLpid)).toBe(false);
    expect(nested.shadowTree(second.guest.shadowLpid)).toBeUndefined();
    expect(nested.lpids.inUse).toBe(2);
    expect(guests.allLive()).toEqual([a]);
    // Each caller drops its reference: the table's stays.
    guests.put(a);
    guests.put(b);
    expect(a.refcnt).toBe(1);
    // Both vCPUs now enter that one guest and share its shadow tree.
    expect(enter(s, 0)).toBe(H_SUCCESS);
    expect(enter(s, 1)).toBe(H_SUCCESS);
    expect(a.refcnt).toBe(3);
    expect(s.vcpus[0]!.translate(0x1000, Access.WRITE)).not.toBe(TRANSLATE_FAULT);
    expect(Math.floor(s.vcpus[1]!.translate(0x1000, Access.READ) / 4096)).toBe(slot1Frame(s, SLOT1 + 0x1000));
    expect(s.vm.stats().ppcRadixShadowLeaves).toBe(1);
    // The loser's shadow LPID is reused by the next new guest.
    s.caller = 0;
    s.vcpus[0]!.arch.exitNested(HDEC);
    expect(s.l1.setEntry(9, s.tree.pateDw0(), 0n)).toBe(H_SUCCESS);
    expect(enter(s, 0, 9)).toBe(H_SUCCESS);
    expect(guests.find(9)!.shadowLpid).toBe(second.guest.shadowLpid);
    s.vm.destroy();
    expect([nested.lpids.inUse, guests.allLive().length, s.hv.memory.framesInUse]).toEqual([1, 0, 1]);
  });
});
