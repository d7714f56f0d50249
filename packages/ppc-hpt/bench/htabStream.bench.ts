import { Hypervisor } from '@hvmmu/core';
import { HashPageTable, HashPageTableStore, HptGuestSide, KvmHtabReader, KvmHtabWriter, ppcHptBackend } from '@hvmmu/ppc-hpt';
import { pairedNs, speedFigure, type BenchContext, type BenchFigure, type BenchSuite } from '../../../bench/src/BenchFigure.js';

const CHUNK = 1 << 20;

/** An order-`order` HPT with every tenth entry valid (4K pages, spread over all groups). */
function occupiedTable(order: number): HashPageTable {
  const hpt = new HashPageTable(order);
  const v = hpt.view;
  for (let i = 0; i < hpt.entries; i += 10) {
    v.setUint32(i * 16, 0x1, false);
    v.setUint32(i * 16 + 4, ((i & 0x1f_ffff) << 7) | 0x1, false);
    v.setUint32(i * 16 + 12, ((i % 0x10_0000) << 12) | 0x192, false);
  }
  return hpt;
}

/** Read one whole pass (first or later) into `out`; returns the bytes. */
function readPass(reader: KvmHtabReader, out: Uint8Array): number {
  let total = 0;
  const first = reader.inFirstPass;
  for (;;) {
    const n = reader.read(out);
    total += n;
    // A later pass ends with a read of 0 bytes (kvm_htab_read's end of pass); a first pass when it wraps.
    if (n === 0 || (first && !reader.inFirstPass)) return total;
  }
}

/**
 * The HTAB stream over an order-24 HPT (16 MiB) at 10 % occupancy, in KVM's
 * format (kvm_htab_read): a first pass in bytes of table per second against
 * `Buffer.copy` of the 16 MiB (≥ 0.25 wanted); a later pass with nothing
 * changed against the first (≥ 10× faster wanted: it skips the modified
 * bitmap 32 entries a step and never reads the table); and the restore
 * (kvm_htab_write of the first pass into an empty table) against the copy.
 */
function stream(ctx: BenchContext): Record<string, BenchFigure> {
  const order = ctx.quick ? 20 : 24;
  const hpt = occupiedTable(order);
  const store = new HashPageTableStore(hpt);
  const out = new Uint8Array(CHUNK);
  const src = Buffer.from(hpt.bytes.buffer, hpt.bytes.byteOffset, hpt.bytes.byteLength);
  const dst = Buffer.alloc(src.length);
  const copy = (): number => src.copy(dst);
  const firstPass = (): number => readPass(new KvmHtabReader(store), out);
  // A reader past its first pass: every call is one later pass (nothing changes between them).
  const laterReader = new KvmHtabReader(store);
  readPass(laterReader, out);
  const laterPass = (): number => readPass(laterReader, out);
  // The first pass's bytes, to restore.
  const records: Uint8Array[] = [];
  {
    const reader = new KvmHtabReader(store);
    for (;;) {
      const n = reader.read(out);
      records.push(out.slice(0, n));
      if (!reader.inFirstPass) break;
    }
  }
  const target = new HashPageTable(order);
  const restore = (): number => {
    const writer = new KvmHtabWriter(new HashPageTableStore(target));
    let n = 0;
    for (const r of records) n += writer.write(r);
    return n;
  };
  restore();
  if (!Buffer.from(target.bytes).equals(src)) throw new Error('bench set-up: the restored table differs from the source');
  if (laterPass() !== 0) throw new Error('bench set-up: a later pass with nothing changed sent bytes');
  const first = pairedNs(firstPass, copy, 1, ctx);
  const later = pairedNs(laterPass, firstPass, 1, ctx);
  const loaded = pairedNs(restore, copy, 1, ctx);
  const mib = hpt.bytes.byteLength / 2 ** 20;
  return {
    firstPassVsCopy: speedFigure(first, `ns per ${mib} MiB table`, 'Buffer.copy of the table / first HTAB pass (10 % valid)', '≥ 0.25'),
    laterPassNoChanges: speedFigure(later, 'ns per pass', 'first pass / later pass with nothing changed', '≥ 10'),
    restoreVsCopy: speedFigure(loaded, `ns per ${mib} MiB table`, 'Buffer.copy of the table / kvm_htab_write of the first pass', 'reported'),
  };
}

/**
 * Host bytes per valid HPTE in the backend at 10 % occupancy: the guest
 * view, the real HPT, the reverse map (links and ring gfn per HPTE, one
 * rmap word per guest page) and the modified bitmap, against the 16 bytes
 * of the HPTE itself.
 */
function bytesPerValidHpte(ctx: BenchContext): BenchFigure {
  const order = ctx.quick ? 18 : 20;
  const pages = 2 ** (order - 4) / 10;
  const vm = new Hypervisor({ memoryBytes: 8 << 20 }).createVm({ backend: ppcHptBackend, backendOptions: { hptOrder: order } });
  vm.memslots.create({ id: 0, guestPhysAddr: 0, size: Math.ceil(pages) * 4096 });
  const side = new HptGuestSide(vm);
  for (let p = 0; p < Math.floor(pages); p++) side.map(0, 0x1_0000 + p, p, 1);
  const s = vm.stats();
  const bytes = s.hptTableBytes + s.hptRmapBytes + vm.arch.hpt.guest.modified.byteLength;
  const value = bytes / s.hptGuestEntries;
  return {
    value,
    baseline: 16,
    ratio: value / 16,
    unit: 'B/valid HPTE',
    ratioMeaning: `host bytes per valid HPTE (${s.hptGuestEntries} of ${vm.arch.hpt.guest.entries}) / the 16-byte HPTE`,
    target: 'reported',
  };
}

export const htabStreamSuite: BenchSuite = {
  name: 'ppc.hpt.htab',
  run: (ctx) => ({ ...stream(ctx), bytesPerValidHpte: bytesPerValidHpte(ctx) }),
};
