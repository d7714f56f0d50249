import { injectable, injectAll } from 'tsyringe';
import { HvmmuError } from '../errors/HvmmuError.js';
import { RMAP_OPS } from '../di/tokens.js';
import type { BackendTypes } from '../vm/BackendTypes.js';
import { RMAP_INVALID, RMAP_NORMAL, type RmapStrategy } from './RmapStrategy.js';

/**
 * The named rmap strategy tables of one VM, collected from every `RMAP_OPS`
 * registration in the VM's container (`normal`, `invalid`, and whatever the
 * backend adds). Duplicate names are a backend bug and throw at VM creation.
 */
@injectable()
export class RmapOpsRegistry<T extends BackendTypes = BackendTypes> {
  private readonly byName = new Map<string, T['rmapOps']>();

  // Optional so that a backend registering no table at all gets
  // BACKEND_MISSING_BINDING below instead of tsyringe's unregistered-token error.
  constructor(@injectAll(RMAP_OPS, { isOptional: true }) tables: RmapStrategy[]) {
    for (const table of tables) {
      if (this.byName.has(table.name)) {
        throw new HvmmuError('RMAP_DUPLICATE_STRATEGY', `two rmap strategies are registered as '${table.name}'`);
      }
      this.byName.set(table.name, table as T['rmapOps']);
    }
    for (const required of [RMAP_NORMAL, RMAP_INVALID]) {
      if (!this.byName.has(required)) {
        throw new HvmmuError(
          'BACKEND_MISSING_BINDING',
          `the backend registered no '${required}' rmap strategy (token RMAP_OPS); registered: [${[...this.byName.keys()].join(', ')}]`,
        );
      }
    }
  }

  get(name: string): T['rmapOps'] {
    const table = this.byName.get(name);
    if (table === undefined) {
      throw new HvmmuError('RMAP_UNKNOWN_STRATEGY', `no rmap strategy named '${name}' (have: ${[...this.byName.keys()].join(', ')})`);
    }
    return table;
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  names(): string[] {
    return [...this.byName.keys()];
  }
}
