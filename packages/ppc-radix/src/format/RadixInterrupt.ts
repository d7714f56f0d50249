/**
 * Interrupts a radix translation raises and the cause bits it reports, as
 * POWER ISA v3.0 Book III 7.5 (interrupt definitions) and QEMU
 * target/ppc/cpu.h / mmu-radix64.c define them (Linux names in
 * arch/powerpc/include/asm/reg.h). Values are the low 32 bits of DSISR,
 * HDSISR or SRR1.
 */
export const RadixVector = {
  /** Data Storage Interrupt (DSISR, DAR). */
  DSI: 0x300,
  /** Data Segment Interrupt: EA bits 61..52 set, or an illegal quadrant (DAR). */
  DSEG: 0x380,
  /** Instruction Storage Interrupt (cause bits in SRR1). */
  ISI: 0x400,
  /** Instruction Segment Interrupt. */
  ISEG: 0x480,
  /** Hypervisor Data Storage Interrupt (HDSISR, HDAR, ASDR). */
  HDSI: 0xe00,
  /** Hypervisor Instruction Storage Interrupt (cause in HSRR1, ASDR). */
  HISI: 0xe20,
} as const;

export const Dsisr = {
  /** No translation: an invalid entry, or an index past the table (DSISR_NOPTE). */
  NOPTE: 0x4000_0000,
  /** The page's protection forbids the access (DSISR_PROTFAULT). */
  PROTFAULT: 0x0800_0000,
  /** The access was a store (DSISR_ISSTORE). */
  STORE: 0x0200_0000,
  /** An unsupported radix configuration: root size, NLS, PATE (DSISR_R_BADCONFIG). */
  BADCONFIG: 0x0008_0000,
  /** R (or C for a store) is not set and the hardware does not set it (DSISR_ATOMIC_RC; KVM's DSISR_SET_RC). */
  ATOMIC_RC: 0x0004_0000,
  /** The partition-scoped fault was on a process table or process-scoped table entry (DSISR_PRTABLE_FAULT). */
  PRTABLE_FAULT: 0x0002_0000,
} as const;

/** SRR1 cause bit of an instruction fetch denied or from guarded (non-idempotent I/O) storage (SRR1_NOEXEC_GUARD). */
export const SRR1_NOEXEC_GUARD = 0x1000_0000;
