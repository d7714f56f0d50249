import { describe, expect, it } from 'vitest';
import {
  Access,
  FaultKind,
  HvmmuError,
  Hypervisor,
  MemslotFlags,
  RmapOpsRegistry,
  TRANSLATE_FAULT,
  type Memslot,
  type TraceEvent,
  type Vcpu,
  type Vm,
} from '@hvmmu/core';
import {
  HostStageTable,
  IDENTITY_HYPERCALL_ABI,
  IdentityHypercall,
  IdentityMmu,
  IdentityPageState,
  IdentitySlotRmap,
  PERM_BY_PROTECTION,
  createIdentityMapBackend,
  identityMapBackend,
  type IdentityOptions,
  type IdentityRmapOps,
  type IdentityTypes,
} from '@hvmmu/reference';

const PAGE = 4096;

function errorCode(action: () => unknown): string {
  try {
    action();
  } catch (error) {
    return error instanceof HvmmuError ? error.code : String(error);
  }
  return 'no error';
}

/** A VM of the identity backend with slot 1 at gfn 0x10 (`pages` pages) and one vCPU, paging off. */
function machine(
  options: { pages?: number; flags?: number; backendOptions?: Record<string, unknown>; guestPhysBits?: number; trace?: (e: TraceEvent) => void } = {},
) {
  const hv = new Hypervisor({ memoryBytes: 256 * PAGE });
  const vm = hv.createVm({
    backend: identityMapBackend,
    tlbEntries: 64,
    ...(options.backendOptions !== undefined ? { backendOptions: options.backendOptions } : {}),
    ...(options.guestPhysBits !== undefined ? { guestPhysBits: options.guestPhysBits } : {}),
    ...(options.trace !== undefined ? { trace: options.trace } : {}),
  });
  const slot = vm.memslots.create({ id: 1, guestPhysAddr: 0x10 * PAGE, size: (options.pages ?? 8) * PAGE, flags: options.flags ?? 0 });
  const vcpu = vm.createVcpu();
  const mmu = vm.mmu;
  if (!(mmu instanceof IdentityMmu)) throw new Error('not the identity MMU');
  return { hv, vm, slot, vcpu, mmu };
}

function query(vcpu: Vcpu, gpa: number): { status: number; state: number; slot: number } {
  vcpu.hcallRegs.clear();
  vcpu.hcallRegs.setArg(0, gpa);
  const status = vcpu.hypercall(IdentityHypercall.QUERY_PAGE);
  return { status, state: vcpu.hcallRegs.ret(0), slot: vcpu.hcallRegs.ret(1) };
}

function setProtectionTable(vcpu: Vcpu, gpa: number, pages: number): number {
  vcpu.hcallRegs.clear();
  vcpu.hcallRegs.setArg(0, gpa).setArg(1, pages);
  return vcpu.hypercall(IdentityHypercall.SET_PROTECTION_TABLE);
}

const { MEMORY, READ_ONLY, PRIVATE, MAPPED, WRITABLE, DIRTY } = IdentityPageState;

describe('HostStageTable', () => {
  it('has one 9-bit level per 512-way split of the guest frame number', () => {
    expect(new HostStageTable(52).levels).toBe(5); // 40 gfn bits
    expect(new HostStageTable(32).levels).toBe(3); // 20
    expect(new HostStageTable(22).levels).toBe(2); // 10
    expect(new HostStageTable(21).levels).toBe(1); // 9
    expect(new HostStageTable(12).levels).toBe(1); // one frame
    expect(new HostStageTable(52).maxGfn).toBe(2 ** 40);
  });

  it('rejects a guest physical width outside 12..52', () => {
    for (const bits of [11, 53, 20.5]) expect(errorCode(() => new HostStageTable(bits))).toBe('BAD_ARGUMENT');
  });

  it('maps gfns at every level boundary to distinct stable entries, one slot of a 512-entry leaf each', () => {
    const table = new HostStageTable(52);
    const gfns = [0, 1, 511, 512, 2 ** 18 - 1, 2 ** 18, 2 ** 27, 2 ** 36, 2 ** 40 - 1];
    const entries = gfns.map((gfn, i) => table.insert(gfn, 100 + i, i % 2 === 0, 7));
    expect(new Set(entries).size).toBe(gfns.length);
    gfns.forEach((gfn, i) => {
      expect(table.lookup(gfn)).toBe(entries[i]);
      expect(entries[i]! % 512).toBe(gfn % 512);
      expect(table.hfnOf(entries[i]!)).toBe(100 + i);
      expect(table.gfnOf(entries[i]!)).toBe(gfn);
      expect(table.isWritable(entries[i]!)).toBe(i % 2 === 0);
    });
    for (const absent of [2, 510, 513, 2 ** 18 + 1, 2 ** 36 + 512, 2 ** 40 - 2]) expect(table.lookup(absent)).toBe(-1);
    expect(table.count).toBe(gfns.length);
    expect(errorCode(() => table.insert(512, 1, true, 7))).toBe('BACKEND_INVALID');
  });

  it('keeps every entry across pool growth (more nodes than the initial 4 of each kind)', () => {
    const table = new HostStageTable(52);
    const gfns = Array.from({ length: 16 }, (_, k) => k * 2 ** 36 + k * 512 + k);
    const entries = gfns.map((gfn, k) => table.insert(gfn, k, false, 1));
    gfns.forEach((gfn, k) => {
      expect(table.lookup(gfn)).toBe(entries[k]);
    });
    // Per gfn: directory nodes at levels 4, 3 and 2 below the shared root, and a leaf node.
    expect(table.nodes).toBe(1 + 16 * 4);
  });

  it('clears an entry in place, re-inserts it at the same index, and resets to the root alone', () => {
    const table = new HostStageTable(32);
    const entry = table.insert(0x12345, 9, true, 1);
    table.clear(entry);
    expect(table.lookup(0x12345)).toBe(-1);
    expect(table.count).toBe(0);
    expect(table.insert(0x12345, 10, false, 1)).toBe(entry);
    table.reset();
    expect(table.lookup(0x12345)).toBe(-1);
    expect(table.count).toBe(0);
    expect(table.nodes).toBe(1);
  });
});

describe('protection-to-TLB permission masks', () => {
  // Access kinds as bit numbers: W=1, F=2, U=4, I=8; W|F (3, 7, 11, 15) is impossible.
  it('grants every possible kind for a fully permissive page with a writable host entry', () => {
    expect(PERM_BY_PROTECTION[(0xf << 1) | 1]).toBe(0x7777);
  });
  it('withholds every write kind when the host entry is read-only', () => {
    expect(PERM_BY_PROTECTION[0xf << 1]).toBe(0x5555);
  });
  it('grants supervisor reads and fetches (implicit counts as supervisor) for present+exec', () => {
    expect(PERM_BY_PROTECTION[(0x5 << 1) | 1]).toBe((1 << 0) | (1 << 2) | (1 << 8) | (1 << 10) | (1 << 12) | (1 << 14));
  });
  it('grants only supervisor reads for present alone, and nothing for not present', () => {
    expect(PERM_BY_PROTECTION[(0x1 << 1) | 1]).toBe((1 << 0) | (1 << 8) | (1 << 12));
    expect(PERM_BY_PROTECTION[1]).toBe(0);
  });
});

describe('identity faults (paging off)', () => {
  it('maps a read of an untouched page to the shared zero frame, read-only, and counts it', () => {
    const { vm, vcpu, mmu } = machine();
    const hpa = vcpu.translate(0x11 * PAGE + 0x40, Access.READ);
    expect(hpa).toBe(vm.memslots.host.zeroFrame * PAGE + 0x40);
    expect(vcpu.tlb.perms[0x11 & vcpu.tlb.mask]! & (1 << Access.WRITE)).toBe(0);
    expect(query(vcpu, 0x11 * PAGE)).toEqual({ status: 0, state: MEMORY | MAPPED, slot: 1 });
    expect(mmu.stats()['identityZeroFrameMaps']).toBe(1);
  });

  it('gives a written page its own frame, dropping the zero-frame mapping first', () => {
    const { vm, slot, vcpu, mmu } = machine();
    vcpu.translate(0x11 * PAGE, Access.READ);
    const hpa = vcpu.translate(0x11 * PAGE, Access.WRITE);
    expect(slot.frames[1]).toBeGreaterThanOrEqual(0);
    expect(hpa).toBe(slot.frames[1]! * PAGE);
    expect(hpa / PAGE).not.toBe(vm.memslots.host.zeroFrame);
    expect(query(vcpu, 0x11 * PAGE).state).toBe(MEMORY | PRIVATE | MAPPED | WRITABLE);
    expect(mmu.stats()['identityRmapDrops']).toBe(1);
  });

  it('maps a read of a page with its own frame writable, but read-only while logging dirty pages and in READONLY slots', () => {
    for (const [flags, state] of [
      [0, MEMORY | PRIVATE | MAPPED | WRITABLE],
      [MemslotFlags.LOG_DIRTY_PAGES, MEMORY | PRIVATE | MAPPED],
      [MemslotFlags.READONLY, MEMORY | READ_ONLY | PRIVATE | MAPPED],
    ] as const) {
      const { vm, vcpu } = machine({ flags });
      vm.memslots.write32(0x12 * PAGE, 0xfeed, true);
      expect(vcpu.translate(0x12 * PAGE, Access.READ)).not.toBe(TRANSLATE_FAULT);
      expect(query(vcpu, 0x12 * PAGE).state).toBe(state);
      if (flags === MemslotFlags.LOG_DIRTY_PAGES) expect(Array.from(vm.memslots.getDirtyLog(1))).toEqual([0]);
    }
  });

  it('logs a write and reports the page dirty', () => {
    const { vcpu } = machine({ flags: MemslotFlags.LOG_DIRTY_PAGES });
    vcpu.translate(0x13 * PAGE, Access.WRITE);
    expect(query(vcpu, 0x13 * PAGE).state).toBe(MEMORY | PRIVATE | MAPPED | WRITABLE | DIRTY);
  });

  it('allows user and fetch accesses everywhere without a protection table', () => {
    const { vcpu } = machine();
    for (const access of [Access.USER | Access.FETCH, Access.USER | Access.WRITE, Access.FETCH])
      expect(vcpu.translate(0x14 * PAGE, access)).not.toBe(TRANSLATE_FAULT);
  });

  it('faults an address beyond the guest physical width with RSVD plus the access bits', () => {
    const { vcpu } = machine({ guestPhysBits: 32 });
    expect(vcpu.translate(2 ** 32, Access.READ)).toBe(TRANSLATE_FAULT);
    expect([vcpu.fault.kind, vcpu.fault.code]).toEqual([FaultKind.GUEST, 0x8]);
    expect(vcpu.translate(2 ** 32 + 0x5000, Access.USER | Access.WRITE)).toBe(TRANSLATE_FAULT);
    expect(vcpu.fault.code).toBe(0x8 | 0x2 | 0x4);
  });

  it('ends a gfn outside every slot in NO_MEMORY and a write to a READONLY slot in READ_ONLY, with the faulting byte address', () => {
    const { vcpu } = machine({ flags: MemslotFlags.READONLY });
    expect(vcpu.translate(0x40 * PAGE + 8, Access.READ)).toBe(TRANSLATE_FAULT);
    expect([vcpu.fault.kind, vcpu.fault.gpa]).toEqual([FaultKind.NO_MEMORY, 0x40 * PAGE + 8]);
    expect(vcpu.translate(0x10 * PAGE, Access.WRITE)).toBe(TRANSLATE_FAULT);
    expect([vcpu.fault.kind, vcpu.fault.gpa]).toEqual([FaultKind.READ_ONLY, 0x10 * PAGE]);
  });
});

describe('the protection table (guest stage)', () => {
  /** A machine whose table lives in slot 2 at gpa 0 and covers gfns [0, 0x100). */
  function protectedMachine() {
    const m = machine();
    m.vm.memslots.create({ id: 2, guestPhysAddr: 0, size: PAGE });
    expect(setProtectionTable(m.vcpu, 0, 0x100)).toBe(IDENTITY_HYPERCALL_ABI.success);
    const protect = (gfn: number, prot: number): void => {
      m.vm.memslots.write8(gfn, prot);
      m.vcpu.tlb.flushPage(0, gfn);
    };
    return { ...m, protect };
  }

  it('faults with the x86-style codes: not present, protection (W, U, fetch), reserved bits', () => {
    const { vcpu, protect } = protectedMachine();
    const code = (va: number, access: number): number => (vcpu.translate(va, access) === TRANSLATE_FAULT ? vcpu.fault.code : -1);
    expect(code(0x11 * PAGE, Access.WRITE)).toBe(0x2); // byte 0: not present
    protect(0x11, 0x01); // present, read-only, supervisor, no exec
    expect(code(0x11 * PAGE, Access.READ)).toBe(-1);
    expect(code(0x11 * PAGE, Access.WRITE)).toBe(0x1 | 0x2);
    expect(code(0x11 * PAGE, Access.USER)).toBe(0x1 | 0x4);
    expect(code(0x11 * PAGE, Access.FETCH)).toBe(0x1 | 0x10);
    expect(code(0x11 * PAGE, Access.USER | Access.IMPLICIT)).toBe(-1); // implicit accesses are supervisor
    protect(0x11, 0x41);
    expect(code(0x11 * PAGE, Access.READ)).toBe(0x1 | 0x8);
    expect(code(0x200 * PAGE, Access.USER | Access.WRITE)).toBe(0x2 | 0x4); // beyond the table: not present
  });

  it('keeps serving a cached translation after the guest changes its byte, until the guest invalidates the page', () => {
    const { vcpu, protect, vm } = protectedMachine();
    protect(0x11, 0x0f);
    expect(vcpu.translate(0x11 * PAGE, Access.WRITE)).not.toBe(TRANSLATE_FAULT);
    vm.memslots.write8(0x11, 0x01);
    expect(vcpu.translate(0x11 * PAGE, Access.WRITE)).not.toBe(TRANSLATE_FAULT);
    vcpu.tlb.flushPage(0, 0x11);
    expect(vcpu.translate(0x11 * PAGE, Access.WRITE)).toBe(TRANSLATE_FAULT);
  });

  it('loads the register and flushes the vCPU TLB on SET_PROTECTION_TABLE; (0, 0) turns protection off', () => {
    const { vcpu, mmu, vm } = protectedMachine();
    expect(mmu.inspect().registers[0]).toEqual({ protectionBase: 0, protectionPages: 0x100 });
    expect(setProtectionTable(vcpu, 0, 0)).toBe(IDENTITY_HYPERCALL_ABI.success);
    expect(vcpu.translate(0x11 * PAGE, Access.USER | Access.WRITE)).not.toBe(TRANSLATE_FAULT);
    expect(vcpu.tlb.countValid()).toBe(1);
    expect(setProtectionTable(vcpu, 0, 0x100)).toBe(IDENTITY_HYPERCALL_ABI.success);
    expect(vcpu.tlb.countValid()).toBe(0);
    expect(vcpu.translate(0x11 * PAGE, Access.READ)).toBe(TRANSLATE_FAULT);
    expect(vm.hypercalls.handlerErrors).toBe(0);
  });

  it('faults with TABLE when the table lies outside guest memory, and refuses such a table through the hypercall', () => {
    const { vcpu, mmu } = protectedMachine();
    expect(setProtectionTable(vcpu, 0x100 * PAGE, 0x100)).toBe(IDENTITY_HYPERCALL_ABI.badParameter);
    expect(mmu.inspect().registers[0]).toEqual({ protectionBase: 0, protectionPages: 0x100 });
    mmu.translatorOf(vcpu).setProtectionTable(0x100 * PAGE, 0x100);
    expect(vcpu.translate(0x11 * PAGE, Access.READ)).toBe(TRANSLATE_FAULT);
    expect(vcpu.fault.code).toBe(0x20);
  });

  it('refuses a misused host-side register load with BAD_ARGUMENT', () => {
    const { vcpu, mmu } = protectedMachine();
    const translator = mmu.translatorOf(vcpu);
    expect(errorCode(() => translator.setProtectionTable(0x123, 4))).toBe('BAD_ARGUMENT');
    expect(errorCode(() => translator.setProtectionTable(0, -1))).toBe('BAD_ARGUMENT');
    expect(errorCode(() => translator.setProtectionTable(2 ** 52 - PAGE, 2 * PAGE))).toBe('BAD_ARGUMENT');
  });
});

describe('QUERY_PAGE', () => {
  it('reports no memory for a hole, and the backing slot otherwise', () => {
    const { vm, vcpu } = machine();
    vm.memslots.create({ id: 3, guestPhysAddr: 0x20 * PAGE, size: PAGE, flags: MemslotFlags.READONLY });
    expect(query(vcpu, 0x40 * PAGE)).toEqual({ status: 0, state: 0, slot: 0 });
    expect(query(vcpu, 0x11 * PAGE + 0xabc)).toEqual({ status: 0, state: MEMORY, slot: 1 });
    expect(query(vcpu, 0x20 * PAGE)).toEqual({ status: 0, state: MEMORY | READ_ONLY, slot: 3 });
    expect(query(vcpu, 2 ** 52).status).toBe(IDENTITY_HYPERCALL_ABI.badParameter);
  });
});

describe('rmap tables (2013 KVM invalid rmap handlers patch)', () => {
  /** Pages 0..6 of slot 1 written (mapped writable), page 7 untouched. */
  function mappedMachine() {
    const events: TraceEvent[] = [];
    const m = machine({ trace: (e) => events.push(e) });
    for (let page = 0; page < 7; page++) expect(m.vcpu.translate((0x10 + page) * PAGE, Access.WRITE)).not.toBe(TRANSLATE_FAULT);
    const registry = m.vm.container.resolve(RmapOpsRegistry);
    return {
      ...m,
      events,
      normal: registry.get('normal') as IdentityRmapOps,
      invalid: registry.get('invalid') as IdentityRmapOps,
      rmap: IdentitySlotRmap.of(m.slot as Memslot<IdentityTypes>),
    };
  }
  const mapped = (vcpu: Vcpu, page: number): number => query(vcpu, (0x10 + page) * PAGE).state & (MAPPED | WRITABLE);
  const cached = (vcpu: Vcpu, page: number): boolean => vcpu.tlb.tags[(0x10 + page) & vcpu.tlb.mask] === 0x10 + page;

  it('invalid: add and writeProtect warn and do nothing', () => {
    const { slot, vcpu, mmu, invalid, rmap, events } = mappedMachine();
    invalid.add(slot, 0x17, 1, 999);
    expect(rmap.entryAt(7)).toBe(-1);
    expect(invalid.writeProtect(slot, 0x10, 1)).toBe(false);
    expect(mapped(vcpu, 0)).toBe(MAPPED | WRITABLE);
    expect(mmu.stats()['identityInvalidSlotWarnings']).toBe(2);
    expect(events.filter((e) => e.kind === 'rmap-invalid-slot-warning').map((e) => e['op'])).toEqual(['add', 'writeProtect']);
  });

  it('invalid: remove clears the head in place, keeping the rmap array', () => {
    const { slot, invalid, rmap } = mappedMachine();
    const heads = rmap.heads;
    const entry = rmap.entryAt(1);
    invalid.remove(slot, 0x11, 1, entry);
    expect(rmap.entryAt(1)).toBe(-1);
    expect(IdentitySlotRmap.of(slot).heads).toBe(heads);
    expect(rmap.used).toBe(6);
  });

  it('invalid: unmap, setPte, age and testAge all drop the mapping and shoot down the TLB', () => {
    const { slot, vcpu, invalid, rmap } = mappedMachine();
    const ops = [
      () => invalid.unmap(slot, 0x10, 1),
      () => invalid.setPte(slot, 0x11, 1, 5, false),
      () => invalid.age(slot, 0x12, 1),
      () => invalid.testAge(slot, 0x13, 1),
    ];
    ops.forEach((op, page) => {
      expect(cached(vcpu, page)).toBe(true);
      expect(op()).toBe(true);
      expect(mapped(vcpu, page)).toBe(0);
      expect(rmap.entryAt(page)).toBe(-1);
      expect(cached(vcpu, page)).toBe(false);
    });
    expect(invalid.unmap(slot, 0x17, 1)).toBe(false);
  });

  it('normal: writeProtect clears W and shoots the page down; a second call changes nothing', () => {
    const { slot, vcpu, normal } = mappedMachine();
    expect(normal.writeProtect(slot, 0x12, 1)).toBe(true);
    expect(mapped(vcpu, 2)).toBe(MAPPED);
    expect(cached(vcpu, 2)).toBe(false);
    expect(normal.writeProtect(slot, 0x12, 1)).toBe(false);
  });

  it('normal: change_pte re-points read-only (migration), and zaps when the new page is writable', () => {
    const { vm, slot, vcpu, normal } = mappedMachine();
    const old = slot.frames[3]!;
    const moved = vm.migrateHostFrame(old);
    expect(mapped(vcpu, 3)).toBe(MAPPED);
    const faults = vcpu.tableMisses;
    expect(vcpu.translate(0x13 * PAGE, Access.READ)).toBe(moved * PAGE);
    expect(vcpu.tableMisses).toBe(faults);
    expect(vcpu.translate(0x13 * PAGE, Access.WRITE)).toBe(moved * PAGE);
    expect(vcpu.tableMisses).toBe(faults + 1);
    expect(normal.setPte(slot, 0x14, 1, slot.frames[4]!, true)).toBe(true);
    expect(mapped(vcpu, 4)).toBe(0);
  });

  it('normal: age reports young once and clears it; testAge only reads', () => {
    const { slot, normal } = mappedMachine();
    expect(normal.testAge(slot, 0x15, 1)).toBe(true);
    expect(normal.testAge(slot, 0x15, 1)).toBe(true);
    expect(normal.age(slot, 0x15, 1)).toBe(true);
    expect(normal.age(slot, 0x15, 1)).toBe(false);
    expect(normal.testAge(slot, 0x15, 1)).toBe(false);
  });

  it('normal: refuses a second entry for a mapped gfn (a backend bug, never guest input)', () => {
    const { slot, normal, rmap } = mappedMachine();
    expect(errorCode(() => normal.add(slot, 0x10, 1, rmap.entryAt(0) + 1))).toBe('BACKEND_INVALID');
  });
});

describe('memslot invalidation strategies', () => {
  function twoSlots(strategy: 'invalid-rmap' | 'fast-zap') {
    const m = machine({ backendOptions: { memslotInvalidation: strategy } });
    m.vm.memslots.create({ id: 2, guestPhysAddr: 0x30 * PAGE, size: 2 * PAGE });
    for (const gfn of [0x10, 0x11, 0x12, 0x30]) m.vcpu.translate(gfn * PAGE, Access.WRITE);
    return m;
  }

  it("invalid-rmap: delete unmaps exactly the slot's pages through the invalid table", () => {
    const { vm, vcpu, mmu } = twoSlots('invalid-rmap');
    vm.memslots.delete(1);
    expect(mmu.stats()['identityRmapDrops']).toBe(3);
    expect(mmu.stats()['identityZapAlls']).toBe(0);
    expect(query(vcpu, 0x30 * PAGE).state & MAPPED).toBe(MAPPED);
  });

  it('fast-zap: delete drops every mapping of the VM at once', () => {
    const { vm, vcpu, mmu } = twoSlots('fast-zap');
    vm.memslots.delete(1);
    expect(mmu.stats()['identityZapAlls']).toBe(1);
    expect(mmu.stats()['identityMappings']).toBe(0);
    expect(query(vcpu, 0x30 * PAGE).state & MAPPED).toBe(0);
    expect(vcpu.translate(0x30 * PAGE, Access.READ)).not.toBe(TRANSLATE_FAULT);
  });

  it('refuses an unknown strategy or option when the VM is created, naming the valid ones', () => {
    const hv = new Hypervisor({ memoryBytes: 16 * PAGE });
    const lazy = { memslotInvalidation: 'lazy' } as unknown as IdentityOptions;
    expect(errorCode(() => hv.createVm({ backend: identityMapBackend, backendOptions: lazy }))).toBe('BACKEND_BAD_OPTION');
    expect(() => hv.createVm({ backend: identityMapBackend, backendOptions: lazy })).toThrow(/one of 'invalid-rmap', 'fast-zap'/);
    const misspelt = { memslotInvalidaton: 'fast-zap' } as unknown as IdentityOptions;
    expect(errorCode(() => hv.createVm({ backend: identityMapBackend, backendOptions: misspelt }))).toBe('BACKEND_UNKNOWN_OPTION');
    expect(() => hv.createVm({ backend: identityMapBackend, backendOptions: misspelt })).toThrow(/valid options: memslotInvalidation/);
    expect(hv.vms).toHaveLength(0);
  });
});

describe('zap all, stats and capabilities', () => {
  it('zapAll empties the table down to its root and every rmap; stats account rmap bytes per slot page', () => {
    const { vcpu, mmu, slot } = machine({ pages: 8 });
    for (let page = 0; page < 8; page++) vcpu.translate((0x10 + page) * PAGE, Access.WRITE);
    expect(mmu.stats()['identityMappings']).toBe(8);
    expect(mmu.stats()['identityRmapBytes']).toBe(8 * 4);
    mmu.zapAll();
    expect(mmu.stats()['identityMappings']).toBe(0);
    expect(mmu.stats()['identityTableNodes']).toBe(1);
    expect(IdentitySlotRmap.of(slot).used).toBe(0);
    expect(vcpu.tlb.countValid()).toBe(0);
  });

  it('declares capabilities from its options', () => {
    expect(identityMapBackend.capabilities).toMatchObject({
      dirtyLogging: true,
      readOnlyMemslots: true,
      hostInvalidation: true,
      hypercallAbi: 'identity',
      memslotInvalidation: ['invalid-rmap', 'fast-zap'],
      translationContexts: 'single',
      features: { identityPaging: true },
    });
    const minimal = createIdentityMapBackend({ dirtyLogging: false, hypercalls: false });
    expect(minimal.id).toBe('identity-map-without-dirtyLogging-hypercalls');
    expect(minimal.capabilities).toMatchObject({ dirtyLogging: false, readOnlyMemslots: true, hypercallAbi: 'none' });
  });

  it('without hostInvalidation, refuses aging and drops (not re-points) a migrated page', () => {
    const hv = new Hypervisor({ memoryBytes: 64 * PAGE });
    const vm: Vm = hv.createVm({ backend: createIdentityMapBackend({ hostInvalidation: false }) });
    const slot: Memslot = vm.memslots.create({ id: 1, guestPhysAddr: 0, size: 2 * PAGE });
    const vcpu = vm.createVcpu();
    vcpu.translate(0, Access.WRITE);
    const hfn = slot.frames[0]!;
    expect(errorCode(() => vm.ageHostRange(hfn, hfn + 1))).toBe('UNSUPPORTED_BY_BACKEND');
    expect(errorCode(() => vm.testAgeHostRange(hfn, hfn + 1))).toBe('UNSUPPORTED_BY_BACKEND');
    vm.migrateHostFrame(hfn);
    expect((vm.mmu as IdentityMmu).inspect().leaves).toEqual([]);
  });
});
