import { beforeAll, describe, expect, it } from 'vitest';
import { Access } from '@hvmmu/core';
import { ACC, CR0, CR4, EFER, GuestWalk, GuestWalker, PFERR, PagingMode, enumerateMappings, loadPdptes, type X86Registers } from '@hvmmu/x86-shadow/internal';
import { CAPTURES, PDPTE_ACCESSED, QemuCapture, type TlbLine } from './QemuCapture.js';
import type { SparsePageMemory } from '@hvmmu/core';

/**
 * Page tables real Linux kernels built under QEMU (fixtures/x86/README.md),
 * checked against QEMU's own answers for them: `info tlb` (every leaf with
 * its flags) and `gva2gpa` samples. Every walk here is side-effect free and
 * the memory under it is writable, so a stray write would show.
 */

const MAX_REPORTED = 20;

function hex(n: number): string {
  return `0x${n.toString(16)}`;
}

function vaOf(vpn: number): string {
  return hex(vpn * 4096);
}

function describeAcc(acc: number): string {
  return `${acc & ACC.USER ? 'U' : '-'}${acc & ACC.WRITE ? 'W' : '-'}${acc & ACC.EXEC ? 'X' : '-'}`;
}

/** Registers for an access at privilege `cpl` (the walker treats CPL 3 as a user access). */
function atCpl(regs: X86Registers, cpl: number): X86Registers {
  const copy = Object.assign(Object.create(Object.getPrototypeOf(regs) as object) as X86Registers, regs);
  copy.cpl = cpl;
  return copy;
}

/** Maximal runs of (vpn, gfn, pages, access): consecutive pages, frames and equal rights merged. */
interface Run {
  vpn: number;
  gfn: number;
  pages: number;
  access: number;
  pkey: number;
}

function mergeRuns(lines: readonly TlbLine[], capture: QemuCapture): Run[] {
  const runs: Run[] = [];
  for (const line of [...lines].sort((a, b) => a.vpn - b.vpn)) {
    const access = capture.expectedAccess(line);
    const last = runs[runs.length - 1];
    if (last && last.access === access && last.vpn + last.pages === line.vpn && last.gfn + last.pages === line.gfn) {
      last.pages += line.pages;
    } else {
      // Linux gives every page protection key 0 unless a program calls pkey_mprotect (the guest-mapper does not).
      runs.push({ vpn: line.vpn, gfn: line.gfn, pages: line.pages, access, pkey: 0 });
    }
  }
  return runs;
}

describe.each(CAPTURES)('QEMU capture $dir', ({ dir, mode }) => {
  let capture: QemuCapture;
  let mem: SparsePageMemory;
  let regs: X86Registers;
  let pristine: Uint8Array;
  const walker = new GuestWalker();
  const walk = new GuestWalk();

  beforeAll(() => {
    capture = new QemuCapture(dir);
    mem = capture.memory();
    regs = capture.registersAtCr3Load(mem);
    pristine = mem.bytes.slice();
  });

  it('was taken in the expected paging mode, at CPL 3, with write protection on', () => {
    expect(regs.pagingMode).toBe(mode);
    expect(regs.cpl).toBe(3);
    // Linux runs with CR0.WP=1, so supervisor writes honour R/W (the probes below rely on it).
    expect(regs.cr0 & CR0.WP).toBe(CR0.WP);
    expect(mem.pageCount).toBe(capture.json.tablePages);
    expect(capture.tlb.length).toBeGreaterThan(1000);
    expect(capture.samples.length).toBeGreaterThan(1000);
  });

  it("translates every page QEMU's info tlb lists to QEMU's frame, leaf level and rights", () => {
    const mismatches: string[] = [];
    let walks = 0;
    for (const line of capture.tlb) {
      const expected = capture.expectedAccess(line);
      const user = (expected & ACC.USER) !== 0;
      // A user read reaches every U page; a supervisor read every other one (SMAP only covers U pages).
      const r = atCpl(regs, user ? 3 : 0);
      const level = QemuCapture.levelOfPages(line.pages);
      for (const off of new Set([0, line.pages - 1, Math.floor(line.pages / 2)])) {
        walks++;
        const ok = walker.walk(r, mem, line.vpn + off, user ? Access.USER : Access.READ, walk, false);
        if (!ok || walk.gfn !== line.gfn + off || walk.grantedAccess !== expected || walk.level !== level) {
          mismatches.push(
            `${vaOf(line.vpn + off)} (${line.flags}, upper ${line.upper}): QEMU gpa ${hex((line.gfn + off) * 4096)} ` +
              `${describeAcc(expected)} level ${level}; walker ${ok ? `gpa ${hex(walk.gfn * 4096)} ${describeAcc(walk.grantedAccess)} level ${walk.level}` : `fault ${hex(walk.errorCode)}`}`,
          );
        }
      }
    }
    expect(walks).toBeGreaterThan(capture.tlb.length);
    expect({ count: mismatches.length, first: mismatches.slice(0, MAX_REPORTED) }).toEqual({ count: 0, first: [] });
  });

  it("allows writes and fetches exactly where QEMU's flags do, with the architected #PF codes", () => {
    const nxe = (regs.efer & EFER.NXE) !== 0;
    const smep = (regs.cr4 & CR4.SMEP) !== 0;
    // I/D is reported on fetch faults when NXE or SMEP is on (KVM's rule; SDM 4.7 agrees
    // for every capture here, the 32-bit one running with EFER.NXE=0).
    const fetchId = nxe || smep ? PFERR.ID : 0;
    const mismatches: string[] = [];
    for (const line of capture.tlb) {
      const expected = capture.expectedAccess(line);
      const user = (expected & ACC.USER) !== 0;
      const r = atCpl(regs, user ? 3 : 0);
      const who = user ? Access.USER : 0;
      const u = user ? PFERR.U : 0;
      const canWrite = (expected & ACC.WRITE) !== 0;
      const canFetch = (expected & ACC.EXEC) !== 0;
      const wrote = walker.walk(r, mem, line.vpn, who | Access.WRITE, walk, false);
      if (wrote !== canWrite || (!wrote && walk.errorCode !== (PFERR.P | PFERR.W | u))) {
        mismatches.push(
          `write ${vaOf(line.vpn)} (${line.flags}, upper ${line.upper}): expected ${canWrite ? 'ok' : hex(PFERR.P | PFERR.W | u)}, walker ${wrote ? 'ok' : hex(walk.errorCode)}`,
        );
      }
      const fetched = walker.walk(r, mem, line.vpn, who | Access.FETCH, walk, false);
      if (fetched !== canFetch || (!fetched && walk.errorCode !== (PFERR.P | fetchId | u))) {
        mismatches.push(
          `fetch ${vaOf(line.vpn)} (${line.flags}, upper ${line.upper}): expected ${canFetch ? 'ok' : hex(PFERR.P | fetchId | u)}, walker ${fetched ? 'ok' : hex(walk.errorCode)}`,
        );
      }
    }
    expect({ count: mismatches.length, first: mismatches.slice(0, MAX_REPORTED) }).toEqual({ count: 0, first: [] });
  });

  it('answers every gva2gpa sample as QEMU did, not-present faults included', () => {
    // A supervisor read with EFLAGS.AC=1 is allowed on every present page (SMAP lifted), like QEMU's debug walk.
    const r = atCpl(regs, 0);
    r.rflagsAc = true;
    const mismatches: string[] = [];
    let unmapped = 0;
    for (const s of capture.samples) {
      const ok = walker.walk(r, mem, s.vpn, Access.READ, walk, false);
      if (s.gpa === null) {
        unmapped++;
        // Not present somewhere on the path: #PF with P=0 and nothing else for a supervisor read.
        if (ok || walk.errorCode !== 0 || walk.badTableGpa || walk.nonCanonical) {
          mismatches.push(
            `${s.gvaText}: QEMU unmapped; walker ${ok ? `gpa ${hex(walk.gfn * 4096 + s.offset)}` : `fault ${hex(walk.errorCode)}${walk.badTableGpa ? ' (bad table gpa)' : ''}`}`,
          );
        }
      } else if (!ok || walk.gfn * 4096 + s.offset !== s.gpa) {
        mismatches.push(`${s.gvaText}: QEMU ${hex(s.gpa)}; walker ${ok ? hex(walk.gfn * 4096 + s.offset) : `fault ${hex(walk.errorCode)}`}`);
      }
    }
    expect(unmapped).toBeGreaterThan(0);
    expect({ count: mismatches.length, first: mismatches.slice(0, MAX_REPORTED) }).toEqual({ count: 0, first: [] });
  });

  it('sees PROT_NONE pages as not present (Linux clears P), like QEMU', () => {
    const region = capture.json.regions.find((g) => g.name === 'protnone');
    expect(region).toBeDefined();
    const vpn = Number(BigInt(region!.va) >> 12n);
    const sample = capture.samples.find((s) => s.vpn === vpn);
    expect(sample?.gpa).toBeNull();
    expect(walker.walk(atCpl(regs, 3), mem, vpn, Access.USER, walk, false)).toBe(false);
    expect(walk.errorCode).toBe(PFERR.U);
  });

  it("enumerateMappings lists exactly QEMU's info tlb", () => {
    const list = enumerateMappings(regs, mem);
    expect({ truncated: list.truncated, badTables: list.badTables, reservedEntries: list.reservedEntries }).toEqual({
      truncated: false,
      badTables: 0,
      reservedEntries: 0,
    });
    const expected = mergeRuns(capture.tlb, capture);
    const actual = list.runs();
    const firstDiff = expected.findIndex((e, i) => {
      const a = actual[i];
      return !a || a.vpn !== e.vpn || a.gfn !== e.gfn || a.pages !== e.pages || a.access !== e.access || a.pkey !== e.pkey;
    });
    const show = (r: Run | undefined): string => (r ? `${vaOf(r.vpn)} -> ${hex(r.gfn * 4096)} x${r.pages} ${describeAcc(r.access)} key ${r.pkey}` : 'none');
    expect({
      runs: actual.length,
      firstDiff: firstDiff < 0 ? 'none' : `run ${firstDiff}: QEMU ${show(expected[firstDiff])}, enumerateMappings ${show(actual[firstDiff])}`,
    }).toEqual({ runs: expected.length, firstDiff: 'none' });
    expect(list.pages).toBe(capture.tlb.reduce((sum, line) => sum + line.pages, 0));
  });

  // walkLeaf is long mode only.
  it.runIf(mode === PagingMode.LONG4 || mode === PagingMode.LONG5)("walkLeaf, given QEMU's upper-level rights, finds every 4 KiB leaf QEMU lists", () => {
    const mismatches: string[] = [];
    let leaves = 0;
    let declined = 0;
    for (const line of capture.tlb) {
      if (line.pages !== 1) continue;
      const expected = capture.expectedAccess(line);
      const user = (expected & ACC.USER) !== 0;
      const r = atCpl(regs, user ? 3 : 0);
      const access = user ? Access.USER : Access.READ;
      // The leaf's table from a full walk; pt_access from QEMU's own account of the levels above.
      expect(walker.walk(r, mem, line.vpn, access, walk, false)).toBe(true);
      const ptAccess =
        (line.upper[2] === 'X' && capture.nxActive ? 0 : ACC.EXEC) | (line.upper[1] === 'W' ? ACC.WRITE : 0) | (line.upper[0] === 'U' ? ACC.USER : 0);
      const gfn = walker.walkLeaf(r, mem, line.vpn, access, walk.tableGfn[1]!, ptAccess);
      leaves++;
      // A leaf without A needs the walk's A update: walkLeaf leaves it to a full walk.
      if (!line.flags.includes('A')) {
        declined++;
        if (gfn !== -1) mismatches.push(`${vaOf(line.vpn)} (${line.flags}): walkLeaf took a leaf without A`);
        continue;
      }
      // A read of a clean leaf is mapped without W (KVM protect_clean_gpte).
      const want = line.flags.includes('D') ? expected : expected & ~ACC.WRITE;
      if (gfn !== line.gfn || walker.leafAccess !== want) {
        mismatches.push(
          `${vaOf(line.vpn)} (${line.flags}, upper ${line.upper}): QEMU gpa ${hex(line.gfn * 4096)} ` +
            `${describeAcc(want)}; walkLeaf ${gfn < 0 ? 'declined' : `gpa ${hex(gfn * 4096)} ${describeAcc(walker.leafAccess)}`}`,
        );
      }
    }
    expect(leaves - declined).toBeGreaterThan(1000);
    expect({ count: mismatches.length, first: mismatches.slice(0, MAX_REPORTED) }).toEqual({ count: 0, first: [] });
  });

  it('left the guest tables byte-for-byte unchanged', () => {
    expect(Buffer.compare(Buffer.from(mem.bytes), Buffer.from(pristine))).toBe(0);
  });

  it('walks the fixture tables themselves: clearing one PTE makes that page fault', () => {
    const text = capture.json.regions.find((g) => g.name === 'text');
    expect(text).toBeDefined();
    const vpn = Number(BigInt(text!.va) >> 12n);
    const user = atCpl(regs, 3);
    expect(walker.walk(user, mem, vpn, Access.USER | Access.FETCH, walk, false)).toBe(true);
    expect(walk.level).toBe(1);
    const pteOffset = mem.resolve(walk.pteGpa[1]!, false);
    expect(pteOffset).toBeGreaterThanOrEqual(0);
    const saved = mem.bytes[pteOffset]!;
    try {
      mem.bytes[pteOffset] = saved & ~1;
      expect(walker.walk(user, mem, vpn, Access.USER | Access.FETCH, walk, false)).toBe(false);
      expect(walk.errorCode & (PFERR.P | PFERR.U)).toBe(PFERR.U);
    } finally {
      mem.bytes[pteOffset] = saved;
    }
  });
});

describe('QEMU capture pae: the PDPTEs as captured', () => {
  const capture = new QemuCapture('pae');
  const mem = capture.memory();
  const pdptOffset = (Number.parseInt(capture.json.cr3, 16) & 0xfe0) >>> 0;
  const pdpt = capture.pdptPage(mem);
  const lo = (i: number): number => new DataView(pdpt.buffer, pdpt.byteOffset).getUint32(pdptOffset + i * 8, true);

  it('hold A (reserved in a PAE PDPTE) only where the process walked, so a CR3 load of them now would #GP', () => {
    const present = [0, 1, 2, 3].filter((i) => (lo(i) & 1) !== 0);
    const accessed = present.filter((i) => (lo(i) & PDPTE_ACCESSED) !== 0);
    expect(present).toEqual([0, 1, 2, 3]); // Linux preallocates all four PAE PMDs
    expect(accessed.length).toBeGreaterThan(0);
    expect(accessed.length).toBeLessThan(4);
    // Apart from A, each is what Linux writes: the PMD's frame and P (bits 1..11 otherwise clear).
    for (const i of present) expect(lo(i) & 0xfff & ~PDPTE_ACCESSED).toBe(1);
    const regs = capture.registers();
    expect(loadPdptes(regs, mem)).toBe(false);
    expect([...regs.pdpteLo]).toEqual([0, 0, 0, 0]);
  });

  it('make enumerateMappings from memory skip the accessed PDPTEs as reserved-bit entries', () => {
    const list = enumerateMappings(capture.registers(), mem, { pdptesFromMemory: true });
    const accessed = [0, 1, 2, 3].filter((i) => (lo(i) & PDPTE_ACCESSED) !== 0).length;
    expect(list.reservedEntries).toBe(accessed);
    expect(list.truncated).toBe(false);
  });

  it('are the cached PDPTEs once A is cleared: the mode checks above walk from those', () => {
    const regs = capture.registersAtCr3Load(mem);
    expect(regs.pagingMode).toBe(PagingMode.PAE);
    for (let i = 0; i < 4; i++) expect(regs.pdpteLo[i]).toBe((lo(i) & ~PDPTE_ACCESSED) >>> 0);
  });
});
