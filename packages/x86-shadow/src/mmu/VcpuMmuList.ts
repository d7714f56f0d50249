import { injectable } from 'tsyringe';

/**
 * vCPU requests (KVM `KVM_REQ_*`), handled before the vCPU next enters the
 * guest: the translator refuses to translate while any is pending, so the
 * next access goes through `handleFault`, which services them first.
 */
export const REQ_FREE_OBSOLETE_ROOTS = 1 << 0;
export const REQ_MMU_SYNC = 1 << 1;
export const REQ_TLB_FLUSH = 1 << 2;

/** What the VM-wide code needs from a vCPU's MMU state. */
export interface VcpuRequestTarget {
  requests: number;
  /** True while the vCPU's current root is the dummy root (no memslot at the root gfn). */
  readonly hasDummyRoot: boolean;
}

/**
 * The vCPU MMUs of one VM, so VM-wide events can post requests to all of
 * them (KVM kvm_make_all_cpus_request).
 */
@injectable()
export class VcpuMmuList {
  readonly list: VcpuRequestTarget[] = [];

  add(target: VcpuRequestTarget): void {
    this.list.push(target);
  }

  remove(target: VcpuRequestTarget): void {
    const i = this.list.indexOf(target);
    if (i >= 0) this.list.splice(i, 1);
  }

  requestAll(request: number): void {
    for (const v of this.list) v.requests |= request;
  }
}
