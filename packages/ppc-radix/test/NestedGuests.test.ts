import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { H_PARAMETER, H_SUCCESS, type NestedGuest, NestedGuests, type NestedGuestHost, ShadowLpids } from '@hvmmu/ppc-radix';
import { propertyRuns } from '../../../test-support/propertyRuns.js';

/** An L0 double that records what the nested-guest table asks of it. L1 memory is [0, 64 MiB). */
class FakeHost implements NestedGuestHost {
  allocated = 0;
  freed = new Map<string, number>();
  patEs = new Map<number, [[number, number], [number, number]]>();
  l1 = new Map<number, [number, number]>();
  l1MemoryCovers(gpa: number, bytes: number): boolean {
    return gpa >= 0 && gpa + bytes <= 64 << 20;
  }
  readL1(gpa: number): [number, number] | null {
    return gpa < 64 << 20 ? (this.l1.get(gpa) ?? [0, 0]) : null;
  }
  allocShadowTable(): [number, number] {
    this.allocated++;
    return [0x4000_0000, (0x10_0000 * this.allocated + 0xad) >>> 0];
  }
  cleared: number[] = [];
  clearShadowTable(_root: [number, number], shadowLpid: number): void {
    this.cleared.push(shadowLpid);
  }
  freeShadowTable(root: [number, number]): void {
    const key = root.join(':');
    this.freed.set(key, (this.freed.get(key) ?? 0) + 1);
  }
  setShadowPate(lpid: number, dw0: [number, number], dw1: [number, number]): void {
    this.patEs.set(lpid, [dw0, dw1]);
  }
}

function nested(pats = 0) {
  const host = new FakeHost();
  const lpids = new ShadowLpids(64);
  const guests = new NestedGuests(host, lpids);
  expect(guests.setPartitionTable(0, (0x10_0000 | pats) >>> 0)).toBe(H_SUCCESS);
  return { host, lpids, guests };
}

describe('nested guests (KVM book3s_hv_nested.c, the reviewed design)', () => {
  it('H_SET_PARTITION_TABLE: PATS 0..4 inside L1 memory succeed; a bigger size, a table past L1 memory or reserved bits are H_PARAMETER and change nothing; 0 turns nesting off', () => {
    const { guests } = nested(2);
    const before = [guests.l1PtcrHi, guests.l1PtcrLo];
    for (const [hi, lo] of [
      [0, 0x10_0005], // PATS 5: 8192 entries, over KVM_MAX_NESTED_GUESTS_SHIFT
      [0, (0x3ff_f000 | 4) >>> 0], // 64 KiB from 64 MiB - 4 KiB: runs past L1 memory
      [0x10, 0x10_0000], // base far outside L1 memory
      [0, 0x10_0100], // reserved bits
    ]) {
      expect(guests.setPartitionTable(hi!, lo!)).toBe(H_PARAMETER);
      expect([guests.l1PtcrHi, guests.l1PtcrLo]).toEqual(before);
    }
    for (let pats = 0; pats <= 4; pats++) expect(guests.setPartitionTable(0, (0x10_0000 | pats) >>> 0)).toBe(H_SUCCESS);
    expect(guests.l1TableEntries).toBe(4096);
    expect(guests.setPartitionTable(0, 0)).toBe(H_SUCCESS);
    expect(guests.l1TableEntries).toBe(0);
    expect(guests.get(1, true)).toBeNull(); // nesting off
  });

  it('life cycle: created with a shadow LPID and two references, shared, removed (the table’s reference), released at the last put', () => {
    const { host, lpids, guests } = nested();
    const g = guests.get(5, true)!;
    expect([g.l1Lpid, g.shadowLpid, g.refcnt, lpids.inUse, host.allocated]).toEqual([5, 1, 2, 1, 1]);
    expect(guests.get(5, true)).toBe(g);
    expect(g.refcnt).toBe(3);
    guests.put(g);
    expect(guests.remove(g)).toBe(true);
    expect([g.refcnt, g.released, guests.size]).toEqual([1, false, 0]);
    expect(guests.remove(g)).toBe(false); // a second remove changes nothing
    expect(g.refcnt).toBe(1);
    guests.put(g); // the last user
    expect([g.released, lpids.inUse, host.freed.get(g.shadowRoot.join(':'))]).toEqual([true, 0, 1]);
    expect(host.patEs.get(1)).toEqual([
      [0, 0],
      [0, 0],
    ]);
  });

  it('LPIDs: 0 and those past L1’s table do not exist; lookups without create find nothing new; the highest LPID in use grows and shrinks', () => {
    const { guests } = nested(0); // 256 entries
    expect(guests.get(0, true)).toBeNull();
    expect(guests.get(256, true)).toBeNull();
    expect(guests.get(7, false)).toBeNull();
    const a = guests.get(7, true)!;
    const b = guests.get(200, true)!;
    const c = guests.get(30, true)!;
    expect(guests.maxLpid).toBe(200);
    guests.remove(b);
    expect(guests.maxLpid).toBe(30);
    guests.remove(c);
    guests.remove(a);
    expect(guests.maxLpid).toBe(-1);
  });

  it('two vCPUs create the same L2 at once: the second finds the first’s guest, and its own allocation is released', () => {
    const { host, lpids, guests } = nested();
    // vCPU 0 and vCPU 1 both miss the lookup and allocate outside the lock…
    const mine = guests.beginCreate(9)!;
    const theirs = guests.beginCreate(9)!;
    expect(lpids.inUse).toBe(2);
    // …then insert under it, one after the other.
    const first = guests.finishCreate(mine);
    const second = guests.finishCreate(theirs);
    expect(second).toBe(first);
    expect([first.refcnt, guests.size, lpids.inUse]).toEqual([3, 1, 1]);
    expect(theirs.guest.released).toBe(true);
    expect(host.freed.get(theirs.guest.shadowRoot.join(':'))).toBe(1);
    expect(lpids.isUsed(theirs.guest.shadowLpid)).toBe(false);
  });

  it('the partition-table entry cache: read from L1 memory, written into the shadow entry with HR and the shadow root; zero past L1’s table', () => {
    const { host, guests } = nested(0);
    const g = guests.get(3, true)!;
    host.l1.set(0x10_0000 + 3 * 16, [0xc000_0000, 0x0040_00ad]);
    host.l1.set(0x10_0000 + 3 * 16 + 8, [0x8000_0000, 0x0050_0000]);
    guests.refreshPate(g);
    expect([g.l1GrToHrHi, g.l1GrToHrLo, g.processTableHi, g.processTableLo]).toEqual([0xc000_0000, 0x0040_00ad, 0x8000_0000, 0x0050_0000]);
    expect(host.patEs.get(g.shadowLpid)).toEqual([
      [(g.shadowRoot[0] | 0x8000_0000) >>> 0, g.shadowRoot[1]],
      [0x8000_0000, 0x0050_0000],
    ]);
    guests.setPartitionTable(0, 0x20_0000); // a new, empty L1 table: the entry reads zero
    guests.refreshPate(g);
    expect([g.l1GrToHrHi, g.processTableLo]).toEqual([0, 0]);
  });

  it('random get/put/remove/create races/remove-all: every guest is released exactly once, every shadow LPID and table freed, references balance', () => {
    fc.assert(
      fc.property(fc.array(fc.record({ op: fc.integer({ min: 0, max: 7 }), lpid: fc.integer({ min: 0, max: 9 }), k: fc.nat() }), { maxLength: 120 }), (ops) => {
        const { host, lpids, guests } = nested(0);
        const held: NestedGuest[] = [];
        const pending: ReturnType<NestedGuests['beginCreate']>[] = [];
        const everyGuest = new Set<NestedGuest>();
        for (const o of ops) {
          if (o.op <= 1) {
            const g = guests.get(o.lpid, o.op === 0);
            if (g !== null) {
              held.push(g);
              everyGuest.add(g);
            }
          } else if (o.op === 2 && held.length > 0) {
            guests.put(held.splice(o.k % held.length, 1)[0]!);
          } else if (o.op === 3 && held.length > 0) {
            guests.remove(held[o.k % held.length]!);
          } else if (o.op === 4) {
            const p = guests.beginCreate(o.lpid);
            if (p !== null) {
              pending.push(p);
              everyGuest.add(p.guest);
            }
          } else if (o.op === 5 && pending.length > 0) {
            const g = guests.finishCreate(pending.splice(o.k % pending.length, 1)[0]!);
            held.push(g);
            everyGuest.add(g);
          } else if (o.op === 6) {
            guests.removeAll();
          }
          // A guest's references: one per holder, plus the table's.
          for (const g of everyGuest) {
            const holders = held.filter((h) => h === g).length;
            const inTable = guests.find(g.l1Lpid) === g ? 1 : 0;
            expect(g.refcnt).toBe(g.released ? 0 : holders + inTable);
          }
        }
        for (const p of pending.splice(0)) held.push(guests.finishCreate(p!));
        guests.removeAll();
        for (const g of held.splice(0)) guests.put(g);
        expect(lpids.inUse).toBe(0);
        for (const g of everyGuest) {
          expect(g.released).toBe(true);
          expect(host.freed.get(g.shadowRoot.join(':'))).toBe(1);
        }
        expect(host.allocated).toBe(everyGuest.size);
      }),
      { numRuns: propertyRuns(200) },
    );
  });
});
