import { describe, expect, it } from 'vitest';
import { AccessRig, allChains, allControls, allUpperFlags, entry, permissiveUpper } from './accessHarness.js';

// kvm-unit-tests x86/access.c style: the walker against an oracle written
// from the ISA rules (accessOracle.ts), over every combination.
describe('exhaustive access table: 5-level paging', () => {
  it('agrees with the ISA oracle for every PDE × PTE flag combination × access × WP/SMEP/SMAP/AC/NXE/PKE', () => {
    const rig = new AccessRig('long5');
    const controls = allControls('long5');
    const chains = allChains('long5');
    // 2^5 control bits × 5 key set-ups; 16 table pointers × 2^8 PTEs + 496 other PDEs × 2 PTEs.
    expect(controls.length).toBe(160);
    expect(chains.length).toBe(16 * 256 + 496 * 2);
    const r = rig.run(controls, chains, { flags: permissiveUpper('long5'), accessed: false });
    expect(r.mismatches).toEqual([]);
    expect(r.cases).toBe(160 * (16 * 256 + 496 * 2) * 9);
    // Both outcomes are well represented.
    expect(r.cases - r.faults).toBeGreaterThan(100_000);
    expect(r.faults).toBeGreaterThan(100_000);
  });

  it('ANDs R/W and U/S and ORs XD over the PML5E, PML4E and PDPTE too, and sets their A bits only on success', () => {
    const rig = new AccessRig('long5');
    const controls = allControls('long5').filter((c) => !c.ac && !c.pke);
    const chains = [];
    for (let b = 0; b < 2; b++) {
      for (let t = 0; t < 16; t++) {
        const pde = entry({ present: true, writable: true, user: (b & 1) !== 0 });
        const pte = entry({ present: true, writable: (t & 1) !== 0, user: (t & 2) !== 0, noExecute: (t & 4) !== 0, dirty: (t & 8) !== 0 });
        chains.push({ pde, pte });
      }
    }
    let cases = 0;
    for (const upper of allUpperFlags(3)) {
      const r = rig.run(controls, chains, { flags: upper, accessed: false });
      expect(r.mismatches).toEqual([]);
      cases += r.cases;
    }
    expect(cases).toBe(512 * 16 * 32 * 9);
  });

  it('agrees again with A already set in the upper entries (walks that need no A/D update: the fast path)', () => {
    const rig = new AccessRig('long5');
    const r = rig.run(allControls('long5'), allChains('long5'), { flags: permissiveUpper('long5'), accessed: true });
    expect(r.mismatches).toEqual([]);
    expect(r.cases).toBe(160 * (16 * 256 + 496 * 2) * 9);
  });
});
