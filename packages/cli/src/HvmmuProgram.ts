// The hvmmu command's program. `hvmmu` alone (what `npm start` runs) is the demo on its
// default workload. Arguments are parsed by commander: per-command --help,
// --opt value and --opt=value, unknown options and missing values refused
// with the command's usage.
//
// Exit codes: 0 done; 1 the work found a problem; 2 bad usage or bad input
// (an unknown option, a missing or malformed value, an unreadable file).
import '@hvmmu/core';
import { createRequire } from 'node:module';
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { HvmmuError, type HvmmuErrorCode } from '@hvmmu/core';
import { INSPECT_DESCRIPTION, parseNumber, runInspectImage } from './commands/InspectImageCommand.js';
import { RUN_DESCRIPTION, runRunCommand, type RunCommandOptions } from './commands/RunCommand.js';
import { registerInspectCommand } from './commands/InspectCommand.js';
import { registerHtabCommand } from './commands/HtabCommand.js';
import { WorkloadInputError } from './workloads/WorkloadInputError.js';
import { DEMO_DESCRIPTION, DEMO_WORKLOAD, runDemoCommand } from './commands/DemoCommand.js';

export const EXIT = { OK: 0, PROBLEM: 1, USAGE: 2 } as const;

/** Errors of the host API that a bad command-line value causes: bad usage (exit 2), not a crash. */
const USAGE_ERRORS: ReadonlySet<HvmmuErrorCode> = new Set<HvmmuErrorCode>([
  'BAD_ARGUMENT',
  'BACKEND_BAD_OPTION',
  'BACKEND_UNKNOWN_OPTION',
  'TLB_BAD_SIZE',
  'HOST_BAD_SIZE',
]);

const { version } = createRequire(import.meta.url)('../package.json') as { version: string };

/** A commander value parser from parseNumber: a bad value becomes commander's usage error. */
function numberOption(name: string): (text: string) => number {
  return (text) => {
    try {
      return parseNumber(name, text);
    } catch (error) {
      throw new InvalidArgumentError(error instanceof Error ? error.message : String(error));
    }
  };
}

/** The program; an action that has an exit code of its own (`run`) leaves it in `exit.code`. */
export function buildProgram(write: ProgramOutput, exit: { code: number } = { code: EXIT.OK }): Command {
  const program = new Command('hvmmu')
    .description('the hvmmu command: run and compare MMU workloads, inspect page tables in memory images')
    .version(version, '-V, --version', 'print the version')
    .configureOutput({ writeOut: write.out, writeErr: write.err })
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();

  program
    .command('demo', { isDefault: true })
    .description(DEMO_DESCRIPTION)
    .option('--workload <name>', `a built-in workload (default ${DEMO_WORKLOAD})`)
    .option('--json', 'print the comparison as JSON (schema hvmmu-demo/1)')
    .option('--report <file>', 'also write an HTML page with charts comparing the backends (docs/cli.md, "The report")')
    .action(async (o: { workload?: string; json?: boolean; report?: string }) => {
      await runDemoCommand(
        { ...(o.workload === undefined ? {} : { workload: o.workload }), ...(o.report === undefined ? {} : { report: o.report }), json: o.json === true },
        write.out,
      );
    });

  program
    .command('inspect-image')
    .description(INSPECT_DESCRIPTION)
    .argument('<image>', 'raw guest-physical memory image (gpa 0 at offset 0)')
    .requiredOption('--cr0 <value>', 'CR0 (0x… accepted)', numberOption('--cr0'))
    .requiredOption('--cr3 <value>', 'CR3', numberOption('--cr3'))
    .requiredOption('--cr4 <value>', 'CR4', numberOption('--cr4'))
    .requiredOption('--efer <value>', 'IA32_EFER (LMA is derived from LME and CR0.PG)', numberOption('--efer'))
    .option('--maxphyaddr <bits>', 'MAXPHYADDR', numberOption('--maxphyaddr'), 40)
    .option('--max-runs <n>', 'stop after this many runs', numberOption('--max-runs'), 100_000)
    .action((image: string, o: { cr0: number; cr3: number; cr4: number; efer: number; maxphyaddr: number; maxRuns: number }) => {
      const lines = runInspectImage(image, { cr0: o.cr0, cr3: o.cr3, cr4: o.cr4, efer: o.efer, maxPhyAddr: o.maxphyaddr, maxRuns: o.maxRuns });
      for (const line of lines) write.out(`${line}\n`);
    });

  program
    .command('run')
    .description(RUN_DESCRIPTION)
    .requiredOption('--backend <id>', 'the backend: x86-shadow, ppc-radix or ppc-hpt')
    .option('--workload <name|file>', 'a built-in workload (NAME or NAME:key=value,…) or a JSON workload file')
    .option('--trace <file>', 'a Valgrind Lackey trace (plain or gzipped) to replay, mapping pages on first touch')
    .option('--json', 'print the result as JSON (docs/workloads.md, "The result")')
    .option('--memslot-invalidation <name>', "the backend's memslot-invalidation strategy (e.g. invalid-rmap, fast-zap)")
    .option('--max-pages <n>', 'distinct pages a trace may touch (default 262144)', numberOption('--max-pages'))
    .option('--memory-mib <n>', 'host memory in MiB (default 512)', numberOption('--memory-mib'))
    .option('--tlb-entries <n>', 'TLB entries per vCPU, a power of two (default 1024)', numberOption('--tlb-entries'))
    .option('--report <file>', 'also write an HTML page with charts of the run (docs/cli.md, "The report")')
    .action(async (o: RunCommandOptions) => {
      exit.code = await runRunCommand(o, write.out);
    });

  registerInspectCommand(program, write, exit);
  registerHtabCommand(program, write, exit);

  return program;
}

/** Where the program writes: standard output and standard error by default. */
export interface ProgramOutput {
  out(s: string): void;
  err(s: string): void;
}

const STDIO: ProgramOutput = {
  out: (s) => {
    process.stdout.write(s);
  },
  err: (s) => {
    process.stderr.write(s);
  },
};

/** Run the command line `argv` (without node and the script); resolves to the exit code. */
export async function run(argv: readonly string[], write: ProgramOutput = STDIO): Promise<number> {
  const exit: { code: number } = { code: EXIT.OK };
  const program = buildProgram(write, exit);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return exit.code;
  } catch (error) {
    if (error instanceof CommanderError) {
      // --help and --version end in a CommanderError too, with exit code 0.
      return error.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
    }
    if (error instanceof HvmmuError && USAGE_ERRORS.has(error.code)) {
      write.err(`hvmmu: ${error.message}\n`);
      return EXIT.USAGE;
    }
    if (error instanceof WorkloadInputError) {
      write.err(`hvmmu: ${error.message}\n`);
      return EXIT.USAGE;
    }
    throw error;
  }
}
