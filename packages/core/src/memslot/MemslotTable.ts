import { inject, injectable } from 'tsyringe';
import { HvmmuError, hex } from '../errors/HvmmuError.js';
import { HOST_MEMORY, VM_CONFIG } from '../di/tokens.js';
import { HOST_PAGE_SHIFT, HOST_PAGE_SIZE, type HostMemory } from '../memory/HostMemory.js';
import type { GuestMemory } from '../memory/GuestMemory.js';
import { RmapOpsRegistry } from '../rmap/RmapOpsRegistry.js';
import { RMAP_INVALID, RMAP_NORMAL } from '../rmap/RmapStrategy.js';
import type { BackendTypes } from '../vm/BackendTypes.js';
import type { VmConfig } from '../vm/VmConfig.js';
import { FRAME_ZERO, MEMSLOT_VALID_FLAGS, Memslot, MemslotFlags, allocatePerPage, type MemslotChange } from './Memslot.js';
import type { MemslotListener } from './MemslotListener.js';

/** Largest slot id accepted (KVM_USER_MEM_SLOTS is 32764 on x86). */
export const MEMSLOT_MAX_ID = 32767;

/** `gfnToHfn`: no memory backs the gfn for this access (hole, slot going away, or a write to a read-only slot). */
export const GFN_NO_MEMORY = -1;
/** `gfnToHfn`: the host has no free frame to back the page (the access ends with HOST_OUT_OF_MEMORY). */
export const GFN_HOST_OUT_OF_MEMORY = -2;

export interface MemslotRequest {
  /** Slot id, 0..32767, unique among live slots. */
  readonly id: number;
  /** First guest physical address; 4 KiB aligned. */
  readonly guestPhysAddr: number;
  /** Size in bytes; a non-zero multiple of 4 KiB. */
  readonly size: number;
  /** `MemslotFlags` bits. */
  readonly flags?: number;
}

/**
 * A VM's memslots with KVM semantics: create / delete / move / change flags,
 * each validated before anything changes (a bad request throws and leaves the
 * table as it was). gfn → slot lookup is a binary search over slots sorted by
 * base gfn behind a last-hit cache. Every update bumps `generation`.
 *
 * Also the VM's guest-physical memory (`GuestMemory`): gpa → host offset with
 * frames faulted in on first touch, and copy-on-write of the zero frame.
 */
@injectable()
export class MemslotTable<T extends BackendTypes = BackendTypes> implements GuestMemory {
  readonly view: DataView;
  /** Changes with every memslot update (KVM's memslots generation). */
  generation = 0;
  /**
   * Bumped on every host-side invalidation (KVM mmu_invalidate_seq): a fault
   * that snapshots it before resolving a host frame and sees it moved after
   * must retry rather than install a stale frame.
   */
  invalidationSeq = 0;

  /**
   * Set when a guest access needed a host frame and none was free (a walk's
   * A/D update or a first touch); the vCPU turns the access into a
   * HOST_OUT_OF_MEMORY exit whatever the MMU answered, and clears it.
   */
  hostOutOfMemory = false;

  private sorted: Memslot<T>[] = [];
  private readonly byId = new Map<number, Memslot<T>>();
  private lastHit: Memslot<T> | undefined = undefined;
  private readonly listeners: MemslotListener<T>[] = [];
  private closed = false;
  private readonly maxGfn: number;
  /** Reverse map host frame → (slot id, page index) for host-side notifier events. */
  private readonly hfnSlot: Int32Array;
  private readonly hfnIndex: Int32Array;
  private privateFrames = 0;

  constructor(
    @inject(HOST_MEMORY) readonly host: HostMemory,
    @inject(RmapOpsRegistry) private readonly rmapRegistry: RmapOpsRegistry<T>,
    @inject(VM_CONFIG) config: VmConfig,
  ) {
    this.view = host.view;
    this.maxGfn = 2 ** (config.guestPhysBits - HOST_PAGE_SHIFT);
    this.hfnSlot = new Int32Array(host.frameCount).fill(-1);
    this.hfnIndex = new Int32Array(host.frameCount);
  }

  /** Add a listener; the first one added (the VM's MMU) makes each slot's backend data. */
  addListener(listener: MemslotListener<T>): void {
    this.listeners.push(listener);
  }

  /**
   * The VM is being destroyed: after its slots are deleted, every change and
   * every access through this table is refused with VM_DESTROYED.
   */
  close(): void {
    this.closed = true;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Number of live slots. */
  get count(): number {
    return this.sorted.length;
  }

  /** Host frames privately owned by this VM's slots (the zero frame excluded). */
  get framesInUse(): number {
    return this.privateFrames;
  }

  /** Live slots in guest-address order. */
  slots(): readonly Memslot<T>[] {
    return this.sorted;
  }

  get(id: number): Memslot<T> {
    const slot = this.byId.get(id);
    if (slot === undefined || slot.invalid) throw new HvmmuError('MEMSLOT_UNKNOWN', `no memslot with id ${id}`);
    return slot;
  }

  has(id: number): boolean {
    const slot = this.byId.get(id);
    return slot !== undefined && !slot.invalid;
  }

  /** The visible slot containing gfn, or undefined. O(log n), O(1) on a repeat hit. */
  findByGfn(gfn: number): Memslot<T> | undefined {
    const last = this.lastHit;
    if (last !== undefined && gfn >= last.baseGfn && gfn < last.baseGfn + last.npages) return last;
    const slots = this.sorted;
    let lo = 0;
    let hi = slots.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const slot = slots[mid]!;
      if (gfn < slot.baseGfn) hi = mid - 1;
      else if (gfn < slot.baseGfn + slot.npages) {
        this.lastHit = slot;
        return slot;
      } else lo = mid + 1; // also where NaN goes, so it matches no slot
    }
    return undefined;
  }

  // ---------------------------------------------------------------- updates

  create(request: MemslotRequest): Memslot<T> {
    this.checkOpen();
    if (request === null || typeof request !== 'object') {
      throw new HvmmuError('BAD_ARGUMENT', `a memslot request must be an object { id, guestPhysAddr, size, flags? }, got ${String(request)}`);
    }
    const flags = request.flags ?? 0;
    this.checkId(request.id);
    if (this.byId.has(request.id)) {
      throw new HvmmuError('MEMSLOT_EXISTS', `memslot ${request.id} already exists`, { id: request.id });
    }
    checkFlags(flags);
    const [baseGfn, npages] = this.checkRange(request.guestPhysAddr, request.size);
    this.checkNoOverlap(baseGfn, npages, -1);

    const slot = new Memslot<T>(request.id, baseGfn, npages, flags, this.rmapRegistry.get(RMAP_NORMAL));
    if ((flags & MemslotFlags.LOG_DIRTY_PAGES) !== 0) slot.dirtyBitmap = newDirtyBitmap(npages);
    this.prepare(slot, 'create');
    this.byId.set(slot.id, slot);
    this.insertSorted(slot);
    this.generation++;
    for (const l of this.listeners) l.commitMemslot(slot, 'create', 0);
    return slot;
  }

  delete(id: number): void {
    this.checkOpen();
    this.deleteSlot(id);
  }

  private deleteSlot(id: number): void {
    const slot = this.get(id);
    this.invalidate(slot, 'delete');
    if (slot.touched) {
      const frames = slot.frames;
      for (let i = 0; i < slot.npages; i++) {
        const hfn = frames[i]!;
        if (hfn >= 0) {
          this.hfnSlot[hfn] = -1;
          this.host.freeFrame(hfn);
          this.privateFrames--;
        }
      }
      slot.releaseFrames();
    }
    this.byId.delete(id);
    this.generation++;
    for (const l of this.listeners) l.commitMemslot(slot, 'delete', slot.flags);
  }

  /** Move a slot to a new guest physical base; its memory contents move with it (KVM_MR_MOVE). */
  move(id: number, newGuestPhysAddr: number): void {
    this.checkOpen();
    const slot = this.get(id);
    const [baseGfn] = this.checkRange(newGuestPhysAddr, slot.npages * HOST_PAGE_SIZE);
    this.checkNoOverlap(baseGfn, slot.npages, id);
    // Same base: nothing changes (KVM turns an identical request into a no-op).
    if (baseGfn === slot.baseGfn) return;
    this.invalidate(slot, 'move');
    slot.baseGfn = baseGfn;
    slot.rmapOps = this.rmapRegistry.get(RMAP_NORMAL);
    this.prepare(slot, 'move');
    slot.invalid = false;
    this.insertSorted(slot);
    this.generation++;
    for (const l of this.listeners) l.commitMemslot(slot, 'move', slot.flags);
  }

  /** Change flags; only LOG_DIRTY_PAGES may change (READONLY is fixed at creation, as in KVM). */
  setFlags(id: number, flags: number): void {
    this.checkOpen();
    const slot = this.get(id);
    checkFlags(flags);
    if (((flags ^ slot.flags) & MemslotFlags.READONLY) !== 0) {
      throw new HvmmuError('MEMSLOT_BAD_FLAGS', `READONLY is fixed at creation (slot ${id})`, { id, flags });
    }
    if (flags === slot.flags) return;
    const bitmap = (flags & MemslotFlags.LOG_DIRTY_PAGES) !== 0 ? newDirtyBitmap(slot.npages) : null;
    const oldFlags = slot.flags;
    slot.flags = flags;
    slot.dirtyBitmap = bitmap;
    this.generation++;
    for (const l of this.listeners) l.commitMemslot(slot, 'flags', oldFlags);
  }

  /**
   * KVM_GET_DIRTY_LOG: return the pages written since the last call and clear
   * the log; the MMU re-arms logging (write-protects) for the harvested pages.
   */
  getDirtyLog(id: number): Uint32Array {
    this.checkOpen();
    const slot = this.get(id);
    const bitmap = slot.dirtyBitmap;
    if (bitmap === null) {
      throw new HvmmuError('MEMSLOT_BAD_FLAGS', `memslot ${id} does not log dirty pages`, { id });
    }
    const harvested = bitmap.slice();
    bitmap.fill(0);
    for (const l of this.listeners) l.dirtyLogHarvested(slot, harvested);
    return harvested;
  }

  /** Invalidate host frames [startHfn, endHfn) of this VM (MMU notifier). Returns mappings dropped. */
  invalidateHostRange(startHfn: number, endHfn: number): number {
    this.checkOpen();
    checkHostFrameRange(startHfn, endHfn);
    let dropped = 0;
    this.invalidationSeq++;
    const lo = Math.max(0, startHfn);
    const hi = Math.min(this.host.frameCount, endHfn);
    let runSlot = -1;
    let runStart = 0;
    let runEnd = 0;
    for (let hfn = lo; hfn <= hi; hfn++) {
      const sid = hfn < hi ? this.hfnSlot[hfn]! : -1;
      const gfn = sid >= 0 ? this.byId.get(sid)!.baseGfn + this.hfnIndex[hfn]! : -1;
      if (sid === runSlot && gfn === runEnd) {
        runEnd++;
        continue;
      }
      if (runSlot >= 0) dropped += this.notifyInvalidate(this.byId.get(runSlot)!, runStart, runEnd);
      runSlot = sid;
      runStart = gfn;
      runEnd = gfn + 1;
    }
    return dropped;
  }

  /**
   * Move the guest page backed by host frame `hfn` to a fresh frame with the
   * same contents (host page migration), tell the MMU (change_pte), then free
   * the old frame. Returns the new frame.
   */
  migrateHostFrame(hfn: number): number {
    this.checkOpen();
    const gfn = this.gfnOfHostFrame(hfn);
    if (gfn < 0) throw new HvmmuError('HOST_BAD_FRAME', `host frame ${hfn} backs no page of this VM`, { hfn });
    const slot = this.byId.get(this.hfnSlot[hfn]!)!;
    const index = this.hfnIndex[hfn]!;
    const newHfn = this.host.allocFrame();
    this.host.bytes.copyWithin(newHfn * HOST_PAGE_SIZE, hfn * HOST_PAGE_SIZE, (hfn + 1) * HOST_PAGE_SIZE);
    slot.frames[index] = newHfn;
    this.hfnSlot[newHfn] = slot.id;
    this.hfnIndex[newHfn] = index;
    this.invalidationSeq++;
    for (const l of this.listeners) l.changeGfnPte(slot, gfn, newHfn);
    this.hfnSlot[hfn] = -1;
    this.host.freeFrame(hfn);
    return newHfn;
  }

  /** The slot owning host frame hfn, or undefined. */
  slotOfHostFrame(hfn: number): Memslot<T> | undefined {
    if (!(Number.isInteger(hfn) && hfn >= 0 && hfn < this.host.frameCount)) return undefined;
    const sid = this.hfnSlot[hfn]!;
    const slot = sid < 0 ? undefined : this.byId.get(sid);
    return slot === undefined || slot.invalid ? undefined : slot;
  }

  /** The gfn host frame hfn backs in a visible slot, or -1. */
  gfnOfHostFrame(hfn: number): number {
    const slot = this.slotOfHostFrame(hfn);
    return slot === undefined ? -1 : slot.baseGfn + this.hfnIndex[hfn]!;
  }

  // ------------------------------------------------- guest physical memory

  /**
   * Host frame backing gfn, for the MMU building a mapping. A read of an
   * untouched page gives the shared zero frame (map it read-only); a write
   * gives the page its own frame (copy-on-write, with an invalidation of the
   * zero-frame mappings first). Returns -1 if `slot` does not hold gfn (or
   * is being deleted or moved), or if `write` and the slot is read-only
   * (GFN_NO_MEMORY); GFN_HOST_OUT_OF_MEMORY if the page needs a host frame and
   * none is free (also flagged in `hostOutOfMemory`). Never throws.
   */
  gfnToHfn(slot: Memslot<T>, gfn: number, write: boolean): number {
    const index = gfn - slot.baseGfn;
    if (!(index >= 0 && index < slot.npages) || slot.invalid) return GFN_NO_MEMORY;
    const frames = this.framesOf(slot);
    if (frames === null) return GFN_HOST_OUT_OF_MEMORY;
    // A fraction gives undefined.
    const hfn = frames[index];
    if (hfn === undefined) return GFN_NO_MEMORY;
    if (hfn >= 0) return write && slot.readOnly ? GFN_NO_MEMORY : hfn;
    if (!write) {
      const zero = this.zeroFrameOrNone();
      if (zero < 0) return GFN_HOST_OUT_OF_MEMORY;
      frames[index] = FRAME_ZERO;
      return zero;
    }
    if (slot.readOnly) return GFN_NO_MEMORY;
    return this.faultIn(slot, index, hfn === FRAME_ZERO);
  }

  resolve(gpa: number, write: boolean): number {
    // A negative gpa would give a negative offset into the page before.
    if (!Number.isSafeInteger(gpa) || gpa < 0) return -1;
    const offset = gpa % HOST_PAGE_SIZE;
    const gfn = (gpa - offset) / HOST_PAGE_SIZE;
    const slot = this.findByGfn(gfn);
    if (slot === undefined) return -1;
    const index = gfn - slot.baseGfn;
    const frames = this.framesOf(slot);
    if (frames === null) return -1;
    let hfn = frames[index]!;
    if (write) {
      if (slot.readOnly) return -1;
      if (hfn < 0) hfn = this.faultIn(slot, index, hfn === FRAME_ZERO);
      if (hfn < 0) return -1;
      if (slot.dirtyBitmap !== null) slot.markDirty(gfn);
    } else if (hfn < 0) {
      hfn = this.zeroFrameOrNone();
      if (hfn < 0) return -1;
      frames[index] = FRAME_ZERO;
    }
    return hfn * HOST_PAGE_SIZE + offset;
  }

  /**
   * Host-side access (the VMM's own mapping): ignores READONLY and marks
   * nothing dirty. A write faults the page's frame in; a read of a page that
   * has none reads the zero frame and allocates nothing, so dumping guest
   * memory does not populate it.
   */
  private hostOffset(gpa: number, size: number, write: boolean): number {
    this.checkOpen();
    const offset = gpa % HOST_PAGE_SIZE;
    const gfn = (gpa - offset) / HOST_PAGE_SIZE;
    const slot = Number.isSafeInteger(gpa) && gpa >= 0 ? this.findByGfn(gfn) : undefined;
    if (slot === undefined || offset + size > HOST_PAGE_SIZE) {
      throw new HvmmuError(
        'GUEST_NO_MEMORY',
        slot === undefined ? `no memslot backs guest physical address ${hex(gpa)}` : `access of ${size} bytes at ${hex(gpa)} crosses a page`,
        { gpa, size },
      );
    }
    const index = gfn - slot.baseGfn;
    let hfn = slot.frameAt(index);
    if (hfn < 0) {
      if (write) {
        hfn = this.faultIn(slot, index, hfn === FRAME_ZERO);
        this.hostOutOfMemory = false;
        if (hfn < 0) throw new HvmmuError('HOST_OUT_OF_MEMORY', `no free host frame to back guest physical address ${hex(gpa)}`, { gpa });
      } else {
        hfn = this.host.zeroFrame;
      }
    }
    return hfn * HOST_PAGE_SIZE + offset;
  }

  read8(gpa: number): number {
    return this.host.bytes[this.hostOffset(gpa, 1, false)]!;
  }

  write8(gpa: number, value: number): void {
    checkValueBits(value, 8);
    this.host.bytes[this.hostOffset(gpa, 1, true)] = value;
  }

  read16(gpa: number, littleEndian: boolean): number {
    return this.view.getUint16(this.hostOffset(gpa, 2, false), littleEndian);
  }

  write16(gpa: number, value: number, littleEndian: boolean): void {
    checkValueBits(value, 16);
    this.view.setUint16(this.hostOffset(gpa, 2, true), value, littleEndian);
  }

  read32(gpa: number, littleEndian: boolean): number {
    return this.view.getUint32(this.hostOffset(gpa, 4, false), littleEndian);
  }

  write32(gpa: number, value: number, littleEndian: boolean): void {
    checkValueBits(value, 32);
    this.view.setUint32(this.hostOffset(gpa, 4, true), value >>> 0, littleEndian);
  }

  read64Hi(gpa: number, littleEndian: boolean): number {
    const at = this.hostOffset(gpa, 8, false);
    return this.view.getUint32(littleEndian ? at + 4 : at, littleEndian);
  }

  read64Lo(gpa: number, littleEndian: boolean): number {
    const at = this.hostOffset(gpa, 8, false);
    return this.view.getUint32(littleEndian ? at : at + 4, littleEndian);
  }

  write64Halves(gpa: number, hi: number, lo: number, littleEndian: boolean): void {
    checkValueBits(hi, 32);
    checkValueBits(lo, 32);
    const at = this.hostOffset(gpa, 8, true);
    this.view.setUint32(littleEndian ? at + 4 : at, hi >>> 0, littleEndian);
    this.view.setUint32(littleEndian ? at : at + 4, lo >>> 0, littleEndian);
  }

  /**
   * Copy bytes into guest memory (may cross pages). Every page of the range
   * is checked first, so a range running into a hole writes nothing.
   */
  writeBytes(gpa: number, data: Uint8Array): void {
    this.checkHostRange(gpa, data.length);
    let done = 0;
    while (done < data.length) {
      const at = gpa + done;
      const n = Math.min(data.length - done, HOST_PAGE_SIZE - (at % HOST_PAGE_SIZE));
      const off = this.hostOffset(at, n, true);
      this.host.bytes.set(data.subarray(done, done + n), off);
      done += n;
    }
  }

  /** Copy bytes out of guest memory (may cross pages); a range running into a hole reads nothing. */
  readBytes(gpa: number, out: Uint8Array): void {
    this.checkHostRange(gpa, out.length);
    let done = 0;
    while (done < out.length) {
      const at = gpa + done;
      const n = Math.min(out.length - done, HOST_PAGE_SIZE - (at % HOST_PAGE_SIZE));
      const off = this.hostOffset(at, n, false);
      out.set(this.host.bytes.subarray(off, off + n), done);
      done += n;
    }
  }

  private checkHostRange(gpa: number, length: number): void {
    this.checkOpen();
    if (length === 0) return;
    if (!Number.isSafeInteger(gpa) || gpa < 0) {
      throw new HvmmuError('GUEST_NO_MEMORY', `no memslot backs guest physical address ${hex(gpa)}`, { gpa, size: length });
    }
    const firstGfn = Math.floor(gpa / HOST_PAGE_SIZE);
    const lastGfn = Math.floor((gpa + length - 1) / HOST_PAGE_SIZE);
    for (let gfn = firstGfn; gfn <= lastGfn; gfn++) {
      if (this.findByGfn(gfn) === undefined) {
        const at = Math.max(gpa, gfn * HOST_PAGE_SIZE);
        throw new HvmmuError('GUEST_NO_MEMORY', `no memslot backs guest physical address ${hex(at)}`, { gpa: at, size: length });
      }
    }
  }

  // ------------------------------------------------------------- internals

  /** The slot's frame table, or null (flagging host out of memory) if it cannot be allocated. */
  private framesOf(slot: Memslot<T>): Int32Array | null {
    if (slot.touched) return slot.frames;
    try {
      return slot.frames;
    } catch (error) {
      if (error instanceof HvmmuError && error.code === 'HOST_OUT_OF_MEMORY') {
        this.hostOutOfMemory = true;
        return null;
      }
      throw error;
    }
  }

  /** The shared zero frame, or -1 (flagging host out of memory) if it does not exist yet and no frame is free. */
  private zeroFrameOrNone(): number {
    if (this.host.framesFree === 0 && !this.host.hasZeroFrame) {
      this.hostOutOfMemory = true;
      return -1;
    }
    return this.host.zeroFrame;
  }

  /** Give page `index` its own frame; GFN_HOST_OUT_OF_MEMORY (nothing changed) if none is free. */
  private faultIn(slot: Memslot<T>, index: number, wasZeroMapped: boolean): number {
    if (this.host.framesFree === 0) {
      this.hostOutOfMemory = true;
      return GFN_HOST_OUT_OF_MEMORY;
    }
    if (wasZeroMapped) {
      // The guest may map the zero frame read-only at this gfn: drop those
      // mappings before the page gets its own frame (MMU notifier on COW).
      this.invalidationSeq++;
      this.notifyInvalidate(slot, slot.baseGfn + index, slot.baseGfn + index + 1);
    }
    const hfn = this.host.allocFrame();
    slot.frames[index] = hfn;
    this.hfnSlot[hfn] = slot.id;
    this.hfnIndex[hfn] = index;
    this.privateFrames++;
    return hfn;
  }

  /** prepareMemslot: the first listener (the MMU) makes the slot's backend data. */
  private prepare(slot: Memslot<T>, change: MemslotChange): void {
    let first = true;
    for (const l of this.listeners) {
      const data = l.prepareMemslot(slot, change);
      if (first) slot.arch = data;
      first = false;
    }
  }

  private checkOpen(): void {
    if (this.closed) throw new HvmmuError('VM_DESTROYED', 'the VM of this memslot table has been destroyed');
  }

  private notifyInvalidate(slot: Memslot<T>, startGfn: number, endGfn: number): number {
    let dropped = 0;
    for (const l of this.listeners) dropped += l.invalidateGfnRange(slot, startGfn, endGfn);
    return dropped;
  }

  /** KVM's first half of DELETE/MOVE: invalid rmap table, hidden from lookups, MMU flush. */
  private invalidate(slot: Memslot<T>, change: MemslotChange): void {
    slot.rmapOps = this.rmapRegistry.get(RMAP_INVALID);
    slot.invalid = true;
    this.sorted.splice(this.sorted.indexOf(slot), 1);
    this.lastHit = undefined;
    this.generation++;
    this.invalidationSeq++;
    for (const l of this.listeners) l.flushMemslot(slot, change);
  }

  private insertSorted(slot: Memslot<T>): void {
    let i = 0;
    while (i < this.sorted.length && this.sorted[i]!.baseGfn < slot.baseGfn) i++;
    this.sorted.splice(i, 0, slot);
    this.lastHit = undefined;
  }

  private checkId(id: number): void {
    if (!Number.isInteger(id) || id < 0 || id > MEMSLOT_MAX_ID) {
      throw new HvmmuError('MEMSLOT_BAD_ID', `memslot id must be an integer in 0..${MEMSLOT_MAX_ID}, got ${id}`, { id });
    }
  }

  private checkRange(gpa: number, size: number): [number, number] {
    if (size === 0) {
      throw new HvmmuError('MEMSLOT_ZERO_SIZE', 'memslot size must be a positive multiple of 4 KiB, got 0', { size });
    }
    // KVM's guest_phys_addr and memory_size are u64: a negative or unbounded
    // value is an address outside the guest physical space, not a misalignment.
    if (!(gpa >= 0 && gpa <= Number.MAX_SAFE_INTEGER) || !(size > 0 && size <= Number.MAX_SAFE_INTEGER)) {
      throw new HvmmuError('MEMSLOT_OUT_OF_RANGE', `memslot [${gpa}, +${size}) is outside the guest physical address space`, { gpa, size });
    }
    if (gpa % HOST_PAGE_SIZE !== 0 || size % HOST_PAGE_SIZE !== 0) {
      throw new HvmmuError('MEMSLOT_UNALIGNED', `memslot base ${hex(gpa)} and size ${hex(size)} must be 4 KiB aligned`, { gpa, size });
    }
    const baseGfn = gpa / HOST_PAGE_SIZE;
    const npages = size / HOST_PAGE_SIZE;
    if (baseGfn + npages > this.maxGfn) {
      throw new HvmmuError('MEMSLOT_OUT_OF_RANGE', `memslot [${hex(gpa)}, ${hex(gpa + size)}) is outside the guest physical address space`, { gpa, size });
    }
    if (npages > 0x7fff_ffff) {
      throw new HvmmuError('MEMSLOT_OUT_OF_RANGE', `memslot of ${npages} pages is too large`, { npages });
    }
    return [baseGfn, npages];
  }

  private checkNoOverlap(baseGfn: number, npages: number, ignoreId: number): void {
    for (const other of this.sorted) {
      if (other.id === ignoreId) continue;
      if (baseGfn < other.baseGfn + other.npages && other.baseGfn < baseGfn + npages) {
        throw new HvmmuError(
          'MEMSLOT_OVERLAP',
          `guest range [${hex(baseGfn * HOST_PAGE_SIZE)}, ${hex((baseGfn + npages) * HOST_PAGE_SIZE)}) overlaps memslot ${other.id}`,
          { id: other.id },
        );
      }
    }
  }
}

function checkFlags(flags: number): void {
  // Only bits 0 and 1 exist: any larger value (also one ≥ 2^32 whose low bits look valid) is unknown.
  if (!Number.isInteger(flags) || flags < 0 || flags > MEMSLOT_VALID_FLAGS || (flags & ~MEMSLOT_VALID_FLAGS) !== 0) {
    throw new HvmmuError('MEMSLOT_BAD_FLAGS', `unknown memslot flags ${typeof flags === 'number' ? hex(flags) : String(flags)}`);
  }
}

function newDirtyBitmap(npages: number): Uint32Array {
  return allocatePerPage('dirty bitmap', npages, () => new Uint32Array(Math.ceil(npages / 32)));
}

/** A value stored in `bits` bits must fit them, as an unsigned or a two's-complement signed integer. */
export function checkValueBits(value: number, bits: number): void {
  if (!Number.isInteger(value) || value < -(2 ** (bits - 1)) || value >= 2 ** bits) {
    throw new HvmmuError('BAD_ARGUMENT', `value ${String(value)} does not fit in ${bits} bits`);
  }
}

/** A host frame range is two integers, start ≤ end (frames past the pool are ignored). */
export function checkHostFrameRange(startHfn: number, endHfn: number): void {
  if (!Number.isSafeInteger(startHfn) || !Number.isSafeInteger(endHfn) || startHfn < 0 || startHfn > endHfn) {
    throw new HvmmuError('BAD_ARGUMENT', `bad host frame range [${String(startHfn)}, ${String(endHfn)})`);
  }
}
