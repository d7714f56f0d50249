// @hvmmu/ppc-hpt installed with only @hvmmu/core: one 4K HPTE found by the hash search, and a DSI.
import { HashPageTable, HptAccess, HptCause, HptRegisters, HptTranslation, HptVector, HptWalker, Slb } from '@hvmmu/ppc-hpt';

const hpt = new HashPageTable(18);
const slb = new Slb(32);
// ESID 1 (EA 0x1000_0000), V, slot 0; VSID 0x99, 256M segment, 4K pages.
if (!slb.slbmteBig((1n << 28n) | 0x0800_0000n, 0x99n << 12n)) throw new Error('slbmte refused');
// EA 0x1000_5000: page index 5, hash = 0x99 ^ 5 = 0x9c (POWER ISA v2.07 5.7.7.3), group 0x9c, slot 0.
// dword0: AVPN = VA >> 23 << 7 = (0x99 << 28 | 0x5000) >> 23 << 7, V. dword1: RPN 0x4000_0000, R, C, PP = 3 (read-only).
const va = (0x99n << 28n) | 0x5000n;
hpt.view.setBigUint64(0x9c * 128, ((va >> 23n) << 7n) | 1n, false);
hpt.view.setBigUint64(0x9c * 128 + 8, 0x4000_0000n | 0x180n | 3n, false);
const out = new HptTranslation();
const walker = new HptWalker();
if (!walker.translate(new HptRegisters(), slb, hpt, 0, 0x1000_5abc, HptAccess.LOAD, out) || out.ra !== 0x4000_0abc)
  throw new Error(`load did not translate: ${out.vector}`);
if (
  walker.translate(new HptRegisters(), slb, hpt, 0, 0x1000_5abc, HptAccess.STORE, out) ||
  out.vector !== HptVector.DSI ||
  out.cause !== (HptCause.PROTFAULT | HptCause.STORE)
) {
  throw new Error(`expected DSI PROTFAULT|STORE, got ${out.vector} ${out.cause}`);
}
console.log('ppc-hpt-only smoke: ok');
