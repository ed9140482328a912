#!/bin/bash
# `npm run bench:<name>`: prepares the lab and build (idempotent, output to stderr),
# then runs dist/bench/<name>.js, whose last stdout line is one JSON object of figures.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
name=$1; shift
{ bash test/lab/setup.sh && bash scripts/build.sh; } >&2
# rpc runs the agent in this process: with the node flags the unit gives it (the bare
# server shares the process, so both sides run with them). The other benchmarks
# start the agent as a child, which gets them from test/agent/harness.ts.
flags=()
if [ "$name" = rpc ]; then read -r -a flags <<< "$(bash scripts/unit-node-flags.sh)"; fi
exec node --expose-gc "${flags[@]}" "dist/bench/$name.js" "$@"
