import { HvmmuError } from '../errors/HvmmuError.js';
import { ACCESS_KINDS, isValidAccess } from '../mmu/Access.js';

/**
 * Permission bits of the access kinds that exist (a write is never also a
 * fetch: kinds 3, 7, 11 and 15 do not). Entries never allow the others, so an
 * impossible access misses and reaches the slow path's argument check.
 */
const EXISTING_KINDS_PERM = (() => {
  let perm = 0;
  for (let kind = 0; kind < ACCESS_KINDS; kind++) if (isValidAccess(kind)) perm |= 1 << kind;
  return perm;
})();

/**
 * A vCPU's software TLB: direct-mapped by virtual page number, three parallel
 * typed arrays (tag, host frame, permission mask). A hit is one tag compare
 * and one permission bit test; every other case goes to the slow path.
 *
 * `perm` holds one bit per `Access` kind the entry may serve: clearing a bit
 * forces that kind of access through the slow path (a clean page that must
 * fault to set D, a dirty-logged page, a watchpoint). Each entry also records
 * the generation it was filled under so stale translations can be dropped by
 * generation after the MMU obsoletes its tables.
 */
export class SoftTlb {
  readonly size: number;
  readonly mask: number;
  /**
   * Virtual page number per entry; -1 = empty. Float64 so 45-bit vpns fit.
   * An empty entry also has `perms` 0, so a lookup of vpn -1 (which equals the
   * empty tag) can never hit a stale frame.
   */
  readonly tags: Float64Array;
  readonly frames: Int32Array;
  readonly perms: Uint16Array;
  readonly gens: Uint32Array;
  private current = 0;

  /** Hits served by `lookup()`. */
  private lookupHits = 0;
  /** The vCPU whose inlined hit path counts its own hits (see `Vcpu.translate`). */
  private fastPathOwner: { readonly tlbFastHits: number } | null = null;
  misses = 0;
  flushes = 0;
  pageFlushes = 0;

  constructor(size: number) {
    if (!Number.isInteger(size) || size < 1 || size > 1 << 24 || (size & (size - 1)) !== 0) {
      throw new HvmmuError('TLB_BAD_SIZE', `TLB size must be a power of two in 1..2^24, got ${size}`);
    }
    this.size = size;
    this.mask = size - 1;
    this.tags = new Float64Array(size).fill(-1);
    this.frames = new Int32Array(size);
    this.perms = new Uint16Array(size);
    this.gens = new Uint32Array(size);
  }

  /** TLB hits: through `lookup()` plus those of the owning vCPU's inlined fast path. */
  get hits(): number {
    return this.lookupHits + (this.fastPathOwner === null ? 0 : this.fastPathOwner.tlbFastHits);
  }

  /**
   * Let `owner` count the hits of its own inlined copy of the hit path: a
   * counter on the vCPU costs one load less per hit than one here, which is
   * measurable against a raw typed-array lookup (`npm run bench -- core.tlb`).
   */
  attachFastPath(owner: { readonly tlbFastHits: number }): void {
    this.fastPathOwner = owner;
  }

  /** Host frame for vpn if cached and `access` is allowed, else -1 (counts hit/miss). */
  lookup(vpn: number, access: number): number {
    const i = vpn & this.mask;
    if (this.tags[i] === vpn && ((this.perms[i]! >> access) & 1) !== 0) {
      this.lookupHits++;
      return this.frames[i]!;
    }
    this.misses++;
    return -1;
  }

  insert(vpn: number, hfn: number, perm: number): void {
    const i = vpn & this.mask;
    this.tags[i] = vpn;
    this.frames[i] = hfn;
    this.perms[i] = perm & EXISTING_KINDS_PERM;
    this.gens[i] = this.current;
  }

  flushAll(): void {
    this.tags.fill(-1);
    this.perms.fill(0);
    this.flushes++;
  }

  flushPage(vpn: number): void {
    const i = vpn & this.mask;
    if (this.tags[i] === vpn) this.drop(i);
    this.pageFlushes++;
  }

  /** Flush `count` pages from vpn (a large page); falls back to a full flush when cheaper. */
  flushRange(vpn: number, count: number): void {
    if (count >= this.size) {
      this.flushAll();
      return;
    }
    for (let k = 0; k < count; k++) {
      const v = vpn + k;
      const i = v & this.mask;
      if (this.tags[i] === v) this.drop(i);
    }
    this.pageFlushes++;
  }

  /** Drop every entry that maps host frame hfn (used when a host page goes away). */
  flushHostFrame(hfn: number): void {
    const { tags, frames } = this;
    for (let i = 0; i < this.size; i++) if (frames[i] === hfn && tags[i] !== -1) this.drop(i);
    this.pageFlushes++;
  }

  /**
   * Start a new generation: entries filled under an older one are dropped.
   * Used by MMUs that obsolete all their tables at once (fast zap). Every
   * valid entry carries the current generation (`insert` stamps it and this
   * is the only way to change it), so a new generation drops them all: a
   * whole-TLB flush rather than an entry-by-entry test.
   */
  setGeneration(generation: number): void {
    if (generation >>> 0 === this.current) return;
    this.current = generation >>> 0;
    this.flushAll();
  }

  /** Generation stamped on new entries. */
  get generation(): number {
    return this.current;
  }

  private drop(i: number): void {
    this.tags[i] = -1;
    this.perms[i] = 0;
  }

  /** Entries currently valid (O(size); for stats and tests). */
  countValid(): number {
    let n = 0;
    for (let i = 0; i < this.size; i++) if (this.tags[i] !== -1) n++;
    return n;
  }
}
