import { PaprStatus } from '../hcall/HptHypercalls.js';
import { HashPageTableStore } from '../stream/HtabStore.js';
import type { PpcHptMmu } from './PpcHptMmu.js';

/**
 * The HPT backend's guest view as an `HtabStore`: what the HTAB stream
 * reads is the guest view, and what it writes goes in as KVM's
 * kvm_htab_write does it — through the H_ENTER / H_REMOVE paths, so the
 * real HPT, the reverse map and the TLBs follow, and an entry the host
 * would refuse in H_ENTER refuses the record.
 */
export class HostHptStore extends HashPageTableStore {
  constructor(private readonly mmu: PpcHptMmu) {
    super(mmu.hpt.guest);
  }

  override remove(index: number): void {
    super.remove(index);
    this.mmu.changed(index);
  }

  override enter(index: number, v0Hi: number, v0Lo: number, r1Hi: number, r1Lo: number): void {
    // The hypervisor's bits are never the guest's (H_ENTER clears HVLOCK, ABSENT, and dword1 bit 62).
    super.enter(index, v0Hi, v0Lo, r1Hi & ~0x4000_0000, r1Lo);
    this.mmu.changed(index);
  }

  refuses(v0Hi: number, v0Lo: number, r1Hi: number, r1Lo: number): string | null {
    return this.mmu.checkEnter(v0Hi, v0Lo, r1Hi, r1Lo) === PaprStatus.H_SUCCESS ? null : 'a page larger than the 4 KiB host pages over a memslot (H_PARAMETER)';
  }
}
