import { HvmmuError } from '../errors/HvmmuError.js';
import type { GuestMemory } from './GuestMemory.js';

const PAGE = 4096;

/**
 * Guest memory holding only some 4 KiB pages, packed into one buffer: the
 * page-table pages a memory dump or a test fixture keeps out of a large RAM
 * (reading a 2 GiB `pmemsave` image whole is not needed to walk its
 * tables). An address in no kept page is unbacked. Writable, so a test can
 * check that a side-effect-free walk wrote nothing.
 */
export class SparsePageMemory implements GuestMemory {
  readonly view: DataView;
  readonly bytes: Uint8Array;
  private readonly offsetOfPage = new Map<number, number>();

  /** `pages`: page gpa (4 KiB aligned) -> 4096 bytes. */
  constructor(pages: ReadonlyMap<number, Uint8Array>) {
    this.bytes = new Uint8Array(pages.size * PAGE);
    let offset = 0;
    for (const [gpa, data] of pages) {
      if (!Number.isSafeInteger(gpa) || gpa < 0 || gpa % PAGE !== 0 || data.length !== PAGE) {
        throw new HvmmuError('BAD_ARGUMENT', `page 0x${gpa.toString(16)} is not a whole 4 KiB-aligned page`);
      }
      this.bytes.set(data, offset);
      this.offsetOfPage.set(gpa, offset);
      offset += PAGE;
    }
    this.view = new DataView(this.bytes.buffer);
  }

  get pageCount(): number {
    return this.offsetOfPage.size;
  }

  hasPage(gpa: number): boolean {
    return this.offsetOfPage.has(gpa - (gpa % PAGE));
  }

  resolve(gpa: number, _write: boolean): number {
    if (!Number.isSafeInteger(gpa) || gpa < 0) return -1;
    const inPage = gpa % PAGE;
    const base = this.offsetOfPage.get(gpa - inPage);
    return base === undefined ? -1 : base + inPage;
  }
}
