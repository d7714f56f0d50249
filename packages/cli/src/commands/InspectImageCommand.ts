import { readFileSync } from 'node:fs';
import { FlatGuestMemory, HvmmuError, SparsePageMemory } from '@hvmmu/core';
import { EFER, X86Registers, enumerateMappings, loadPdptes } from '@hvmmu/x86-shadow';
import { TextTable } from '../report/TextTable.js';

export const INSPECT_DESCRIPTION = `Walk the x86 page tables of a raw guest-physical memory image (e.g. QEMU's
'pmemsave 0 <size> file', with the registers from 'info registers') and print
every mapping as runs: virtual range, guest-physical start, size and the
access the tables grant (U/W/X ANDed over levels). Reads only.`;

export interface InspectOptions {
  readonly cr0: number;
  readonly cr3: number;
  readonly cr4: number;
  readonly efer: number;
  readonly maxPhyAddr: number;
  readonly maxRuns: number;
}

/** A register or count value: decimal or 0x hex, underscores allowed; throws BAD_ARGUMENT naming the option. */
export function parseNumber(name: string, text: string | undefined): number {
  if (text === undefined) throw new HvmmuError('BAD_ARGUMENT', `missing value for ${name}`);
  const value = Number(text.replace(/_/g, ''));
  if (text.trim() === '' || !Number.isSafeInteger(value) || value < 0)
    throw new HvmmuError('BAD_ARGUMENT', `${name} must be a non-negative integer (0x… accepted), got '${text}'`);
  return value;
}

/** Mappings of the image as printable lines. */
export function inspectImage(bytes: Uint8Array, options: InspectOptions): string[] {
  const regs = new X86Registers();
  regs.cr0 = options.cr0 >>> 0;
  regs.cr3 = options.cr3;
  regs.cr4 = options.cr4 >>> 0;
  // EFER.LMA is set by the processor when paging is enabled with LME (SDM 2.2.1, 9.8.5):
  // a register set that carries LME without LMA (GuestPageTables.controlRegisters()) is 4-level.
  let efer = options.efer >>> 0;
  if ((efer & EFER.LME) !== 0 && (regs.cr0 & 0x8000_0000) !== 0) efer = (efer | EFER.LMA) >>> 0;
  regs.efer = efer;
  regs.maxPhyAddr = options.maxPhyAddr;
  const mem = new FlatGuestMemory(bytes, { readOnly: true });
  const lines: string[] = [];
  if (regs.pagingMode === 3 && !loadPdptes(regs, mem)) {
    // QEMU's TCG walker sets A (bit 5, reserved in a PAE PDPTE on Intel, SDM 4.4.1) in the
    // PDPTEs it walks; a dump taken under QEMU has it. Read them as loaded at CR3 time: A clear.
    const pdpt = (regs.cr3 & 0xffff_ffe0) >>> 0;
    const page = pdpt - (pdpt % 4096);
    const copy = new Uint8Array(bytes.subarray(page, page + 4096));
    for (let i = 0; i < 4; i++) copy[(pdpt % 4096) + i * 8] = copy[(pdpt % 4096) + i * 8]! & ~0x20;
    const asLoaded = new SparsePageMemory(new Map([[page, copy]]));
    if (copy.length === 4096 && loadPdptes(regs, asLoaded)) {
      lines.push('note: the PDPTEs have A set (QEMU sets it; reserved on Intel, so MOV CR3 would #GP there): read with A clear');
    } else {
      lines.push('note: a PDPTE has reserved bits set (MOV CR3 would #GP); listing what the tables map anyway');
    }
  }
  const list = enumerateMappings(regs, mem, {
    maxRuns: options.maxRuns,
    pdptesFromMemory: regs.pagingMode === 3 && lines.length > 0 && lines[0]!.includes('reserved bits'),
  });
  const table = new TextTable(['virtual start', 'virtual end', 'guest physical', 'size', 'access', 'pkey']);
  for (let i = 0; i < list.count; i++) {
    const vpn = list.vpnStart[i]!;
    const pages = list.pageCount[i]!;
    const acc = list.access[i]!;
    table.add([
      vaText(vpn),
      vaText(vpn + pages),
      '0x' + (list.gfnStart[i]! * 4096).toString(16),
      sizeText(pages),
      `${acc & 4 ? 'U' : 'S'}${acc & 2 ? 'W' : 'R'}${acc & 1 ? 'X' : '-'}`,
      String(list.pkey[i]!),
    ]);
  }
  lines.push(
    `paging mode ${['off', '', '32-bit', 'PAE', '4-level', '5-level'][regs.pagingMode]}, CR3 0x${regs.cr3.toString(16)}: ` +
      `${list.count} runs, ${list.entriesRead} entries read, ${list.badTables} tables outside the image, ${list.reservedEntries} reserved entries` +
      (list.truncated ? ' (truncated)' : ''),
  );
  lines.push(table.render());
  return lines;
}

/**
 * Read the image file and list its mappings. Input problems — no such file,
 * an empty image, CR3 outside the image — are BAD_ARGUMENT errors with the
 * file named (the command exits 2).
 */
export function runInspectImage(image: string, options: InspectOptions): string[] {
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(readFileSync(image));
  } catch (error) {
    const code = (error as { code?: string }).code;
    throw new HvmmuError(
      'BAD_ARGUMENT',
      `cannot read the memory image '${image}': ${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : String((error as Error).message)}`,
    );
  }
  if (bytes.length === 0) throw new HvmmuError('BAD_ARGUMENT', `the memory image '${image}' is empty`);
  const root = options.cr3 - (options.cr3 % 4096);
  if ((options.cr0 & 0x8000_0000) !== 0 && root >= bytes.length) {
    throw new HvmmuError('BAD_ARGUMENT', `CR3 0x${options.cr3.toString(16)} points outside the ${bytes.length}-byte image '${image}'`);
  }
  return inspectImage(bytes, options);
}

/** Upper-half addresses are sign-extended: print them as 0xffff…. */
function vaText(vpn: number): string {
  const hex = (vpn * 4096).toString(16);
  return '0x' + hex.padStart(12, '0');
}

function sizeText(pages: number): string {
  const bytes = pages * 4096;
  if (bytes % (1 << 30) === 0) return `${bytes / (1 << 30)} GiB`;
  if (bytes % (1 << 20) === 0) return `${bytes / (1 << 20)} MiB`;
  return `${bytes / 1024} KiB`;
}
