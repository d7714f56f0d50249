/**
 * Expected outcome of one guest access, written rule by rule from the ISA
 * (Intel SDM vol. 3 §4.6 access rights, §4.6.2 protection keys, §4.7
 * page-fault error code, §4.8 accessed and dirty flags) in the style of
 * kvm-unit-tests x86/access.c `ac_emulate_access`. It works on booleans
 * describing the entries, never on entry bits or masks, and shares no code
 * with the walker.
 */

export type OracleMode = 'long4' | 'long5' | 'pae' | 'bits32';
export type AccessKind = 'read' | 'write' | 'fetch';
/** supervisor = explicit access at CPL 0; user = CPL 3; implicit = implicit supervisor access made at CPL 3. */
export type Privilege = 'supervisor' | 'user' | 'implicit';

/** One paging-structure entry, as the flags a test sets in it. */
export interface EntryFlags {
  readonly present: boolean;
  readonly writable: boolean;
  readonly user: boolean;
  readonly accessed: boolean;
  readonly dirty: boolean;
  readonly noExecute: boolean;
  /** PS (only meaningful in a PDE). */
  readonly pageSize: boolean;
  /** One bit the architecture reserves for this entry kind is set. */
  readonly reservedBit: boolean;
  /** Protection key 1 instead of 0 in bits 62:59 (long mode only). */
  readonly key1: boolean;
}

/** The paging-structure entries above the PD (PML5E, PML4E, PDPTE in long mode), all present. */
export interface UpperFlags {
  readonly writable: boolean;
  readonly user: boolean;
  readonly noExecute: boolean;
}

export interface Controls {
  readonly wp: boolean;
  readonly smep: boolean;
  readonly smap: boolean;
  /** EFLAGS.AC. */
  readonly ac: boolean;
  readonly nxe: boolean;
  /** CR4.PKE. */
  readonly pke: boolean;
  /** CR4.PSE (32-bit paging only; always on in the other modes' tests). */
  readonly pse: boolean;
  /** PKRU.AD and PKRU.WD for key 1. */
  readonly key1AccessDisable: boolean;
  readonly key1WriteDisable: boolean;
  /** Key 0 is never restricted; key 2 (what non-leaf entries carry) is fully denied when true. */
  readonly key2Denied: boolean;
}

export interface Scenario {
  readonly mode: OracleMode;
  /** Flags of every entry above the PD, one per level from the top (long mode: 1 or 2 or 3 entries). */
  readonly upper: readonly UpperFlags[];
  readonly pde: EntryFlags;
  readonly pte: EntryFlags;
  readonly kind: AccessKind;
  readonly privilege: Privilege;
  readonly controls: Controls;
}

export interface Expectation {
  readonly fault: boolean;
  /** Page-fault error code (P W U RSVD I/D PK) when `fault`. */
  readonly errorCode: number;
  /** The PDE is the leaf (2 MiB / 4 MiB page). */
  readonly largePage: boolean;
  /** After the access: A set in upper entries, PDE, PTE; D set in PDE, PTE. */
  readonly upperAccessed: boolean;
  readonly pdeAccessed: boolean;
  readonly pdeDirty: boolean;
  readonly pteAccessed: boolean;
  readonly pteDirty: boolean;
  /** Effective rights when the walk reached a leaf: writable, user, executable (= no XD with NXE on). */
  readonly writable: boolean;
  readonly user: boolean;
  readonly executable: boolean;
}

// SDM 4.7, figure 4-12: error-code bit positions.
export const EC_P = 1;
export const EC_W = 2;
export const EC_U = 4;
export const EC_RSVD = 8;
export const EC_ID = 16;
export const EC_PK = 32;

function isLongMode(mode: OracleMode): boolean {
  return mode === 'long4' || mode === 'long5';
}

/** SDM 4.4/4.5: the XD bit exists in 8-byte entries; with IA32_EFER.NXE = 0 it is reserved. */
function xdIsReserved(s: Scenario, e: EntryFlags): boolean {
  return s.mode !== 'bits32' && e.noExecute && !s.controls.nxe;
}

/** Does the PDE map a large page? SDM 4.3: in 32-bit paging PS is honoured only with CR4.PSE = 1. */
function pdeIsLeaf(s: Scenario): boolean {
  return s.pde.pageSize && (s.mode !== 'bits32' || s.controls.pse);
}

/**
 * Is the PDE's reserved-bit flag an architecturally reserved bit? The tests
 * set a bit that is reserved for the entry kind (an address bit above
 * MAXPHYADDR for a PD table pointer, bit 13 of a 2 MiB leaf, bit 17 of a
 * PSE-36 4 MiB leaf), except in 32-bit paging where a non-leaf PDE has none.
 * Bit 17 is reserved as KVM models PSE-36 (36-bit addresses); SDM table 4-4
 * would make it address bit 36 at the harness's MAXPHYADDR of 40.
 */
function pdeReserved(s: Scenario): boolean {
  if (s.pde.reservedBit && (s.mode !== 'bits32' || pdeIsLeaf(s))) return true;
  return xdIsReserved(s, s.pde);
}

/** 4 KiB PTEs reserve the address bits above MAXPHYADDR (8-byte entries); 4-byte PTEs reserve nothing. */
function pteReserved(s: Scenario): boolean {
  if (s.pte.reservedBit && s.mode !== 'bits32') return true;
  return xdIsReserved(s, s.pte);
}

export function expectAccess(s: Scenario): Expectation {
  const c = s.controls;
  const write = s.kind === 'write';
  const fetch = s.kind === 'fetch';
  // SDM 4.6: implicit supervisor accesses are supervisor-mode accesses whatever the CPL.
  const userMode = s.privilege === 'user';

  // SDM 4.7: W/R and U/S describe the access. I/D is reported for fetches
  // when NXE or SMEP is on: KVM's rule (paging_tmpl.h), which SDM 4.7 shares
  // except under 32-bit paging, where it counts SMEP only (docs/x86-shadow.md).
  let baseCode = 0;
  if (write) baseCode |= EC_W;
  if (userMode) baseCode |= EC_U;
  if (fetch && (c.nxe || c.smep)) baseCode |= EC_ID;

  const unchanged = (largePage: boolean): Expectation => ({
    fault: true,
    errorCode: 0,
    largePage,
    upperAccessed: false,
    pdeAccessed: s.pde.accessed,
    pdeDirty: s.pde.dirty,
    pteAccessed: s.pte.accessed,
    pteDirty: s.pte.dirty,
    writable: false,
    user: false,
    executable: false,
  });
  const notPresent = (largePage: boolean): Expectation => ({ ...unchanged(largePage), errorCode: baseCode });
  const reserved = (largePage: boolean): Expectation => ({ ...unchanged(largePage), errorCode: baseCode | EC_P | EC_RSVD });

  // The walk, top down. The upper entries are present and carry no reserved
  // bit by construction, except XD, which is reserved in every entry while
  // NXE is off.
  for (const u of s.upper) {
    if (u.noExecute && !c.nxe) return reserved(false);
  }
  if (!s.pde.present) return notPresent(false);
  if (pdeReserved(s)) return reserved(false);
  const large = pdeIsLeaf(s);
  if (!large) {
    if (!s.pte.present) return notPresent(false);
    if (pteReserved(s)) return reserved(false);
  }
  const leaf = large ? s.pde : s.pte;

  // SDM 4.6.1: R/W and U/S must allow the access at every level; XD at any level forbids fetches.
  let writable = s.pde.writable;
  let user = s.pde.user;
  let noExecute = s.pde.noExecute;
  for (const u of s.upper) {
    writable = writable && u.writable;
    user = user && u.user;
    noExecute = noExecute || u.noExecute;
  }
  if (!large) {
    writable = writable && s.pte.writable;
    user = user && s.pte.user;
    noExecute = noExecute || s.pte.noExecute;
  }
  // 4-byte entries have no XD; with NXE off nothing is execute-disabled.
  const executable = !(noExecute && c.nxe && s.mode !== 'bits32');

  let violation = false;
  // User-mode accesses need a user page.
  if (userMode && !user) violation = true;
  // Writes need R/W=1, except supervisor writes while CR0.WP=0.
  if (write && !writable && (userMode || c.wp)) violation = true;
  // Fetches from execute-disabled pages.
  if (fetch && !executable) violation = true;
  // SMEP: supervisor fetches from user pages.
  if (fetch && !userMode && user && c.smep) violation = true;
  // SMAP: supervisor data accesses to user pages, unless EFLAGS.AC=1 on an explicit access.
  if (!fetch && !userMode && user && c.smap && !(s.privilege === 'supervisor' && c.ac)) violation = true;

  // SDM 4.6.2: protection keys, long mode with CR4.PKE, data accesses to user pages.
  let keyViolation = false;
  if (isLongMode(s.mode) && c.pke && user && !fetch) {
    const ad = leaf.key1 ? c.key1AccessDisable : false;
    const wd = leaf.key1 ? c.key1WriteDisable : false;
    if (ad) keyViolation = true;
    else if (write && wd && (userMode || c.wp)) keyViolation = true;
  }

  if (violation || keyViolation) {
    return {
      ...unchanged(large),
      errorCode: baseCode | EC_P | (keyViolation ? EC_PK : 0),
      writable,
      user,
      executable,
    };
  }

  // SDM 4.8: A in every entry used, D in the leaf for a write; PTEs below a large leaf are not used.
  return {
    fault: false,
    errorCode: 0,
    largePage: large,
    upperAccessed: true,
    pdeAccessed: true,
    pdeDirty: large ? s.pde.dirty || write : s.pde.dirty,
    pteAccessed: large ? s.pte.accessed : true,
    pteDirty: large ? s.pte.dirty : s.pte.dirty || write,
    writable,
    user,
    executable,
  };
}
