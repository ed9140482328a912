#!/bin/bash
# `npm test`: sets up everything a fresh Debian 12 machine needs (Debian packages,
# libvirtd, the test guest, npm packages, the build), checks that every program on
# test/lab/programs.tsv resolves (a missing one names its package and stops the run),
# then runs every test. Safe to run again: each step skips what is already in place.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash test/lab/setup.sh
bash scripts/check-programs.sh
bash scripts/build.sh
# The one-way dependency rule (.dependency-cruiser.cjs): api/ imports neither side, the controller
# never imports the agent. A violation stops the run before any test.
npx --no-install depcruise api agent controller --config .dependency-cruiser.cjs
out=$(mktemp)
trap 'rm -f "$out"' EXIT
set +e
npx --no-install tap "$@" 2>&1 | tee "$out"
rc=${PIPESTATUS[0]}
set -e
# One plain closing line that CI can read, from tap's own summary.
summary=$(grep -E '^# \{ total: ' "$out" | tail -n 1)
if [ -n "$summary" ]; then
    num() { echo "$summary" | grep -oE "$1: [0-9]+" | grep -oE '[0-9]+' || echo 0; }
    echo "tests: $(num pass) passed, $(num fail) failed, $(num skip) skipped"
fi
exit "$rc"
