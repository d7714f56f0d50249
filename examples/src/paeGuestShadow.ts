// A 32-bit PAE guest under x86 shadow paging. Shows what is special about
// PAE: the four PDPTEs are loaded into the CPU at MOV CR3 (SDM 4.4.1) and the
// shadow root is a *special* shadow page holding their shadows (after Lai
// Jiangshan's 2022 KVM series "KVM: X86/MMU: Use one-off special shadow page
// for special roots"; upstream KVM keeps a bare pae_root page instead), so
// a guest that rewrites a PDPTE in memory sees no change until it reloads CR3.
//
//   npm run build && node examples/dist/paeGuestShadow.js
import { Access, Hypervisor } from '@hvmmu/core';
import { GuestPageTables, x86ShadowBackend } from '@hvmmu/x86-shadow';
import { fileURLToPath } from 'node:url';

const MiB = 1 << 20;

export interface PaeExampleResult {
  /** Host address of va 0xC000_0000 before the PDPTE is rewritten. */
  readonly before: number;
  /** Same, after the guest rewrote PDPTE 3 in memory but before reloading CR3 (must be unchanged). */
  readonly staleUntilReload: number;
  /** After MOV CR3: the new PDPTE is in force. */
  readonly afterReload: number;
  /** Host frames backing the two guest pages, for comparison. */
  readonly frameA: number;
  readonly frameB: number;
  readonly specialShadowPages: number;
  readonly shadowPages: number;
  /** A PDPTE with reserved bits makes MOV CR3 fail (#GP) and changes nothing. */
  readonly badCr3Refused: boolean;
}

export function runPaeExample(): PaeExampleResult {
  const hv = new Hypervisor({ memoryBytes: 32 * MiB });
  const vm = hv.createVm({ backend: x86ShadowBackend, name: 'pae-guest' });
  vm.memslots.create({ id: 0, guestPhysAddr: 0, size: 16 * MiB });
  const mem = vm.memslots;

  // Two page directories for the top GiB, one mapping 0xC000_0000 to page A, the other to page B.
  const tables = new GuestPageTables(mem, 'pae', 1 * MiB, 2 * MiB);
  tables.map(0xc000_0000, 4 * MiB, { write: true, user: false });
  const alt = new GuestPageTables(mem, 'pae', 2 * MiB, 3 * MiB);
  alt.map(0xc000_0000, 5 * MiB, { write: true, user: false });
  mem.write32(4 * MiB, 0xaaaa_aaaa, true);
  mem.write32(5 * MiB, 0xbbbb_bbbb, true);

  const vcpu = vm.createVcpu();
  const x = vcpu.arch;
  if (!x.loadControlRegisters(tables.controlRegisters())) throw new Error('PAE control registers refused');
  const before = vcpu.translate(0xc000_0000, Access.READ);

  // The guest points PDPTE 3 at the other page directory, in memory only.
  const pdpte3 = tables.rootGpa + 3 * 8;
  mem.write64Halves(pdpte3, mem.read64Hi(alt.rootGpa + 24, true), mem.read64Lo(alt.rootGpa + 24, true), true);
  vcpu.tlb.flushAll(); // even without the TLB, the cached PDPTE still points at the old directory
  const staleUntilReload = vcpu.translate(0xc000_0000, Access.READ);
  x.setCr3(tables.rootGpa); // MOV CR3 reloads the PDPTEs
  const afterReload = vcpu.translate(0xc000_0000, Access.READ);

  const stats = vm.stats();
  // A PDPT whose entry 0 has reserved bit 1 (R/W is reserved in a PAE PDPTE).
  const bad = new GuestPageTables(mem, 'pae', 3 * MiB, 4 * MiB);
  mem.write64Halves(bad.rootGpa, 0, 0x6000 | 0x3, true);
  const badCr3Refused = !x.setCr3(bad.rootGpa) && vcpu.translate(0xc000_0000, Access.READ) === afterReload;

  return {
    before,
    staleUntilReload,
    afterReload,
    frameA: mem.gfnToHfn(mem.findByGfn(1024)!, 1024, false),
    frameB: mem.gfnToHfn(mem.findByGfn(1280)!, 1280, false),
    specialShadowPages: stats['specialShadowPages'] ?? 0,
    shadowPages: stats['shadowPages'] ?? 0,
    badCr3Refused,
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const r = runPaeExample();
  const hex = (n: number): string => '0x' + n.toString(16);
  console.log(`va 0xc0000000 → host ${hex(r.before)} (page A is host frame ${hex(r.frameA)})`);
  console.log(`guest rewrites PDPTE 3 in memory → still ${hex(r.staleUntilReload)}: the CPU uses the PDPTEs it loaded at MOV CR3`);
  console.log(`guest reloads CR3 → ${hex(r.afterReload)} (page B is host frame ${hex(r.frameB)})`);
  console.log(`shadow pages: ${r.shadowPages} ordinary + ${r.specialShadowPages} special (the PAE root: 4 PDPTE shadows, no gfn, not hashed)`);
  console.log(`MOV CR3 to a PDPT with a reserved bit set: ${r.badCr3Refused ? 'refused (#GP), nothing changed' : 'ACCEPTED (bug)'}`);
}
