import { injectable } from 'tsyringe';
import type { SoftTlb } from './SoftTlb.js';

/**
 * The TLBs of one VM's vCPUs, so the MMU can do what KVM's
 * kvm_flush_remote_tlbs does: flush every vCPU after it changed or dropped a
 * mapping. Counting flushes lets tests check that changes were flushed.
 */
@injectable()
export class TlbShootdown {
  private readonly tlbs: SoftTlb[] = [];
  remoteFlushes = 0;

  add(tlb: SoftTlb): void {
    this.tlbs.push(tlb);
  }

  remove(tlb: SoftTlb): void {
    const i = this.tlbs.indexOf(tlb);
    if (i >= 0) this.tlbs.splice(i, 1);
  }

  flushAll(): void {
    this.remoteFlushes++;
    for (const tlb of this.tlbs) tlb.flushAll();
  }

  flushPage(vpn: number): void {
    for (const tlb of this.tlbs) tlb.flushPage(vpn);
  }

  flushHostFrame(hfn: number): void {
    for (const tlb of this.tlbs) tlb.flushHostFrame(hfn);
  }

  setGeneration(generation: number): void {
    for (const tlb of this.tlbs) tlb.setGeneration(generation);
  }

  get count(): number {
    return this.tlbs.length;
  }
}
