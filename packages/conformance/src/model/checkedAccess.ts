import { Access, FaultKind, FRAME_ZERO, TRANSLATE_FAULT, describeAccess, type Vcpu } from '@hvmmu/core';
import type { ConformanceFixture } from '../ConformanceFixture.js';
import type { GuestModel } from './GuestModel.js';

/** Byte offset in the page where the suite stores and checks its values (not 0, so offsets are checked too). */
export const PROBE_OFFSET = 0x24;

/**
 * Perform `access` to `vpnOf(gfn)` on `vcpu` and compare with the model:
 * the fault kind and code, or the host frame (the one the memslot backs the
 * page with) and the memory contents. A completed write stores `stamp` at the
 * probe offset through the returned host address, as the guest's store would,
 * and records it (and the dirty page) in the model. Returns the violations.
 */
export function checkedAccess(fixture: ConformanceFixture, model: GuestModel, vcpu: Vcpu, gfn: number, access: number, stamp: number): string[] {
  const { vm, guest } = fixture;
  const host = vm.memslots.host;
  const what = `vCPU ${vcpu.id} ${describeAccess(access)} of gfn 0x${gfn.toString(16)} (vpn 0x${guest.vpnOf(gfn).toString(16)})`;
  const expected = model.expectAccess(gfn, access);
  const hpa = vcpu.translate(guest.vpnOf(gfn) * 4096 + PROBE_OFFSET, access);
  if (expected.kind === 'fault') {
    if (hpa !== TRANSLATE_FAULT) return [`${what}: expected fault kind ${expected.fault}, but it completed at hpa 0x${hpa.toString(16)}`];
    const fault = vcpu.fault;
    if (fault.kind !== expected.fault) return [`${what}: expected fault kind ${expected.fault}, got kind ${fault.kind} code 0x${fault.code.toString(16)}`];
    if (expected.fault === FaultKind.GUEST && fault.code !== expected.code) {
      return [`${what}: expected guest fault code 0x${expected.code.toString(16)}, got 0x${fault.code.toString(16)}`];
    }
    if ((expected.fault === FaultKind.NO_MEMORY || expected.fault === FaultKind.READ_ONLY) && Math.floor(fault.gpa / 4096) !== gfn) {
      return [`${what}: the fault reports gpa 0x${fault.gpa.toString(16)}, not in gfn 0x${gfn.toString(16)}`];
    }
    return [];
  }
  if (hpa === TRANSLATE_FAULT) return [`${what}: expected completion, got fault kind ${vcpu.fault.kind} code 0x${vcpu.fault.code.toString(16)}`];
  if (hpa % 4096 !== PROBE_OFFSET) return [`${what}: hpa 0x${hpa.toString(16)} lost the page offset 0x${PROBE_OFFSET.toString(16)}`];
  const hfn = Math.floor(hpa / 4096);
  const slot = vm.memslots.get(expected.slot.id);
  const backing = slot.frames[expected.index]!;
  const write = (access & Access.WRITE) !== 0;
  if (write && backing < 0) return [`${what}: completed, but the page still has no private frame`];
  const backingHfn = backing >= 0 ? backing : backing === FRAME_ZERO ? host.zeroFrame : -1;
  if (hfn !== backingHfn) return [`${what}: translated to hfn 0x${hfn.toString(16)}, but the memslot backs the page with 0x${backingHfn.toString(16)}`];
  if (write) {
    host.write32(hpa, stamp, true);
    expected.slot.values.set(expected.index, stamp);
    if (slot.dirtyLogging) expected.slot.dirty.add(expected.index);
    return [];
  }
  const want = expected.slot.values.get(expected.index) ?? 0;
  const got = host.read32(hpa, true);
  return got === want ? [] : [`${what}: read 0x${got.toString(16)}, but the guest last wrote 0x${want.toString(16)} there`];
}
