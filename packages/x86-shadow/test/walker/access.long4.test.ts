import { describe, expect, it } from 'vitest';
import { AccessRig, allChains, allControls, allUpperFlags, entry, permissiveUpper } from './accessHarness.js';

// kvm-unit-tests x86/access.c style: the walker against an oracle written
// from the ISA rules (accessOracle.ts), over every combination.
describe('exhaustive access table: 4-level paging', () => {
  it('agrees with the ISA oracle for every PDE × PTE flag combination × access × WP/SMEP/SMAP/AC/NXE/PKE', () => {
    const rig = new AccessRig('long4');
    const controls = allControls('long4');
    const chains = allChains('long4');
    // 2^5 control bits × 5 key set-ups; 16 table pointers × 2^8 PTEs + 496 other PDEs × 2 PTEs.
    expect(controls.length).toBe(160);
    expect(chains.length).toBe(16 * 256 + 496 * 2);
    const r = rig.run(controls, chains, { flags: permissiveUpper('long4'), accessed: false });
    expect(r.mismatches).toEqual([]);
    expect(r.cases).toBe(160 * (16 * 256 + 496 * 2) * 9);
    // Both outcomes are well represented.
    expect(r.cases - r.faults).toBeGreaterThan(100_000);
    expect(r.faults).toBeGreaterThan(100_000);
  });

  it('ANDs R/W and U/S and ORs XD over the PML4E and PDPTE too, and sets their A bits only on success', () => {
    const rig = new AccessRig('long4');
    const controls = allControls('long4').filter((c) => !c.ac && !c.pke);
    const chains = [];
    for (let b = 0; b < 8; b++) {
      for (let t = 0; t < 16; t++) {
        const pde = entry({ present: true, writable: (b & 1) !== 0, user: (b & 2) !== 0, noExecute: (b & 4) !== 0 });
        const pte = entry({ present: true, writable: (t & 1) !== 0, user: (t & 2) !== 0, noExecute: (t & 4) !== 0, dirty: (t & 8) !== 0 });
        chains.push({ pde, pte });
      }
    }
    let cases = 0;
    for (const upper of allUpperFlags(2)) {
      const r = rig.run(controls, chains, { flags: upper, accessed: false });
      expect(r.mismatches).toEqual([]);
      cases += r.cases;
    }
    expect(cases).toBe(64 * 16 * 128 * 9);
  });

  it('agrees again with A already set in the upper entries (walks that need no A/D update: the fast path)', () => {
    const rig = new AccessRig('long4');
    const r = rig.run(allControls('long4'), allChains('long4'), { flags: permissiveUpper('long4'), accessed: true });
    expect(r.mismatches).toEqual([]);
    expect(r.cases).toBe(160 * (16 * 256 + 496 * 2) * 9);
  });

  it('gives the same results when guest memory is reached through resolve (a VM, not a flat image)', () => {
    const rig = new AccessRig('long4', true);
    const controls = allControls('long4').filter((c) => !c.ac && (c.pke ? c.key1WriteDisable && !c.key1AccessDisable : true));
    const r = rig.run(controls, allChains('long4'), { flags: permissiveUpper('long4'), accessed: false });
    expect(r.mismatches).toEqual([]);
    expect(r.cases).toBe(controls.length * (16 * 256 + 496 * 2) * 9);
  });
});
