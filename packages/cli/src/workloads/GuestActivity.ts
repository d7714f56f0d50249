/** What a replay made the guest and the host do, counted as it happens (plain numbers). */
export class GuestActivity {
  /** Translations made (one per access; a trace access crossing a page boundary makes two). */
  accesses = 0;
  maps = 0;
  unmaps = 0;
  protects = 0;
  spacesCreated = 0;
  spaceSwitches = 0;
  memslotChanges = 0;
  pagesInvalidated = 0;
  mappingsDropped = 0;
  dirtyPagesHarvested = 0;
}
