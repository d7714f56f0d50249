import type { HypercallAbi } from '@hvmmu/core';

/**
 * The identity machine's hypercall convention. Status values borrow KVM x86's
 * paravirt error numbers (include/uapi/linux/kvm_para.h: KVM_ENOSYS 1000,
 * KVM_EINVAL 22, KVM_EFAULT 14, returned negated), so they read familiarly.
 * Arguments arrive in registers 0.., outputs go to return registers 0...
 */
export const IDENTITY_HYPERCALL_ABI: HypercallAbi = {
  name: 'identity',
  success: 0,
  unknownFunction: -1000,
  badParameter: -22,
  hardwareError: -14,
};

export const IdentityHypercall = {
  /**
   * arg0 = protection table gpa (4 KiB aligned), arg1 = guest pages covered
   * (both 0: no table). The whole table must be guest memory when set.
   * Loads the calling vCPU's register and flushes its TLB, like a CR3 load.
   */
  SET_PROTECTION_TABLE: 0x01,
  /** arg0 = gpa. ret0 = `IdentityPageState` bits, ret1 = backing slot id (0 if none). */
  QUERY_PAGE: 0x02,
} as const;
