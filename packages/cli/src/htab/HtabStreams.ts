// Writing a hashed page table in each form `hvmmu htab` knows, and comparing two tables entry by
// entry in the guest view.
import type { HashPageTable, HtabStore } from '@hvmmu/ppc-hpt';
import type { PpcHptPackage } from '../inspect/PpcPackages.js';
import type { HtabFormat } from './HtabTableInput.js';

export interface HtabWriteOptions {
  readonly bigEndianHeaders?: boolean;
  /** QEMU section id (default 0x23b, what the fixture's QEMU used). */
  readonly sectionId?: number;
  /** QEMU: end the first PART record after this many HPTEs (default: START then END only). */
  readonly firstIteration?: number;
}

/** The bytes of `hpt` (whose stream view is `store`) in `format`: a first pass read to its end. */
export function writeHtab(ppc: PpcHptPackage, hpt: HashPageTable, store: HtabStore, format: HtabFormat, o: HtabWriteOptions = {}): Uint8Array {
  if (format === 'image') {
    // The guest view: an invalid entry is only invalid. The words H_REMOVE leaves behind in it
    // are not the guest's (no stream carries them), so the image holds zeros there and a table
    // loaded back from any stream format is this image byte for byte.
    const image = hpt.bytes.slice();
    for (let i = 0; i < image.length; i += 16) if ((image[i + 7]! & 1) === 0) image.fill(0, i, i + 16);
    return image;
  }
  const parts: Uint8Array[] = [];
  if (format === 'kvm') {
    const reader = new ppc.KvmHtabReader(store, { headerByteOrder: o.bigEndianHeaders === true ? 'big' : 'little' });
    const buffer = new Uint8Array(1 << 20);
    // The first pass stops at the table's end; the next read finds nothing modified and returns 0.
    for (let n = reader.read(buffer); n > 0; n = reader.read(buffer)) parts.push(buffer.slice(0, n));
  } else {
    const writer = new ppc.QemuHtabSectionWriter(hpt, { sectionId: o.sectionId ?? 0x23b });
    parts.push(writer.start());
    if (o.firstIteration !== undefined) parts.push(writer.iterate(o.firstIteration));
    parts.push(writer.complete());
  }
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export interface HtabDifference {
  readonly index: number;
  /** added: invalid in A, valid in B; removed: the reverse; changed: valid in both, words differ. */
  readonly kind: 'added' | 'removed' | 'changed';
  readonly a: { readonly dword0: string; readonly dword1: string } | null;
  readonly b: { readonly dword0: string; readonly dword1: string } | null;
}

/**
 * Entries that differ in the guest view: an invalid entry is only "invalid" (its other bits are
 * not part of the guest's view and no stream carries them), a valid one is its two doublewords.
 */
export function diffHtabs(a: HashPageTable, b: HashPageTable, limit: number): { differences: HtabDifference[]; count: number } {
  const n = Math.min(a.entries, b.entries);
  const differences: HtabDifference[] = [];
  let count = 0;
  const words = (t: HashPageTable, i: number) => ({
    dword0: `0x${t.view
      .getBigUint64(i * 16, false)
      .toString(16)
      .padStart(16, '0')}`,
    dword1: `0x${t.view
      .getBigUint64(i * 16 + 8, false)
      .toString(16)
      .padStart(16, '0')}`,
  });
  const ab = a.bytes;
  const bb = b.bytes;
  for (let i = 0; i < n; i++) {
    const o = i * 16;
    const va = (ab[o + 7]! & 1) !== 0;
    const vb = (bb[o + 7]! & 1) !== 0;
    if (!va && !vb) continue;
    if (va && vb) {
      let same = true;
      for (let k = 0; k < 16; k++) {
        if (ab[o + k] !== bb[o + k]) {
          same = false;
          break;
        }
      }
      if (same) continue;
    }
    count++;
    if (differences.length < limit) {
      differences.push({ index: i, kind: va && vb ? 'changed' : va ? 'removed' : 'added', a: va ? words(a, i) : null, b: vb ? words(b, i) : null });
    }
  }
  return { differences, count };
}

export function validCount(hpt: HashPageTable): number {
  let n = 0;
  const b = hpt.bytes;
  for (let i = 7; i < b.length; i += 16) n += b[i]! & 1;
  return n;
}
