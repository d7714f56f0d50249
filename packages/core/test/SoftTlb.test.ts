import { describe, expect, it } from 'vitest';
import { ACCESS_KINDS, Access, PERM_ALL, SoftTlb, TlbShootdown } from '@hvmmu/core';
import { expectHvmmuError } from './fixtures/assertions.js';

/** The 16 access kinds, spelled out from the Access bits. */
const KINDS = Array.from({ length: 16 }, (_, k) => k);

/** Permission mask with one bit per listed access kind. */
function permOf(kinds: readonly number[]): number {
  return kinds.reduce((m, k) => m | (1 << k), 0);
}

describe('SoftTlb construction', () => {
  it.each([0, 3, 6, -1, 1.5, Number.NaN, 2 ** 25, 2 ** 24 + 1])('size %s is TLB_BAD_SIZE', (size) => {
    expectHvmmuError(() => new SoftTlb(size), 'TLB_BAD_SIZE');
  });

  it('accepts powers of two and starts empty', () => {
    for (const size of [1, 2, 64, 4096]) {
      const tlb = new SoftTlb(size);
      expect(tlb.size).toBe(size);
      expect(tlb.mask).toBe(size - 1);
      expect(tlb.countValid()).toBe(0);
      expect([tlb.hits, tlb.misses, tlb.flushes, tlb.pageFlushes]).toEqual([0, 0, 0, 0]);
    }
  });
});

describe('SoftTlb lookups', () => {
  it('misses when empty, hits after insert, and counts both', () => {
    const tlb = new SoftTlb(64);
    expect(tlb.lookup(0, 5, Access.READ)).toBe(-1);
    expect(tlb.misses).toBe(1);
    tlb.insert(0, 5, 1234, PERM_ALL);
    expect(tlb.lookup(0, 5, Access.READ)).toBe(1234);
    expect(tlb.lookup(0, 5, Access.WRITE | Access.USER)).toBe(1234);
    expect(tlb.hits).toBe(2);
    expect(tlb.misses).toBe(1);
    expect(tlb.lookup(0, 6, Access.READ)).toBe(-1);
    expect(tlb.misses).toBe(2);
    expect(tlb.countValid()).toBe(1);
  });

  it('is direct-mapped: pages a TLB size apart evict each other', () => {
    const tlb = new SoftTlb(16);
    tlb.insert(0, 3, 100, PERM_ALL);
    tlb.insert(0, 3 + 16, 200, PERM_ALL);
    expect(tlb.lookup(0, 3, 0)).toBe(-1);
    expect(tlb.lookup(0, 19, 0)).toBe(200);
    tlb.insert(0, 4, 300, PERM_ALL); // a different index: both stay
    expect(tlb.lookup(0, 19, 0)).toBe(200);
    expect(tlb.lookup(0, 4, 0)).toBe(300);
  });

  it('holds virtual page numbers beyond 32 bits (57-bit addresses: 45-bit page numbers)', () => {
    const tlb = new SoftTlb(64);
    const vpn = 2 ** 45 - 1;
    tlb.insert(0, vpn, 7, PERM_ALL);
    expect(tlb.lookup(0, vpn, 0)).toBe(7);
    // same low bits, different high bits: must not alias
    expect(tlb.lookup(0, vpn - 2 ** 40, 0)).toBe(-1);
    expect(tlb.lookup(0, 63, 0)).toBe(-1);
  });

  /** Kinds that are a write and a fetch at once: no access is both. */
  const IMPOSSIBLE = KINDS.filter((k) => (k & Access.WRITE) !== 0 && (k & Access.FETCH) !== 0);

  it('the impossible kinds are 3, 7, 11 and 15', () => {
    expect(IMPOSSIBLE).toEqual([3, 7, 11, 15]);
  });

  it.each(KINDS.filter((k) => !IMPOSSIBLE.includes(k)))('access kind %s hits only where its permission bit is set', (kind) => {
    const tlb = new SoftTlb(16);
    tlb.insert(0, 1, 11, 1 << kind); // only this kind allowed
    tlb.insert(0, 2, 22, PERM_ALL & ~(1 << kind)); // every kind but this one
    for (const other of KINDS) {
      const possible = !IMPOSSIBLE.includes(other);
      expect(tlb.lookup(0, 1, other)).toBe(other === kind ? 11 : -1);
      expect(tlb.lookup(0, 2, other)).toBe(other !== kind && possible ? 22 : -1);
    }
    expect(tlb.hits).toBe(12);
    expect(tlb.misses).toBe(20);
  });

  it.each(IMPOSSIBLE)('impossible kind %s never hits, even on an entry inserted with PERM_ALL', (kind) => {
    const tlb = new SoftTlb(16);
    tlb.insert(0, 1, 11, PERM_ALL);
    tlb.insert(0, 2, 22, 1 << kind);
    expect(tlb.lookup(0, 1, kind)).toBe(-1);
    expect(tlb.lookup(0, 2, kind)).toBe(-1);
    expect(tlb.perms[1]).toBe(0x7777);
    expect(tlb.perms[2]).toBe(0);
  });

  it('a read-only supervisor page: reads and fetches by the kernel hit, writes and user accesses go slow', () => {
    // Allowed: supervisor read, supervisor fetch, each possibly implicit.
    const allowed = [Access.READ, Access.FETCH, Access.IMPLICIT, Access.IMPLICIT | Access.FETCH];
    const tlb = new SoftTlb(16);
    tlb.insert(0, 9, 90, permOf(allowed));
    expect(permOf(allowed)).toBe(0b0000_0101_0000_0101);
    for (const kind of KINDS) expect(tlb.lookup(0, 9, kind) >= 0).toBe(allowed.includes(kind));
  });

  it('access kind 16 (past the 16 kinds) misses even on a page allowing every kind', () => {
    const tlb = new SoftTlb(16);
    tlb.insert(0, 1, 10, PERM_ALL);
    expect(ACCESS_KINDS).toBe(16);
    expect(tlb.lookup(0, 1, 16)).toBe(-1);
  });
});

describe('SoftTlb per-kind tag arrays (tagsFor)', () => {
  /** What entry i of kind `access`'s array must hold, from the general arrays. */
  function expected(tlb: SoftTlb, access: number, i: number): number {
    return ((tlb.perms[i]! >> access) & 1) !== 0 ? tlb.tags[i]! : -1;
  }
  function agrees(tlb: SoftTlb, access: number): void {
    const view = tlb.tagsFor(access);
    for (let i = 0; i < tlb.size; i++) expect(view[i], `kind ${access} entry ${i}`).toBe(expected(tlb, access, i));
  }

  it('holds the vpn where the entry serves the kind and -1 elsewhere, also for entries made before it', () => {
    const tlb = new SoftTlb(16);
    tlb.insert(0, 1, 100, permOf([Access.READ])); // read-only
    tlb.insert(0, 2, 200, PERM_ALL);
    const write = tlb.tagsFor(Access.WRITE);
    expect([write[1], write[2], write[3]]).toEqual([-1, 2, -1]);
    expect(tlb.tagsFor(Access.READ)[1]).toBe(1);
    expect(tlb.tagsFor(Access.WRITE)).toBe(write); // the same array every time
    tlb.insert(3, 2 ** 44 + 3, 300, permOf([Access.WRITE, Access.READ]));
    const i = tlb.indexOf(3, 2 ** 44 + 3);
    expect(write[i]).toBe(2 ** 44 + 3);
    expect(tlb.tagsFor(Access.FETCH)[i]).toBe(-1);
    expect(tlb.tagsFor(Access.WRITE | Access.USER)[i]).toBe(-1);
  });

  it('stays equal to tags + perms through inserts, overwrites and every kind of flush', () => {
    const tlb = new SoftTlb(64);
    const kinds = KINDS.filter((k) => (k & 3) !== 3);
    for (const k of kinds.slice(0, 6)) tlb.tagsFor(k); // some made before any entry
    let seed = 12345;
    const rnd = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    for (let step = 0; step < 3000; step++) {
      const op = rnd(10);
      const vpn = rnd(200);
      const ctx = rnd(4);
      if (op < 5) tlb.insert(ctx, vpn, rnd(50), rnd(0x10000));
      else if (op === 5) tlb.flushPage(ctx, vpn);
      else if (op === 6) tlb.flushPageAllContexts(vpn);
      else if (op === 7) tlb.flushRange(ctx, vpn, rnd(8));
      else if (op === 8) tlb.flushHostFrame(rnd(50));
      else if (rnd(20) === 0) tlb.flushContext(ctx);
      else if (rnd(40) === 0) tlb.setGeneration(step);
      if (step === 1500) for (const k of kinds.slice(6)) tlb.tagsFor(k); // the rest made midway
      if (step % 100 === 0) for (const k of kinds) agrees(tlb, k);
    }
    tlb.flushAll();
    for (const k of kinds) agrees(tlb, k);
  });

  it('refuses what is not an access kind (BAD_ARGUMENT), making no array', () => {
    const tlb = new SoftTlb(16);
    for (const bad of [3, 7, 11, 15, 16, 32, -1, 0.5, Number.NaN, '0' as unknown as number]) {
      expectHvmmuError(() => tlb.tagsFor(bad), 'BAD_ARGUMENT');
    }
    tlb.insert(0, 1, 100, PERM_ALL);
    expect(tlb.tagsFor(Access.READ)[1]).toBe(1);
  });
});

describe('SoftTlb flushes', () => {
  function filled(): SoftTlb {
    const tlb = new SoftTlb(64);
    for (let vpn = 0; vpn < 32; vpn++) tlb.insert(0, vpn, 1000 + (vpn % 4), PERM_ALL);
    return tlb;
  }

  it('flushAll drops every entry', () => {
    const tlb = filled();
    tlb.flushAll();
    expect(tlb.countValid()).toBe(0);
    expect(tlb.flushes).toBe(1);
    for (let vpn = 0; vpn < 32; vpn++) expect(tlb.lookup(0, vpn, 0)).toBe(-1);
  });

  it('flushPage drops one page, and not another page sharing its index', () => {
    const tlb = filled();
    tlb.flushPage(0, 5);
    expect(tlb.lookup(0, 5, 0)).toBe(-1);
    expect(tlb.lookup(0, 6, 0)).toBe(1002);
    tlb.flushPage(0, 7 + 64); // aliases index 7 but is not cached
    expect(tlb.lookup(0, 7, 0)).toBe(1003);
    expect(tlb.countValid()).toBe(31);
    expect(tlb.pageFlushes).toBe(2);
  });

  it('flushRange drops exactly [vpn, vpn + count)', () => {
    const tlb = filled();
    tlb.flushRange(0, 8, 8);
    for (let vpn = 0; vpn < 32; vpn++) expect(tlb.lookup(0, vpn, 0) === -1).toBe(vpn >= 8 && vpn < 16);
    expect(tlb.flushes).toBe(0);
  });

  it('flushRange of at least the TLB size flushes everything', () => {
    const tlb = filled();
    tlb.insert(0, 2 ** 30, 5, PERM_ALL); // far outside the range: still dropped
    tlb.flushRange(0, 0, 64);
    expect(tlb.countValid()).toBe(0);
    expect(tlb.flushes).toBe(1);
  });

  it('flushHostFrame drops every page mapping that frame and nothing else', () => {
    const tlb = filled();
    tlb.flushHostFrame(1001);
    for (let vpn = 0; vpn < 32; vpn++) expect(tlb.lookup(0, vpn, 0) === -1).toBe(vpn % 4 === 1);
    expect(tlb.countValid()).toBe(24);
  });

  it('setGeneration drops entries filled under another generation; the same generation is a no-op', () => {
    const tlb = new SoftTlb(64);
    tlb.insert(0, 1, 10, PERM_ALL);
    tlb.setGeneration(0);
    expect(tlb.flushes).toBe(0);
    expect(tlb.lookup(0, 1, 0)).toBe(10);
    tlb.setGeneration(1);
    expect(tlb.flushes).toBe(1);
    expect(tlb.lookup(0, 1, 0)).toBe(-1);
    tlb.insert(0, 2, 20, PERM_ALL);
    expect(tlb.generation).toBe(1);
    tlb.setGeneration(1);
    expect(tlb.lookup(0, 2, 0)).toBe(20);
    tlb.setGeneration(2);
    expect(tlb.countValid()).toBe(0);
  });

  it('a flushed entry never hits, even for vpn -1 (the empty tag)', () => {
    const tlb = new SoftTlb(16);
    tlb.insert(0, 15, 99, PERM_ALL); // index 15 = (-1 & 15)
    tlb.flushPage(0, 15);
    expect(tlb.lookup(0, -1, Access.READ)).toBe(-1);
    tlb.insert(0, 15, 99, PERM_ALL);
    tlb.flushAll();
    expect(tlb.lookup(0, -1, Access.READ)).toBe(-1);
    tlb.insert(0, 15, 99, PERM_ALL);
    tlb.flushHostFrame(99);
    expect(tlb.lookup(0, -1, Access.READ)).toBe(-1);
    tlb.insert(0, 15, 99, PERM_ALL);
    tlb.flushRange(0, 15, 1);
    expect(tlb.lookup(0, -1, Access.READ)).toBe(-1);
    tlb.insert(0, 15, 99, PERM_ALL);
    tlb.setGeneration(5);
    expect(tlb.lookup(0, -1, Access.READ)).toBe(-1);
    expect(tlb.hits).toBe(0);
  });
});

describe('TlbShootdown', () => {
  it('flushes every registered vCPU TLB and counts remote flushes', () => {
    const shootdown = new TlbShootdown();
    const a = new SoftTlb(16);
    const b = new SoftTlb(16);
    const holdera = { tlb: a, context: 0 };
    const holderb = { tlb: b, context: 0 };
    shootdown.add(holdera);
    shootdown.add(holderb);
    expect(shootdown.count).toBe(2);
    for (const tlb of [a, b]) {
      tlb.insert(0, 1, 10, PERM_ALL);
      tlb.insert(0, 2, 20, PERM_ALL);
      tlb.insert(0, 3, 10, PERM_ALL);
    }
    shootdown.flushPage(0, 1);
    for (const tlb of [a, b]) expect([tlb.lookup(0, 1, 0), tlb.lookup(0, 2, 0), tlb.lookup(0, 3, 0)]).toEqual([-1, 20, 10]);
    shootdown.flushHostFrame(10);
    for (const tlb of [a, b]) expect([tlb.lookup(0, 2, 0), tlb.lookup(0, 3, 0)]).toEqual([20, -1]);
    shootdown.setGeneration(4);
    for (const tlb of [a, b]) {
      expect(tlb.generation).toBe(4);
      expect(tlb.countValid()).toBe(0);
      tlb.insert(0, 5, 50, PERM_ALL);
    }
    expect(shootdown.remoteFlushes).toBe(0);
    shootdown.flushAll();
    expect(shootdown.remoteFlushes).toBe(1);
    expect(a.countValid() + b.countValid()).toBe(0);
  });

  it('stops flushing a TLB once removed', () => {
    const shootdown = new TlbShootdown();
    const a = new SoftTlb(16);
    const b = new SoftTlb(16);
    const holdera = { tlb: a, context: 0 };
    const holderb = { tlb: b, context: 0 };
    shootdown.add(holdera);
    shootdown.add(holderb);
    shootdown.remove(holdera);
    shootdown.remove(holdera); // removing twice is harmless
    expect(shootdown.count).toBe(1);
    a.insert(0, 1, 10, PERM_ALL);
    b.insert(0, 1, 10, PERM_ALL);
    shootdown.flushAll();
    expect(a.lookup(0, 1, 0)).toBe(10);
    expect(b.lookup(0, 1, 0)).toBe(-1);
  });
});
