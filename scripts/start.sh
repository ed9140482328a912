#!/bin/bash
# `npm start`: installs and builds what Hostvisor needs (idempotent), then runs the all-in-one
# setup in the foreground: the controller on port 8443 and this host's agent, the host enrolled
# in cluster `default`, a file storage domain under /var/lib/hostvisor/storage as the pool
# master with this host as SPM, and the admin's credentials in /etc/pki/hostvisor/admin for
# hostvisor-ctl. Arguments are passed to hostvisor-allinone (--help lists them).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash test/lab/setup.sh
# The SPM lease needs a sanlock daemon; where systemd runs it (sanlock.service) this skips.
bash test/lab/sanlock.sh start
bash scripts/build.sh
# The agent runs with the node flags its unit uses (packaging/systemd/hostvisord.service).
read -r -a flags <<< "$(bash scripts/unit-node-flags.sh)"
node_flags=()
for f in "${flags[@]}"; do node_flags+=(--node-flag="$f"); done
exec node dist/controller/bootstrap/all-in-one.js "${node_flags[@]}" "$@"
