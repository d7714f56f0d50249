import type { GuestMemory } from '@hvmmu/core';
import { PDPTE_RESERVED_LO, checkMaxPhyAddr, pdpteReservedHi } from './PagingContext.js';
import type { X86Registers } from './X86Registers.js';

const PTE_P = 1;
const scratchLo = new Uint32Array(4);
const scratchHi = new Uint32Array(4);

/**
 * PAE PDPTE load, as a MOV to CR3 (or a CR0/CR4 write entering PAE paging)
 * performs it (SDM 4.4.1, KVM x86.c `load_pdptrs`): read the four PDPTEs at
 * CR3 bits 31:5 and cache them in `regs.pdpteHi/Lo`, where walks take them
 * from. Returns false — the MOV raises #GP and `regs` is left unchanged —
 * if a present PDPTE has a reserved bit set (1..2, 5..8, MAXPHYADDR..63) or
 * the PDPT is not in guest memory (KVM's load_pdptrs fails then too; the SDM
 * has no such case). Never writes guest memory.
 */
export function loadPdptes(regs: X86Registers, mem: GuestMemory): boolean {
  checkMaxPhyAddr(regs.maxPhyAddr);
  const pdptGpa = (regs.cr3 & 0xffffffe0) >>> 0;
  // 32-byte aligned, so the four entries never cross a page.
  const off = mem.resolve(pdptGpa, false);
  const view = mem.view;
  if (off < 0 || off > view.byteLength - 32) return false;
  const rsvdHi = pdpteReservedHi(regs.maxPhyAddr);
  for (let i = 0; i < 4; i++) {
    const lo = view.getUint32(off + i * 8, true);
    const hi = view.getUint32(off + i * 8 + 4, true);
    // Reserved bits of a not-present PDPTE are ignored (SDM 4.4.1).
    if ((lo & PTE_P) !== 0 && ((lo & PDPTE_RESERVED_LO) | (hi & rsvdHi)) !== 0) return false;
    scratchLo[i] = lo;
    scratchHi[i] = hi;
  }
  regs.pdpteLo.set(scratchLo);
  regs.pdpteHi.set(scratchHi);
  return true;
}
