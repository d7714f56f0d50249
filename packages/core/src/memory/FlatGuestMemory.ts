import { HvmmuError } from '../errors/HvmmuError.js';
import type { GuestMemory } from './GuestMemory.js';

/**
 * Guest-physical memory that is one flat image starting at gpa 0: a memory
 * dump (QEMU `pmemsave`, a core file's RAM) or a test fixture. Optionally
 * read-only, so introspection can never write A/D bits into an image.
 */
export class FlatGuestMemory implements GuestMemory {
  readonly view: DataView;
  readonly identityReads = true;
  private readonly size: number;
  private readonly readOnly: boolean;

  constructor(image: ArrayBufferView | ArrayBuffer | SharedArrayBuffer, options: { readOnly?: boolean } = {}) {
    if (image instanceof ArrayBuffer || (typeof SharedArrayBuffer === 'function' && image instanceof SharedArrayBuffer)) {
      this.view = new DataView(image);
    } else if (ArrayBuffer.isView(image)) {
      this.view = new DataView(image.buffer, image.byteOffset, image.byteLength);
    } else {
      throw new HvmmuError('BAD_ARGUMENT', 'FlatGuestMemory needs an ArrayBuffer or a typed array');
    }
    // Walkers read naturally aligned entries of up to 8 bytes at the offset
    // `resolve` returns; a ragged tail of an image shorter than 8 bytes is
    // not resolvable, so no such read can run past the view and throw.
    this.size = this.view.byteLength - (this.view.byteLength % 8);
    this.readOnly = options.readOnly === true;
  }

  resolve(gpa: number, write: boolean): number {
    if (write && this.readOnly) return -1;
    // Math.floor, not gpa % 1: a float modulo is a libcall, floor one instruction.
    return gpa >= 0 && gpa < this.size && Math.floor(gpa) === gpa ? gpa : -1;
  }
}
