import { describe, expect, it } from 'vitest';
import { FlatGuestMemory } from '@hvmmu/core';
import { Dsisr, RadixAccess, RadixRegisters, RadixTranslation, RadixVector, RadixWalker, SRR1_NOEXEC_GUARD } from '@hvmmu/ppc-radix';

/**
 * Process-scoped translation under a virtual hypervisor (a pseries guest:
 * partition scope flat), against tables written byte by byte here from the
 * POWER ISA v3.0 formats, with every expected value worked out by hand.
 *
 * Layout (64K base pages, Linux's 13/9/9/5 geometry):
 *   0x10000 root (2^13 entries)   0x20000 PUD   0x21000 PMD   0x22000 PTE table (2^5 entries)
 *   0x30000 process table (PRTS 0: 4 KiB, 256 PIDs)
 * In-tree address 0x1234_5678: root index 0, PUD 0, PMD (>>21) 0x91, PTE ((>>16) & 31) 0x14, offset 0x5678.
 */
function be64(view: DataView, addr: number, hi: number, lo: number): void {
  view.setUint32(addr, hi, false);
  view.setUint32(addr + 4, lo, false);
}

function machine() {
  const buffer = new ArrayBuffer(1 << 24);
  const view = new DataView(buffer);
  be64(view, 0x10000, 0x8000_0000, 0x0002_0009); // root[0]: V, NLB 0x20000, NLS 9
  be64(view, 0x20000, 0x8000_0000, 0x0002_1009); // PUD[0]: V, NLB 0x21000, NLS 9
  be64(view, 0x21000 + 0x91 * 8, 0x8000_0000, 0x0002_2005); // PMD[0x91]: V, NLB 0x22000, NLS 5
  // PTE[0x14]: V L, RPN 0x0ABC_0000, R C, EAA read + read/write (no execute)
  be64(view, 0x22000 + 0x14 * 8, 0xc000_0000, 0x0abc_0000 | 0x100 | 0x080 | 0x004 | 0x002);
  // PRTE for PID 0 and PID 7: RTS 52 (RTS1 0b10, RTS2 0b101), RPDB 0x10000, RPDS 13
  be64(view, 0x30000, 0x4000_0000, 0x0001_0000 | 0xa0 | 13);
  be64(view, 0x30000 + 7 * 16, 0x4000_0000, 0x0001_0000 | 0xa0 | 13);
  const regs = new RadixRegisters().setVirtualHypervisorPate(0x8000_0000_0000_0000n, 0x30000n);
  const walker = new RadixWalker(new FlatGuestMemory(buffer));
  return { view, regs, walker, out: new RadixTranslation() };
}

describe('radix process-scoped translation (virtual hypervisor, hand-built tables)', () => {
  it('translates a kernel (quadrant 3) address through four levels: RA, 64K page, refs', () => {
    const { regs, walker, out } = machine();
    expect(walker.translate(regs, 0xc000_0000, 0x1234_5678, RadixAccess.LOAD, out)).toBe(true);
    expect(out.ra).toBe(0x0abc_5678);
    expect(out.pageShift).toBe(16);
    expect(out.refs).toBe(5); // the process-table entry and four levels
    expect(out.prot).toBe(3); // read + write (EAA RW), no execute
    expect(walker.translate(regs, 0xc000_0000, 0x1234_ffff, RadixAccess.STORE, out)).toBe(true);
    expect(out.ra).toBe(0x0abc_ffff);
  });

  it('a user (quadrant 0) address uses PIDR; a PID whose entry is zero is a bad configuration', () => {
    const { regs, walker, out } = machine();
    regs.pidr = 7;
    expect(walker.translate(regs, 0x0000_0000, 0x1234_5678, RadixAccess.LOAD, out)).toBe(true);
    expect(out.ra).toBe(0x0abc_5678);
    regs.pidr = 5; // entry all zero: Linux's kernel-only PID trick
    expect(walker.translate(regs, 0, 0x1234_5678, RadixAccess.LOAD, out)).toBe(false);
    expect([out.vector, out.cause]).toEqual([RadixVector.DSI, Dsisr.BADCONFIG]);
    regs.pidr = 256; // past a 256-entry process table
    expect(walker.translate(regs, 0, 0x1234_5678, RadixAccess.STORE, out)).toBe(false);
    expect([out.vector, out.cause]).toEqual([RadixVector.DSI, Dsisr.NOPTE | Dsisr.STORE]);
  });

  it('EA bits 61..52 set, or quadrant 1/2 in guest state: segment interrupts', () => {
    const { regs, walker, out } = machine();
    expect(walker.translate(regs, 0xc010_0000, 0x1234_5678, RadixAccess.LOAD, out)).toBe(false);
    expect([out.vector, out.darHi, out.darLo]).toEqual([RadixVector.DSEG, 0xc010_0000, 0x1234_5678]);
    expect(walker.translate(regs, 0x4000_0000, 0, RadixAccess.LOAD, out)).toBe(false);
    expect(out.vector).toBe(RadixVector.DSEG);
    expect(walker.translate(regs, 0x8000_0000, 0, RadixAccess.FETCH, out)).toBe(false);
    expect(out.vector).toBe(RadixVector.ISEG);
  });

  it('an invalid entry: DSI with NOPTE (and the store bit), DAR = EA; ISI with NOPTE in SRR1', () => {
    const { regs, walker, out } = machine();
    expect(walker.translate(regs, 0xc000_0000, 0x1235_0000, RadixAccess.LOAD, out)).toBe(false); // PTE index 0x15
    expect([out.vector, out.cause, out.darHi, out.darLo]).toEqual([RadixVector.DSI, 0x4000_0000, 0xc000_0000, 0x1235_0000]);
    expect(walker.translate(regs, 0xc000_0000, 0x1235_0000, RadixAccess.STORE, out)).toBe(false);
    expect(out.cause).toBe(0x4200_0000);
    expect(walker.translate(regs, 0xc000_0000, 0x1235_0000, RadixAccess.FETCH, out)).toBe(false);
    expect([out.vector, out.cause]).toEqual([RadixVector.ISI, 0x4000_0000]);
    expect(out.refs).toBe(5);
  });

  it('permissions: no execute → ISI NOEXEC_GUARD; privileged page from user state → PROTFAULT; AMR key 0 denies a supervisor store', () => {
    const { view, regs, walker, out } = machine();
    expect(walker.translate(regs, 0xc000_0000, 0x1234_5678, RadixAccess.FETCH, out)).toBe(false);
    expect([out.vector, out.cause]).toEqual([RadixVector.ISI, SRR1_NOEXEC_GUARD]);
    be64(view, 0x22000 + 0x14 * 8, 0xc000_0000, 0x0abc_0000 | 0x100 | 0x080 | 0x008 | 0x004 | 0x002); // + privileged
    regs.pidr = 7;
    regs.pr = true;
    expect(walker.translate(regs, 0, 0x1234_5678, RadixAccess.LOAD, out)).toBe(false);
    expect([out.vector, out.cause]).toEqual([RadixVector.DSI, Dsisr.PROTFAULT]);
    regs.pr = false;
    expect(walker.translate(regs, 0, 0x1234_5678, RadixAccess.LOAD, out)).toBe(true); // privileged page, supervisor: AMR not applied
    be64(view, 0x22000 + 0x14 * 8, 0xc000_0000, 0x0abc_0000 | 0x100 | 0x080 | 0x004 | 0x002); // not privileged again
    regs.setAmr(0x8000_0000_0000_0000n); // key 0: AMR bit 63 (store disable)
    expect(walker.translate(regs, 0, 0x1234_5678, RadixAccess.LOAD, out)).toBe(true);
    expect(out.prot).toBe(1);
    expect(walker.translate(regs, 0, 0x1234_5678, RadixAccess.STORE, out)).toBe(false);
    expect([out.vector, out.cause]).toEqual([RadixVector.DSI, Dsisr.PROTFAULT | Dsisr.STORE]);
    regs.setAmr(0x4000_0000_0000_0000n); // key 0: AMR bit 62 (load disable)
    expect(walker.translate(regs, 0, 0x1234_5678, RadixAccess.LOAD, out)).toBe(false);
    regs.pr = true; // AMR key 0 is a supervisor check here (Linux KUAP)
    expect(walker.translate(regs, 0, 0x1234_5678, RadixAccess.LOAD, out)).toBe(true);
  });

  it('R/C: a missing R or C raises ATOMIC_RC (POWER9); the update policy sets them in memory instead', () => {
    const { view, regs, walker, out } = machine();
    const pte = 0x22000 + 0x14 * 8;
    be64(view, pte, 0xc000_0000, 0x0abc_0000 | 0x004 | 0x002); // no R, no C
    expect(walker.translate(regs, 0xc000_0000, 0x1234_5678, RadixAccess.LOAD, out)).toBe(false);
    expect([out.vector, out.cause]).toEqual([RadixVector.DSI, Dsisr.ATOMIC_RC]);
    be64(view, pte, 0xc000_0000, 0x0abc_0000 | 0x100 | 0x004 | 0x002); // R, no C
    expect(walker.translate(regs, 0xc000_0000, 0x1234_5678, RadixAccess.LOAD, out)).toBe(true);
    expect(walker.translate(regs, 0xc000_0000, 0x1234_5678, RadixAccess.STORE, out)).toBe(false);
    expect(out.cause).toBe(Dsisr.ATOMIC_RC | Dsisr.STORE);
    // A debugger's look checks no R/C and records nothing.
    expect(walker.translate(regs, 0xc000_0000, 0x1234_5678, RadixAccess.STORE, out, false)).toBe(true);
    expect(out.vector).toBe(0);
    const updating = new RadixWalker(walker.memory, { rc: 'update' });
    be64(view, pte, 0xc000_0000, 0x0abc_0000 | 0x004 | 0x002);
    expect(updating.translate(regs, 0xc000_0000, 0x1234_5678, RadixAccess.LOAD, out)).toBe(true);
    expect(view.getUint32(pte + 4, false)).toBe(0x0abc_0000 | 0x100 | 0x004 | 0x002);
    expect(out.prot).toBe(1); // write withheld until C is set
    expect(updating.translate(regs, 0xc000_0000, 0x1234_5678, RadixAccess.STORE, out)).toBe(true);
    expect(view.getUint32(pte + 4, false)).toBe(0x0abc_0000 | 0x180 | 0x004 | 0x002);
  });

  it('configuration checks: an NLS the POWER9 tree does not allow, a root leaf, a misaligned process table', () => {
    const { view, regs, walker, out } = machine();
    be64(view, 0x20000, 0x8000_0000, 0x0002_1008); // PUD says the PMD has 2^8 entries
    expect(walker.translate(regs, 0xc000_0000, 0x1234_5678, RadixAccess.LOAD, out)).toBe(false);
    expect([out.vector, out.cause]).toEqual([RadixVector.DSI, Dsisr.BADCONFIG]);
    be64(view, 0x10000, 0xc000_0000, 0x0000_0000 | 0x106); // a 512 GiB leaf in the root
    expect(walker.translate(regs, 0xc000_0000, 0x1234_5678, RadixAccess.LOAD, out)).toBe(false);
    expect(out.cause).toBe(Dsisr.BADCONFIG);
    regs.setVirtualHypervisorPate(0x8000_0000_0000_0000n, 0x31000n | 1n); // PRTS 1 (8 KiB) at a 4 KiB boundary
    expect(walker.translate(regs, 0xc000_0000, 0x1234_5678, RadixAccess.LOAD, out)).toBe(false);
    expect([out.vector, out.cause]).toEqual([RadixVector.DSI, Dsisr.BADCONFIG]);
  });

  it('non-idempotent I/O is guarded: no instruction fetch even with execute permission', () => {
    const { view, regs, walker, out } = machine();
    be64(view, 0x22000 + 0x14 * 8, 0xc000_0000, 0x0abc_0000 | 0x100 | 0x020 | 0x005);
    expect(walker.translate(regs, 0xc000_0000, 0x1234_5678, RadixAccess.LOAD, out)).toBe(true);
    expect(walker.translate(regs, 0xc000_0000, 0x1234_5678, RadixAccess.FETCH, out)).toBe(false);
    expect([out.vector, out.cause]).toEqual([RadixVector.ISI, SRR1_NOEXEC_GUARD]);
  });

  it('real mode: hypervisor state ignores EA bits 63..60 and adds HRMOR when bit 63 is clear', () => {
    const { regs, walker, out } = machine();
    regs.virtualHypervisor = false;
    regs.hv = true;
    regs.dr = false;
    regs.hrmorLo = 0x4000_0000;
    expect(walker.translate(regs, 0x0000_0000, 0x0000_1000, RadixAccess.LOAD, out)).toBe(true);
    expect(out.ra).toBe(0x4000_1000);
    expect(walker.translate(regs, 0xf000_0000, 0x0000_1000, RadixAccess.LOAD, out)).toBe(true);
    expect(out.ra).toBe(0x1000);
    expect(out.refs).toBe(0);
  });
});
