import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

/**
 * The browser bundles the report inlines, read from node_modules when a report is written (so
 * the page needs no network and works from a file:// URL): d3's UMD build, which defines the
 * global `d3`, then Observable Plot's, which defines `Plot` on it. Both packages are
 * dependencies of @hvmmu/cli; their `exports` name the UMD files under the "umd" condition,
 * which require() does not use, so the files are found from each package's directory.
 */
export const CHART_LIBRARIES = [
  { name: 'd3', file: 'dist/d3.min.js' },
  { name: '@observablehq/plot', file: 'dist/plot.umd.min.js' },
] as const;

const require = createRequire(import.meta.url);

/** The directory of an installed package: up from its entry point to the package.json that names it. */
function packageDir(name: string): string {
  let dir = dirname(require.resolve(name));
  for (;;) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest) && (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === name) return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`cannot find the directory of package ${name}`);
    dir = parent;
  }
}

/** Script text made safe to sit inside <script>…</script>: no end tag, no comment opener. */
export function inlineScript(source: string): string {
  return source.replace(/<\/(script)/gi, '<\\/$1').replace(/<!--/g, '\\x3C!--');
}

let cached: string[] | undefined;

/** The bundles' sources, in load order (read once per process). */
export function chartLibrarySources(): readonly string[] {
  cached ??= CHART_LIBRARIES.map((lib) => readFileSync(join(packageDir(lib.name), lib.file), 'utf8'));
  return cached;
}
