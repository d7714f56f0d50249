/**
 * KVM's `union kvm_mmu_page_role` (arch/x86/include/asm/kvm_host.h) as one
 * 32-bit word: what a shadow page shadows and under which guest mode. The
 * pair (gfn, role word) identifies a shadow page in the hash, so two pages
 * at one gfn exist only if their roles differ (e.g. a guest table reached
 * with different inherited access, or in another CR0.WP mode).
 */
export const ROLE_LEVEL_MASK = 0xf;
/** The guest uses 4-byte (32-bit, non-PAE) entries. */
export const ROLE_HAS_4_BYTE_GPTE = 1 << 4;
export const ROLE_QUADRANT_SHIFT = 5;
export const ROLE_QUADRANT_MASK = 3 << ROLE_QUADRANT_SHIFT;
/** Maps a linear gfn range; shadows no guest table. */
export const ROLE_DIRECT = 1 << 7;
export const ROLE_ACCESS_SHIFT = 8;
export const ROLE_ACCESS_MASK = 7 << ROLE_ACCESS_SHIFT;
/** Zapped but still someone's root: never matched by a lookup. */
export const ROLE_INVALID = 1 << 11;
export const ROLE_EFER_NX = 1 << 12;
export const ROLE_CR0_WP = 1 << 13;
export const ROLE_SMEP_ANDNOT_WP = 1 << 14;
export const ROLE_SMAP_ANDNOT_WP = 1 << 15;
export const ROLE_AD_DISABLED = 1 << 16;
/** Belongs to an L2 (nested) MMU. */
export const ROLE_GUEST_MODE = 1 << 17;
/** A fake upper level above a guest table with fewer levels (5-level host over a 4-level guest); no gptes. */
export const ROLE_PASSTHROUGH = 1 << 18;
/**
 * hvmmu extension in an unused role bit (19): the pages were built with
 * protection keys shadowed into the sptes (EFER.LMA && CR4.PKE). KVM never
 * shadows keys (it hides PKU from shadow-paging guests), so it needs no such
 * bit; here sptes built without keys must not be reused once keys apply.
 */
export const ROLE_CR4_PKE = 1 << 19;
export const ROLE_SMM_SHIFT = 24;

/**
 * Bits an unsync page's role may differ in from the MMU's root role and
 * still be synced with it (KVM kvm_sync_page_check `sync_role_ign`).
 */
export const ROLE_SYNC_IGNORE = ROLE_LEVEL_MASK | ROLE_ACCESS_MASK | ROLE_QUADRANT_MASK | ROLE_PASSTHROUGH;

export function roleLevel(role: number): number {
  return role & ROLE_LEVEL_MASK;
}

export function roleQuadrant(role: number): number {
  return (role & ROLE_QUADRANT_MASK) >>> ROLE_QUADRANT_SHIFT;
}

export function roleAccess(role: number): number {
  return (role & ROLE_ACCESS_MASK) >>> ROLE_ACCESS_SHIFT;
}

export function roleIsDirect(role: number): boolean {
  return (role & ROLE_DIRECT) !== 0;
}

/** KVM sp_has_gptes: the page shadows a guest table (not direct, not passthrough). */
export function roleHasGptes(role: number): boolean {
  return (role & (ROLE_DIRECT | ROLE_PASSTHROUGH)) === 0;
}

export function roleWithLevel(role: number, level: number): number {
  return ((role & ~ROLE_LEVEL_MASK) | level) >>> 0;
}

export function roleWithQuadrant(role: number, quadrant: number): number {
  return ((role & ~ROLE_QUADRANT_MASK) | (quadrant << ROLE_QUADRANT_SHIFT)) >>> 0;
}

export function roleWithAccess(role: number, access: number): number {
  return ((role & ~ROLE_ACCESS_MASK) | (access << ROLE_ACCESS_SHIFT)) >>> 0;
}

/**
 * Role of the child a parent entry at `index` links to (KVM
 * kvm_mmu_child_role): one level down, the given access and direct flag,
 * never passthrough. A 32-bit guest's 4-byte tables are shadowed by several
 * 8-byte ones and the quadrant says which part: a 4 MiB guest PT by two
 * 2 MiB shadow PTs (quadrant = VA bit 21 = the parent PDE index's low bit),
 * a 4 GiB guest PD by four 1 GiB shadow PDs (quadrant = VA bits 31:30 = the
 * PAE root's index, as the special-shadow-page series assigns it).
 */
export function childRole(parentRole: number, index: number, direct: boolean, access: number): number {
  const level = roleLevel(parentRole) - 1;
  let role = (parentRole & ~(ROLE_LEVEL_MASK | ROLE_ACCESS_MASK | ROLE_DIRECT | ROLE_PASSTHROUGH | ROLE_QUADRANT_MASK)) >>> 0;
  role |= level | (access << ROLE_ACCESS_SHIFT) | (direct ? ROLE_DIRECT : 0);
  if ((parentRole & ROLE_HAS_4_BYTE_GPTE) !== 0) {
    const quadrant = level === 1 ? index & 1 : level === 2 ? index & 3 : 0;
    role |= quadrant << ROLE_QUADRANT_SHIFT;
  }
  return role >>> 0;
}

/** Readable form for traces and test failures. */
export function describeRole(role: number): string {
  const parts = [`L${roleLevel(role)}`, `acc=${roleAccess(role)}`];
  if ((role & ROLE_HAS_4_BYTE_GPTE) !== 0) parts.push(`4byte q${roleQuadrant(role)}`);
  if ((role & ROLE_DIRECT) !== 0) parts.push('direct');
  if ((role & ROLE_INVALID) !== 0) parts.push('invalid');
  if ((role & ROLE_EFER_NX) !== 0) parts.push('nx');
  if ((role & ROLE_CR0_WP) !== 0) parts.push('wp');
  if ((role & ROLE_SMEP_ANDNOT_WP) !== 0) parts.push('smep&!wp');
  if ((role & ROLE_SMAP_ANDNOT_WP) !== 0) parts.push('smap&!wp');
  if ((role & ROLE_GUEST_MODE) !== 0) parts.push('guest');
  if ((role & ROLE_PASSTHROUGH) !== 0) parts.push('passthrough');
  if ((role & ROLE_CR4_PKE) !== 0) parts.push('pke');
  return parts.join(' ');
}
