#!/usr/bin/env node
// The hvmmu command (see HvmmuProgram.ts for its commands and exit codes).
import { run } from './HvmmuProgram.js';

// A reader that stops early (`hvmmu demo | head`, `| grep -q`) closes the pipe:
// the rest of the output has nowhere to go, which is not an error of the command.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw error;
  });
}

process.exitCode = await run(process.argv.slice(2));
