#!/bin/bash
# `npm start`: installs and builds what the agent needs (idempotent), then runs hostvisord
# in the foreground. Arguments are passed to the agent.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash test/lab/setup.sh
bash scripts/build.sh
exec node dist/agent/main.js "$@"
