/**
 * The vCPU MMU state that resyncing shadow entries from guest entries needs
 * (KVM passes the vCPU to `sync_spte` for the same reason): the root role an
 * unsync page must match, the guest's reserved-bit rules for a 4 KiB entry,
 * and whether protection keys are shadowed.
 */
export interface GuestPteContext {
  /** Role of the vCPU's shadow root (KVM `mmu->root_role`). */
  readonly rootRole: number;
  /** Guest paging levels (0 paging off, 2, 3, 4, 5). */
  readonly cpuLevel: number;
  /** Protection keys apply (EFER.LMA && CR4.PKE): leaf keys are copied into sptes. */
  readonly pkeActive: boolean;
  /** True if a present 8-byte level-1 gpte has a reserved bit set in the current mode. */
  gpteReserved(lo: number, hi: number): boolean;
}
