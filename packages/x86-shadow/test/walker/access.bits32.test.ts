import { describe, expect, it } from 'vitest';
import { AccessRig, allChains, allControls } from './accessHarness.js';

describe('exhaustive access table: 32-bit paging', () => {
  it('agrees with the ISA oracle for every PDE × PTE flag combination × access × WP/SMEP/SMAP/AC/NXE/PSE (CR4.PKE has no effect)', () => {
    const rig = new AccessRig('bits32');
    const controls = allControls('bits32');
    const chains = allChains('bits32');
    // 2^5 control bits × CR4.PSE × (PKE off, PKE on with PKRU denying everything).
    expect(controls.length).toBe(128);
    // 8 table pointers × 2^5 PTEs + 120 other PDEs × 2 PTEs + 8 PS-with-PSE-off pointers × 2^5 PTEs.
    expect(chains.length).toBe(8 * 32 + 120 * 2 + 8 * 32);
    const r = rig.run(controls, chains, { flags: [], accessed: false });
    expect(r.mismatches).toEqual([]);
    expect(r.cases).toBe(128 * (8 * 32 + 120 * 2 + 8 * 32) * 9);
    expect(r.cases - r.faults).toBeGreaterThan(10_000);
  });
});
