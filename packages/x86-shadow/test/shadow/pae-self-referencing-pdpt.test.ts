import { describe, expect, it } from 'vitest';
import { X86ShadowMmu } from '@hvmmu/x86-shadow/internal';
import { A, P, TableBuilder, W, controlsFor, makeVm } from './helpers/guest.js';
import { checkInvariants } from './helpers/invariants.js';

/*
 * The property test's PAE counterexample (seed 1414457103), reduced: PDPTE 0
 * points back at the PDPT, so the PDPT page is also the page directory of
 * the first GiB and its entry 2 — PDPTE 2 — is also a PDE. A walk through
 * that PDE sets its A bit (SDM 4.8), and A is bit 5, reserved in a PDPTE
 * (SDM 4.4.1): from then on every PDPTE load of this PDPT raises #GP. The
 * guest's MOV to CR3 after editing a PTE therefore invalidates nothing; its
 * INVLPG must.
 */

const VA = 0x0040_1000; // PDPTE 0 → PD = the PDPT page, PDE 2 = PDPTE 2 → PT, PTE 1
const WINDOW = 0xc000_0000; // PDPTE 3: the guest's writable mapping of the PT
const OLD_DATA = 0x20_0000;
const NEW_DATA = 0x20_1000;

function selfReferencingPdptGuest() {
  const t = makeVm({ backendOptions: { memslotInvalidation: 'fast-zap', hostRootLevel: 3 } });
  const b = new TableBuilder(t.mem, 'pae', 0x10_0000);
  const pdpt = b.root();
  const pt = b.page();
  b.map4k(pdpt, WINDOW, pt, P | W);
  b.write(pdpt, pdpt | P); // PDPTE 0: the PDPT itself
  b.write(pdpt + 2 * 8, pt | P); // PDPTE 2, read as PDE 2 of the first GiB
  b.write(pt + 1 * 8, OLD_DATA | P | W);
  t.mem.write32(OLD_DATA, 0x1111, true);
  t.mem.write32(NEW_DATA, 0x2222, true);
  expect(t.x.loadControlRegisters(controlsFor('pae', pdpt))).toBe(true);
  return { ...t, b, pdpt, pt };
}

describe('PAE guest whose PDPT is also one of its page directories', () => {
  it('a rewritten PTE followed by INVLPG maps the new page although the MOV to CR3 was refused', () => {
    const t = selfReferencingPdptGuest();
    const { b, pdpt, pt, x } = t;
    const cachedLo = [...x.regs.pdpteLo];
    expect([cachedLo[0], cachedLo[1], cachedLo[2]]).toEqual([pdpt | P, 0, pt | P]);
    expect(x.read(VA, 4)).toBe(true);
    expect(x.readLo).toBe(0x1111);
    // The walk set A in the PDE it used: PDPTE 2 in memory now has a reserved bit.
    expect(b.read(pdpt + 2 * 8).lo).toBe(pt | P | A);

    // The guest points PTE 1 at another page through its own mapping of the PT...
    expect(x.write(WINDOW + 1 * 8, 8, NEW_DATA | P | W, 0)).toBe(true);
    expect(b.read(pt + 1 * 8).lo).toBe(NEW_DATA | P | W);
    // ...and reloads CR3, which raises #GP and changes nothing (SDM 4.4.1)...
    expect(x.setCr3(pdpt)).toBe(false);
    expect(x.regs.cr3).toBe(pdpt);
    expect([...x.regs.pdpteLo]).toEqual(cachedLo);
    // ...so it invalidates the page with INVLPG.
    x.invlpg(VA);

    expect(x.read(VA, 4)).toBe(true);
    expect(x.readLo).toBe(0x2222);
    const mmu = t.vm.mmu as X86ShadowMmu;
    const e = mmu.findLeaf(x, VA / 4096);
    expect(e).toBeGreaterThanOrEqual(0);
    expect(mmu.pages.getGfn(Math.floor(e / 512), e % 512)).toBe(NEW_DATA / 4096);
    expect(checkInvariants(t.vm)).toEqual([]);
  });

  it('turning PAE paging back on is refused (#GP) once a PDPTE picked up A, and paging stays off', () => {
    const t = selfReferencingPdptGuest();
    const { b, pdpt, pt, x } = t;
    expect(x.read(VA, 4)).toBe(true);
    expect(b.read(pdpt + 2 * 8).lo).toBe(pt | P | A);
    const on = controlsFor('pae', pdpt);
    expect(x.loadControlRegisters({ ...on, cr0: (on.cr0 & ~0x8000_0000) >>> 0 })).toBe(true);
    expect(x.loadControlRegisters(on)).toBe(false);
    expect(x.regs.cr0 & 0x8000_0000).toBe(0);
    // Paging off: the virtual address is the physical one.
    expect(x.read(OLD_DATA, 4)).toBe(true);
    expect(x.readLo).toBe(0x1111);
    expect(checkInvariants(t.vm)).toEqual([]);
  });
});
