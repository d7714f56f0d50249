import { Access, Hypervisor, type Vcpu } from '@hvmmu/core';
import { identityMapBackend } from '@hvmmu/reference';
import { pairedNs, speedFigure, type BenchContext, type BenchFigure, type BenchSuite } from './BenchFigure.js';

const TLB_ENTRIES = 1024;
const PAGES = 512; // all resident in a 1024-entry direct-mapped TLB (distinct slots)
const LOOKUPS = 4096;

/**
 * A TLB hit through the public `Vcpu.translate` path, against a raw
 * direct-mapped Int32Array lookup of the same size over the same addresses
 * (tag compare + frame read, nothing else). Target from the foundation issue:
 * raw/ours ≥ 0.5.
 */
function tlbHit(ctx: BenchContext): BenchFigure {
  const hv = new Hypervisor({ memoryBytes: (PAGES + 64) * 4096 });
  const vm = hv.createVm({ backend: identityMapBackend, tlbEntries: TLB_ENTRIES });
  vm.memslots.create({ id: 0, guestPhysAddr: 0, size: PAGES * 4096 });
  const vcpu: Vcpu = vm.createVcpu();
  // An allocated (non-zero) context, as in every real use where contexts switch.
  vcpu.setContext(vm.contexts.allocate({ contextRevoked: () => undefined }));
  const addrs = new Float64Array(LOOKUPS);
  for (let k = 0; k < LOOKUPS; k++) addrs[k] = ((k * 7919) % PAGES) * 4096 + ((k * 13) & 0xfff);
  for (let p = 0; p < PAGES; p++) {
    if (vcpu.translate(p * 4096, Access.WRITE) < 0) throw new Error('bench set-up: page did not map');
  }

  // The raw baseline: the same direct-mapped shape, filled with the same frames.
  const mask = TLB_ENTRIES - 1;
  const tags = new Int32Array(TLB_ENTRIES).fill(-1);
  const frames = new Int32Array(TLB_ENTRIES);
  for (let p = 0; p < PAGES; p++) {
    tags[p & mask] = p;
    frames[p & mask] = vcpu.tlb.frames[(p & mask) ^ vcpu.context]!;
  }

  const ours = (): number => {
    let s = 0;
    for (let k = 0; k < LOOKUPS; k++) s += vcpu.translate(addrs[k]!, Access.READ);
    return s;
  };
  const raw = (): number => {
    let s = 0;
    for (let k = 0; k < LOOKUPS; k++) {
      const va = addrs[k]!;
      const off = va & 0xfff;
      const vpn = (va - off) / 4096;
      const i = vpn & mask;
      s += tags[i] === vpn ? frames[i]! * 4096 + off : -1;
    }
    return s;
  };
  if (ours() !== raw()) throw new Error('bench set-up: TLB path and raw lookup disagree');
  const missesBefore = vcpu.tlb.misses;
  const t = pairedNs(ours, raw, LOOKUPS, ctx);
  if (vcpu.tlb.misses !== missesBefore) throw new Error('bench: TLB missed during the hit benchmark');
  return speedFigure(t, 'ns/access', 'raw lookup time / Vcpu.translate hit time', '≥ 0.5');
}

/**
 * An emulator inlining the hit, as QEMU's generated code inlines its softmmu
 * lookup, by the documented protocol over the vCPU's TLB arrays, against the
 * same raw lookup. `perKind`: the call site's access kind is fixed, so it
 * uses that kind's tag array (`tlb.tagsFor(access)`; set = (vpn & mask) ^
 * context, hit = one tag compare) — target from the core issue ≥ 0.9.
 * Otherwise the general form: tag compare plus the entry's permission bit.
 * The vCPU runs in an allocated (non-zero) context, so the context is really
 * part of the lookup.
 */
function inlinedHit(ctx: BenchContext, perKind: boolean): BenchFigure {
  const hv = new Hypervisor({ memoryBytes: (PAGES + 64) * 4096 });
  const vm = hv.createVm({ backend: identityMapBackend, tlbEntries: TLB_ENTRIES });
  vm.memslots.create({ id: 0, guestPhysAddr: 0, size: PAGES * 4096 });
  const vcpu = vm.createVcpu();
  vcpu.setContext(vm.contexts.allocate({ contextRevoked: () => undefined }));
  const access = Access.READ;
  const { tags, perms, frames, mask } = vcpu.tlb;
  const readTags = perKind ? vcpu.tlb.tagsFor(access) : tags;
  const vpns = new Float64Array(LOOKUPS);
  for (let k = 0; k < LOOKUPS; k++) vpns[k] = (k * 7919) % PAGES;
  for (let p = 0; p < PAGES; p++) {
    if (vcpu.translatePage(p, Access.WRITE) < 0) throw new Error('bench set-up: page did not map');
  }
  const context = vcpu.context;

  const rawTags = new Int32Array(TLB_ENTRIES).fill(-1);
  const rawFrames = new Int32Array(TLB_ENTRIES);
  for (let p = 0; p < PAGES; p++) {
    rawTags[p & mask] = p;
    rawFrames[p & mask] = frames[(p & mask) ^ context]!;
  }

  const inlined = perKind
    ? (): number => {
        let s = 0;
        for (let k = 0; k < LOOKUPS; k++) {
          const vpn = vpns[k]!;
          const i = (vpn & mask) ^ context;
          s += readTags[i] === vpn ? frames[i]! : vcpu.translatePage(vpn, access);
        }
        return s;
      }
    : (): number => {
        let s = 0;
        for (let k = 0; k < LOOKUPS; k++) {
          const vpn = vpns[k]!;
          const i = (vpn & mask) ^ context;
          s += tags[i] === vpn && ((perms[i]! >> access) & 1) !== 0 ? frames[i]! : vcpu.translatePage(vpn, access);
        }
        return s;
      };
  const raw = (): number => {
    let s = 0;
    for (let k = 0; k < LOOKUPS; k++) {
      const vpn = vpns[k]!;
      const i = vpn & mask;
      s += rawTags[i] === vpn ? rawFrames[i]! : -1;
    }
    return s;
  };
  if (inlined() !== raw()) throw new Error('bench set-up: inlined hit and raw lookup disagree');
  const missesBefore = vcpu.tlb.misses;
  const t = pairedNs(inlined, raw, LOOKUPS, ctx);
  if (vcpu.tlb.misses !== missesBefore) throw new Error('bench: TLB missed during the inlined-hit benchmark');
  return perKind
    ? speedFigure(t, 'ns/access', "raw lookup time / inlined hit on the kind's tag array (tlb.tagsFor)", '≥ 0.9')
    : speedFigure(t, 'ns/access', 'raw lookup time / inlined hit, tag + permission bit', '');
}

// One suite per figure, so each runs in a fresh process: the JIT state one
// leaves (field constness, which functions already have optimised code and
// so are no longer inlined) moved the others by up to 8% with the order.
export const coreTlbSuites: readonly BenchSuite[] = [
  { name: 'core.tlb.hit', keyPrefix: 'core.tlb', run: (ctx) => ({ hitVsRawLookup: tlbHit(ctx) }) },
  { name: 'core.tlb.inlined', keyPrefix: 'core.tlb', run: (ctx) => ({ inlinedHitVsRawLookup: inlinedHit(ctx, true) }) },
  { name: 'core.tlb.inlinedPerm', keyPrefix: 'core.tlb', run: (ctx) => ({ inlinedPermHitVsRawLookup: inlinedHit(ctx, false) }) },
];
