import { FaultDestination, FaultKind, type FaultInfo } from '@hvmmu/core';

/**
 * Counts of the accesses that ended in a fault, by where the fault went (`vcpu.fault.destination`)
 * and, for exits to the VMM, by kind. Plain number fields: recording one allocates nothing.
 */
export class FaultTally {
  /** Delivered to the guest that made the access (x86 #PF, POWER DSI/ISI and segment interrupts). */
  guest = 0;
  /**
   * Of those, the ones the guest kernel resolved on its own before retrying the access
   * (`GuestAddressSpaces.handleGuestFault`: POWER hash MMU SLB reloads and HPTE re-inserts).
   */
  guestResolved = 0;
  /** Reflected to that guest's hypervisor (a nested L2's access that L1's tables refuse). */
  hypervisor = 0;
  /**
   * Of those, the ones the guest's hypervisor resolved before the access ran again
   * (`HypervisorFaultHandler`: a POWER radix L1 mapping the L2 real page in its tree for the L2).
   */
  hypervisorResolved = 0;
  /** Exits to the VMM, all kinds. */
  vmm = 0;
  noMemory = 0;
  readOnly = 0;
  emulate = 0;
  retryLimit = 0;
  hostOutOfMemory = 0;

  record(fault: FaultInfo): void {
    const destination = fault.destination;
    if (destination === FaultDestination.GUEST) this.guest++;
    else if (destination === FaultDestination.HYPERVISOR) this.hypervisor++;
    else {
      this.vmm++;
      switch (fault.kind) {
        case FaultKind.NO_MEMORY:
          this.noMemory++;
          break;
        case FaultKind.READ_ONLY:
          this.readOnly++;
          break;
        case FaultKind.EMULATE:
          this.emulate++;
          break;
        case FaultKind.RETRY_LIMIT:
          this.retryLimit++;
          break;
        case FaultKind.HOST_OUT_OF_MEMORY:
          this.hostOutOfMemory++;
          break;
      }
    }
  }
}
