import { FRAME_ZERO, type Memslot as CoreMemslot, type Vm as CoreVm } from '@hvmmu/core';
import type { X86ShadowTypes } from '@hvmmu/x86-shadow/internal';
import {
  PTE_LIST_DESC_WORDS,
  PTE_LIST_EXT,
  PTE_LIST_SPTE_SKIP,
  ROLE_DIRECT,
  ROLE_INVALID,
  ROLE_PASSTHROUGH,
  ROOT_NORMAL,
  ROOT_SPECIAL,
  SP_HASHED,
  SP_IN_USE,
  SP_ON_ACTIVE_LIST,
  SP_SPECIAL,
  SP_UNSYNC,
  SlotRmap,
  X86ShadowMmu,
  mmuHash,
  type PteListPool,
  type ShadowPageTable,
  type X86VcpuMmu,
} from '@hvmmu/x86-shadow/internal';
type Memslot = CoreMemslot<X86ShadowTypes>;
type Vm = CoreVm<X86ShadowTypes>;

// SPTE bits (KVM spte.h legacy layout), restated for the checker.
const S_P = 1;
const S_W = 2;
const S_PS = 0x80;
const S_HOST_W = 1 << 9;
const S_MMU_W = 1 << 10;
const S_MMU_PRESENT = 1 << 11;

function frameOf(hi: number, lo: number): number {
  return (hi & 0xfffff) * 0x10_0000 + (lo >>> 12);
}

/** Every entry of a pte_list (skip markers included). */
function listEntries(pool: PteListPool, val: number): number[] {
  const out: number[] = [];
  pool.collect(val, out);
  return out;
}

/** pte_list shape rule (mmu.c pte_list_add / pte_list_desc_remove_entry): only the head may be partly filled, tail_count is exact, counts ≥ 1. */
function checkShape(pool: PteListPool, val: number, what: string, errors: string[]): void {
  if (val === 0 || (val & 1) === 0) return;
  const { counts, tailCount } = pool.shape(val);
  if (counts.length === 0 || counts.some((c) => c < 1 || c > PTE_LIST_EXT)) errors.push(`${what}: descriptor counts ${counts.join(',')}`);
  for (let i = 1; i < counts.length; i++) if (counts[i] !== PTE_LIST_EXT) errors.push(`${what}: tail descriptor ${i} not full`);
  const tail = counts.slice(1).reduce((a, b) => a + b, 0);
  if (tail !== tailCount) errors.push(`${what}: tail_count ${tailCount} != ${tail}`);
  const words = pool.words;
  const head = (val >>> 1) * PTE_LIST_DESC_WORDS;
  if (words[head + 1] === 0) errors.push(`${what}: empty head descriptor`);
}

export interface InvariantOptions {
  /** Slots whose old range must map nothing (deleted / moved away). */
  readonly deletedRanges?: readonly { base: number; npages: number }[];
}

/** The invariants KVM's shadow MMU (arch/x86/kvm/mmu/mmu.c, spte.[ch]) keeps, checked on a VM's shadow MMU. Returns the violations found. */
export function checkInvariants(vm: Vm, options: InvariantOptions = {}): string[] {
  const errors: string[] = [];
  const mmu = vm.mmu;
  if (!(mmu instanceof X86ShadowMmu)) return ['not an x86 shadow MMU'];
  const pages = mmu.pages;
  const spt = pages.spt;
  const mem = vm.memslots;
  const zero = mem.host.zeroFrame;
  const slots = mem.slots();

  // The count of flooded pages the fault path's shortcut relies on.
  let flooded = 0;
  for (let sp = 0; sp < spt.capacity; sp++) if (spt.writeFlooding[sp] !== 0) flooded++;
  if (flooded !== spt.floodedPages) errors.push(`floodedPages is ${spt.floodedPages}, but ${flooded} pages have a write-flooding count`);

  // Rmap side: every entry → (count) and its location.
  const rmapCount = new Map<number, number>();
  for (const slot of slots) {
    const r = slot.arch;
    if (!(r instanceof SlotRmap)) {
      errors.push(`slot ${slot.id} has no rmap`);
      continue;
    }
    let live = 0;
    for (let level = 1; level <= 3; level++) {
      const heads = r.heads[level - 1]!;
      for (let i = 0; i < heads.length; i++) {
        const val = heads[i]!;
        if (val === 0) continue;
        checkShape(r.pool, val, `rmap slot ${slot.id} L${level} #${i}`, errors);
        for (const e of listEntries(r.pool, val)) {
          if (e === PTE_LIST_SPTE_SKIP) {
            errors.push(`skip marker in the rmap of live slot ${slot.id}`);
            continue;
          }
          live++;
          rmapCount.set(e, (rmapCount.get(e) ?? 0) + 1);
          const sp = Math.floor(e / 512);
          const lo = spt.sptLo[e]!;
          if (!spt.isInUse(sp) || (lo & S_MMU_PRESENT) === 0) {
            errors.push(`rmap entry ${e} (slot ${slot.id} L${level}) points at a non-present spte`);
            continue;
          }
          const gfn = pages.getGfn(sp, e % 512);
          const span = 2 ** (9 * (level - 1));
          if (Math.floor(gfn / span) - Math.floor(slot.baseGfn / span) !== i) {
            errors.push(`rmap entry ${e} filed under the wrong gfn (maps ${gfn})`);
          }
        }
      }
    }
    if (live !== r.entries) errors.push(`slot ${slot.id}: entries counter ${r.entries} != ${live}`);
  }

  const parentCount = new Map<number, number>();
  const parentRefs = new Map<number, number[]>();
  const keys = new Set<string>();
  let indirect = 0;
  let used = 0;
  for (let sp = 1; sp < spt.capacity; sp++) {
    if (!spt.isInUse(sp)) continue;
    const role = spt.role[sp]!;
    const flags = spt.flags[sp]!;
    const level = role & 0xf;
    const special = (flags & SP_SPECIAL) !== 0;
    const invalid = (role & ROLE_INVALID) !== 0;
    const obsolete = invalid || spt.gen[sp] !== pages.validGen;
    if (special) {
      if ((flags & (SP_HASHED | SP_ON_ACTIVE_LIST)) !== 0) errors.push(`special page ${sp} is hashed or on the active list`);
      if (spt.gfn[sp] !== 0) errors.push(`special page ${sp} has a gfn`);
      if (spt.rootCount[sp] !== 0) errors.push(`special page ${sp} has a root count`);
    } else {
      used++; // KVM n_used_mmu_pages: an invalid root stays counted until its last reference goes
      if (!invalid && (role & (ROLE_DIRECT | ROLE_PASSTHROUGH)) === 0) indirect++;
      if ((flags & SP_HASHED) === 0) errors.push(`page ${sp} is not hashed`);
      else {
        let found = false;
        for (let s = spt.buckets[mmuHash(spt.gfn[sp]!)]!; s !== 0; s = spt.hashNext[s]!) if (s === sp) found = true;
        if (!found) errors.push(`page ${sp} is not in the bucket of its gfn`);
      }
      if (!invalid && (flags & SP_ON_ACTIVE_LIST) === 0) errors.push(`valid page ${sp} is off the active list`);
      if (invalid && (flags & SP_ON_ACTIVE_LIST) !== 0) errors.push(`invalid page ${sp} is on the active list`);
      if (invalid && spt.rootCount[sp] === 0) errors.push(`invalid page ${sp} survives with no root reference`);
      if (!obsolete) {
        const key = `${spt.gfn[sp]}/${role}`;
        if (keys.has(key)) errors.push(`two valid pages share (gfn, role) ${key}`);
        keys.add(key);
      }
    }
    if ((flags & SP_UNSYNC) !== 0 && (level !== 1 || (role & ROLE_DIRECT) !== 0)) errors.push(`unsync page ${sp} is not an indirect level-1 page`);
    if (spt.unsyncChildren[sp] !== spt.unsyncBitCount(sp)) errors.push(`page ${sp}: unsync_children != popcount(bitmap)`);
    checkShape(spt.parents, spt.parentPtes[sp]!, `parent_ptes of ${sp}`, errors);

    for (let i = 0; i < 512; i++) {
      const e = sp * 512 + i;
      const lo = spt.sptLo[e]!;
      const hi = spt.sptHi[e]!;
      if ((lo & S_MMU_PRESENT) === 0) {
        if (lo !== 0 || hi !== 0) errors.push(`non-present spte ${e} is not zero`);
        continue;
      }
      const leaf = level === 1 || (lo & S_PS) !== 0;
      if (!leaf) {
        const child = frameOf(hi, lo);
        if (!spt.isInUse(child)) {
          errors.push(`spte ${e} points at free page ${child}`);
          continue;
        }
        if ((spt.role[child]! & 0xf) !== level - 1) errors.push(`child ${child} of ${sp} has the wrong level`);
        parentCount.set(child, (parentCount.get(child) ?? 0) + 1);
        (parentRefs.get(child) ?? parentRefs.set(child, []).get(child)!).push(e);
        if (rmapCount.has(e)) errors.push(`non-leaf spte ${e} is rmapped`);
        continue;
      }
      if (special) errors.push(`special page ${sp} holds a leaf`);
      if (rmapCount.get(e) !== 1) errors.push(`leaf spte ${e} is in ${rmapCount.get(e) ?? 0} rmaps`);
      const gfn = pages.getGfn(sp, i);
      const slot = mem.findByGfn(gfn);
      const frame = frameOf(hi, lo);
      if (slot === undefined) {
        errors.push(`leaf spte ${e} maps gfn ${gfn} outside every memslot`);
        continue;
      }
      checkFrame(slot, gfn, frame, lo, zero, e, errors);
      // spte.h check_spte_writable_invariants(): writable ⇒ MMU-writable ⇒ host-writable; RO slots never host-writable.
      if ((lo & S_W) !== 0 && (lo & S_MMU_W) === 0) errors.push(`spte ${e} writable but not MMU-writable`);
      if ((lo & S_MMU_W) !== 0 && (lo & S_HOST_W) === 0) errors.push(`spte ${e} MMU-writable but not host-writable`);
      if (slot.readOnly && (lo & S_HOST_W) !== 0) errors.push(`spte ${e} host-writable in a read-only slot`);
      // Dirty logging: spte.c make_spte() marks the gfn dirty whenever it builds a writable spte.
      if ((lo & S_W) !== 0 && slot.dirtyLogging && !slot.isDirty(gfn)) errors.push(`writable spte ${e} for gfn ${gfn} not in the dirty log`);
      for (const range of options.deletedRanges ?? []) {
        if (gfn >= range.base && gfn < range.base + range.npages) errors.push(`spte ${e} maps deleted gfn ${gfn}`);
      }
      if ((lo & S_P) === 0) errors.push(`leaf ${e} MMU-present but not P`);
    }
  }
  for (const [e] of rmapCount) {
    const sp = Math.floor(e / 512);
    if (!spt.isInUse(sp)) errors.push(`rmap holds entry ${e} of a free page`);
  }
  for (let sp = 1; sp < spt.capacity; sp++) {
    if (!spt.isInUse(sp)) continue;
    const listed = listEntries(spt.parents, spt.parentPtes[sp]!);
    const refs = parentRefs.get(sp) ?? [];
    if (listed.length !== refs.length) errors.push(`page ${sp}: ${listed.length} parent_ptes but ${refs.length} parents`);
    for (const e of refs) if (listed.filter((x) => x === e).length !== 1) errors.push(`page ${sp}: parent entry ${e} not listed once`);
    // mmu.c kvm_mmu_mark_parents_unsync() / mark_unsync(): every parent of an unsync page (or of a page with unsync children) has its bit set.
    if ((spt.flags[sp]! & SP_UNSYNC) !== 0 || spt.unsyncChildren[sp]! > 0) {
      for (const e of refs) {
        if (!spt.testUnsyncBit(Math.floor(e / 512), e % 512)) errors.push(`unsync path: parent bit of ${e} for ${sp} not set`);
      }
    }
    // Write protection of shadowed guest tables (mmu.c account_shadowed(), mmu_try_to_unsync_pages()).
    const role = spt.role[sp]!;
    if ((role & (ROLE_DIRECT | ROLE_PASSTHROUGH | ROLE_INVALID)) === 0 && (spt.flags[sp]! & SP_SPECIAL) === 0 && spt.gen[sp] === pages.validGen) {
      const gfn = spt.gfn[sp]!;
      const slot = mem.findByGfn(gfn);
      if (slot !== undefined) {
        const r = slot.arch as SlotRmap;
        if ((role & 0xf) > 1 && r.writeTrack[gfn - slot.baseGfn] === 0) errors.push(`upper page ${sp} at gfn ${gfn} not write-tracked`);
        if ((role & 0xf) > 1 || (spt.flags[sp]! & SP_UNSYNC) === 0) {
          for (let level = 1; level <= 3; level++) {
            const span = 2 ** (9 * (level - 1));
            const val = r.heads[level - 1]![Math.floor(gfn / span) - Math.floor(slot.baseGfn / span)]!;
            for (const e of listEntries(r.pool, val)) {
              if ((spt.sptLo[e]! & S_W) !== 0) errors.push(`gfn ${gfn} shadowed by page ${sp} is mapped writable by spte ${e}`);
            }
          }
        }
      }
    }
  }
  if (indirect !== pages.indirectShadowPages) errors.push(`indirect_shadow_pages ${pages.indirectShadowPages} != ${indirect}`);
  if (used !== pages.usedPages) errors.push(`n_used_mmu_pages ${pages.usedPages} != ${used}`);
  // Active list: FIFO order of generations and consistency of links.
  let n = 0;
  for (let sp = spt.activeHead; sp !== 0; sp = spt.listNext[sp]!) {
    if (++n > spt.capacity) {
      errors.push('active list is cyclic');
      break;
    }
    if (spt.listNext[spt.listPrev[sp]!] !== sp) errors.push(`active list link broken at ${sp}`);
  }
  for (const v of vm.vcpus) checkSpecialRoots(v.arch, spt, errors);
  return errors;
}

function checkFrame(slot: Memslot, gfn: number, frame: number, lo: number, zero: number, e: number, errors: string[]): void {
  const f = slot.frames[gfn - slot.baseGfn]!;
  if (f >= 0) {
    if (frame !== f) errors.push(`spte ${e} maps gfn ${gfn} to frame ${frame}, the slot has ${f}`);
  } else if (f === FRAME_ZERO) {
    if (frame !== zero) errors.push(`spte ${e} maps zero-mapped gfn ${gfn} to frame ${frame}`);
    if ((lo & S_HOST_W) !== 0) errors.push(`spte ${e} maps the zero frame host-writable`);
  } else {
    errors.push(`spte ${e} maps gfn ${gfn}, which has no frame`);
  }
}

/** Special roots' shape: mmu.c mmu_alloc_shadow_roots()'s layout, as special pages after Lai Jiangshan's 2022 series. */
function checkSpecialRoots(x: X86VcpuMmu, spt: ShadowPageTable, errors: string[]): void {
  if (x.rootKind !== ROOT_SPECIAL && x.rootKind !== ROOT_NORMAL) return;
  if (x.rootKind === ROOT_NORMAL) {
    if ((spt.flags[x.rootSp]! & SP_SPECIAL) !== 0) errors.push('normal root is special');
    if (spt.rootCount[x.rootSp]! < 1) errors.push('current root has no root reference');
    return;
  }
  let sp = x.rootSp;
  for (;;) {
    if ((spt.flags[sp]! & (SP_IN_USE | SP_SPECIAL)) !== (SP_IN_USE | SP_SPECIAL)) errors.push(`root chain page ${sp} is not special`);
    const level = spt.role[sp]! & 0xf;
    const limit = level > 3 ? 1 : 4;
    for (let i = limit; i < 512; i++) if (spt.sptLo[sp * 512 + i] !== 0) errors.push(`special page ${sp} entry ${i} is used`);
    if (level === 3) {
      for (let i = 0; i < 4; i++) {
        const lo = spt.sptLo[sp * 512 + i]!;
        if (lo === 0) continue;
        const child = frameOf(spt.sptHi[sp * 512 + i]!, lo);
        if ((spt.role[child]! & 0xf) !== 2) errors.push(`PAE entry ${i} does not point at a level-2 page`);
        if ((spt.flags[child]! & SP_SPECIAL) !== 0) errors.push(`PAE entry ${i} points at a special page`);
      }
      break;
    }
    const lo = spt.sptLo[sp * 512]!;
    if (lo === 0) {
      errors.push(`wrapper ${sp} entry 0 is empty`);
      break;
    }
    sp = frameOf(spt.sptHi[sp * 512]!, lo);
  }
  for (let i = 0; i < 3; i++) {
    const p = x.prevSp[i]!;
    if (p !== 0 && (spt.flags[p]! & SP_SPECIAL) !== 0) errors.push('a special root is cached as a previous root');
  }
}
