#!/bin/bash
# Prints the node flags hostvisord.service runs the agent with (the ExecStart= words between
# /usr/bin/node and the script), for the scripts that start the agent outside systemd.
# test/agent/harness.ts (unitLaunch) reads them the same way.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
sed -n 's|^ExecStart=/usr/bin/node \(.*\) /usr/lib/hostvisor/dist/agent/[^ ]*\.js .*|\1|p' packaging/systemd/hostvisord.service
