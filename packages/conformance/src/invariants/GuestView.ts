/** One guest mapping as the suite set it up: virtual page → gfn with `GuestPerm` bits. */
export interface GuestMapping {
  readonly gfn: number;
  readonly perm: number;
}

/** The guest's own mappings, by virtual page number. */
export type GuestView = ReadonlyMap<number, GuestMapping>;
