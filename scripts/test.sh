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
# The cache (node_modules/.cache/dependency-cruiser) is reused when git sees no changed file since
# it was written ('metadata': from git, which a changed or new file always shows): about 30 s -> 13 s.
npx --no-install depcruise api agent controller --config .dependency-cruiser.cjs --cache --cache-strategy metadata
exec bash scripts/run-tests.sh "$@"
