#!/usr/bin/env node
// The hvmmu command. `hvmmu` alone (what `npm start` runs) is the demo on its
// default workload.
import '@hvmmu/core';
import { runCoreDemo } from './workloads/CoreDemoWorkload.js';
import { runX86ShadowDemo } from './workloads/X86ShadowDemoWorkload.js';
import { HvmmuError } from '@hvmmu/core';
import { INSPECT_USAGE, runInspectImage } from './commands/InspectImageCommand.js';

const USAGE = `usage: hvmmu [command]

commands:
  demo            (default) run the built-in workloads and print what happened
  inspect-image   list the mappings of x86 page tables in a raw memory image
  help            this text

${INSPECT_USAGE}
`;

function main(argv: readonly string[]): number {
  const command = argv[0] ?? 'demo';
  switch (command) {
    case 'demo': {
      console.log('hvmmu demo\n');
      console.log('== core on the minimal reference backend (identity-mapped guest)');
      for (const line of runCoreDemo().lines) console.log(line);
      console.log('\n== x86 shadow paging (@hvmmu/x86-shadow)');
      for (const line of runX86ShadowDemo().lines) console.log(line);
      return 0;
    }
    case 'inspect-image': {
      try {
        for (const line of runInspectImage(argv.slice(1))) console.log(line);
        return 0;
      } catch (error) {
        if (error instanceof HvmmuError || (error instanceof Error && 'code' in error)) {
          process.stderr.write(`hvmmu inspect-image: ${error.message}\n`);
          return 2;
        }
        throw error;
      }
    }
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return 0;
    default:
      process.stderr.write(`hvmmu: unknown command '${command}'\n${USAGE}`);
      return 2;
  }
}

process.exitCode = main(process.argv.slice(2));
