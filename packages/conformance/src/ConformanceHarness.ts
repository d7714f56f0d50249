import type { BackendModule, FaultKindValue, Vcpu, Vm } from '@hvmmu/core';
import type { MmuSnapshot } from '@hvmmu/core';
import type { RmapModelName } from './invariants/checkRmapConsistency.js';

/**
 * What the suite asks a guest mapping to grant, beyond "present and readable".
 * Architecture-neutral; the harness turns it into its own entry bits
 * (x86: W, U and NX clear; identity: the protection byte).
 */
export const GuestPerm = {
  READ: 0,
  WRITE: 1 << 0,
  EXEC: 1 << 1,
  USER: 1 << 2,
} as const;
export const GUEST_PERM_ALL = GuestPerm.WRITE | GuestPerm.EXEC | GuestPerm.USER;

/** One configuration of the backend to run the whole suite against. */
export interface ConformanceVariant {
  /** Shown in the describe block, e.g. 'fast-zap'. */
  readonly name: string;
  /** The memslot-invalidation strategy this variant selects; must be one the backend declares. */
  readonly memslotInvalidation: string;
  /** Passed to `Hypervisor.createVm` as `backendOptions`. */
  readonly backendOptions?: Readonly<Record<string, unknown>>;
}

/**
 * Guest-physical space the suite may use freely: it creates, moves and
 * deletes its own memslots (ids from `slotIds`) only inside
 * [baseGfn, baseGfn + pages), so the harness's own memory (page tables)
 * must lie outside it.
 */
export interface DataRegion {
  readonly baseGfn: number;
  /** At least 64. */
  readonly pages: number;
  /** At least 4 distinct memslot ids the harness does not use. */
  readonly slotIds: readonly number[];
}

/** How the architecture answered a guest action. */
export type GuestAnswer =
  /** The access completed (no fault). */
  | { readonly kind: 'completed' }
  /** The access ended with `vcpu.fault` of this kind and code (x86: #PF error code). */
  | { readonly kind: 'fault'; readonly fault: FaultKindValue; readonly code: number }
  /** A hypercall returned this status. */
  | { readonly kind: 'hypercall'; readonly status: number }
  /** Another architectural exception (x86: #GP(0) for a reserved CR4 bit), by vector and error code. */
  | { readonly kind: 'exception'; readonly vector: number; readonly code: number };

/**
 * Something a malicious guest does (a page-table entry with reserved bits, a
 * hypercall with a wild argument), and what the architecture must answer.
 * The suite runs `prepare`, snapshots the VM, runs `perform`, and requires the
 * answer to equal `expected`, no exception, and the snapshot unchanged.
 */
export interface HostileGuestAction {
  readonly name: string;
  readonly expected: GuestAnswer;
  /** Set the trap up (write the bad entry into guest memory, load a register). May change state. */
  prepare?(vcpu: Vcpu): void;
  /** Do the hostile thing as the guest would and report the answer (see `accessAnswer`, `hypercallAnswer`). */
  perform(vcpu: Vcpu): GuestAnswer;
}

/**
 * The harness's hold on one VM: it plays the guest's part (its page tables,
 * its control registers) so the suite can say "virtual page v maps gfn g with
 * these permissions" without knowing how the architecture says it.
 *
 * The guest it configures must follow these rules, which the suite's model
 * assumes: a page is readable when present; a write needs WRITE at every
 * privilege (x86: CR0.WP=1); a fetch needs EXEC (x86: EFER.NXE=1); a user
 * access needs USER; supervisor accesses to user pages are allowed (x86:
 * SMEP and SMAP off).
 */
export interface ConformanceGuest {
  /** Called for every vCPU the suite creates, before its first access (x86: load CR0/CR4/EFER/CR3). */
  initVcpu(vcpu: Vcpu): void;
  /** The virtual page the guest uses for `gfn` (fixed per gfn, distinct for distinct gfns, below 2^41). */
  vpnOf(gfn: number): number;
  /**
   * Make `vpnOf(gfn)` map `gfn` with `perm` (`GuestPerm` bits) in the guest's
   * tables, then invalidate that page on every vCPU as the guest would
   * (x86: write the PTE, INVLPG). `gfn` may lie in no memslot.
   */
  map(gfn: number, perm: number): void;
  /** Remove the guest mapping of `vpnOf(gfn)` and invalidate it on every vCPU. */
  unmap(gfn: number): void;
  /**
   * The fault code the architecture delivers for a guest fault on `access`
   * (`Access` bits): on a page not mapped, or mapped with `perm` (`GuestPerm`
   * bits) that do not allow it — some architectures report which right was
   * missing (POWER: a fetch from a no-execute page is NOEXEC_GUARD, one the
   * page protection refuses is PROTFAULT).
   */
  guestFaultCode(access: number, present: boolean, perm?: number): number;
  /** The backend's current leaves, rmap entries and per-vCPU registers. */
  inspect(): MmuSnapshot;
  /** The architecture's hostile guest actions, each with its architected answer. */
  hostileActions(): readonly HostileGuestAction[];
}

/**
 * Everything a backend's test supplies to run the conformance suite:
 *
 *     defineMmuConformanceSuite(myHarness);
 */
export interface ConformanceHarness {
  /** Shown in the describe block. */
  readonly name: string;
  readonly backend: BackendModule;
  /** Configurations to run; together they must cover every `capabilities.memslotInvalidation` strategy. */
  readonly variants: readonly ConformanceVariant[];
  /** The guest paging mode the harness sets up; must be one of `capabilities.pagingModes`. */
  readonly pagingMode: string;
  readonly dataRegion: DataRegion;
  /** How the backend's rmap relates to its leaves (default `one-per-leaf`; a nested rmap is `names-every-leaf`). */
  readonly rmapModel?: RmapModelName;
  /**
   * The guest is a nested guest (POWER: an L2 run by an L1 through
   * H_ENTER_NESTED): its hypercalls are its own hypervisor's — they end its
   * run and complete that hypervisor's entry call — so a number no handler
   * of the VM serves gets no unknown-function status; the suite checks
   * instead that the call changes no mapping.
   */
  readonly nestedGuest?: boolean;
  /** Host memory per test hypervisor, bytes (default 4 MiB). */
  readonly hostMemoryBytes?: number;
  /** Guest physical address bits for the suite's VMs (default: core's 52). */
  readonly guestPhysBits?: number;
  /**
   * Set up a fresh VM: create the harness's own memslots (page tables and
   * the like, outside `dataRegion`) and return its guest driver.
   */
  attach(vm: Vm): ConformanceGuest;
}
