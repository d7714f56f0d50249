import { describe, expect, it } from 'vitest';
import { HashPageTable, HptAccess, HptCause, HptRegisters, HptTranslation, HptVector, HptWalker, Slb, VRMA_VSID, mapVrma } from '@hvmmu/ppc-hpt';

/**
 * Real mode through the VRMA (KVM kvmppc_map_vrma, QEMU build_vrma_slbe):
 * the entries KVM makes translate a guest's real addresses to the same guest
 * physical addresses, with no SLB and no storage keys; a real address past
 * the VRMA is an HDSI (VRMA faults go to the hypervisor).
 */
describe('VRMA real mode', () => {
  for (const shift of [24, 16, 12]) {
    it(`pages of 2^${shift}: real addresses in the area translate to themselves, the rest fault to the hypervisor`, () => {
      const hpt = new HashPageTable(20);
      const bytes = 64 << 20;
      const n = mapVrma(hpt, bytes, shift);
      expect(n).toBe(Math.min(bytes / 2 ** shift, hpt.hashMask + 1));
      const regs = new HptRegisters();
      regs.ir = false;
      regs.dr = false;
      regs.vrma = true;
      regs.vrmaPageShift = shift;
      regs.setAmr(0xffff_ffff_ffff_ffffn); // every key closed: the VRMA checks none
      const w = new HptWalker();
      const out = new HptTranslation();
      const covered = n * 2 ** shift;
      for (const ea of [0, 0x1234_5678 % covered, covered - 8]) {
        expect(w.translate(regs, new Slb(32), hpt, 0, ea, HptAccess.STORE, out)).toBe(true);
        expect([out.ra, out.pageShift]).toEqual([ea, shift]);
      }
      if (covered < 2 ** 32) {
        expect(w.translate(regs, new Slb(32), hpt, 0, covered, HptAccess.LOAD, out)).toBe(false);
        expect([out.vector, out.cause, out.asdrHi]).toEqual([HptVector.HDSI, HptCause.NOPTE, 0x4000_0000 | (VRMA_VSID >>> 8)]);
      }
    });
  }

  it('entries are bolted, in slot 7 of their groups, with the address as the guest physical address', () => {
    const hpt = new HashPageTable(18);
    mapVrma(hpt, 16 << 20, 24);
    const group = (0 ^ VRMA_VSID ^ ((VRMA_VSID << 25) >>> 0)) & hpt.hashMask;
    const at = (group * 8 + 7) * 16;
    // dword0: 1T, VSID << 24, BOLTED, L, AVPN 0, V; dword1: RPN 0, R, C, M, PP 0.
    expect(hpt.view.getBigUint64(at, false)).toBe((1n << 62n) | (BigInt(VRMA_VSID) << 24n) | 0x10n | 0x4n | 1n);
    expect(hpt.view.getBigUint64(at + 8, false)).toBe(0x190n);
  });
});
