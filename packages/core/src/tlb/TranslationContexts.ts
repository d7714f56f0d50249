import { inject, injectable } from 'tsyringe';
import { VM_CONFIG } from '../di/tokens.js';
import { HvmmuError } from '../errors/HvmmuError.js';
import type { VmConfig } from '../vm/VmConfig.js';
import { TlbShootdown } from './TlbShootdown.js';

/** Whoever holds a context id is told when it is taken away. */
export interface TranslationContextOwner {
  /**
   * `context` was flushed and given to another owner: forget it, and get a
   * new one before a vCPU runs in this owner's address space again.
   */
  contextRevoked(context: number): void;
}

/** Every vCPU starts in this context; it is never allocated, so a backend with one address space just uses it. */
export const DEFAULT_CONTEXT = 0;

/**
 * The translation-context ids of one VM, handed out as hardware hands out
 * ASIDs or PCIDs: a small fixed set (one per TLB entry, see `SoftTlb`),
 * allocated to the backend's address spaces and recycled when they run out.
 * A recycled id is flushed on every vCPU first and its previous owner is
 * told; a context some vCPU currently runs in is never taken. So a guest
 * can create as many address spaces as it likes without the host allocating
 * more, and a switch between live ones needs no flush.
 */
@injectable()
export class TranslationContexts {
  /** Ids 1..capacity-1 are allocatable (0 is `DEFAULT_CONTEXT`). */
  readonly capacity: number;
  private readonly owners: (TranslationContextOwner | null)[];
  /** Allocation order of each id, for least-recently-allocated recycling. */
  private readonly stamps: Float64Array;
  private clock = 0;
  private inUse = 0;
  /** Contexts taken from one owner for another. */
  recycled = 0;

  constructor(
    @inject(VM_CONFIG) config: VmConfig,
    @inject(TlbShootdown) private readonly tlbs: TlbShootdown,
  ) {
    this.capacity = config.tlbEntries;
    this.owners = new Array<TranslationContextOwner | null>(this.capacity).fill(null);
    this.stamps = new Float64Array(this.capacity);
  }

  /** Ids currently allocated. */
  get allocated(): number {
    return this.inUse;
  }

  /**
   * A context id for `owner`, clean (no TLB entry on any vCPU). Takes a free
   * id, else the least recently allocated one no vCPU runs in (flushed, its
   * owner told). Throws only if every id is some vCPU's current context,
   * which needs a TLB with no more entries than the VM has vCPUs.
   */
  allocate(owner: TranslationContextOwner): number {
    let victim = -1;
    for (let id = 1; id < this.capacity; id++) {
      if (this.owners[id] === null) {
        victim = id;
        break;
      }
      if (!this.tlbs.isCurrent(id) && (victim < 0 || this.stamps[id]! < this.stamps[victim]!)) victim = id;
    }
    if (victim < 0) {
      throw new HvmmuError(
        'TLB_BAD_CONTEXT',
        `no translation context left: every one of the ${this.capacity - 1} is a vCPU's current context (use a larger tlbEntries)`,
      );
    }
    const previous = this.owners[victim];
    if (previous !== null && previous !== undefined) {
      this.tlbs.flushContext(victim);
      this.recycled++;
      this.owners[victim] = null;
      previous.contextRevoked(victim);
    } else {
      this.inUse++;
    }
    this.owners[victim] = owner;
    this.stamps[victim] = ++this.clock;
    return victim;
  }

  /** Give `context` back: its translations are flushed on every vCPU. */
  release(context: number): void {
    if (!Number.isInteger(context) || context < 1 || context >= this.capacity || this.owners[context] === null) {
      throw new HvmmuError('TLB_BAD_CONTEXT', `translation context ${String(context)} is not allocated`);
    }
    this.tlbs.flushContext(context);
    this.owners[context] = null;
    this.inUse--;
  }

  /** Mark `context` recently used, so recycling takes others first. */
  touch(context: number): void {
    if (context > 0 && context < this.capacity && this.owners[context] !== null) this.stamps[context] = ++this.clock;
  }

  ownerOf(context: number): TranslationContextOwner | null {
    return this.owners[context] ?? null;
  }
}
