#!/usr/bin/env node
// The hvmmu command (see HvmmuProgram.ts for its commands and exit codes).
import { run } from './HvmmuProgram.js';

process.exitCode = run(process.argv.slice(2));
