import { describe, expect, it } from 'vitest';
import { HashPageTable, HashPageTableStore } from '@hvmmu/ppc-hpt';

describe('the modified bitmap and the scans a later HTAB pass makes', () => {
  it('nextModified finds set bits across byte and 32-entry word boundaries, and the end', () => {
    const hpt = new HashPageTable(18); // 16384 entries
    hpt.clearModifiedRange(0, hpt.entries);
    for (const i of [0, 31, 32, 33, 1000, 16383]) hpt.markModified(i);
    const found: number[] = [];
    for (let i = hpt.nextModified(0); i < hpt.entries; i = hpt.nextModified(i + 1)) found.push(i);
    expect(found).toEqual([0, 31, 32, 33, 1000, 16383]);
    expect(hpt.nextModified(16384)).toBe(16384);
  });

  it('clearModifiedRange clears exactly [from, to), also within one word and across several', () => {
    const hpt = new HashPageTable(18);
    hpt.clearModifiedRange(5, 7);
    expect([4, 5, 6, 7].map((i) => hpt.isModified(i))).toEqual([true, false, false, true]);
    hpt.clearModifiedRange(30, 200);
    expect([29, 30, 31, 32, 63, 64, 199, 200].map((i) => hpt.isModified(i))).toEqual([true, false, false, false, false, false, false, true]);
  });

  it('nextPresent finds the next entry with V in dword0 (bit 0 of byte 7), stopping at the limit', () => {
    const hpt = new HashPageTable(18);
    const store = new HashPageTableStore(hpt);
    hpt.view.setUint32(40 * 16 + 4, 0x81); // V (and bit 7, which is not V)
    hpt.view.setUint32(20 * 16 + 4, 0x80); // no V
    expect(store.nextPresent(0, 100)).toBe(40);
    expect(store.nextPresent(0, 30)).toBe(30);
    expect(store.nextPresent(41, 16384)).toBe(16384);
  });
});
