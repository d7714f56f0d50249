// `hvmmu htab save | load | diff`: a guest's hashed page table as KVM's HTAB stream
// (KVM_PPC_GET_HTAB_FD records), QEMU's spapr/htab migration section or a raw image (docs/cli.md).
import { writeFileSync } from 'node:fs';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { inputError } from '../inspect/InspectInput.js';
import { loadPpcHpt } from '../inspect/PpcPackages.js';
import { buildDemoHpt } from '../htab/DemoHptGuest.js';
import { type IntoVmResult, loadIntoVm } from '../htab/HtabIntoVm.js';
import { parseHtabFormat, readHtabFile, type HtabFormat, type HtabReadOptions, type LoadedHtab } from '../htab/HtabTableInput.js';
import { diffHtabs, validCount, writeHtab, type HtabDifference } from '../htab/HtabStreams.js';

const FORMATS_TEXT = `Formats: image (2^order bytes of big-endian HPTEs, the guest view), kvm (the records
KVM_PPC_GET_HTAB_FD returns: u32 index, u16 n_valid, u16 n_invalid in the host's byte
order — little-endian unless --big-endian-headers — then n_valid HPTEs), qemu (the
spapr/htab section of a QEMU migration stream: START, PART/END records). Input files
may be gzipped; their format is recognised unless --htab-format says it.`;

interface ReadFlags {
  htabFormat: HtabFormat | 'auto';
  order?: number;
  bigEndianHeaders?: boolean;
}

/** What `hvmmu htab load --json` prints. */
export interface HtabLoadOutput {
  readonly file: string;
  readonly format: HtabFormat;
  readonly order: number;
  readonly entries: number;
  readonly valid: number;
  /** Records (KVM) or section records (QEMU) read; 0 for an image. */
  readonly records: number;
  /** HPTEs the stream carried (valid ones; an image: every entry). */
  readonly entriesCarried: number;
  readonly out: string | null;
  /** --into-vm: the table loaded into a VM on ppcHptBackend, or null. */
  readonly vm: IntoVmResult | null;
}

/** What `hvmmu htab diff --json` prints. */
export interface HtabDiffOutput {
  readonly a: { readonly file: string; readonly format: HtabFormat; readonly order: number; readonly valid: number };
  readonly b: { readonly file: string; readonly format: HtabFormat; readonly order: number; readonly valid: number };
  readonly equal: boolean;
  /** Entries that differ (all of them, however many are listed). */
  readonly count: number;
  readonly differences: readonly HtabDifference[];
}

function integer(name: string, min: number, max: number): (text: string) => number {
  return (text) => {
    const v = Number(text.replace(/_/g, ''));
    if (text.trim() === '' || !Number.isSafeInteger(v) || v < min || v > max)
      throw new InvalidArgumentError(`${name} must be an integer ${min}..${max}, got '${text}'`);
    return v;
  };
}

function formatOption(): (text: string) => HtabFormat | 'auto' {
  return (t) => {
    try {
      return parseHtabFormat(t, '--htab-format');
    } catch (error) {
      throw new InvalidArgumentError((error as Error).message);
    }
  };
}

function withReadOptions(cmd: Command): Command {
  return cmd
    .option('--htab-format <format>', 'input format: auto, image, kvm or qemu', formatOption(), 'auto' as const)
    .option('--order <n>', "a KVM stream's table order (default: the smallest from 18 holding its indexes)", integer('--order', 18, 31))
    .option('--big-endian-headers', "a KVM stream's record headers are big-endian (a big-endian host)");
}

function readOptions(o: ReadFlags): HtabReadOptions {
  return { format: o.htabFormat, ...(o.order === undefined ? {} : { order: o.order }), bigEndianHeaders: o.bigEndianHeaders === true };
}

function writeOutput(file: string, bytes: Uint8Array): void {
  try {
    writeFileSync(file, bytes);
  } catch (error) {
    throw inputError(`cannot write '${file}': ${(error as Error).message}`);
  }
}

export function registerHtabCommand(program: Command, write: { out(s: string): void }, exit: { code: number }): void {
  const htab = program
    .command('htab')
    .description(`save, load and compare hashed page tables (POWER HPT) in KVM's and QEMU's stream formats\n\n${FORMATS_TEXT}`);

  withReadOptions(
    htab
      .command('save')
      .description(
        `write a table to FILE in a stream format: from --from FILE (any format) or from --demo, a VM on
ppcHptBackend whose guest maps a few hundred pages through H_ENTER (the stream is read from
the VM as KVM_PPC_GET_HTAB_FD reads it). Exit codes: 0 written; 2 bad usage or input.\n\n${FORMATS_TEXT}`,
      )
      .argument('<file>', 'the file to write')
      .addOption(new Option('--format <format>', 'output format').choices(['kvm', 'qemu', 'image']).makeOptionMandatory())
      .option('--from <file>', 'the table to save (image, KVM stream or QEMU section)')
      .option('--demo', "save the built-in demo guest's table")
      .option('--demo-pages <n>', 'pages the demo guest maps (default 300)', integer('--demo-pages', 1, 4096), 300)
      .option('--demo-order <n>', "the demo VM's HPT order (default 18)", integer('--demo-order', 18, 24), 18)
      .option('--section-id <n>', 'qemu: the section id (default 0x23b)', integer('--section-id', 0, 0xffff_ffff))
      .option(
        '--first-iteration <n>',
        'qemu: end a first PART record after this many HPTEs (default: START then END)',
        integer('--first-iteration', 1, 2 ** 31),
      )
      .option('--out-big-endian-headers', 'kvm output: write record headers big-endian')
      .option('--json', 'print what was written as JSON'),
  ).action(
    async (
      file: string,
      o: ReadFlags & {
        format: HtabFormat;
        from?: string;
        demo?: boolean;
        demoPages: number;
        demoOrder: number;
        sectionId?: number;
        firstIteration?: number;
        outBigEndianHeaders?: boolean;
        json?: boolean;
      },
    ) => {
      if ((o.from === undefined) === (o.demo !== true)) throw inputError('hvmmu htab save: give exactly one of --from FILE or --demo');
      const ppc = await loadPpcHpt('hvmmu htab');
      let source: { hpt: import('@hvmmu/ppc-hpt').HashPageTable; store: import('@hvmmu/ppc-hpt').HtabStore; what: string };
      if (o.from !== undefined) {
        const loaded = readHtabFile(ppc, o.from, readOptions(o));
        source = { hpt: loaded.hpt, store: new ppc.HashPageTableStore(loaded.hpt), what: `${o.from} (${loaded.format})` };
      } else {
        const demo = buildDemoHpt(ppc, o.demoPages, o.demoOrder);
        source = { hpt: demo.hpt, store: demo.store, what: `demo guest (${demo.mapped} pages mapped)` };
      }
      const bytes = writeHtab(ppc, source.hpt, source.store, o.format, {
        bigEndianHeaders: o.outBigEndianHeaders === true,
        ...(o.sectionId === undefined ? {} : { sectionId: o.sectionId }),
        ...(o.firstIteration === undefined ? {} : { firstIteration: o.firstIteration }),
      });
      writeOutput(file, bytes);
      const result = { file, format: o.format, from: source.what, order: source.hpt.order, valid: validCount(source.hpt), bytes: bytes.length };
      if (o.json === true) write.out(`${JSON.stringify(result, null, 2)}\n`);
      else write.out(`wrote ${file}: ${o.format}, ${bytes.length} bytes, order ${result.order}, ${result.valid} valid HPTEs (from ${source.what})\n`);
      exit.code = 0;
    },
  );

  withReadOptions(
    htab
      .command('load')
      .description(
        `read a table from FILE (an HTAB stream in KVM's or QEMU's format, or an image) and report its order,
entries and valid entries; --out writes the table as a raw image. Exit codes: 0 loaded; 2 bad usage
or input (a malformed stream is refused, naming the byte).\n\n${FORMATS_TEXT}`,
      )
      .argument('<file>', 'the stream or image to read')
      .option('--out <file>', 'write the loaded table as a raw image (2^order bytes)')
      .option('--into-vm', 'also load it into a VM on ppcHptBackend through its HTAB store (every entry through H_ENTER)')
      .option(
        '--vm-memory-mib <n>',
        "the VM's memslot at guest physical 0, in MiB (default 64; 0: no memslot, every page MMIO)",
        integer('--vm-memory-mib', 0, 1024),
        64,
      )
      .option('--json', 'print the result as JSON (docs/cli.md, "hvmmu htab")'),
  ).action(async (file: string, o: ReadFlags & { out?: string; json?: boolean; intoVm?: boolean; vmMemoryMib: number }) => {
    const ppc = await loadPpcHpt('hvmmu htab');
    const loaded = readHtabFile(ppc, file, readOptions(o));
    if (o.out !== undefined) writeOutput(o.out, loaded.hpt.bytes);
    const vm = o.intoVm === true ? loadIntoVm(ppc, loaded.hpt, file, o.vmMemoryMib) : null;
    const result: HtabLoadOutput = {
      file,
      format: loaded.format,
      order: loaded.hpt.order,
      entries: loaded.hpt.entries,
      valid: validCount(loaded.hpt),
      records: loaded.records,
      entriesCarried: loaded.entriesCarried,
      out: o.out ?? null,
      vm,
    };
    if (o.json === true) write.out(`${JSON.stringify(result, null, 2)}\n`);
    else {
      write.out(
        `${file}: ${result.format}, order ${result.order} (${result.entries.toLocaleString('en-US')} entries), ${result.valid.toLocaleString('en-US')} valid` +
          (result.format === 'image' ? '' : `; ${result.records} records carrying ${result.entriesCarried} HPTEs`) +
          (o.out === undefined ? '' : `; table written to ${o.out}`) +
          '\n',
      );
      if (vm !== null) {
        write.out(
          `loaded into a VM on ppcHptBackend (memslot ${vm.memslotMib} MiB): ${vm.streamBytes} bytes of KVM records, ${vm.valid} valid in its guest view, ` +
            (vm.differing === 0 ? 'identical to the table\n' : `${vm.differing} entries differ from the table\n`),
        );
      }
    }
    exit.code = vm !== null && vm.differing > 0 ? 1 : 0;
  });

  withReadOptions(
    htab
      .command('diff')
      .description(
        `compare two tables, each in any format, entry by entry in the guest view (an invalid entry is
just invalid; a valid one is its two doublewords) and list the entries that differ by index.
Exit codes: 0 equal; 1 they differ (or their orders do); 2 bad usage or input.\n\n${FORMATS_TEXT}`,
      )
      .argument('<a>', 'the first table')
      .argument('<b>', 'the second table')
      .option('--max-list <n>', 'list at most this many differences (all are counted)', integer('--max-list', 0, 2 ** 31), 1000)
      .option('--json', 'print the result as JSON (docs/cli.md, "hvmmu htab")'),
  ).action(async (a: string, b: string, o: ReadFlags & { maxList: number; json?: boolean }) => {
    const ppc = await loadPpcHpt('hvmmu htab');
    const ta: LoadedHtab = readHtabFile(ppc, a, readOptions(o));
    const tb: LoadedHtab = readHtabFile(ppc, b, readOptions(o));
    const { differences, count } = diffHtabs(ta.hpt, tb.hpt, o.maxList);
    const sameOrder = ta.hpt.order === tb.hpt.order;
    const result: HtabDiffOutput = {
      a: { file: a, format: ta.format, order: ta.hpt.order, valid: validCount(ta.hpt) },
      b: { file: b, format: tb.format, order: tb.hpt.order, valid: validCount(tb.hpt) },
      equal: sameOrder && count === 0,
      count,
      differences,
    };
    exit.code = result.equal ? 0 : 1;
    if (o.json === true) {
      write.out(`${JSON.stringify(result, null, 2)}\n`);
      return;
    }
    write.out(`A ${a}: ${ta.format}, order ${ta.hpt.order}, ${result.a.valid} valid\nB ${b}: ${tb.format}, order ${tb.hpt.order}, ${result.b.valid} valid\n`);
    if (!sameOrder) write.out(`the orders differ (${ta.hpt.order} vs ${tb.hpt.order}): entries compared up to the smaller table's end\n`);
    if (count === 0) {
      write.out(sameOrder ? 'equal: every entry is the same in the guest view\n' : 'no entry differs within the smaller table\n');
      return;
    }
    write.out(`${count} entries differ${differences.length < count ? ` (first ${differences.length} listed)` : ''}:\n`);
    const w = (x: { dword0: string; dword1: string } | null): string => (x === null ? 'invalid'.padEnd(37) : `${x.dword0} ${x.dword1}`);
    for (const d of differences) write.out(`  ${`0x${d.index.toString(16)}`.padEnd(10)} ${d.kind.padEnd(7)} A ${w(d.a)}  B ${w(d.b)}\n`);
  });
}
