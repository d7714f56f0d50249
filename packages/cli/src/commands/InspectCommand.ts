// `hvmmu inspect`: walk the page tables in a raw guest memory image — x86, POWER radix or POWER
// HPT — and list every mapping with its effective rights and page size (docs/cli.md).
import { type Command, InvalidArgumentError, Option } from 'commander';
import { hex, inputError, loadGuestImage, parseU64, parseU64Pair, type ImageLayout } from '../inspect/InspectInput.js';
import type { InspectMapping, InspectResult } from '../inspect/InspectResult.js';
import { loadPpcHpt, loadPpcRadix, type PpcHptPackage } from '../inspect/PpcPackages.js';
import type { HashPageTable } from '@hvmmu/ppc-hpt';
import { inspectHpt, readSlb } from '../inspect/hpt/HptTableInspector.js';
import { inspectRadix } from '../inspect/radix/RadixTableInspector.js';
import { listX86Tables, qemuInfoTlbLine, x86Mapping } from '../inspect/x86/X86TableInspector.js';
import { parseHtabFormat, readHtabFile, type HtabFormat } from '../htab/HtabTableInput.js';
import { TextTable } from '../report/TextTable.js';

export const INSPECT_COMMAND_DESCRIPTION = `Walk the page tables in a guest memory image and list every mapping: virtual range,
physical address, page size, the rights user and kernel code get, and the entry's flags.

  --arch x86    CR0/CR3/CR4/EFER; the walk is QEMU's 'info tlb' walk, so --info-tlb
                prints lines that diff against QEMU's own output
  --arch radix  the partition-table entry (--pate, as QEMU's pseries machine supplies it)
                or --ptcr with --lpid; --pid selects the process (quadrant 0), PID 0 is
                listed at quadrant 3 (0xc…)
  --arch hpt    IMAGE is the hashed page table: an HPT image, an HTAB stream in KVM's
                format or QEMU's spapr/htab section; every valid HPTE is translated back
                to its effective address through the SLB (--slb FILE or --slbe ESID,VSID)

The memory image (x86, radix) is raw guest-physical memory from address 0 (QEMU's
'pmemsave 0 SIZE FILE') or page records (u64 LE gpa + 4096 bytes, as the fixtures'
tables.bin.gz); gzipped files are read as they are.

Exit codes: 0 listed; 1 listed, but the tables have problems (tables outside the
image, malformed entries skipped, HPTEs no SLB entry reaches) or --max-leaves cut the
listing; 2 bad usage or input (the message names the file and what was expected).`;

/** MSR for --translate unless given: SF, IR, DR (a 64-bit kernel with relocation on). */
const DEFAULT_MSR = 0x8000_0000_0000_0030n;

interface InspectOptions {
  arch: string;
  json?: boolean;
  tree?: boolean;
  layout: ImageLayout;
  maxLeaves: number;
  cr0?: bigint;
  cr3?: bigint;
  cr4?: bigint;
  efer?: bigint;
  infoTlb?: boolean;
  pate?: [bigint, bigint];
  ptcr?: bigint;
  lpid: number;
  pid: number;
  quadrants: string;
  msr?: bigint;
  amr?: bigint;
  iamr?: bigint;
  translate: bigint[];
  htabFormat: HtabFormat | 'auto';
  order?: number;
  bigEndianHeaders?: boolean;
  sdr1?: bigint;
  slb?: string;
  slbKey?: string;
  slbe: string[];
}

/** The output of `hvmmu inspect --json`: InspectResult plus --translate's answers. */
export interface InspectCommandOutput extends InspectResult {
  readonly translations: readonly { readonly ea: string; readonly ra: string | null }[];
}

function u64(name: string): (text: string) => bigint {
  return (text) => {
    try {
      return parseU64(name, text);
    } catch (error) {
      throw new InvalidArgumentError((error as Error).message);
    }
  };
}

function u64List(name: string): (text: string, previous: bigint[]) => bigint[] {
  const one = u64(name);
  return (text, previous) => [...previous, one(text)];
}

function count(name: string, max: number): (text: string) => number {
  return (text) => {
    const v = Number(text.replace(/_/g, ''));
    if (text.trim() === '' || !Number.isSafeInteger(v) || v < 0 || v > max)
      throw new InvalidArgumentError(`${name} must be an integer 0..${max}, got '${text}'`);
    return v;
  };
}

export function registerInspectCommand(program: Command, write: { out(s: string): void }, exit: { code: number }): void {
  program
    .command('inspect')
    .description(INSPECT_COMMAND_DESCRIPTION)
    .argument('<image>', 'guest memory image (x86, radix) or hashed page table / HTAB stream (hpt)')
    .addOption(new Option('--arch <arch>', 'the architecture of the tables').choices(['x86', 'radix', 'hpt']).makeOptionMandatory())
    .option('--json', 'print the result as JSON (docs/cli.md, "hvmmu inspect")')
    .option('--tree', 'draw the table hierarchy instead of the list')
    .addOption(new Option('--layout <layout>', 'memory image layout').choices(['auto', 'raw', 'pages']).default('auto'))
    .option('--max-leaves <n>', 'stop listing after this many mappings', count('--max-leaves', 2 ** 26), 2_000_000)
    .option('--cr0 <value>', 'x86: CR0', u64('--cr0'))
    .option('--cr3 <value>', 'x86: CR3', u64('--cr3'))
    .option('--cr4 <value>', 'x86: CR4', u64('--cr4'))
    .option('--efer <value>', 'x86: IA32_EFER (LME with CR0.PG is long mode)', u64('--efer'))
    .option('--info-tlb', "x86: print exactly QEMU's 'info tlb' lines (for diff)")
    .option('--pate <dw0,dw1>', 'radix: the partition-table entry a virtual hypervisor supplies (pseries: QEMU spapr_get_pate)', (t: string) => {
      try {
        return parseU64Pair('--pate', t);
      } catch (error) {
        throw new InvalidArgumentError((error as Error).message);
      }
    })
    .option('--ptcr <value>', 'radix: PTCR (partition table in the image)', u64('--ptcr'))
    .option('--lpid <n>', 'radix: LPID (with --ptcr)', count('--lpid', 0xfff_ffff), 0)
    .option('--pid <n>', 'radix: PID listed at quadrant 0', count('--pid', 0xfff_ffff), 0)
    .option('--quadrants <list>', 'radix: quadrants to list, 0 and/or 3', '0,3')
    .option('--msr <value>', 'radix, hpt: MSR for --translate (HV 60, PR 14, IR 5, DR 4; default 0x8000000000000030: kernel, relocation on)', u64('--msr'))
    .option('--amr <value>', 'radix, hpt: AMR for --translate (default 0)', u64('--amr'))
    .option('--iamr <value>', 'radix, hpt: IAMR for --translate (default 0)', u64('--iamr'))
    .option('--translate <ea>', "radix, hpt: also answer this effective address as QEMU's gva2gpa (repeatable)", u64List('--translate'), [] as bigint[])
    .option(
      '--htab-format <format>',
      'hpt: auto, image, kvm or qemu',
      (t: string) => {
        try {
          return parseHtabFormat(t, '--htab-format');
        } catch (error) {
          throw new InvalidArgumentError((error as Error).message);
        }
      },
      'auto' as const,
    )
    .option('--order <n>', 'hpt: table order of a KVM stream (default: the smallest holding its indexes)', count('--order', 64))
    .option('--big-endian-headers', "hpt: a KVM stream's record headers are big-endian")
    .option('--sdr1 <value>', "hpt: IMAGE is guest memory holding the HPT at SDR1's HTABORG, 2^(18+HTABSIZE) bytes (bare metal, powernv)", u64('--sdr1'))
    .option('--slb <file>', 'hpt: the SLB as JSON (an array of {slot, esidWord, vsidWord}, or an object of such arrays)')
    .option('--slb-key <name>', 'hpt: which SLB of an --slb object (e.g. user, kernel)')
    .option('--slbe <esid,vsid>', 'hpt: one SLB entry, the slbmte RB and RS words in hex (repeatable)', (t: string, p: string[]) => [...p, t], [] as string[])
    .action(async (image: string, o: InspectOptions) => {
      const result = await runInspect(image, o);
      exit.code = result.problem ? 1 : 0;
      if (o.json === true) {
        write.out(`${JSON.stringify(result.output, null, 2)}\n`);
        return;
      }
      for (const line of result.text) write.out(`${line}\n`);
    });
}

function summaryLine(summary: Readonly<Record<string, string | number | boolean>>): string {
  return Object.entries(summary)
    .map(([k, v]) => `${k} ${typeof v === 'number' ? v.toLocaleString('en-US') : String(v)}`)
    .join(', ');
}

function mappingTable(mappings: readonly InspectMapping[], extra: readonly [string, (m: InspectMapping) => string][]): string {
  const table = new TextTable(['virtual start', 'virtual end', 'physical', 'page', 'user', 'kernel', 'flags', ...extra.map((e) => e[0])]);
  for (const m of mappings) table.add([m.va, m.vaEnd, m.pa, m.pageSize, m.user, m.supervisor, m.flags, ...extra.map((e) => e[1](m))]);
  return table.render();
}

async function runInspect(image: string, o: InspectOptions): Promise<{ output: InspectCommandOutput; text: string[]; problem: boolean }> {
  if (o.arch === 'x86') {
    const missing = (['cr0', 'cr3', 'cr4', 'efer'] as const).filter((k) => o[k] === undefined).map((k) => `--${k}`);
    if (missing.length > 0) throw inputError(`--arch x86 needs --cr0, --cr3, --cr4 and --efer (missing: ${missing.join(', ')})`);
    const regs = { cr0: o.cr0!, cr3: o.cr3!, cr4: o.cr4!, efer: o.efer! };
    const loaded = loadGuestImage(image, o.layout);
    const listing = listX86Tables(loaded.memory, regs, { maxLeaves: o.maxLeaves, tree: o.tree === true });
    const mappings = listing.leaves.map((l) => x86Mapping(l, regs));
    const summary = {
      mode: listing.mode,
      cr3: hex(regs.cr3),
      image: `${loaded.layout}, ${loaded.pages} pages`,
      leaves: mappings.length,
      entriesRead: listing.entriesRead,
      missingTables: listing.missingTables,
      truncated: listing.truncated,
    };
    const output: InspectCommandOutput = { arch: 'x86', source: image, summary, mappings, notes: listing.notes, translations: [] };
    let text: string[];
    if (o.infoTlb === true) text = listing.leaves.map(qemuInfoTlbLine);
    else {
      text = [`x86 ${listing.mode} paging: ${summaryLine(summary)}`, ...listing.notes.map((n) => `note: ${n}`)];
      text.push(o.tree === true ? listing.tree!.join('\n') : mappingTable(mappings, [['pkey', (m) => String(m.detail.pkey)]]));
    }
    return { output, text, problem: listing.truncated || listing.missingTables > 0 };
  }

  const quadrants = o.quadrants.split(',').map((q) => q.trim());
  if (o.arch === 'radix') {
    if (quadrants.some((q) => q !== '0' && q !== '3') || quadrants.length === 0) throw inputError(`--quadrants must list 0 and/or 3, got '${o.quadrants}'`);
    if (o.pate !== undefined && o.ptcr !== undefined)
      throw inputError('give either --pate (a virtual hypervisor supplies the entry) or --ptcr (the partition table is in the image), not both');
    const radix = await loadPpcRadix('hvmmu inspect --arch radix');
    const loaded = loadGuestImage(image, o.layout);
    const r = inspectRadix(radix, loaded.memory, image, {
      pate: o.pate ?? null,
      ptcr: o.ptcr ?? null,
      lpid: o.lpid,
      pid: o.pid,
      quadrants: [...new Set(quadrants.map((q) => Number(q) as 0 | 3))],
      maxLeaves: o.maxLeaves,
      tree: o.tree === true,
      msr: o.msr ?? DEFAULT_MSR,
      amr: o.amr ?? 0n,
      iamr: o.iamr ?? 0n,
      translate: o.translate,
    });
    const summary = { image: `${loaded.layout}, ${loaded.pages} pages`, pid: o.pid, ...r.summary };
    const output: InspectCommandOutput = { arch: 'radix', source: image, summary, mappings: r.mappings, notes: r.notes, translations: r.translations };
    const text = [`POWER radix: ${summaryLine(summary)}`, ...r.notes.map((n) => `note: ${n}`)];
    text.push(o.tree === true ? r.tree!.join('\n') : mappingTable(r.mappings, [['pid', (m) => String(m.detail.pid)]]));
    text.push(...translationLines(r.translations));
    return { output, text, problem: r.summary.truncated === true || (r.summary.badEntries as number) > 0 };
  }

  const ppc = await loadPpcHpt('hvmmu inspect --arch hpt');
  const slb = readSlb(o.slb, o.slbKey, o.slbe);
  if (slb.length === 0) throw inputError('--arch hpt needs the SLB: --slb FILE (JSON) or one --slbe ESID,VSID per entry');
  const loaded =
    o.sdr1 !== undefined
      ? { hpt: hptFromMemory(ppc, image, o.layout, o.sdr1), format: `memory image, SDR1 ${hex(o.sdr1)}` }
      : readHtabFile(ppc, image, {
          format: o.htabFormat,
          ...(o.order === undefined ? {} : { order: o.order }),
          bigEndianHeaders: o.bigEndianHeaders === true,
        });
  const r = inspectHpt(ppc, loaded.hpt, {
    slb,
    maxLeaves: o.maxLeaves,
    tree: o.tree === true,
    msr: o.msr ?? DEFAULT_MSR,
    amr: o.amr ?? 0n,
    iamr: o.iamr ?? 0n,
    translate: o.translate,
  });
  const summary = { format: loaded.format, ...r.summary };
  const output: InspectCommandOutput = { arch: 'hpt', source: image, summary, mappings: r.mappings, notes: r.notes, translations: r.translations };
  const text = [`POWER HPT: ${summaryLine(summary)}`, ...r.notes.map((n) => `note: ${n}`)];
  text.push(
    o.tree === true
      ? r.tree!.join('\n')
      : mappingTable(r.mappings, [
          ['index', (m) => hex(m.detail.index as number)],
          ['key', (m) => String(m.detail.key)],
        ]),
  );
  text.push(...translationLines(r.translations));
  return { output, text, problem: r.summary.truncated === true || (r.summary.withoutSegment as number) > 0 || (r.summary.foreignPageSize as number) > 0 };
}

/** The HPT SDR1 names (HTABORG bits 59:18, HTABSIZE bits 4:0; POWER ISA v2.07 Book III 5.7.7.1) out of a memory image. */
function hptFromMemory(ppc: PpcHptPackage, image: string, layout: ImageLayout, sdr1: bigint): HashPageTable {
  const htabSize = Number(sdr1 & 0x1fn);
  const order = 18 + htabSize;
  if (order > ppc.HPT_MAX_SUPPORTED_ORDER)
    throw inputError(`--sdr1 ${hex(sdr1)}: HTABSIZE ${htabSize} is a table of 2^${order} bytes, more than the 2^${ppc.HPT_MAX_SUPPORTED_ORDER} read here`);
  const org = sdr1 & 0x0fff_ffff_fffc_0000n & ~((1n << BigInt(order)) - 1n);
  const memory = loadGuestImage(image, layout).memory;
  const bytes = new Uint8Array(2 ** order);
  for (let at = 0; at < bytes.length; at += 4096) {
    const gpa = org + BigInt(at);
    const off = gpa > BigInt(Number.MAX_SAFE_INTEGER) ? -1 : memory.resolve(Number(gpa), false);
    if (off < 0 || off + 4096 > memory.view.byteLength) {
      throw inputError(
        `the HPT SDR1 ${hex(sdr1)} names (${hex(org)}, ${bytes.length} bytes) is not all in the memory image '${image}': ${hex(gpa)} is missing`,
      );
    }
    bytes.set(new Uint8Array(memory.view.buffer, memory.view.byteOffset + off, 4096), at);
  }
  return new ppc.HashPageTable(order, bytes);
}

function translationLines(list: readonly { ea: string; ra: string | null }[]): string[] {
  if (list.length === 0) return [];
  return ['', "translations (as QEMU's gva2gpa: a load, then a fetch, no fault):", ...list.map((t) => `  ${t.ea} -> ${t.ra ?? 'unmapped'}`)];
}
