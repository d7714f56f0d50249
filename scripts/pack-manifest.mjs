#!/usr/bin/env node
// npm pack lifecycle for workspace packages: `strip` (prepack) removes the
// `@hvmmu/source` export condition, which points at src/ (not shipped) and
// exists only so tests run without a build, and copies the repository's
// LICENSE into the package (one LICENSE for all; packages/*/LICENSE is
// git-ignored); `restore` (postpack) puts the manifest back and removes the
// copy. Run from the package directory, as npm does.
import { copyFileSync, existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';

const mode = process.argv[2];
const manifest = 'package.json';
const backup = '.package.json.prepack';
const license = 'LICENSE';
const rootLicense = new URL('../LICENSE', import.meta.url);

function strip(node) {
  if (node === null || typeof node !== 'object') return node;
  const out = {};
  for (const [key, value] of Object.entries(node)) {
    if (key === '@hvmmu/source') continue;
    out[key] = strip(value);
  }
  return out;
}

if (mode === 'strip') {
  const text = readFileSync(manifest, 'utf8');
  writeFileSync(backup, text);
  const pkg = JSON.parse(text);
  if (pkg.exports !== undefined) pkg.exports = strip(pkg.exports);
  delete pkg.scripts?.prepack;
  delete pkg.scripts?.postpack;
  writeFileSync(manifest, JSON.stringify(pkg, null, 2) + '\n');
  copyFileSync(rootLicense, license);
} else if (mode === 'restore') {
  if (existsSync(backup)) renameSync(backup, manifest);
  rmSync(license, { force: true });
} else {
  console.error('usage: pack-manifest.mjs strip|restore');
  process.exit(2);
}
