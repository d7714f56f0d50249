import { describe, expect, it, vi } from 'vitest';

/**
 * The PowerPC backends are optional peer dependencies of the CLI: without them, `hvmmu inspect
 * --arch radix|hpt` and `hvmmu htab` exit 2 naming the package to install (the module loader's
 * ERR_MODULE_NOT_FOUND stood in for by a mock).
 */
function notInstalled(name: string): never {
  throw Object.assign(new Error(`Cannot find package '${name}'`), { code: 'ERR_MODULE_NOT_FOUND' });
}
vi.mock('@hvmmu/ppc-hpt', () => notInstalled('@hvmmu/ppc-hpt'));
vi.mock('@hvmmu/ppc-radix', () => notInstalled('@hvmmu/ppc-radix'));

describe('hvmmu inspect and htab without the optional PowerPC packages', () => {
  it.each([
    [['inspect', 'x.bin', '--arch', 'radix', '--pate', '0x8000000000000000,0x0'], '@hvmmu/ppc-radix', 'hvmmu inspect --arch radix'],
    [['inspect', 'x.bin', '--arch', 'hpt', '--slbe', '0x8000000,0x0'], '@hvmmu/ppc-hpt', 'hvmmu inspect --arch hpt'],
    [['htab', 'load', 'x.bin'], '@hvmmu/ppc-hpt', 'hvmmu htab'],
  ])('%j names %s', async (argv, pkg, what) => {
    const { run, EXIT } = await import('../src/HvmmuProgram.js');
    let err = '';
    const code = await run(argv, {
      out: () => {},
      err: (s) => {
        err += s;
      },
    });
    expect(code).toBe(EXIT.USAGE);
    expect(err).toContain(`${what} needs the package ${pkg}, which is not installed (npm install ${pkg})`);
  });
});
