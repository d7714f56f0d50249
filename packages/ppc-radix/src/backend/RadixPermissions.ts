import { Access, ACCESS_KINDS, isValidAccess } from '@hvmmu/core';
import { RadixProt } from '../format/RadixEntry.js';

/**
 * TLB permission masks (one bit per core `Access` kind) from the radix
 * access allowed in problem state and in privileged state
 * (`RadixProt` bits each): index `userProt * 8 + supervisorProt`. A kind is
 * a user access when it has USER and not IMPLICIT (a table walk's own
 * read is privileged, as on any CPU); it needs EXECUTE (fetch), WRITE
 * (store) or READ.
 */
export const PERM_BY_PROT = (() => {
  const table = new Uint16Array(64);
  for (let user = 0; user < 8; user++) {
    for (let sup = 0; sup < 8; sup++) {
      let perm = 0;
      for (let kind = 0; kind < ACCESS_KINDS; kind++) {
        if (!isValidAccess(kind)) continue;
        const prot = (kind & (Access.USER | Access.IMPLICIT)) === Access.USER ? user : sup;
        const need = (kind & Access.FETCH) !== 0 ? RadixProt.EXECUTE : (kind & Access.WRITE) !== 0 ? RadixProt.WRITE : RadixProt.READ;
        if ((prot & need) !== 0) perm |= 1 << kind;
      }
      table[user * 8 + sup] = perm;
    }
  }
  return table;
})();

/** Access kinds that are instruction fetches, and those that are data accesses. */
export const FETCH_KINDS = (() => {
  let mask = 0;
  for (let kind = 0; kind < ACCESS_KINDS; kind++) if (isValidAccess(kind) && (kind & Access.FETCH) !== 0) mask |= 1 << kind;
  return mask;
})();
export const DATA_KINDS = (() => {
  let mask = 0;
  for (let kind = 0; kind < ACCESS_KINDS; kind++) if (isValidAccess(kind) && (kind & Access.FETCH) === 0) mask |= 1 << kind;
  return mask;
})();
