import { describe, expect, it } from 'vitest';
import { H_PARAMETER, H_SUCCESS, HvGuestState, HvGuestStateField, PT_REGS_BYTES } from '@hvmmu/ppc-radix';

/** L1 memory of 1 MiB; the hv_guest_state at 0x1000, the register block at 0x2000. */
function l1(version: bigint, littleEndian: boolean, token = 3) {
  const mem = new Uint8Array(1 << 20);
  const v = new DataView(mem.buffer);
  v.setBigUint64(0x1000, version, littleEndian);
  v.setUint32(0x1000 + 8, 7, littleEndian); // lpid
  v.setUint32(0x1000 + 12, token, littleEndian); // vcpu_token
  v.setBigUint64(0x1000 + HvGuestStateField.hdecExpiry, 0x1122_3344_5566_7788n, littleEndian);
  v.setBigUint64(0x1000 + HvGuestStateField.pidr, 42n, littleEndian);
  const read = (gpa: number, n: number): Uint8Array | null => (gpa >= 0 && gpa + n <= mem.length ? mem.subarray(gpa, gpa + n) : null);
  return { mem, read };
}

describe("H_ENTER_NESTED's hv_guest_state (KVM kvmhv_read_guest_state_and_regs and the checks after it)", () => {
  for (const le of [true, false]) {
    it(`reads versions 1 and 2 in L1's byte order (${le ? 'little' : 'big'}-endian L1), the size the version says`, () => {
      for (const version of [1n, 2n]) {
        const { read } = l1(version, le);
        const r = HvGuestState.read(read, 0x1000, 0x2000, le, 64);
        expect(r.status).toBe(H_SUCCESS);
        const s = r.state!;
        expect([s.version, s.lpid, s.vcpuToken, s.bytes.length, s.regs.length]).toEqual([Number(version), 7, 3, version === 1n ? 232 : 248, PT_REGS_BYTES]);
        expect(s.get64(HvGuestStateField.hdecExpiry)).toBe(0x1122_3344_5566_7788n);
        expect(s.get64(HvGuestStateField.pidr)).toBe(42n);
      }
    });
  }

  it('an unknown version is H_PARAMETER (its size is unknown), as is memory L1 does not have or a vCPU token past NR_CPUS', () => {
    expect(HvGuestState.read(l1(3n, true).read, 0x1000, 0x2000, true, 64).status).toBe(H_PARAMETER);
    expect(HvGuestState.read(l1(0n, true).read, 0x1000, 0x2000, true, 64).status).toBe(H_PARAMETER);
    // The version read in the wrong byte order is a huge number: unknown.
    expect(HvGuestState.read(l1(2n, true).read, 0x1000, 0x2000, false, 64).status).toBe(H_PARAMETER);
    expect(HvGuestState.read(l1(2n, true).read, (1 << 20) - 100, 0x2000, true, 64).status).toBe(H_PARAMETER);
    expect(HvGuestState.read(l1(2n, true).read, 0x1000, (1 << 20) - 8, true, 64).status).toBe(H_PARAMETER);
    expect(HvGuestState.read(l1(2n, true, 64).read, 0x1000, 0x2000, true, 64).status).toBe(H_PARAMETER);
  });
});
