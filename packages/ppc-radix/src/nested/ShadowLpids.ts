import { HvmmuError } from '@hvmmu/core';

/**
 * The pool of partition ids L0 gives its guests and their nested guests'
 * shadow partitions (KVM kvmppc_alloc_lpid / kvmppc_free_lpid, an IDA over
 * [1, count - 1] since 2022: LPID 0 is the host). Lowest free id first;
 * a bitmap, so it never allocates beyond `count` bits.
 */
export class ShadowLpids {
  private readonly used: Uint8Array;
  private next = 1;
  inUse = 0;

  constructor(readonly count = 4096) {
    if (!Number.isInteger(count) || count < 2 || count > 1 << 20) throw new HvmmuError('BAD_ARGUMENT', `LPID count must be 2..2^20, got ${String(count)}`);
    this.used = new Uint8Array(Math.ceil(count / 8));
  }

  /** The lowest free LPID, or -1 when all are taken. */
  alloc(): number {
    for (let pass = 0; pass < 2; pass++) {
      for (let id = pass === 0 ? this.next : 1; id < this.count; id++) {
        if ((this.used[id >>> 3]! & (1 << (id & 7))) === 0) {
          this.used[id >>> 3] = this.used[id >>> 3]! | (1 << (id & 7));
          this.inUse++;
          this.next = 1;
          return id;
        }
      }
    }
    return -1;
  }

  free(id: number): void {
    if (!Number.isInteger(id) || id < 1 || id >= this.count || !this.isUsed(id)) throw new HvmmuError('BAD_ARGUMENT', `LPID ${String(id)} is not allocated`);
    this.used[id >>> 3] = this.used[id >>> 3]! & ~(1 << (id & 7));
    this.inUse--;
  }

  isUsed(id: number): boolean {
    return id >= 0 && id < this.count && (this.used[id >>> 3]! & (1 << (id & 7))) !== 0;
  }
}
