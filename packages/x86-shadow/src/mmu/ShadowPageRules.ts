import { ROLE_HAS_4_BYTE_GPTE, roleQuadrant } from '../shadow/PageRole.js';
import { SPTE_ENT_PER_PAGE, SPTE_HI_NX, SPTE_HI_PKEY_MASK, SPTE_P, SPTE_U, SPTE_W, isShadowPresent, spteFrame } from '../spte/Spte.js';
import { ACC_EXEC, ACC_USER, ACC_WRITE } from '../spte/Acc.js';

/** Extra flag: a level-3 special page used as the hardware's PAE root (its entries are PDPTEs). */
export const SP_PAE_ROOT_TABLE = 1 << 5;
/** Extra flag: the page is on the pending-free (invalid) list. */
export const SP_ZAP_QUEUED = 1 << 6;

/** KVM BATCH_ZAP_PAGES: lock-break interval when zapping obsolete pages. */
export const BATCH_ZAP_PAGES = 10;
/** KVM_MIN_FREE_MMU_PAGES / KVM_REFILL_PAGES / KVM_MIN_ALLOC_MMU_PAGES. */
export const MIN_FREE_MMU_PAGES = 5;
export const REFILL_PAGES = 25;
export const MIN_ALLOC_MMU_PAGES = 64;
/** KVM_PERMILLE_MMU_PAGES: default shadow-page budget is 2% of guest pages. */
export const PERMILLE_MMU_PAGES = 20;

/** Outcome of `setSpte` (KVM RET_PF_*). */
export const SET_SPTE_FIXED = 0;
export const SET_SPTE_SPURIOUS = 1;
export const SET_SPTE_EMULATE = 2;

/** The gpa of the gpte behind entry i of a level-1 page (FNAME(get_level1_sp_gpa)). */
export function level1GpteGpa(gfn: number, role: number, i: number): number {
  if ((role & ROLE_HAS_4_BYTE_GPTE) !== 0) return gfn * 4096 + (roleQuadrant(role) * SPTE_ENT_PER_PAGE + i) * 4;
  return gfn * 4096 + i * 8;
}

/** FNAME(gpte_access): W and U from the entry, X unless XD (4-byte entries have no XD). */
export function gpteAccess(lo: number, hi: number, fourByte: boolean): number {
  const x = fourByte || (hi & 0x8000_0000) === 0 ? ACC_EXEC : 0;
  return (lo & (ACC_WRITE | ACC_USER)) | x;
}

/**
 * detect_write_misaligned: a write smaller than 4 bytes or spanning two
 * gptes (a 1-byte write at a gpte-aligned offset is allowed: guests clear
 * status bits with byte operations).
 */
export function writeMisaligned(role: number, offset: number, bytes: number): boolean {
  const pteSize = (role & ROLE_HAS_4_BYTE_GPTE) !== 0 ? 4 : 8;
  if (offset % pteSize === 0 && bytes === 1) return false;
  const misaligned = Math.floor(offset / pteSize) !== Math.floor((offset + bytes - 1) / pteSize);
  return misaligned || bytes < 4;
}

/**
 * True if the new spte grants less than the old one (W, U or X lost, or
 * another frame / key): the hardware TLBs must then be flushed.
 */
export function lostPermission(oldLo: number, oldHi: number, newLo: number, newHi: number): boolean {
  if (!isShadowPresent(oldLo)) return false;
  if (!isShadowPresent(newLo)) return true;
  if ((oldLo & ~newLo & (SPTE_W | SPTE_U | SPTE_P)) !== 0) return true;
  if ((newHi & ~oldHi & SPTE_HI_NX) !== 0) return true;
  if (((oldHi ^ newHi) & SPTE_HI_PKEY_MASK) !== 0) return true;
  return spteFrame(oldHi, oldLo) !== spteFrame(newHi, newLo);
}
