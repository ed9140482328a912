#!/bin/bash
# `npm start`: installs and builds what the agent needs (idempotent), then runs hostvisord
# in the foreground. Arguments are passed to the agent.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash test/lab/setup.sh
bash scripts/build.sh
# With the node flags the unit runs the agent with (packaging/systemd/hostvisord.service).
read -r -a flags <<< "$(bash scripts/unit-node-flags.sh)"
exec node "${flags[@]}" dist/agent/main.js "$@"
