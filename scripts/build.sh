#!/bin/bash
# Installs npm dependencies and builds (generated enums, native addon, TypeScript).
# Idempotent: npm ci only when package*.json changed; the addon build is incremental.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
now_ms() { local t=${EPOCHREALTIME/./}; echo $(( t / 1000 )); }
t0=$(now_ms)

stamp=node_modules/.hostvisor-deps
want=$(cat package.json package-lock.json | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    echo "build: npm dependencies up to date, skipped npm ci"
else
    # better-sqlite3 is compiled here (g++, make, nodedir): its prebuild-install must not try to
    # download a binary, so it is told to build from source.
    npm_config_build_from_source=better-sqlite3 npm ci --no-audit --no-fund
    echo "$want" > "$stamp"
fi
t1=$(now_ms)

node scripts/gen-libvirt-enums.mjs
if [ ! -f agent/libvirt/native/build/Makefile ]; then
    npx --no-install node-gyp configure --directory agent/libvirt/native
fi
npx --no-install node-gyp build --directory agent/libvirt/native -j 2 >/dev/null
t2=$(now_ms)
rm -rf dist  # no stale output from deleted sources
npx --no-install tsc -p tsconfig.json
t3=$(now_ms)
# the agent as it ships: one file (see the script for why)
node scripts/bundle-agent.mjs
t4=$(now_ms)
echo "build: done (npm $(( t1 - t0 )) ms, native $(( t2 - t1 )) ms, tsc $(( t3 - t2 )) ms, bundle $(( t4 - t3 )) ms)"
