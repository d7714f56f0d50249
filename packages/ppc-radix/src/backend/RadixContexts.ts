import { DEFAULT_CONTEXT, type TlbShootdown, type TranslationContextOwner, type TranslationContexts } from '@hvmmu/core';

/** Mode bits of a translation context: MSR[IR], MSR[DR], and AMR/IAMR key 0 (which change the access allowed). */
export const RadixMode = {
  IR: 1,
  DR: 2,
  /** AMR bit 63: supervisor stores to non-privileged pages denied (Linux KUAP). */
  AMR_WRITE: 4,
  /** AMR bit 62: supervisor loads denied. */
  AMR_READ: 8,
  /** IAMR bit 62: supervisor fetches denied (Linux KUEP). */
  IAMR_EXEC: 16,
} as const;
const MODES = 32;
/** Keys of one partition: (2^32 PIDs + real mode) × the modes, below 2^38; 4096 LPIDs stay below 2^53. */
const LPID_STRIDE = 2 ** 38;
/** The mode every vCPU starts in, with PID 0: relocation on, AMR/IAMR open. */
const DEFAULT_KEY = RadixMode.IR | RadixMode.DR;

/**
 * The translation contexts of one radix guest (core's `TranslationContexts`
 * tags the TLB with them): one per (PID, mode), where the mode is MSR[IR]
 * and MSR[DR] and the AMR/IAMR key-0 bits. So a PID switch (mtspr PIDR), a
 * relocation change (real mode ↔ virtual mode) or a KUAP toggle of AMR is a
 * context switch, never a flush. With both IR and DR off the PID does not
 * matter, so every PID shares one real-mode context per AMR value.
 * (PID 0, relocation on, AMR/IAMR 0) is core's DEFAULT_CONTEXT.
 */
export class RadixContexts implements TranslationContextOwner {
  private readonly byKey = new Map<number, number>();
  private readonly keyOf = new Map<number, number>();

  constructor(
    private readonly contexts: TranslationContexts,
    private readonly tlbs: TlbShootdown,
  ) {}

  /**
   * The key of (pid, mode) in partition `lpid` (0: the guest itself; a
   * nested guest's shadow LPID otherwise): real mode ignores the PID.
   */
  static key(pid: number, mode: number, lpid = 0): number {
    return lpid * LPID_STRIDE + ((mode & (RadixMode.IR | RadixMode.DR)) === 0 ? 0 : pid + 1) * MODES + mode;
  }

  /** The context id for (pid, mode) in partition `lpid` (see `key`), allocating one on first use. */
  contextFor(pid: number, mode: number, lpid = 0): number {
    const key = RadixContexts.key(pid, mode, lpid);
    if (key === MODES + DEFAULT_KEY) return DEFAULT_CONTEXT;
    const known = this.byKey.get(key);
    if (known !== undefined) {
      this.contexts.touch(known);
      return known;
    }
    const id = this.contexts.allocate(this);
    this.byKey.set(key, id);
    this.keyOf.set(id, key);
    return id;
  }

  contextRevoked(context: number): void {
    const key = this.keyOf.get(context);
    if (key === undefined) return;
    this.keyOf.delete(context);
    this.byKey.delete(key);
  }

  /** tlbie for one page of one PID (RIC 0, PRS 1, IS 0) in partition `lpid` (0: the guest itself): that page in every context of the PID, on every vCPU. */
  flushPidPage(pid: number, vpn: number, lpid = 0): void {
    const first = lpid * LPID_STRIDE + (pid + 1) * MODES;
    if (pid === 0 && lpid === 0) this.tlbs.flushPage(DEFAULT_CONTEXT, vpn);
    for (const [key, id] of this.byKey) if (key >= first && key < first + MODES) this.tlbs.flushPage(id, vpn);
  }

  /** tlbie for a whole PID (IS 1 with PRS 1) in partition `lpid` (0: the guest itself): every context of the PID. */
  flushPid(pid: number, lpid = 0): void {
    const first = lpid * LPID_STRIDE + (pid + 1) * MODES;
    if (pid === 0 && lpid === 0) this.tlbs.flushContext(DEFAULT_CONTEXT);
    for (const [key, id] of this.byKey) if (key >= first && key < first + MODES) this.tlbs.flushContext(id);
  }

  /**
   * Every context of partition `lpid` (a nested guest's shadow LPID): what
   * a tlbie of the whole LPID drops, on every vCPU.
   */
  flushLpid(lpid: number): void {
    const first = lpid * LPID_STRIDE;
    for (const [key, id] of this.byKey) if (key >= first && key < first + LPID_STRIDE) this.tlbs.flushContext(id);
  }

  /** Contexts allocated besides the default one. */
  get size(): number {
    return this.byKey.size;
  }
}
