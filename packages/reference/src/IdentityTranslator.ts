import { Access, HvmmuError, hex, type GuestMemory, type TranslationResult, type Translator } from '@hvmmu/core';
import type { HostStageTable } from './HostStageTable.js';
import { IdentityFaultCode } from './IdentityFaultCode.js';
import { PERM_BY_PROTECTION, PROTECTION_ALL, PROTECTION_RESERVED, ProtectionBits, accessFaultBits } from './IdentityProtection.js';

/** Miss code bit: the host-stage table has no entry (or no write permission); the MMU must fault it in. */
export const IDENTITY_MISS_HOST = 1 << 16;

/**
 * The identity machine's "hardware" walk for one vCPU, a two-stage lookup:
 * the guest stage is the optional protection table (read from guest memory on
 * every miss, like a page-table walk); the host stage is the MMU's
 * `HostStageTable`. Guest-stage faults are checked first, as in a 2D walk.
 * A miss code without `IDENTITY_MISS_HOST` is the guest fault code itself.
 *
 * Per-vCPU register state: the protection table's base gpa and the number of
 * guest pages it covers (0 = no table: every page is fully accessible).
 */
export class IdentityTranslator implements Translator {
  /** Guest physical address of the protection table (4 KiB aligned). */
  protectionBase = 0;
  /** Guest pages the table covers; pages at or beyond it are not present. 0 = no table. */
  protectionPages = 0;

  constructor(
    readonly vcpuId: number,
    private readonly table: HostStageTable,
    private readonly memory: GuestMemory,
  ) {}

  /**
   * Load the protection-table register (host side, like KVM_SET_SREGS; the
   * guest uses the SET_PROTECTION_TABLE hypercall). The table may point
   * anywhere: a table outside guest memory makes accesses fault with TABLE.
   */
  setProtectionTable(baseGpa: number, pages: number): void {
    const maxGfn = this.table.maxGfn;
    if (!Number.isSafeInteger(pages) || pages < 0 || pages > maxGfn) {
      throw new HvmmuError('BAD_ARGUMENT', `protection table size must be an integer page count in 0..${maxGfn}, got ${pages}`);
    }
    if (pages !== 0 && (!Number.isSafeInteger(baseGpa) || baseGpa < 0 || baseGpa % 4096 !== 0 || baseGpa + pages > maxGfn * 4096)) {
      throw new HvmmuError('BAD_ARGUMENT', `protection table base ${hex(baseGpa)} must be 4 KiB aligned and the table inside the guest physical space`);
    }
    this.protectionBase = pages === 0 ? 0 : baseGpa;
    this.protectionPages = pages;
  }

  translate(vpn: number, access: number, out: TranslationResult): number {
    if (vpn >= this.table.maxGfn) {
      // Paging off: the address is a physical one, and it is beyond the guest's physical width.
      out.missCode = IdentityFaultCode.RSVD | accessFaultBits(access);
      return -1;
    }
    let prot = PROTECTION_ALL;
    if (this.protectionPages !== 0) {
      if (vpn >= this.protectionPages) {
        out.missCode = accessFaultBits(access);
        return -1;
      }
      const at = this.memory.resolve(this.protectionBase + vpn, false);
      if (at < 0) {
        out.missCode = IdentityFaultCode.TABLE | accessFaultBits(access);
        return -1;
      }
      prot = this.memory.view.getUint8(at);
      if ((prot & PROTECTION_RESERVED) !== 0) {
        out.missCode = IdentityFaultCode.PRESENT | IdentityFaultCode.RSVD | accessFaultBits(access);
        return -1;
      }
      if ((prot & ProtectionBits.PRESENT) === 0) {
        out.missCode = accessFaultBits(access);
        return -1;
      }
      if ((PERM_BY_PROTECTION[(prot << 1) | 1]! & (1 << access)) === 0) {
        out.missCode = IdentityFaultCode.PRESENT | accessFaultBits(access);
        return -1;
      }
    }
    const table = this.table;
    const entry = table.lookup(vpn);
    const writable = entry >= 0 && table.isWritable(entry);
    if (entry < 0 || ((access & Access.WRITE) !== 0 && !writable)) {
      out.missCode = IDENTITY_MISS_HOST;
      return -1;
    }
    table.markAccessed(entry);
    out.perm = PERM_BY_PROTECTION[(prot << 1) | (writable ? 1 : 0)]!;
    out.cacheable = true;
    return table.hfnOf(entry);
  }
}
