/**
 * Result slot a translator fills on success; reused per vCPU.
 */
export class TranslationResult {
  /** Host frame number. */
  hfn = -1;
  /** `PERM_*` mask: one bit per `Access` kind the TLB may serve without a walk. */
  perm = 0;
  /** False when the translation must not be cached (e.g. MMIO, a one-shot emulation). */
  cacheable = true;
  /** Architecture code of a hardware-walk miss, passed to `Mmu.handleFault`. */
  missCode = 0;
}

/**
 * The hardware side: what the "CPU" does on a TLB miss — walk the tables the
 * hardware uses (a shadow table, a 2D radix walk, an HPT search) in the
 * vCPU's current translation context. It never edits those tables; a miss
 * goes to the hypervisor-side `Mmu.handleFault`. One per vCPU, made by the
 * MMU's `attachVcpu` (it is also the vCPU's architecture API, `vcpu.arch`).
 */
export interface Translator {
  /**
   * Translate virtual page `vpn` (virtual address >> 12) for `access`.
   * Returns the host frame (≥ 0) with `out.perm` set, or -1 with
   * `out.missCode` set. Must not throw and must do bounded work whatever the
   * tables hold.
   */
  translate(vpn: number, access: number, out: TranslationResult): number;
}
