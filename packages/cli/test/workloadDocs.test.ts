import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { x86ShadowBackend } from '@hvmmu/x86-shadow';
import { checkExpectation } from '../src/workloads/ExpectationCheck.js';
import { parseWorkload } from '../src/workloads/WorkloadParser.js';
import { runWorkload } from '../src/workloads/WorkloadRunner.js';
import { ppcRadixBackend } from '@hvmmu/ppc-radix';
import type { BackendModule, BackendTypes } from '@hvmmu/core';

const DOC = fileURLToPath(new URL('../../../docs/workloads.md', import.meta.url));

describe('docs/workloads.md', () => {
  it('every JSON example is a valid workload, and runs on x86 shadow paging (POWER radix for nested ones) as its "expect" block says', () => {
    const blocks = [...readFileSync(DOC, 'utf8').matchAll(/```json\n([\s\S]*?)```/g)].map((m) => m[1]!);
    expect(blocks.length).toBeGreaterThanOrEqual(4);
    for (const block of blocks) {
      const workload = parseWorkload(JSON.parse(block), 'docs/workloads.md');
      // A workload that enters nested guests runs on the backend whose guest side nests (POWER radix).
      const nests = workload.operations.some((op) => op.op === 'enterNested');
      const backend = (nests ? ppcRadixBackend : x86ShadowBackend) as unknown as BackendModule<BackendTypes>;
      const result = runWorkload(backend, workload, { memoryBytes: 32 << 20 });
      expect(checkExpectation(result, workload.expect), workload.name).toEqual([]);
    }
  });
});
