import { Access, FaultKind, MemslotFlags, type FaultKindValue } from '@hvmmu/core';
import type { ConformanceGuest } from '../ConformanceHarness.js';
import { guestPermAllows } from '../GuestAnswers.js';
import type { GuestView } from '../invariants/GuestView.js';

/** The suite's own idea of one memslot: range, flags, what the guest wrote, what must be logged dirty. */
export interface ModelSlot {
  readonly id: number;
  baseGfn: number;
  readonly npages: number;
  flags: number;
  /** Page index → the 32-bit value last written at the suite's probe offset. */
  readonly values: Map<number, number>;
  /** Page indexes written since the last harvest while logging (must show up in the dirty log). */
  readonly dirty: Set<number>;
}

/** What an access must do according to the model. */
export type ExpectedAccess =
  | { readonly kind: 'fault'; readonly fault: FaultKindValue; readonly code: number }
  | { readonly kind: 'completed'; readonly slot: ModelSlot; readonly index: number };

/**
 * An independent reference model of what the guest sees: memslots as plain
 * records, the guest's mappings, and memory contents. The suite predicts
 * every access from it (guest permission first, then memory backing, then
 * read-only slots, as a 2D or shadow walk orders them) and compares.
 */
export class GuestModel {
  readonly slots = new Map<number, ModelSlot>();
  /** gfn → `GuestPerm` bits of the guest mapping of `vpnOf(gfn)`. */
  readonly mappings = new Map<number, number>();

  constructor(private readonly guest: ConformanceGuest) {}

  slotAt(gfn: number): ModelSlot | undefined {
    for (const slot of this.slots.values()) if (gfn >= slot.baseGfn && gfn < slot.baseGfn + slot.npages) return slot;
    return undefined;
  }

  /** A slot other than `ignoreId` intersects [baseGfn, baseGfn + npages). */
  overlaps(baseGfn: number, npages: number, ignoreId: number): boolean {
    for (const slot of this.slots.values()) {
      if (slot.id !== ignoreId && baseGfn < slot.baseGfn + slot.npages && slot.baseGfn < baseGfn + npages) return true;
    }
    return false;
  }

  addSlot(id: number, baseGfn: number, npages: number, flags: number): ModelSlot {
    const slot: ModelSlot = { id, baseGfn, npages, flags, values: new Map(), dirty: new Set() };
    this.slots.set(id, slot);
    return slot;
  }

  guestView(): GuestView {
    const view = new Map<number, { gfn: number; perm: number }>();
    for (const [gfn, perm] of this.mappings) view.set(this.guest.vpnOf(gfn), { gfn, perm });
    return view;
  }

  expectAccess(gfn: number, access: number): ExpectedAccess {
    const perm = this.mappings.get(gfn);
    if (perm === undefined) return { kind: 'fault', fault: FaultKind.GUEST, code: this.guest.guestFaultCode(access, false) };
    if (!guestPermAllows(perm, access)) return { kind: 'fault', fault: FaultKind.GUEST, code: this.guest.guestFaultCode(access, true, perm) };
    const slot = this.slotAt(gfn);
    if (slot === undefined) return { kind: 'fault', fault: FaultKind.NO_MEMORY, code: 0 };
    if ((access & Access.WRITE) !== 0 && (slot.flags & MemslotFlags.READONLY) !== 0) return { kind: 'fault', fault: FaultKind.READ_ONLY, code: 0 };
    return { kind: 'completed', slot, index: gfn - slot.baseGfn };
  }
}
