import { H_PARAMETER, H_SUCCESS } from './NestedGuests.js';

/** H_P2: the second argument is bad (hvcall.h). */
export const H_P2 = -55;

/** HV_GUEST_STATE_VERSION (hvcall.h): the newest layout L0 understands. */
export const HV_GUEST_STATE_VERSION = 2;

/**
 * Byte offsets of struct hv_guest_state (Linux arch/powerpc/include/asm/hvcall.h):
 * a u64 version, u32 lpid, u32 vcpu_token, then u64 registers; version 1
 * ends after ppr (232 bytes), version 2 after dawrx1 (248 bytes).
 */
export const HvGuestStateField = {
  version: 0,
  lpid: 8,
  vcpuToken: 12,
  lpcr: 16,
  pcr: 24,
  amor: 32,
  dpdes: 40,
  hfscr: 48,
  tbOffset: 56,
  dawr0: 64,
  dawrx0: 72,
  ciabr: 80,
  hdecExpiry: 88,
  purr: 96,
  spurr: 104,
  ic: 112,
  vtb: 120,
  hdar: 128,
  hdsisr: 136,
  heir: 144,
  asdr: 152,
  srr0: 160,
  srr1: 168,
  sprg0: 176,
  sprg1: 184,
  sprg2: 192,
  sprg3: 200,
  pidr: 208,
  cfar: 216,
  ppr: 224,
  dawr1: 232,
  dawrx1: 240,
} as const;

/** hv_guest_state_size: the bytes of a layout version, or -1 for one L0 does not know. */
export function hvGuestStateSize(version: number): number {
  return version === 1 ? 232 : version === 2 ? 248 : -1;
}

/** struct pt_regs (64-bit): 32 GPRs, nip, msr, orig_gpr3, ctr, link, xer, ccr, softe, trap, dar, dsisr, result. */
export const PT_REGS_BYTES = 44 * 8;

/** Byte offsets in struct pt_regs (Linux arch/powerpc/include/uapi/asm/ptrace.h, 64-bit). */
export const PtRegsField = {
  /** gpr[n] is at gpr + 8n. */
  gpr: 0,
  nip: 256,
  msr: 264,
  origGpr3: 272,
  ctr: 280,
  link: 288,
  xer: 296,
  ccr: 304,
  softe: 312,
  trap: 320,
  dar: 328,
  dsisr: 336,
  result: 344,
} as const;

/** Reads L1 memory: `bytes` bytes at L1 real address `gpa`, or null if not all of it is L1 memory. */
export type L1Reader = (gpa: number, bytes: number) => Uint8Array | null;

/**
 * The L2 state H_ENTER_NESTED takes from L1 memory, in L1's byte order as
 * L1 wrote it (KVM byte-swaps when L1's endianness differs from the host's,
 * and swaps back when it writes the state back; keeping L1's order is the
 * same thing). Registers are read and written as 64-bit halves or BigInts.
 */
export class HvGuestState {
  private constructor(
    /** The struct's bytes (version-sized). */
    readonly bytes: Uint8Array,
    /** The register block (struct pt_regs). */
    readonly regs: Uint8Array,
    readonly littleEndian: boolean,
  ) {}

  private get view(): DataView {
    return new DataView(this.bytes.buffer, this.bytes.byteOffset, this.bytes.byteLength);
  }

  get version(): number {
    return Number(this.view.getBigUint64(0, this.littleEndian));
  }

  get lpid(): number {
    return this.view.getUint32(8, this.littleEndian);
  }

  get vcpuToken(): number {
    return this.view.getUint32(12, this.littleEndian);
  }

  /** A 64-bit register by byte offset (HvGuestStateField). */
  get64(offset: number): bigint {
    return this.view.getBigUint64(offset, this.littleEndian);
  }

  set64(offset: number, value: bigint): void {
    this.view.setBigUint64(offset, BigInt.asUintN(64, value), this.littleEndian);
  }

  /** A 64-bit field of the register block by byte offset (PtRegsField). */
  reg64(offset: number): bigint {
    return new DataView(this.regs.buffer, this.regs.byteOffset, this.regs.byteLength).getBigUint64(offset, this.littleEndian);
  }

  setReg64(offset: number, value: bigint): void {
    new DataView(this.regs.buffer, this.regs.byteOffset, this.regs.byteLength).setBigUint64(offset, BigInt.asUintN(64, value), this.littleEndian);
  }

  /**
   * kvmhv_read_guest_state_and_regs and the checks that follow it in
   * kvmhv_enter_nested_guest: the version doubleword (in L1's byte order),
   * a version L0 knows the size of (else H_PARAMETER — KVM's
   * hv_guest_state_size is -1 for any other, so an unknown newer version is
   * H_PARAMETER, never the H_P2 the check after it would give), the
   * version-sized struct and the register block all in L1 memory (else
   * H_PARAMETER), then the version no newer than HV_GUEST_STATE_VERSION
   * (H_P2) and the vCPU token below `nrCpus` (H_PARAMETER).
   */
  static read(readL1: L1Reader, hvPtr: number, regsPtr: number, l1LittleEndian: boolean, nrCpus: number): { status: number; state: HvGuestState | null } {
    const head = readL1(hvPtr, 8);
    if (head === null) return { status: H_PARAMETER, state: null };
    const version = Number(new DataView(head.buffer, head.byteOffset, 8).getBigUint64(0, l1LittleEndian));
    const size = hvGuestStateSize(version);
    if (size < 0) return { status: H_PARAMETER, state: null };
    const bytes = readL1(hvPtr, size);
    const regs = bytes === null ? null : readL1(regsPtr, PT_REGS_BYTES);
    if (bytes === null || regs === null) return { status: H_PARAMETER, state: null };
    const state = new HvGuestState(bytes.slice(), regs.slice(), l1LittleEndian);
    if (state.version > HV_GUEST_STATE_VERSION) return { status: H_P2, state: null };
    if (state.vcpuToken >= nrCpus) return { status: H_PARAMETER, state: null };
    return { status: H_SUCCESS, state };
  }
}
