import { readFileSync } from 'node:fs';
import { FlatGuestMemory, HvmmuError } from '@hvmmu/core';
import { X86Registers, enumerateMappings, loadPdptes } from '@hvmmu/x86-shadow';
import { TextTable } from '../report/TextTable.js';

export const INSPECT_USAGE = `usage: hvmmu inspect-image <memory image> --cr0 <v> --cr3 <v> --cr4 <v> --efer <v> [--maxphyaddr <bits>] [--max-runs <n>]

Walk the x86 page tables of a raw guest-physical memory image (e.g. QEMU's
'pmemsave 0 <size> file', with the registers from 'info registers') and print
every mapping as runs: virtual range, guest-physical start, size and the
access the tables grant (U/W/X ANDed over levels). Reads only.`;

interface InspectOptions {
  readonly image: string;
  readonly cr0: number;
  readonly cr3: number;
  readonly cr4: number;
  readonly efer: number;
  readonly maxPhyAddr: number;
  readonly maxRuns: number;
}

function parseNumber(name: string, text: string | undefined): number {
  if (text === undefined) throw new HvmmuError('BAD_ARGUMENT', `missing value for ${name}`);
  const value = Number(text.replace(/_/g, ''));
  if (!Number.isSafeInteger(value) || value < 0) throw new HvmmuError('BAD_ARGUMENT', `${name} must be a non-negative integer (0x… accepted), got '${text}'`);
  return value;
}

export function parseInspectArgs(args: readonly string[]): InspectOptions {
  let image: string | undefined;
  const values: Record<string, number> = { '--maxphyaddr': 40, '--max-runs': 100_000 };
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a.startsWith('--')) {
      values[a] = parseNumber(a, args[++i]);
    } else if (image === undefined) {
      image = a;
    } else {
      throw new HvmmuError('BAD_ARGUMENT', `unexpected argument '${a}'`);
    }
  }
  for (const required of ['--cr0', '--cr3', '--cr4', '--efer']) {
    if (values[required] === undefined) throw new HvmmuError('BAD_ARGUMENT', `${required} is required`);
  }
  if (image === undefined) throw new HvmmuError('BAD_ARGUMENT', 'the memory image file is required');
  return {
    image,
    cr0: values['--cr0']!,
    cr3: values['--cr3']!,
    cr4: values['--cr4']!,
    efer: values['--efer']!,
    maxPhyAddr: values['--maxphyaddr']!,
    maxRuns: values['--max-runs']!,
  };
}

/** Mappings of the image as printable lines. */
export function inspectImage(bytes: Uint8Array, options: Omit<InspectOptions, 'image'>): string[] {
  const regs = new X86Registers();
  regs.cr0 = options.cr0 >>> 0;
  regs.cr3 = options.cr3;
  regs.cr4 = options.cr4 >>> 0;
  // EFER.LMA follows from LME and CR0.PG (SDM 2.2.1); dumps usually print it set already.
  regs.efer = options.efer >>> 0;
  regs.maxPhyAddr = options.maxPhyAddr;
  const mem = new FlatGuestMemory(bytes, { readOnly: true });
  const lines: string[] = [];
  if (regs.pagingMode === 3 && !loadPdptes(regs, mem)) {
    lines.push('note: a PDPTE has reserved bits set (MOV CR3 would #GP); listing what the tables map anyway');
  }
  const list = enumerateMappings(regs, mem, { maxRuns: options.maxRuns, pdptesFromMemory: regs.pagingMode === 3 });
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

export function runInspectImage(args: readonly string[]): string[] {
  const options = parseInspectArgs(args);
  const bytes = new Uint8Array(readFileSync(options.image));
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
