import { describe, expect, it } from 'vitest';
import { AccessRig, allChains, allControls } from './accessHarness.js';

describe('exhaustive access table: PAE paging', () => {
  it('agrees with the ISA oracle for every PDE × PTE flag combination × access × WP/SMEP/SMAP/AC/NXE (CR4.PKE has no effect)', () => {
    const rig = new AccessRig('pae');
    const controls = allControls('pae');
    const chains = allChains('pae');
    // 2^5 control bits × (PKE off, PKE on with PKRU denying everything).
    expect(controls.length).toBe(64);
    // 16 table pointers × 2^7 PTEs + 240 other PDEs × 2 PTEs.
    expect(chains.length).toBe(16 * 128 + 240 * 2);
    const r = rig.run(controls, chains, { flags: [], accessed: false });
    expect(r.mismatches).toEqual([]);
    expect(r.cases).toBe(64 * (16 * 128 + 240 * 2) * 9);
    expect(r.cases - r.faults).toBeGreaterThan(10_000);
  });
});
