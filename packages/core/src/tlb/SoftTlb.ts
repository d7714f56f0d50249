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
 * A vCPU's software TLB: direct-mapped, three parallel typed arrays (tag,
 * host frame, permission mask), tagged by translation context and virtual
 * page number.
 *
 * **Contexts.** A translation context is a small integer in `[0, size)` (x86:
 * an address space; POWER: an LPID/PID pair in real or relocated mode; a
 * nested L2). A virtual page number may use all 52 bits of a 64-bit address,
 * and a Float64 tag holds 53 exact bits, so the context cannot be added to
 * the tag; it selects the set instead: entry `(vpn & mask) ^ context` holds
 * `vpn`. Two contexts never put the same vpn in the same entry (the XOR of
 * distinct contexts below `size` is never 0), so a tag equal to `vpn` at
 * that index is a hit for exactly that (context, vpn) — a context switch
 * needs no flush and the hit path reads no more arrays than before.
 *
 * **Inlined hits.** An emulator may inline the hit (as QEMU's generated code
 * inlines its softmmu TLB): with `t = vcpu.tlb`, `i = (vpn & t.mask) ^
 * vcpu.context`, the access hits when `t.tags[i] === vpn` and `(t.perms[i] >>
 * access) & 1` for a valid `Access` value, giving host frame `t.frames[i]`;
 * anything else goes through `vcpu.translatePage(vpn, access)`. Faster, for a
 * call site whose access kind is fixed: `k = t.tagsFor(access)` is that
 * kind's own tag array (QEMU keeps `addr_read`, `addr_write` and `addr_code`
 * per entry for the same reason), holding `vpn` where the entry serves the
 * kind and -1 elsewhere, so the hit is `k[i] === vpn` alone. The arrays are
 * never replaced, only written during vCPU and MMU calls. Such hits are not
 * counted in `hits`.
 *
 * `perm` holds one bit per `Access` kind the entry may serve: clearing a bit
 * forces that kind of access through the slow path (a clean page that must
 * fault to set D, a dirty-logged page, a watchpoint).
 */
export class SoftTlb {
  readonly size: number;
  readonly mask: number;
  /**
   * Virtual page number per entry; -1 = empty. Float64 so 52-bit vpns fit.
   * An empty entry also has `perms` 0, so a lookup of vpn -1 (which equals the
   * empty tag) can never hit a stale frame.
   */
  readonly tags: Float64Array;
  readonly frames: Int32Array;
  readonly perms: Uint16Array;
  private current = 0;
  /** Per-access-kind tag arrays made by `tagsFor`, by kind, and the same as a list. */
  private readonly kindTags: (Float64Array | undefined)[] = new Array<Float64Array | undefined>(ACCESS_KINDS).fill(undefined);
  private readonly kindViews: { readonly kind: number; readonly tags: Float64Array }[] = [];

  /** Hits served by `lookup()`. */
  private lookupHits = 0;
  /** The vCPU whose inlined hit path counts its own hits (see `Vcpu.translate`). */
  private fastPathOwner: { readonly tlbFastHits: number } | null = null;
  misses = 0;
  /** Whole-TLB flushes and context flushes (each may drop any entry). */
  flushes = 0;
  /** Flushes of one page, a range, or a host frame. */
  pageFlushes = 0;
  /** Context flushes alone (also counted in `flushes`). */
  contextFlushes = 0;

  constructor(size: number) {
    if (!Number.isInteger(size) || size < 1 || size > 1 << 24 || (size & (size - 1)) !== 0) {
      throw new HvmmuError('TLB_BAD_SIZE', `TLB size must be a power of two in 1..2^24, got ${size}`);
    }
    this.size = size;
    this.mask = size - 1;
    this.tags = new Float64Array(size).fill(-1);
    this.frames = new Int32Array(size);
    this.perms = new Uint16Array(size);
  }

  /** Translation contexts this TLB tells apart: ids 0..size-1. */
  get contexts(): number {
    return this.size;
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

  /** The entry (context, vpn) lives in. */
  indexOf(context: number, vpn: number): number {
    return (vpn & this.mask) ^ context;
  }

  /**
   * Host frame for vpn in `context` if cached and `access` is allowed, else -1
   * (counts hit/miss). An access value that is not a valid kind never hits.
   */
  lookup(context: number, vpn: number, access: number): number {
    const i = (vpn & this.mask) ^ context;
    if (this.tags[i] === vpn && (access & 0xf) === access /* ACCESS_MASK, as in Vcpu.translate */ && ((this.perms[i]! >> access) & 1) !== 0) {
      this.lookupHits++;
      return this.frames[i]!;
    }
    this.misses++;
    return -1;
  }

  insert(context: number, vpn: number, hfn: number, perm: number): void {
    const i = (vpn & this.mask) ^ context;
    const allowed = perm & EXISTING_KINDS_PERM;
    this.tags[i] = vpn;
    this.frames[i] = hfn;
    this.perms[i] = allowed;
    // Out of line: `insert` is inlined into the vCPU's miss path, whose size is budgeted (see `Vcpu.translateSlow`).
    if (this.kindViews.length !== 0) this.insertIntoKindViews(i, vpn, allowed);
  }

  private insertIntoKindViews(i: number, vpn: number, allowed: number): void {
    const views = this.kindViews;
    for (let v = 0; v < views.length; v++) views[v]!.tags[i] = ((allowed >> views[v]!.kind) & 1) !== 0 ? vpn : -1;
  }

  /**
   * The tag array of one access kind, for an inlined hit at a call site whose
   * kind is fixed: entry i holds `tags[i]` where `perms[i]` allows `access`
   * and -1 elsewhere. Made on first request (size × 8 bytes; at most one per
   * kind) and kept up to date by every later TLB write; the same array is
   * returned each time.
   */
  tagsFor(access: number): Float64Array {
    if (!isValidAccess(access)) throw new HvmmuError('BAD_ARGUMENT', `tagsFor: not an access kind: ${String(access)}`);
    const existing = this.kindTags[access];
    if (existing !== undefined) return existing;
    const view = new Float64Array(this.size);
    for (let i = 0; i < this.size; i++) view[i] = ((this.perms[i]! >> access) & 1) !== 0 ? this.tags[i]! : -1;
    this.kindTags[access] = view;
    this.kindViews.push({ kind: access, tags: view });
    return view;
  }

  flushAll(): void {
    this.tags.fill(-1);
    this.perms.fill(0);
    for (const view of this.kindViews) view.tags.fill(-1);
    this.flushes++;
  }

  /**
   * Drop every entry of one context. An entry at index i holding vpn belongs
   * to context `(vpn & mask) ^ i`, so this is one pass over the tags.
   */
  flushContext(context: number): void {
    this.checkContext(context);
    const { tags, mask } = this;
    for (let i = 0; i < this.size; i++) {
      const vpn = tags[i]!;
      if (vpn !== -1 && ((vpn & mask) ^ i) === context) this.drop(i);
    }
    this.flushes++;
    this.contextFlushes++;
  }

  /** Drop the entry of vpn in `context`. */
  flushPage(context: number, vpn: number): void {
    const i = (vpn & this.mask) ^ context;
    if (this.tags[i] === vpn) this.drop(i);
    this.pageFlushes++;
  }

  /** Drop vpn in every context (a page-granular flush that does not name a context). */
  flushPageAllContexts(vpn: number): void {
    const { tags, mask } = this;
    const base = vpn & mask;
    for (let context = 0; context < this.size; context++) {
      if (tags[base ^ context] === vpn) this.drop(base ^ context);
    }
    this.pageFlushes++;
  }

  /** Flush `count` pages from vpn in `context` (a large page); falls back to a context flush when cheaper. */
  flushRange(context: number, vpn: number, count: number): void {
    if (count >= this.size) {
      this.flushContext(context);
      return;
    }
    for (let k = 0; k < count; k++) {
      const v = vpn + k;
      const i = (v & this.mask) ^ context;
      if (this.tags[i] === v) this.drop(i);
    }
    this.pageFlushes++;
  }

  /** Drop every entry that maps host frame hfn, in any context (a host page goes away). */
  flushHostFrame(hfn: number): void {
    const { tags, frames } = this;
    for (let i = 0; i < this.size; i++) if (frames[i] === hfn && tags[i] !== -1) this.drop(i);
    this.pageFlushes++;
  }

  /**
   * Start a new generation: entries filled under an older one are dropped.
   * Used by MMUs that obsolete all their tables at once (fast zap): every
   * valid entry was filled under the current generation, so a new one drops
   * them all — a whole-TLB flush, not an entry-by-entry test.
   */
  setGeneration(generation: number): void {
    if (generation >>> 0 === this.current) return;
    this.current = generation >>> 0;
    this.flushAll();
  }

  /** Generation of the entries the TLB holds. */
  get generation(): number {
    return this.current;
  }

  private drop(i: number): void {
    this.tags[i] = -1;
    this.perms[i] = 0;
    const views = this.kindViews;
    for (let v = 0; v < views.length; v++) views[v]!.tags[i] = -1;
  }

  /** Entries currently valid, in one context or in all (O(size); for stats and tests). */
  countValid(context?: number): number {
    let n = 0;
    for (let i = 0; i < this.size; i++) {
      const vpn = this.tags[i]!;
      if (vpn !== -1 && (context === undefined || ((vpn & this.mask) ^ i) === context)) n++;
    }
    return n;
  }

  /** Refuse a context id this TLB cannot hold (host misuse). */
  checkContext(context: number): void {
    if (!Number.isInteger(context) || context < 0 || context >= this.size) {
      throw new HvmmuError('TLB_BAD_CONTEXT', `translation context must be an integer in 0..${this.size - 1}, got ${String(context)}`);
    }
  }
}
