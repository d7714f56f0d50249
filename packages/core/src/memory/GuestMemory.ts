/**
 * What a guest page-table walker needs from guest-physical memory: a byte view
 * and a way to turn a guest physical address into an offset in it.
 *
 * Implemented by the VM's memslot table (gpa -> slot -> host frame, faulting
 * host frames in on first touch) and by `FlatGuestMemory` (a raw memory image
 * of a real machine, gpa = offset). Walkers stay free of memslot details and
 * can walk a `pmemsave` dump as easily as a live VM.
 */
export interface GuestMemory {
  /** Bytes that `resolve` offsets index into. */
  readonly view: DataView;
  /**
   * Offset in `view` of guest physical address `gpa`, or -1 if no memory
   * backs it (or, with `write`, if it is read-only). Never throws: gpa comes
   * from the guest. A write resolve marks the page dirty where dirty logging
   * is on.
   */
  resolve(gpa: number, write: boolean): number;
  /**
   * True when a read of any address in [0, view.byteLength - 8] resolves
   * to the address itself (a flat image, or host memory): a walker may then
   * read entries straight from `view` after a bounds check.
   */
  readonly identityReads?: boolean;
}
