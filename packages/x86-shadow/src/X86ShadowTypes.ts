import type { BackendTypes, Memslot } from '@hvmmu/core';
import type { X86ShadowMmu } from './backend/X86ShadowMmu.js';
import type { X86VcpuMmu } from './mmu/X86VcpuMmu.js';
import type { X86ShadowStats } from './mmu/X86ShadowStats.js';
import type { X86RmapOps } from './rmap/X86RmapOps.js';
import type { SlotRmap } from './rmap/SlotRmap.js';
import type { X86ShadowOptions } from './X86ShadowOptions.js';

/** What only the x86 shadow backend offers. */
export interface X86ShadowFeatures {
  /** Special shadow pages for the PAE root and the pml4/pml5 wrappers (arch/x86/kvm/mmu/mmu.c, mmu_alloc_special_roots). */
  readonly specialRoots: true;
  /** Unsync level-1 shadow pages resynced on INVLPG and CR3 loads (KVM's kvm_mmu_sync_roots). */
  readonly unsyncShadowPages: true;
}

/** The x86 shadow backend's types: `vm.arch` is its MMU, `vcpu.arch` its per-vCPU MMU, `slot.arch` its rmaps. */
export interface X86ShadowTypes extends BackendTypes {
  readonly options: X86ShadowOptions;
  readonly vm: X86ShadowMmu;
  readonly vcpu: X86VcpuMmu;
  readonly stats: X86ShadowStats;
  readonly rmapOps: X86RmapOps;
  readonly slotData: SlotRmap;
  readonly features: X86ShadowFeatures;
}

/** A memslot of a VM on the x86 shadow backend. */
export type X86Memslot = Memslot<X86ShadowTypes>;
