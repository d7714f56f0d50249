/**
 * Builds guest page tables from `accessOracle` flags, runs the walker on
 * every combination and compares with the oracle: fault / no fault, the
 * exact error code, the gfn, and every entry as it is left in guest memory
 * (A/D written back on success, nothing written on a fault).
 */
import { Access, FlatGuestMemory, type GuestMemory } from '@hvmmu/core';
import { CR0, CR4, EFER, GuestWalk, GuestWalker, X86Registers, loadPdptes } from '@hvmmu/x86-shadow/internal';
import {
  expectAccess,
  type AccessKind,
  type Controls,
  type EntryFlags,
  type OracleMode,
  type Privilege,
  type Scenario,
  type UpperFlags,
} from './accessOracle.js';

export const MAX_PHY_ADDR = 40;
const IMAGE_BYTES = 4 << 20;

/** Where each mode's tables live. */
interface Layout {
  readonly cr3: number;
  /** gpa of each upper entry used (top first), long mode only. */
  readonly upperEntryGpa: readonly number[];
  readonly pdeGpa: number;
  /** PT address a non-leaf PDE points to (32-bit: also with the flag bit 17 set, see `pteGpaFor`). */
  readonly ptGpa: number;
  readonly vpn: number;
  /** Entry size in bytes. */
  readonly entryBytes: 4 | 8;
}

const PT_INDEX = 0x0b7;
const PD_INDEX = 0x1a5;
const PDPT_INDEX = 0x0d1;
const PML4_INDEX = 0x124;
const PML5_INDEX = 0x1f3;
/** 4 KiB leaf frame (gpa 0xabcdef000, below 2^40; 32-bit: 0xabcde000). */
export const PTE_GFN_64 = 0xabcdef;
export const PTE_GFN_32 = 0xabcde;
/** 2 MiB leaf and PT share gpa 0x200000 (bits 20:13 clear, as a 2 MiB frame needs). */
const PT_GPA_64 = 0x200000;
/** 32-bit: PDE bits 31:12 = 0x0000a, read as a 4 MiB leaf: PA 31:22 = 0, PSE-36 bits 16:13 = 5 → PA 35:32 = 5. */
const PT_GPA_32 = 0xa000;
const PSE36_BIT17 = 1 << 17;

function vpnFor(mode: OracleMode): number {
  switch (mode) {
    case 'long4': {
      // PML4 index >= 256: the upper canonical half, bits 51:36 of the vpn set.
      const raw = PML4_INDEX * 2 ** 27 + PDPT_INDEX * 2 ** 18 + PD_INDEX * 2 ** 9 + PT_INDEX;
      return raw + (2 ** 52 - 2 ** 36);
    }
    case 'long5': {
      const raw = PML5_INDEX * 2 ** 36 + PML4_INDEX * 2 ** 27 + PDPT_INDEX * 2 ** 18 + PD_INDEX * 2 ** 9 + PT_INDEX;
      return raw + (2 ** 52 - 2 ** 45);
    }
    case 'pae':
      return 3 * 2 ** 18 + PD_INDEX * 2 ** 9 + PT_INDEX;
    case 'bits32':
      return 0x2f3 * 2 ** 10 + PT_INDEX;
  }
}

function layoutFor(mode: OracleMode): Layout {
  const vpn = vpnFor(mode);
  switch (mode) {
    case 'long4':
      return {
        cr3: 0x1000,
        upperEntryGpa: [0x1000 + PML4_INDEX * 8, 0x2000 + PDPT_INDEX * 8],
        pdeGpa: 0x3000 + PD_INDEX * 8,
        ptGpa: PT_GPA_64,
        vpn,
        entryBytes: 8,
      };
    case 'long5':
      return {
        cr3: 0x5000,
        upperEntryGpa: [0x5000 + PML5_INDEX * 8, 0x1000 + PML4_INDEX * 8, 0x2000 + PDPT_INDEX * 8],
        pdeGpa: 0x3000 + PD_INDEX * 8,
        ptGpa: PT_GPA_64,
        vpn,
        entryBytes: 8,
      };
    case 'pae':
      // CR3 bits 31:5 locate the PDPT: here at 0x1fe0, the PD behind PDPTE 3.
      return { cr3: 0x1fe0, upperEntryGpa: [], pdeGpa: 0x3000 + PD_INDEX * 8, ptGpa: PT_GPA_64, vpn, entryBytes: 8 };
    case 'bits32':
      return { cr3: 0x3000, upperEntryGpa: [], pdeGpa: 0x3000 + 0x2f3 * 4, ptGpa: PT_GPA_32, vpn, entryBytes: 4 };
  }
}

// Entry bit positions (SDM tables 4-4..4-20).
const P = 1;
const RW = 2;
const US = 4;
const ACCESSED = 0x20;
const DIRTY = 0x40;
const PS = 0x80;
const XD_HI = 0x8000_0000;
/** Key 1 / key 2 in bits 62:59 (high half bits 30:27). */
const KEY1_HI = 1 << 27;
const KEY2_HI = 2 << 27;
/** Bit 51 (high half bit 19): above MAXPHYADDR 40, reserved in every 8-byte entry. */
const BIT51_HI = 1 << 19;
/** Bit 40 = MAXPHYADDR (high half bit 8): the lowest reserved address bit. */
const BIT40_HI = 1 << 8;
/** Bit 13: reserved in a 2 MiB leaf (address bits 20:13 of a 2 MiB frame must be 0). */
const BIT13 = 1 << 13;

interface Entry {
  hi: number;
  lo: number;
}

function flagBits(f: EntryFlags): number {
  return (f.present ? P : 0) | (f.writable ? RW : 0) | (f.user ? US : 0) | (f.accessed ? ACCESSED : 0) | (f.dirty ? DIRTY : 0) | (f.pageSize ? PS : 0);
}

function encodePde(mode: OracleMode, f: EntryFlags): Entry {
  if (mode === 'bits32') {
    // Bit 17 is reserved in a 4 MiB PSE-36 leaf (as KVM models PSE-36, see accessOracle.ts)
    // and an address bit of a page-table pointer.
    const lo = PT_GPA_32 | (f.reservedBit && f.pageSize ? PSE36_BIT17 : 0) | flagBits(f);
    return { hi: 0, lo: lo >>> 0 };
  }
  let hi = 0;
  let lo = PT_GPA_64 | flagBits(f);
  if (f.noExecute) hi |= XD_HI;
  // Key bits: key 1 in a leaf when asked; a non-leaf PDE carries key 2, which must be ignored.
  if (mode !== 'pae') hi |= f.pageSize ? (f.key1 ? KEY1_HI : 0) : KEY2_HI;
  if (f.reservedBit) {
    if (f.pageSize) lo |= BIT13;
    else hi |= BIT51_HI;
  }
  return { hi: hi >>> 0, lo: lo >>> 0 };
}

function encodePte(mode: OracleMode, f: EntryFlags): Entry {
  if (mode === 'bits32') {
    // PS of a 4 KiB PTE is PAT: no meaning for access control.
    return { hi: 0, lo: ((PTE_GFN_32 << 12) | flagBits(f)) >>> 0 };
  }
  let hi = Math.floor(PTE_GFN_64 / 2 ** 20);
  const lo = ((PTE_GFN_64 % 2 ** 20) * 4096) | flagBits(f);
  if (f.noExecute) hi |= XD_HI;
  if (mode !== 'pae' && f.key1) hi |= KEY1_HI;
  if (f.reservedBit) hi |= BIT40_HI;
  return { hi: hi >>> 0, lo: lo >>> 0 };
}

function encodeUpper(u: UpperFlags, nextTableGpa: number, accessed: boolean): Entry {
  const lo = nextTableGpa | P | (u.writable ? RW : 0) | (u.user ? US : 0) | (accessed ? ACCESSED : 0);
  // Non-leaf entries carry key 2 (fully denied in PKRU): keys are ignored outside the leaf.
  const hi = (u.noExecute ? XD_HI : 0) | KEY2_HI;
  return { hi: hi >>> 0, lo: lo >>> 0 };
}

export interface AccessCase {
  readonly kind: AccessKind;
  readonly privilege: Privilege;
}

export const ACCESS_CASES: readonly AccessCase[] = (['read', 'write', 'fetch'] as const).flatMap((kind) =>
  (['supervisor', 'user', 'implicit'] as const).map((privilege) => ({ kind, privilege })),
);

function accessBits(a: AccessCase): number {
  return (
    (a.kind === 'write' ? Access.WRITE : a.kind === 'fetch' ? Access.FETCH : 0) |
    (a.privilege === 'user' ? Access.USER : a.privilege === 'implicit' ? Access.IMPLICIT : 0)
  );
}

/** Every combination of the control bits the oracle knows, for a mode. */
export function allControls(mode: OracleMode): Controls[] {
  const out: Controls[] = [];
  const long = mode === 'long4' || mode === 'long5';
  // Protection-key variants: off, or on with key 1 restricted in each way (long mode);
  // outside long mode CR4.PKE must have no effect at all.
  const pkVariants: Array<[boolean, boolean, boolean]> = long
    ? [
        [false, false, false],
        [true, false, false],
        [true, true, false],
        [true, false, true],
        [true, true, true],
      ]
    : [
        [false, false, false],
        [true, true, true],
      ];
  const pseValues = mode === 'bits32' ? [false, true] : [true];
  for (const wp of [false, true])
    for (const smep of [false, true])
      for (const smap of [false, true])
        for (const ac of [false, true])
          for (const nxe of [false, true])
            for (const pse of pseValues)
              for (const [pke, key1AccessDisable, key1WriteDisable] of pkVariants) {
                out.push({ wp, smep, smap, ac, nxe, pke, pse, key1AccessDisable, key1WriteDisable, key2Denied: true });
              }
  return out;
}

function flags(bits: number, names: readonly (keyof EntryFlags)[]): EntryFlags {
  const f: Record<keyof EntryFlags, boolean> = {
    present: false,
    writable: false,
    user: false,
    accessed: false,
    dirty: false,
    noExecute: false,
    pageSize: false,
    reservedBit: false,
    key1: false,
  };
  names.forEach((name, i) => {
    f[name] = (bits & (1 << i)) !== 0;
  });
  return f;
}

/** The PDE/PTE pairs to try: every relevant flag combination of the pair. */
export function allChains(mode: OracleMode): Array<{ pde: EntryFlags; pte: EntryFlags }> {
  const long = mode === 'long4' || mode === 'long5';
  const has8 = mode !== 'bits32';
  const pteNames: (keyof EntryFlags)[] = ['present', 'writable', 'user', 'accessed', 'dirty'];
  if (has8) pteNames.push('noExecute', 'reservedBit');
  if (long) pteNames.push('key1');
  const pdeNames: (keyof EntryFlags)[] = ['present', 'writable', 'user', 'accessed', 'dirty', 'pageSize', 'reservedBit'];
  if (has8) pdeNames.push('noExecute');
  if (long) pdeNames.push('key1');
  const ptes = Array.from({ length: 1 << pteNames.length }, (_, b) => flags(b, pteNames));
  const cleanPte = flags(0b111, ['present', 'writable', 'user']);
  const zeroPte = flags(0, []);
  const chains: Array<{ pde: EntryFlags; pte: EntryFlags }> = [];
  for (let b = 0; b < 1 << pdeNames.length; b++) {
    const pde = flags(b, pdeNames);
    // Every PTE combination behind a present table pointer whose own
    // ignored bits (D, key) are clear; a PDE that stops the walk or is a
    // leaf in some configuration is tried with a usable and an empty PTE
    // (the PTE must then be neither read into the result nor written).
    const tablePointer = pde.present && !pde.reservedBit && !pde.dirty && !pde.key1 && !pde.pageSize;
    for (const pte of tablePointer ? ptes : [cleanPte, zeroPte]) chains.push({ pde, pte });
  }
  // 32-bit, PS with CR4.PSE=0 makes the PDE a table pointer: try every PTE there too.
  if (mode === 'bits32') {
    for (let b = 0; b < 1 << 3; b++) {
      const pde = { ...flags(b, ['writable', 'user', 'accessed']), present: true, pageSize: true };
      for (const pte of ptes) chains.push({ pde, pte });
    }
  }
  return chains;
}

export interface UpperCase {
  readonly flags: readonly UpperFlags[];
  /** A already set in the upper entries before the access. */
  readonly accessed: boolean;
}

export interface RunResult {
  readonly cases: number;
  readonly faults: number;
  readonly mismatches: string[];
}

/**
 * A guest with one mapping under test, rebuilt in place for each case.
 * PAE PDPTEs are loaded through `loadPdptes`, as a MOV to CR3 would.
 */
export class AccessRig {
  readonly image = new Uint8Array(IMAGE_BYTES);
  readonly view = new DataView(this.image.buffer);
  readonly mem: GuestMemory;
  readonly regs = new X86Registers();
  readonly walker = new GuestWalker();
  readonly out = new GuestWalk();
  readonly layout: Layout;
  private readonly upperTables: number[];

  /**
   * `throughResolve`: hand the walker a GuestMemory that is not a
   * FlatGuestMemory (as a VM's memslots are), so every entry goes through
   * `resolve` instead of the flat-image shortcut.
   */
  constructor(
    readonly mode: OracleMode,
    throughResolve = false,
  ) {
    const flat = new FlatGuestMemory(this.image);
    this.mem = throughResolve ? { view: flat.view, resolve: (gpa: number, write: boolean): number => flat.resolve(gpa, write) } : flat;
    this.layout = layoutFor(mode);
    this.regs.maxPhyAddr = MAX_PHY_ADDR;
    // Table each upper entry points to: PML5 → PML4 → PDPT → PD.
    this.upperTables = mode === 'long5' ? [0x1000, 0x2000, 0x3000] : mode === 'long4' ? [0x2000, 0x3000] : [];
    if (mode === 'pae') {
      for (let i = 0; i < 4; i++) this.write(0x1fe0 + i * 8, { hi: 0, lo: i === 3 ? 0x3000 | P : 0 });
      this.regs.cr3 = this.layout.cr3;
      if (!loadPdptes(this.regs, this.mem)) throw new Error('test PDPT must load');
    }
  }

  write(gpa: number, e: Entry): void {
    this.view.setUint32(gpa, e.lo, true);
    if (this.layout.entryBytes === 8) this.view.setUint32(gpa + 4, e.hi, true);
  }

  read(gpa: number): Entry {
    return {
      lo: this.view.getUint32(gpa, true),
      hi: this.layout.entryBytes === 8 ? this.view.getUint32(gpa + 4, true) : 0,
    };
  }

  setControls(c: Controls): void {
    const r = this.regs;
    const long = this.mode === 'long4' || this.mode === 'long5';
    r.cr0 = (CR0.PG | CR0.PE | (c.wp ? CR0.WP : 0)) >>> 0;
    r.cr4 =
      (this.mode !== 'bits32' ? CR4.PAE : 0) |
      (this.mode === 'long5' ? CR4.LA57 : 0) |
      (c.pse ? CR4.PSE : 0) |
      (c.smep ? CR4.SMEP : 0) |
      (c.smap ? CR4.SMAP : 0) |
      (c.pke ? CR4.PKE : 0);
    r.efer = (long ? EFER.LME | EFER.LMA : 0) | (c.nxe ? EFER.NXE : 0);
    r.rflagsAc = c.ac;
    r.cr3 = this.layout.cr3;
    // Keys only exist in long mode with CR4.PKE; otherwise PKRU denies everything and must be ignored.
    r.pkru = long && c.pke ? (c.key1AccessDisable ? 1 << 2 : 0) | (c.key1WriteDisable ? 1 << 3 : 0) | (c.key2Denied ? 0b11 << 4 : 0) : 0xffffffff;
  }

  /** PTE address the walker will use: the PDE's table pointer (32-bit: bit 17 of the PDE is part of it). */
  pteGpaFor(pde: EntryFlags): number {
    const table = this.mode === 'bits32' && pde.reservedBit && pde.pageSize ? PT_GPA_32 | PSE36_BIT17 : this.layout.ptGpa;
    return table + (this.layout.vpn % (this.layout.entryBytes === 8 ? 512 : 1024)) * this.layout.entryBytes;
  }

  /** Run every (controls × chain × access) combination for one set of upper entries. */
  run(
    controls: readonly Controls[],
    chains: ReadonlyArray<{ pde: EntryFlags; pte: EntryFlags }>,
    upper: UpperCase,
    accesses: readonly AccessCase[] = ACCESS_CASES,
  ): RunResult {
    const mismatches: string[] = [];
    let cases = 0;
    let faults = 0;
    const l = this.layout;
    const upperEntries = upper.flags.map((u, i) => encodeUpper(u, this.upperTables[i]!, upper.accessed));
    for (const c of controls) {
      this.setControls(c);
      for (const chain of chains) {
        const pde = encodePde(this.mode, chain.pde);
        const pte = encodePte(this.mode, chain.pte);
        const pteGpa = this.pteGpaFor(chain.pde);
        const otherPteGpa = this.mode === 'bits32' ? pteGpa ^ PSE36_BIT17 : -1;
        for (const a of accesses) {
          upperEntries.forEach((e, i) => {
            this.write(l.upperEntryGpa[i]!, e);
          });
          this.write(l.pdeGpa, pde);
          this.write(pteGpa, pte);
          if (otherPteGpa >= 0) this.write(otherPteGpa, pte);
          this.regs.cpl = a.privilege === 'supervisor' ? 0 : 3;
          const ok = this.walker.walk(this.regs, this.mem, l.vpn, accessBits(a), this.out, true);
          const s: Scenario = { mode: this.mode, upper: upper.flags, pde: chain.pde, pte: chain.pte, kind: a.kind, privilege: a.privilege, controls: c };
          const want = expectAccess(s);
          cases++;
          if (want.fault) faults++;
          const problems: string[] = [];
          if (ok === want.fault) problems.push(`ok=${ok}`);
          if (!ok && (this.out.errorCode !== want.errorCode || this.out.badTableGpa || this.out.nonCanonical)) {
            problems.push(`errorCode=${this.out.errorCode} want ${want.errorCode}`);
          }
          if (ok) {
            const gfn = this.expectedGfn(want.largePage);
            if (this.out.gfn !== gfn) problems.push(`gfn=${this.out.gfn} want ${gfn}`);
            const granted = (want.executable ? 1 : 0) | (want.writable ? 2 : 0) | (want.user ? 4 : 0);
            if (this.out.grantedAccess !== granted) problems.push(`grantedAccess=${this.out.grantedAccess} want ${granted}`);
            if (this.out.level !== (want.largePage ? 2 : 1)) problems.push(`level=${this.out.level}`);
          }
          // Guest memory after the access: exact values.
          const upperA = upper.accessed || want.upperAccessed ? ACCESSED : 0;
          upperEntries.forEach((e, i) => {
            const got = this.read(l.upperEntryGpa[i]!);
            if (got.lo !== ((e.lo & ~ACCESSED) | upperA) >>> 0 || got.hi !== e.hi) problems.push(`upper[${i}]=${hex(got)}`);
          });
          const pdeWant = { hi: pde.hi, lo: ((pde.lo & ~(ACCESSED | DIRTY)) | (want.pdeAccessed ? ACCESSED : 0) | (want.pdeDirty ? DIRTY : 0)) >>> 0 };
          const pteWant = { hi: pte.hi, lo: ((pte.lo & ~(ACCESSED | DIRTY)) | (want.pteAccessed ? ACCESSED : 0) | (want.pteDirty ? DIRTY : 0)) >>> 0 };
          const pdeGot = this.read(l.pdeGpa);
          const pteGot = this.read(pteGpa);
          if (pdeGot.lo !== pdeWant.lo || pdeGot.hi !== pdeWant.hi) problems.push(`pde=${hex(pdeGot)} want ${hex(pdeWant)}`);
          if (pteGot.lo !== pteWant.lo || pteGot.hi !== pteWant.hi) problems.push(`pte=${hex(pteGot)} want ${hex(pteWant)}`);
          if (otherPteGpa >= 0) {
            const other = this.read(otherPteGpa);
            if (other.lo !== pte.lo) problems.push(`unused PT copy written: ${hex(other)}`);
          }
          if (problems.length > 0 && mismatches.length < 20) {
            mismatches.push(`${problems.join(', ')} | ${describe(s)}`);
          }
        }
      }
    }
    return { cases, faults, mismatches };
  }

  /**
   * `GuestWalker.walkLeaf` over the same cases, for walks whose upper
   * entries and PDE (a table pointer with A set, no reserved bit) a shadow
   * page already vouches for: the access they grant is given as KVM's
   * pt_access, computed here from the flags. Per the oracle, walkLeaf must
   * refuse (-1) every access that faults and every one that would set A or
   * D in the PTE, and otherwise return the PTE's gfn with the oracle's
   * rights (W dropped from a clean PTE on a non-write, as KVM's
   * protect_clean_gpte) and key; it never writes guest memory.
   */
  runLeaf(controls: readonly Controls[], pdes: readonly EntryFlags[], ptes: readonly EntryFlags[], upper: readonly UpperFlags[]): RunResult {
    const mismatches: string[] = [];
    let cases = 0;
    let faults = 0;
    const l = this.layout;
    const upperEntries = upper.map((u, i) => encodeUpper(u, this.upperTables[i]!, true));
    for (const c of controls) {
      this.setControls(c);
      for (const pdeFlags of pdes) {
        if (!pdeFlags.present || !pdeFlags.accessed || pdeFlags.pageSize || pdeFlags.reservedBit) {
          throw new Error('runLeaf: the PDE must be a valid table pointer with A set');
        }
        const chainUpper = [...upper, { writable: pdeFlags.writable, user: pdeFlags.user, noExecute: pdeFlags.noExecute }];
        // A table pointer with XD set is reserved without NXE: no shadow page would exist for it.
        if (!c.nxe && chainUpper.some((u) => u.noExecute)) continue;
        const ptAccess =
          (chainUpper.every((u) => !u.noExecute) ? 1 : 0) | (chainUpper.every((u) => u.writable) ? 2 : 0) | (chainUpper.every((u) => u.user) ? 4 : 0);
        const pde = encodePde(this.mode, pdeFlags);
        for (const pteFlags of ptes) {
          const pte = encodePte(this.mode, pteFlags);
          for (const a of ACCESS_CASES) {
            upperEntries.forEach((e, i) => {
              this.write(l.upperEntryGpa[i]!, e);
            });
            this.write(l.pdeGpa, pde);
            this.write(l.ptGpa + (l.vpn % 512) * 8, pte);
            this.regs.cpl = a.privilege === 'supervisor' ? 0 : 3;
            const gfn = this.walker.walkLeaf(this.regs, this.mem, l.vpn, accessBits(a), l.ptGpa / 4096, ptAccess);
            const s: Scenario = { mode: this.mode, upper, pde: pdeFlags, pte: pteFlags, kind: a.kind, privilege: a.privilege, controls: c };
            const want = expectAccess(s);
            cases++;
            if (want.fault) faults++;
            const problems: string[] = [];
            const needsWrite = !want.fault && (!pteFlags.accessed || (a.kind === 'write' && !pteFlags.dirty));
            if (want.fault || needsWrite) {
              if (gfn !== -1) problems.push(`gfn=${gfn}, want -1 (${want.fault ? 'fault' : 'A/D to set'})`);
            } else {
              if (gfn !== PTE_GFN_64) problems.push(`gfn=${gfn} want ${PTE_GFN_64}`);
              const writable = want.writable && (a.kind === 'write' || pteFlags.dirty);
              const access = (want.executable ? 1 : 0) | (writable ? 2 : 0) | (want.user ? 4 : 0);
              if (this.walker.leafAccess !== access) problems.push(`leafAccess=${this.walker.leafAccess} want ${access}`);
              const key = c.pke && pteFlags.key1 ? 1 : 0;
              if (this.walker.leafPkey !== key) problems.push(`leafPkey=${this.walker.leafPkey} want ${key}`);
            }
            // Nothing written: every entry of the walk still holds what the test stored.
            const unchanged = (gpa: number, e: Entry): boolean => this.read(gpa).lo === e.lo && this.read(gpa).hi === e.hi;
            if (!upperEntries.every((e, i) => unchanged(l.upperEntryGpa[i]!, e)) || !unchanged(l.pdeGpa, pde) || !unchanged(l.ptGpa + (l.vpn % 512) * 8, pte)) {
              problems.push('guest memory written');
            }
            if (problems.length > 0 && mismatches.length < 20) mismatches.push(`${problems.join(', ')} | ${describe(s)}`);
          }
        }
      }
    }
    return { cases, faults, mismatches };
  }

  private expectedGfn(largePage: boolean): number {
    const vpn = this.layout.vpn;
    if (this.mode === 'bits32') {
      // 4 MiB PSE-36 leaf: PA 35:32 = 5, PA 31:22 = 0, plus VA bits 21:12.
      return largePage ? 5 * 2 ** 20 + (vpn % 1024) : PTE_GFN_32;
    }
    // 2 MiB leaf at gpa 0x200000 plus VA bits 20:12.
    return largePage ? PT_GPA_64 / 4096 + (vpn % 512) : PTE_GFN_64;
  }
}

function hex(e: Entry): string {
  return `${e.hi.toString(16)}:${e.lo.toString(16).padStart(8, '0')}`;
}

function describe(s: Scenario): string {
  const f = (e: EntryFlags): string =>
    Object.entries(e)
      .filter(([, v]) => v)
      .map(([k]) => k)
      .join('+') || '-';
  const c =
    Object.entries(s.controls)
      .filter(([, v]) => v)
      .map(([k]) => k)
      .join('+') || '-';
  const up = s.upper
    .map(
      (u) =>
        Object.entries(u)
          .filter(([, v]) => v)
          .map(([k]) => k)
          .join('+') || '-',
    )
    .join('/');
  return `${s.mode} ${s.privilege} ${s.kind} upper[${up}] pde[${f(s.pde)}] pte[${f(s.pte)}] ctl[${c}]`;
}

/** Upper entries that allow everything (present, W, U, no XD). */
export function permissiveUpper(mode: OracleMode): UpperFlags[] {
  const n = mode === 'long5' ? 3 : mode === 'long4' ? 2 : 0;
  return Array.from({ length: n }, () => ({ writable: true, user: true, noExecute: false }));
}

/** Entry flags from the set ones (the rest false). */
export function entry(set: Partial<EntryFlags>): EntryFlags {
  return {
    present: false,
    writable: false,
    user: false,
    accessed: false,
    dirty: false,
    noExecute: false,
    pageSize: false,
    reservedBit: false,
    key1: false,
    ...set,
  };
}

/** Every W/U/XD combination of `levels` upper entries. */
export function allUpperFlags(levels: number): UpperFlags[][] {
  const out: UpperFlags[][] = [];
  for (let b = 0; b < 1 << (3 * levels); b++) {
    out.push(
      Array.from({ length: levels }, (_, i) => ({
        writable: ((b >> (3 * i)) & 1) !== 0,
        user: ((b >> (3 * i + 1)) & 1) !== 0,
        noExecute: ((b >> (3 * i + 2)) & 1) !== 0,
      })),
    );
  }
  return out;
}
