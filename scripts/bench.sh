#!/bin/bash
# `npm run bench:<name>`: prepares the lab and build (idempotent, output to stderr),
# then runs dist/bench/<name>.js, whose last stdout line is one JSON object of figures.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
name=$1; shift
{ bash test/lab/setup.sh && bash scripts/build.sh; } >&2
exec node --expose-gc "dist/bench/$name.js" "$@"
