import type { FaultInfo } from '../mmu/FaultInfo.js';
import type { BackendTypes } from '../vm/BackendTypes.js';
import type { Vcpu } from '../vm/Vcpu.js';
import type { Vm } from '../vm/Vm.js';

/**
 * Rights a guest mapping grants beyond "present and readable", named
 * without any architecture: each guest side turns them into its own bits
 * (x86: R/W, U/S and XD; radix: EAA and the privilege bit; HPT: PP, N).
 */
export const GuestRights = {
  READ: 0,
  WRITE: 1 << 0,
  EXEC: 1 << 1,
  USER: 1 << 2,
} as const;
export const GUEST_RIGHTS_ALL = GuestRights.WRITE | GuestRights.EXEC | GuestRights.USER;

/** Guest-physical pages the guest side may use for its own tables (inside memslots its caller created). */
export interface GuestTableArea {
  readonly baseGfn: number;
  readonly pages: number;
}

/**
 * The guest operating system's side of translation, as a workload drives
 * it: "map this virtual page to this guest-physical page with these
 * rights" written into the architecture's own tables (x86 page tables,
 * radix trees, HPT entries through H_ENTER), with the invalidation the
 * guest would issue after each change (INVLPG, tlbie, H_REMOVE). The same
 * workload then runs on any backend: this interface is what "swap the
 * backend" means for a guest. Each backend package provides one as its
 * module's `guestSide`.
 *
 * Address spaces are the guest's processes (x86: a CR3; radix: a PID; HPT: a
 * VSID range); space 0 exists from the start. Host-side misuse (a vpn at or
 * above `vpnLimit`, an unknown space, a full table area) throws a typed
 * `HvmmuError` and changes nothing.
 */
export interface GuestAddressSpaces<T extends BackendTypes = BackendTypes> {
  /** Virtual pages a mapping may use: [0, vpnLimit). */
  readonly vpnLimit: number;
  /** Address spaces made so far. */
  readonly spaceCount: number;
  /** Guest-physical pages the tables use now. */
  readonly tablePages: number;
  /** A new empty address space; returns its number. */
  createSpace(): number;
  /** Map `vpn` to `gfn` with `rights` (GuestRights bits) in `space`, replacing any mapping, and invalidate it on every vCPU. */
  map(space: number, vpn: number, gfn: number, rights: number): void;
  /** Remove the mapping of `vpn` in `space` (nothing if none) and invalidate it on every vCPU. */
  unmap(space: number, vpn: number): void;
  /** Make `space` the vCPU's current one (x86: MOV CR3; radix: mtspr PID; HPT: its SLB entries); the first call sets the vCPU's paging registers up. */
  activate(vcpu: Vcpu<T>, space: number): void;
  /**
   * A fault delivered to the guest that its kernel resolves on its own
   * before the access is retried, when the architecture makes the kernel a
   * cache of its own page tables (POWER hash MMU: a segment interrupt
   * reloads an SLB entry, a hash miss re-inserts an evicted HPTE, as
   * Linux's hash fault handlers do). True if it was resolved and the access
   * should be retried; false for a real fault (nothing mapped, no right).
   * Absent where every guest fault is a real one (x86, radix).
   */
  handleGuestFault?(vcpu: Vcpu<T>, fault: FaultInfo): boolean;
}

/** How a backend module makes its guest side for a VM (`BackendModule.guestSide`). */
export interface GuestSideFactory<T extends BackendTypes = BackendTypes> {
  /** The paging mode the guest side sets up (one of the backend's `capabilities.pagingModes`). */
  readonly pagingMode: string;
  /** Guest-physical pages the tables need at most for `mappings` mappings in `spaces` address spaces. */
  tablePagesFor(mappings: number, spaces: number): number;
  /**
   * Where the table area must end, when the guest can only reach its tables
   * below some address (a 32-bit kernel's direct map: x86 PAE, the first
   * GiB); absent when anywhere will do.
   */
  readonly tableAreaEndGfn?: number;
  /** Build the guest side of `vm`, its tables in `area` (which must lie in writable memslots). */
  create(vm: Vm<T>, area: GuestTableArea): GuestAddressSpaces<T>;
}
