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

# @hvmmu/conformance with only core beside it (vitest is its peer dependency).
project conformance-only "$(tarball core)" "$(tarball conformance)" tsyringe@4.10.0 vitest@4.1.12
cp "$HERE/conformance-only.mjs" . && node conformance-only.mjs

# Every package together, as a user composing a hypervisor would, and the CLI.
project all "$(tarball core)" "$(tarball conformance)" "$(tarball x86-shadow)" "$(tarball cli)" tsyringe@4.10.0
cp "$HERE/all-packages.mjs" . && node all-packages.mjs
npx --no-install hvmmu help >/dev/null
npx --no-install hvmmu demo | grep -q 'x86 shadow paging'
echo "pack smoke: ok"
