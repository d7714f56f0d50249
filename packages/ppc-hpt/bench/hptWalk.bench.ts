import { HashPageTable, HptAccess, HptRegisters, HptTranslation, HptWalker, Slb } from '@hvmmu/ppc-hpt';
import { pairedNs, speedFigure, type BenchContext, type BenchFigure, type BenchSuite } from '../../../bench/src/BenchFigure.js';

const LOOKUPS = 1024;

/**
 * HPT translation after a TLB miss — SLB lookup, hash, group search, the
 * permission and R/C checks — against a raw scan of the same 8-entry
 * big-endian group for the same search word (the group index and word
 * precomputed, so the baseline is only the 8 compares a search must make).
 * The entries sit in the last slot of their primary group, so both scan the
 * whole group. 32 segments of 64K pages, an order-24 table. Target from the
 * HPT issue: raw / ours ≥ 0.5.
 */
function translationVsGroupScan(ctx: BenchContext): BenchFigure {
  const hpt = new HashPageTable(24);
  const slb = new Slb(32);
  const view = hpt.view;
  for (let s = 0; s < 32; s++) {
    // 256M segments 0x10 + s, VSID 0x1000 + 97 s, 64K base pages (L||LP 0x110).
    if (!slb.slbmteBig((BigInt(0x10 + s) << 28n) | 0x0800_0000n | BigInt(s), (BigInt(0x1000 + 97 * s) << 12n) | 0x110n))
      throw new Error('bench set-up: slbmte');
  }
  const eaHi = new Int32Array(LOOKUPS);
  const eaLo = new Int32Array(LOOKUPS);
  const groups = new Float64Array(LOOKUPS);
  const wordHi = new Uint32Array(LOOKUPS);
  const wordLo = new Uint32Array(LOOKUPS);
  const used = new Set<number>();
  for (let k = 0; k < LOOKUPS; k++) {
    const s = k % 32;
    let page = (k * 37) % 4096;
    // One wanted entry per group, so every lookup finds its own.
    while (used.has(Number((BigInt(0x1000 + 97 * s) ^ BigInt(page)) & BigInt(hpt.hashMask)))) page = (page + 1) % 4096;
    used.add(Number((BigInt(0x1000 + 97 * s) ^ BigInt(page)) & BigInt(hpt.hashMask)));
    const ea = (0x10 + s) * 2 ** 28 + page * 65536;
    eaHi[k] = Math.floor(ea / 2 ** 32);
    eaLo[k] = ea >>> 0;
    const vsid = BigInt(0x1000 + 97 * s);
    const hash = vsid ^ BigInt(page);
    const group = Number(hash & BigInt(hpt.hashMask));
    groups[k] = group;
    const va = (vsid << 28n) | BigInt(page * 65536);
    const dword0 = ((va >> 23n) << 7n) | 0x4n | 1n; // AVPN, L (64K base), V
    wordHi[k] = Number(dword0 >> 32n);
    wordLo[k] = Number(dword0 & 0xffff_ffffn);
    // Fill slots 0..6 with other valid entries, the wanted one last.
    for (let slot = 0; slot < 7; slot++) {
      const at = (group * 8 + slot) * 16;
      if ((view.getUint32(at + 4, false) & 1) === 0) {
        view.setBigUint64(at, ((((va + BigInt(slot + 1) * (1n << 36n)) >> 23n) << 7n) | 0x5n) & 0xffff_ffff_ffff_ff7dn, false);
        view.setBigUint64(at + 8, 0x180n | 0x1000n | 2n, false);
      }
    }
    const at = (group * 8 + 7) * 16;
    view.setBigUint64(at, dword0, false);
    view.setBigUint64(at + 8, BigInt((k % 4096) * 65536) | 0x1000n | 0x180n | 2n, false);
  }
  const regs = new HptRegisters();
  const walker = new HptWalker();
  const out = new HptTranslation();
  const ours = (): number => {
    let sum = 0;
    for (let k = 0; k < LOOKUPS; k++) {
      // The halves as int32 (`| 0`): a uint32 above 2^31 would be boxed for the call.
      walker.translate(regs, slb, hpt, eaHi[k]! | 0, eaLo[k]! | 0, HptAccess.LOAD, out);
      sum += out.ptex;
    }
    return sum;
  };
  const raw = (): number => {
    let sum = 0;
    for (let k = 0; k < LOOKUPS; k++) {
      const base = groups[k]! * 8;
      const hi = wordHi[k]!;
      const lo = wordLo[k]!;
      let found = -1;
      for (let i = 0; i < 8; i++) {
        const at = (base + i) * 16;
        if (view.getUint32(at, false) === hi && ((view.getUint32(at + 4, false) ^ lo) & 0xffff_ff83) === 0) {
          found = base + i;
          break;
        }
      }
      sum += found;
    }
    return sum;
  };
  if (ours() !== raw()) throw new Error('bench set-up: the translation and the raw group scan found different entries');
  for (let k = 0; k < LOOKUPS; k++) {
    if (!walker.translate(regs, slb, hpt, eaHi[k]!, eaLo[k]!, HptAccess.LOAD, out)) throw new Error(`bench set-up: lookup ${k} faulted`);
  }
  const t = pairedNs(ours, raw, LOOKUPS, ctx);
  return speedFigure(t, 'ns/lookup', 'raw scan of the 8-entry group / full HPT translation', '≥ 0.5');
}

export const hptWalkSuite: BenchSuite = {
  name: 'ppc.hpt.walk',
  run: (ctx) => ({ translationVsGroupScan: translationVsGroupScan(ctx) }),
};
