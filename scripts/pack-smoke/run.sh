#!/usr/bin/env bash
# Install packed tarballs into fresh projects outside the repo and run smoke
# programs there: each package must install and work without the monorepo.
set -euo pipefail
PACKS=$1
OUT=$2
HERE=$(cd "$(dirname "$0")" && pwd)
tarball() { ls "$PACKS"/hvmmu-"$1"-*.tgz; }

# 1. @hvmmu/core alone.
mkdir -p "$OUT/core-only" && cd "$OUT/core-only"
npm init -y >/dev/null
npm install --no-audit --no-fund --silent "$(tarball core)" tsyringe@4.10.0 >/dev/null
cp "$HERE/core-only.mjs" . && node core-only.mjs

# 2. Every package together, as a user composing a hypervisor would.
mkdir -p "$OUT/all" && cd "$OUT/all"
npm init -y >/dev/null
npm install --no-audit --no-fund --silent "$(tarball core)" "$(tarball conformance)" "$(tarball x86-shadow)" "$(tarball cli)" tsyringe@4.10.0 >/dev/null
cp "$HERE/all-packages.mjs" . && node all-packages.mjs
npx --no-install hvmmu --help >/dev/null
echo "pack smoke: ok"
