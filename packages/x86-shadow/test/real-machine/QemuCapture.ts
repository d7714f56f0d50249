import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { ACC, EFER, PagingMode, X86Registers, loadPdptes, type PagingModeValue } from '@hvmmu/x86-shadow/internal';
import { SparsePageMemory } from '@hvmmu/core';

/** A (accessed), bit 5 of an entry; reserved in a PAE PDPTE (SDM 4.4.1, table 4-8). */
export const PDPTE_ACCESSED = 1 << 5;

/** Where `fixtures/x86/generate.sh` writes the committed captures (repo root /fixtures/x86). */
export const FIXTURE_ROOT = new URL('../../../../fixtures/x86/', import.meta.url);

/** The capture directories and the paging mode each one must be in (fixtures/x86/README.md). */
export const CAPTURES: ReadonlyArray<{ readonly dir: string; readonly mode: PagingModeValue }> = [
  { dir: 'long4', mode: PagingMode.LONG4 },
  { dir: 'long5', mode: PagingMode.LONG5 },
  { dir: 'pae', mode: PagingMode.PAE },
  { dir: 'bits32', mode: PagingMode.BITS32 },
];

/**
 * One leaf mapping as QEMU's `info tlb` printed it, plus the extractor's
 * page size and upper-level rights (QEMU prints only the leaf entry).
 * Addresses are full 64-bit values split into page numbers (va / 4096,
 * upper-half addresses as their unsigned 64-bit value / 4096).
 */
export interface TlbLine {
  readonly vpn: number;
  readonly gfn: number;
  /** QEMU's letters for the leaf: X=XD G P=PS D A C=PCD T=PWT U W. */
  readonly flags: string;
  /** Leaf size in 4 KiB pages. */
  readonly pages: number;
  /** U/S and R/W of every non-leaf entry above, ANDed; XD ORed (`UWX`, `-` = clear). */
  readonly upper: string;
}

export interface GvaSample {
  readonly vpn: number;
  readonly offset: number;
  /** QEMU's answer, or null for "Unmapped". */
  readonly gpa: number | null;
  readonly gvaText: string;
}

interface RegistersJson {
  mode: string;
  kernel: string;
  cr0: string;
  cr3: string;
  cr4: string;
  efer: string;
  cpl: number;
  guestCpu: { vendor: string; maxphyaddr: number; pdpe1gb: number; nx: number; pkru?: number };
  regions: Array<{ name: string; va: string; bytes: string }>;
  tablePages: number;
}

function hexPageNumber(text: string): number {
  return Number(BigInt(`0x${text}`) >> 12n);
}

function hexNumber(text: string): number {
  const negative = text.startsWith('-');
  const value = Number(BigInt(`0x${negative ? text.slice(1) : text}`));
  return negative ? -value : value;
}

/** A capture loaded from its committed files. */
export class QemuCapture {
  readonly json: RegistersJson;
  readonly tablePages = new Map<number, Uint8Array>();
  readonly tlb: TlbLine[] = [];
  readonly samples: GvaSample[] = [];

  /** XD bits count: EFER.NXE in PAE or long mode (32-bit entries have no XD). */
  readonly nxActive: boolean;

  constructor(readonly dir: string) {
    const base = new URL(`${dir}/`, FIXTURE_ROOT);
    this.json = JSON.parse(readFileSync(new URL('registers.json', base), 'utf8')) as RegistersJson;
    const regs = this.registers();
    this.nxActive = regs.pagingMode !== PagingMode.BITS32 && (regs.efer & EFER.NXE) !== 0;

    // tables.bin.gz: records of (gpa: uint64 LE, 4096 bytes).
    const tables = gunzipSync(readFileSync(new URL('tables.bin.gz', base)));
    const tableView = new DataView(tables.buffer, tables.byteOffset, tables.byteLength);
    for (let off = 0; off < tables.length; off += 8 + 4096) {
      const gpa = tableView.getUint32(off, true) + tableView.getUint32(off + 4, true) * 0x1_0000_0000;
      this.tablePages.set(gpa, tables.subarray(off + 8, off + 8 + 4096));
    }

    // info-tlb.txt.gz: runs "va pa flags size count va-step pa-step upper".
    for (const line of gunzipSync(readFileSync(new URL('info-tlb.txt.gz', base)))
      .toString('utf8')
      .split('\n')) {
      if (line === '' || line.startsWith('#')) continue;
      const [va, pa, flags, size, count, vaStep, paStep, upper] = line.split(' ') as [string, string, string, string, string, string, string, string];
      const vpn0 = hexPageNumber(va);
      const gfn0 = hexPageNumber(pa);
      const vpnStep = hexNumber(vaStep) / 4096;
      const gfnStep = hexNumber(paStep) / 4096;
      const pages = hexNumber(size) / 4096;
      for (let k = 0; k < Number(count); k++) {
        this.tlb.push({ vpn: vpn0 + k * vpnStep, gfn: gfn0 + k * gfnStep, flags, pages, upper });
      }
    }

    for (const line of gunzipSync(readFileSync(new URL('gva2gpa.txt.gz', base)))
      .toString('utf8')
      .split('\n')) {
      if (line === '' || line.startsWith('#')) continue;
      const [gva, gpa] = line.split(' ') as [string, string];
      const va = BigInt(`0x${gva}`);
      this.samples.push({
        vpn: Number(va >> 12n),
        offset: Number(va & 0xfffn),
        gpa: gpa === 'unmapped' ? null : Number(BigInt(`0x${gpa}`)),
        gvaText: gva,
      });
    }
  }

  /** The guest's registers at the capture, CPUID facts as the guest reported them. */
  registers(): X86Registers {
    const regs = new X86Registers();
    regs.cr0 = Number.parseInt(this.json.cr0, 16);
    regs.cr3 = Number.parseInt(this.json.cr3, 16);
    regs.cr4 = Number.parseInt(this.json.cr4, 16);
    regs.efer = Number.parseInt(this.json.efer, 16);
    regs.cpl = this.json.cpl;
    regs.maxPhyAddr = this.json.guestCpu.maxphyaddr;
    regs.gbPages = this.json.guestCpu.pdpe1gb === 1;
    regs.amd = this.json.guestCpu.vendor === 'AuthenticAMD';
    regs.pkru = this.json.guestCpu.pkru ?? 0;
    return regs;
  }

  memory(): SparsePageMemory {
    return new SparsePageMemory(this.tablePages);
  }

  /**
   * Registers as the guest's last CR3 load left them. In PAE mode that
   * load cached the four PDPTEs (SDM 4.4.1). The captured PDPT no longer
   * holds those exact values: Linux writes a PAE PDPTE as frame | P only
   * (bits 1..2 and 5..8 are reserved there), yet the PDPTEs this process
   * walked through have A (bit 5) set in the image, the one it never used
   * does not; QEMU's TCG walker set them after the load. So the cached
   * values are the captured ones with A cleared, loaded through
   * `loadPdptes` from a copy of the PDPT page (the fixture stays as captured).
   */
  registersAtCr3Load(mem: SparsePageMemory): X86Registers {
    const regs = this.registers();
    if (regs.pagingMode !== PagingMode.PAE) return regs;
    const pdptGpa = (regs.cr3 & 0xffffffe0) >>> 0;
    const page = new Uint8Array(this.pdptPage(mem));
    for (let i = 0; i < 4; i++) page[(pdptGpa % 4096) + i * 8]! &= ~PDPTE_ACCESSED;
    const asLoaded = new SparsePageMemory(new Map([[pdptGpa - (pdptGpa % 4096), page]]));
    if (!loadPdptes(regs, asLoaded)) throw new Error(`${this.dir}: PDPTEs at CR3 ${regs.cr3.toString(16)} do not load even with A cleared`);
    return regs;
  }

  /** The 4 KiB page holding the PAE PDPT, as captured. */
  pdptPage(mem: SparsePageMemory): Uint8Array {
    const pdptGpa = (this.registers().cr3 & 0xffffffe0) >>> 0;
    const off = mem.resolve(pdptGpa - (pdptGpa % 4096), false);
    if (off < 0) throw new Error(`${this.dir}: the PDPT page is not in the fixture`);
    return mem.bytes.subarray(off, off + 4096);
  }

  /**
   * ACC bits (X=1, W=2, U=4) a line's translation grants, from QEMU's leaf
   * letters and the upper-level rights: SDM 4.6 ANDs R/W and U/S over every
   * level; XD (only with EFER.NXE, and never in 32-bit paging) on any level
   * forbids fetches.
   */
  expectedAccess(line: TlbLine): number {
    const xd = this.nxActive && (line.flags.includes('X') || line.upper[2] === 'X');
    const w = line.flags.endsWith('W') && line.upper[1] === 'W';
    const u = line.flags[7] === 'U' && line.upper[0] === 'U';
    return (xd ? 0 : ACC.EXEC) | (w ? ACC.WRITE : 0) | (u ? ACC.USER : 0);
  }

  /** Leaf level for a page size: 4 KiB -> 1, 2 MiB / 4 MiB -> 2, 1 GiB -> 3. */
  static levelOfPages(pages: number): number {
    return pages === 1 ? 1 : pages === 512 || pages === 1024 ? 2 : pages === 262144 ? 3 : -1;
  }
}
