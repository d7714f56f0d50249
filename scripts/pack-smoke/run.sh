#!/usr/bin/env bash
# Install packed tarballs into fresh projects outside the repo and run smoke
# programs there: each package must install and work without the monorepo
# (with only the tarballs of the hvmmu packages it depends on beside it).
set -euo pipefail
PACKS=$1
OUT=$2
HERE=$(cd "$(dirname "$0")" && pwd)
tarball() { ls "$PACKS"/hvmmu-"$1"-*.tgz; }
project() {
  mkdir -p "$OUT/$1" && cd "$OUT/$1"
  npm init -y >/dev/null
  shift
  npm install --no-audit --no-fund --silent "$@" >/dev/null
}

# @hvmmu/core alone.
project core-only "$(tarball core)" tsyringe@4.10.0
cp "$HERE/core-only.mjs" . && node core-only.mjs

# @hvmmu/x86-shadow with only core beside it.
project x86-only "$(tarball core)" "$(tarball x86-shadow)" tsyringe@4.10.0
cp "$HERE/x86-only.mjs" . && node x86-only.mjs

# @hvmmu/reference with only core beside it: a backend a user runs VMs on pulls no test runner.
project ppc-radix-only "$(tarball core)" "$(tarball ppc-radix)" tsyringe@4.10.0
cp "$HERE/ppc-radix-only.mjs" . && node ppc-radix-only.mjs

project ppc-hpt-only "$(tarball core)" "$(tarball ppc-hpt)" tsyringe@4.10.0
cp "$HERE/ppc-hpt-only.mjs" . && node ppc-hpt-only.mjs

project reference-only "$(tarball core)" "$(tarball reference)" tsyringe@4.10.0
cp "$HERE/reference-only.mjs" . && node reference-only.mjs
if [ -e node_modules/vitest ] || [ -e node_modules/fast-check ]; then echo "pack smoke: @hvmmu/reference pulled a test dependency" >&2; exit 1; fi

# @hvmmu/conformance with core and reference beside it (vitest is its peer dependency).
project conformance-only "$(tarball core)" "$(tarball reference)" "$(tarball conformance)" tsyringe@4.10.0 vitest@4.1.12
cp "$HERE/conformance-only.mjs" . && node conformance-only.mjs

# Every package a user runs VMs with, as one composing a hypervisor would, and the CLI:
# none of them may pull a test runner (only @hvmmu/conformance, for backend authors' tests, does).
project all "$(tarball core)" "$(tarball reference)" "$(tarball x86-shadow)" "$(tarball ppc-radix)" "$(tarball ppc-hpt)" "$(tarball cli)" tsyringe@4.10.0
if [ -e node_modules/vitest ] || [ -e node_modules/fast-check ]; then echo "pack smoke: running a VM pulled a test runner" >&2; exit 1; fi
cp "$HERE/all-packages.mjs" . && node all-packages.mjs
npx --no-install hvmmu help >/dev/null
npx --no-install hvmmu demo > demo.txt
for row in 'x86 shadow, 4-level' 'ppc radix, L1' 'ppc radix, nested L2' 'A host invalidation under the running L2' 'ppc hpt, POWER8' 'converged: the destination'; do
  grep -q "$row" demo.txt || { echo "pack smoke: the demo printed no '$row'" >&2; exit 1; }
done
echo "pack smoke: ok"
