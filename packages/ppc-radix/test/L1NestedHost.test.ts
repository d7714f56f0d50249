import { describe, expect, it } from 'vitest';
import {
  H_PARAMETER,
  H_SUCCESS,
  L1NestedHost,
  NestedGuests,
  type NestedGuestHost,
  NestedHcall,
  ShadowLpids,
  TlbieScope,
  decodeTlbInvalidate,
} from '@hvmmu/ppc-radix';

const H_FUNCTION = -2;
const MiB = 1 << 20;

/**
 * The two halves of nested HV talking to each other: an L1 kernel's side
 * (L1NestedHost) making hcalls to an L0 whose nested-guest table
 * (NestedGuests) answers H_SET_PARTITION_TABLE and H_TLB_INVALIDATE and
 * reads L1's partition table from L1 memory.
 */
function world(nesting = true) {
  const l1Memory = new Uint8Array(64 * MiB);
  const l1View = new DataView(l1Memory.buffer);
  let next = 16 * MiB;
  const cleared: number[] = [];
  const host: NestedGuestHost = {
    l1MemoryCovers: (gpa, bytes) => gpa >= 0 && gpa + bytes <= l1Memory.length,
    readL1: (gpa) => (gpa + 8 <= l1Memory.length ? [l1View.getUint32(gpa, false), l1View.getUint32(gpa + 4, false)] : null),
    allocShadowTable: () => [0x4000_0000, 0xad],
    clearShadowTable: (_root, lpid) => cleared.push(lpid),
    freeShadowTable: () => {},
    setShadowPate: () => {},
  };
  const lpids = new ShadowLpids(64);
  const l0 = new NestedGuests(host, lpids);
  const calls: string[] = [];
  const l1 = new L1NestedHost({
    alloc: (bytes, align) => {
      const at = Math.ceil(next / align) * align;
      if (at + bytes > l1Memory.length) return null;
      next = at + bytes;
      return at;
    },
    write: (gpa, bytes) => l1Memory.set(bytes, gpa),
    hcall: (number, args) => {
      calls.push(`${number.toString(16)}(${args.map((a) => a.toString(16)).join(',')})`);
      if (!nesting) return H_FUNCTION;
      const hi = (a: bigint | undefined): number => Number(((a ?? 0n) >> 32n) & 0xffff_ffffn);
      const lo = (a: bigint | undefined): number => Number((a ?? 0n) & 0xffff_ffffn);
      if (number === NestedHcall.H_SET_PARTITION_TABLE) return l0.setPartitionTable(hi(args[0]), lo(args[0]));
      if (number === NestedHcall.H_TLB_INVALIDATE) {
        const req = decodeTlbInvalidate(lo(args[0]), lo(args[1]), hi(args[2]), lo(args[2]));
        if (req === null) return H_PARAMETER;
        if (req.scope === TlbieScope.LPID) l0.flush(req.lpid, req.ric);
        else if (req.scope === TlbieScope.ALL) l0.flush('all', req.ric);
        return H_SUCCESS;
      }
      return H_FUNCTION;
    },
  });
  return { l1, l0, lpids, calls, cleared };
}

describe('L1 nested host ↔ L0 nested guests', () => {
  it('init registers a 4096-entry table; entries set and cleared reach L0 through H_TLB_INVALIDATE; exit turns nesting off', () => {
    const { l1, l0, lpids, calls, cleared } = world();
    const init = l1.init();
    expect(init).toEqual({ ok: true, tableBase: 16 * MiB, entries: 4096 });
    expect(calls[0]).toBe(`f800(${(16 * MiB + 4).toString(16)})`); // PTCR: base | PATS 4 (64 KiB)
    expect(l0.l1TableEntries).toBe(4096);

    expect(l1.setEntry(5, 0xc000_0000_0040_00adn, 0x8000_0000_0050_0000n)).toBe(H_SUCCESS);
    // L0 runs the L2 (what H_ENTER_NESTED does first): the guest is created and its entry read from L1 memory.
    const g = l0.get(5, true)!;
    l0.refreshPate(g);
    expect([g.l1GrToHrHi, g.l1GrToHrLo, g.processTableLo]).toEqual([0xc000_0000, 0x0040_00ad, 0x0050_0000]);

    expect(l1.setEntry(5, 0xc000_0000_0060_00adn, 0x8000_0000_0050_0000n)).toBe(H_SUCCESS); // L1 moved the L2's tree
    expect(cleared).toEqual([g.shadowLpid]); // the shadow tree was emptied (RIC 2) …
    expect(g.l1GrToHrLo).toBe(0x0060_00ad); // … and the new entry read

    expect(l1.clearEntry(5)).toBe(H_SUCCESS); // the entry is now zero: L0 removes the guest
    expect(l0.find(5)).toBeUndefined();
    expect(g.released).toBe(false); // still held by the run that created it
    l0.put(g);
    expect([g.released, lpids.inUse]).toEqual([true, 0]);

    expect(l1.exit()).toBe(H_SUCCESS);
    expect(l0.l1TableEntries).toBe(0);
  });

  it('a parent without nesting refuses H_SET_PARTITION_TABLE: init says so, nothing is thrown', () => {
    const { l1 } = world(false);
    expect(l1.init()).toEqual({ ok: false, reason: 'not-supported', status: H_FUNCTION });
    expect(l1.active).toBe(false);
  });
});
