import { injectable } from 'tsyringe';
import type { SoftTlb } from './SoftTlb.js';

/** What the shootdown needs of a vCPU: its TLB and the context it runs in. */
export interface TlbHolder {
  readonly tlb: SoftTlb;
  readonly context: number;
}

/**
 * The TLBs of one VM's vCPUs, so the MMU can do what KVM's
 * kvm_flush_remote_tlbs does: flush every vCPU after it changed or dropped a
 * mapping — all of it, one translation context, or one page in a context.
 * Counting flushes lets tests check that changes were flushed.
 */
@injectable()
export class TlbShootdown {
  private readonly holders: TlbHolder[] = [];
  remoteFlushes = 0;

  add(holder: TlbHolder): void {
    this.holders.push(holder);
  }

  remove(holder: TlbHolder): void {
    const i = this.holders.indexOf(holder);
    if (i >= 0) this.holders.splice(i, 1);
  }

  flushAll(): void {
    this.remoteFlushes++;
    for (const h of this.holders) h.tlb.flushAll();
  }

  /** Drop every translation of one context on every vCPU. */
  flushContext(context: number): void {
    this.remoteFlushes++;
    for (const h of this.holders) h.tlb.flushContext(context);
  }

  flushPage(context: number, vpn: number): void {
    for (const h of this.holders) h.tlb.flushPage(context, vpn);
  }

  /** Drop vpn in every context on every vCPU. */
  flushPageAllContexts(vpn: number): void {
    for (const h of this.holders) h.tlb.flushPageAllContexts(vpn);
  }

  flushHostFrame(hfn: number): void {
    for (const h of this.holders) h.tlb.flushHostFrame(hfn);
  }

  setGeneration(generation: number): void {
    for (const h of this.holders) h.tlb.setGeneration(generation);
  }

  /** True if some vCPU currently runs in `context`. */
  isCurrent(context: number): boolean {
    for (const h of this.holders) if (h.context === context) return true;
    return false;
  }

  get count(): number {
    return this.holders.length;
  }
}
