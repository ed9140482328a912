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
# Incremental: tsc re-emits only what changed since dist/.tsbuildinfo (a re-run takes seconds, not
# minutes), and untouched outputs keep their times, so the bundle below can tell it is current.
# No stale output: a compiled file whose source is gone is removed; and when any source lacks its
# output (dist partly deleted), the build info is dropped so that tsc emits everything again.
if [ -d dist ]; then
    while IFS= read -r -d '' f; do
        src=${f#dist/}; src=${src%.js}.ts
        [ -f "$src" ] || [ "$f" = dist/agent/hostvisord.js ] || rm -f "$f" "$f.map"
    done < <(find dist -name '*.js' -print0)
    while IFS= read -r -d '' src; do
        [ -f "dist/${src%.ts}.js" ] || { rm -f dist/.tsbuildinfo; break; }
    done < <(find api agent controller test bench -name '*.ts' ! -name '*.d.ts' -print0)
fi
npx --no-install tsc -p tsconfig.json --incremental --tsBuildInfoFile dist/.tsbuildinfo
t3=$(now_ms)
# the agent as it ships: one file (see the script for why); skipped when no input changed
node scripts/bundle-agent.mjs --if-stale
t4=$(now_ms)
echo "build: done (npm $(( t1 - t0 )) ms, native $(( t2 - t1 )) ms, tsc $(( t3 - t2 )) ms, bundle $(( t4 - t3 )) ms)"
