import { describe, expect, it } from 'vitest';
import { container, type DependencyContainer } from 'tsyringe';
import { HvmmuError, Hypervisor, RMAP_INVALID, RMAP_NORMAL, RMAP_OPS, RmapOpsRegistry } from '@hvmmu/core';
import { expectHvmmuError } from './fixtures/assertions.js';
import { RecordingRmapOps } from './fixtures/RecordingRmapOps.js';
import { identityMmu, makeTestBackend } from './fixtures/testBackend.js';

function containerWith(...names: string[]): { c: DependencyContainer; tables: RecordingRmapOps[] } {
  const c = container.createChildContainer();
  const tables = names.map((n) => new RecordingRmapOps(n));
  for (const t of tables) c.register(RMAP_OPS, { useValue: t });
  return { c, tables };
}

describe('RmapOpsRegistry', () => {
  it('core relies on the names "normal" and "invalid"', () => {
    expect(RMAP_NORMAL).toBe('normal');
    expect(RMAP_INVALID).toBe('invalid');
  });

  it('collects every RMAP_OPS registration of the container by name', () => {
    const { c, tables } = containerWith('normal', 'invalid', 'nested');
    const registry = c.resolve(RmapOpsRegistry);
    expect(registry.names()).toEqual(['normal', 'invalid', 'nested']);
    expect(registry.get('normal')).toBe(tables[0]);
    expect(registry.get('invalid')).toBe(tables[1]);
    expect(registry.get('nested')).toBe(tables[2]);
    expect(registry.has('nested')).toBe(true);
    expect(registry.has('fast-zap')).toBe(false);
  });

  it.each([
    ['nothing registered', []],
    ['no "invalid" table', ['normal']],
    ['no "normal" table', ['invalid', 'nested']],
  ])('%s → BACKEND_MISSING_BINDING', (_name, names) => {
    const { c } = containerWith(...names);
    const error = expectHvmmuError(() => c.resolve(RmapOpsRegistry), 'BACKEND_MISSING_BINDING');
    expect(error.message).toContain('RMAP_OPS');
  });

  it('two tables with one name → RMAP_DUPLICATE_STRATEGY', () => {
    const { c } = containerWith('normal', 'invalid', 'normal');
    const error = expectHvmmuError(() => c.resolve(RmapOpsRegistry), 'RMAP_DUPLICATE_STRATEGY');
    expect(error.message).toContain("'normal'");
  });

  it('looking up an unknown name → RMAP_UNKNOWN_STRATEGY', () => {
    const { c } = containerWith('normal', 'invalid');
    const registry = c.resolve(RmapOpsRegistry);
    const error = expectHvmmuError(() => registry.get('tdp'), 'RMAP_UNKNOWN_STRATEGY');
    expect(error.message).toContain('normal');
    expect(error.message).toContain('invalid');
  });
});

describe('rmap strategies in a VM', () => {
  it("slots use the backend's normal table; delete switches them to its invalid table before the MMU flush", () => {
    const hv = new Hypervisor({ memoryBytes: 64 * 4096 });
    const vm = hv.createVm({ backend: makeTestBackend({ rmapTables: ['normal', 'invalid', 'extra'] }) });
    const registry = vm.container.resolve(RmapOpsRegistry);
    const normal = registry.get('normal') as RecordingRmapOps;
    const invalid = registry.get('invalid') as RecordingRmapOps;
    expect(registry.has('extra')).toBe(true);
    const slot = vm.memslots.create({ id: 0, guestPhysAddr: 0, size: 4 * 4096 });
    expect(slot.rmapOps).toBe(normal);
    const vcpu = vm.createVcpu();
    expect(vcpu.translate(0x1000, 0)).toBeGreaterThanOrEqual(0);
    expect(vcpu.translate(0x2000, 0)).toBeGreaterThanOrEqual(0);
    expect(normal.opsFor('add').map((c) => c.gfn)).toEqual([1, 2]);
    vm.memslots.delete(0);
    // The MMU's teardown during flushMemslot went through the invalid table.
    expect(identityMmu(vm).events.find((e) => e.event === 'flush')?.rmap).toBe('invalid');
    expect(
      invalid
        .opsFor('unmap')
        .map((c) => c.gfn)
        .sort(),
    ).toEqual([1, 2]);
    expect(normal.opsFor('unmap')).toEqual([]);
  });

  it('each VM gets its own tables', () => {
    const hv = new Hypervisor({ memoryBytes: 64 * 4096 });
    const backend = makeTestBackend();
    const a = hv.createVm({ backend });
    const b = hv.createVm({ backend });
    expect(a.container.resolve(RmapOpsRegistry).get('normal')).not.toBe(b.container.resolve(RmapOpsRegistry).get('normal'));
  });

  it('a backend registering no rmap tables, or only one, cannot build a VM (BACKEND_MISSING_BINDING)', () => {
    const hv = new Hypervisor({ memoryBytes: 64 * 4096 });
    for (const rmapTables of [[], ['normal'], ['invalid']]) {
      let thrown: unknown;
      try {
        hv.createVm({ backend: makeTestBackend({ rmapTables }) });
      } catch (e) {
        thrown = e;
      }
      expect(thrown).toBeInstanceOf(HvmmuError);
      expect((thrown as HvmmuError).code).toBe('BACKEND_MISSING_BINDING');
    }
    expect(hv.vms).toEqual([]);
  });
});
