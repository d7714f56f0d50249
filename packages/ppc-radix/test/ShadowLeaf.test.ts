import { describe, expect, it } from 'vitest';
import { ShadowLeaf, makeShadowLeaf } from '@hvmmu/ppc-radix';

/**
 * The shadow leaf rule of kvmhv_nested_page_fault, with every expected
 * entry worked out by hand from the rule: L0's leaf minus the rights L1
 * lacks, R only if L1 has R, C only if L1 has C and this is a store; the
 * size L0's when not larger than L1's, else 2M (L1 page > 2M) or the base
 * page, the sub-page picked by the L1 real address.
 */
const V_L = 0xc000_0000;
const R = 0x100;
const C = 0x080;
const RD = 0x004;
const RW = 0x002;
const X = 0x001;

describe('the shadow leaf of an L2 page', () => {
  it('rights: L0 grants rwx and R/C; L1 grants read only, with R: the shadow is read-only, R kept, C dropped', () => {
    const out = makeShadowLeaf(V_L, 0x4000_0000 | R | C | RD | RW | X, 16, 0x0123_0000 | R | RD, 16, false, 0, 0x0123_4567, 16, new ShadowLeaf());
    expect([out.hi, out.lo, out.shift]).toEqual([V_L, (0x4000_0000 | R | RD) >>> 0, 16]);
  });

  it('C only on a store by an L1 entry that has C; R only if L1 has R', () => {
    const l0 = (0x4000_0000 | R | C | RD | RW) >>> 0;
    expect(makeShadowLeaf(V_L, l0, 16, R | C | RD | RW, 16, true, 0, 0, 16, new ShadowLeaf()).lo).toBe(l0);
    expect(makeShadowLeaf(V_L, l0, 16, R | C | RD | RW, 16, false, 0, 0, 16, new ShadowLeaf()).lo).toBe((0x4000_0000 | R | RD | RW) >>> 0);
    expect(makeShadowLeaf(V_L, l0, 16, RD | RW, 16, true, 0, 0, 16, new ShadowLeaf()).lo).toBe((0x4000_0000 | RD | RW) >>> 0);
  });

  it('sizes: L0 2M under L1 1G stays 2M; L0 1G under L1 2M becomes base pages, picking the 64K sub-page of the access', () => {
    // L0 2M leaf at host 0x4020_0000, L1 1G page: shadow 2M, RPN unchanged.
    const a = makeShadowLeaf(V_L, 0x4020_0000 | R | RD, 21, R | RD, 30, false, 0, 0x8765_4321, 16, new ShadowLeaf());
    expect([a.lo, a.shift]).toEqual([(0x4020_0000 | R | RD) >>> 0, 21]);
    // L0 1G leaf at host 0x8000_0000, L1 2M page; access at L1 real 0x1234_5678: the 64K sub-page 0x1234_0000 of the 1G page.
    const b = makeShadowLeaf(V_L, 0x8000_0000 | R | RD, 30, R | RD, 21, false, 0, 0x1234_5678, 16, new ShadowLeaf());
    expect([b.lo, b.shift]).toEqual([(0x8000_0000 | 0x1234_0000 | R | RD) >>> 0, 16]);
    // L0 1G, L1 1G: shadow 1G.
    expect(makeShadowLeaf(V_L, 0x8000_0000 | R | RD, 30, R | RD, 30, false, 0, 0x1234_5678, 16, new ShadowLeaf()).shift).toBe(30);
    // L0 2M under an L1 64K page: base pages, the sub-page 0x0034_0000 of the 2M page at 0x4020_0000 for L1 real ...0x0034_5678.
    const c = makeShadowLeaf(V_L, 0x4020_0000 | R | RD, 21, R | RD, 16, false, 0, 0x0034_5678, 16, new ShadowLeaf());
    expect([c.lo, c.shift]).toEqual([(0x4020_0000 | 0x0014_0000 | R | RD) >>> 0, 16]);
  });
});
