#!/bin/bash
# Hostvisor lab: start the sanlock daemon in the main namespace on a machine without systemd,
# for `npm start` (the all-in-one's SPM lease needs it). On a real host sanlock runs as its
# systemd unit (sanlock.service, with wdmd) and this script is not used.
#
# Usage: sanlock.sh start     start it if nothing answers on /run/sanlock/sanlock.sock
#        sanlock.sh status    exit 0 when a daemon answers, 3 when not
#
# Lab settings, never production: no watchdog, no RR scheduling, no mlockall (-w 0 -h 0 -l 0),
# as root, under an LD_PRELOAD shim that reports a refused setrlimit as success (root lacks
# CAP_SYS_RESOURCE here; see test/lab/multihost/setrlimit-shim.c). Run under a child subreaper,
# detached, its output in $HOSTVISOR_LAB/log/sanlock.log. Tests that need sanlock reuse a daemon
# that answers (test/agent/storage/sanlock-daemon.ts).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LAB=${HOSTVISOR_LAB:-/var/tmp/hostvisor-lab}
LOGDIR=$LAB/log
PY=/usr/bin/python3
SUBREAPER=$HERE/subreaper.py
SHIM_SRC=$HERE/multihost/setrlimit-shim.c
SHIM=$LAB/setrlimit-shim.so
START_TIMEOUT=${SANLOCK_START_TIMEOUT:-30}

log() { echo "sanlock.sh: $*"; }
die() { echo "sanlock.sh: error: $*" >&2; exit 1; }

answering() { timeout 5 sanlock client status >/dev/null 2>&1; }

start() {
    if answering; then log "sanlock already answering, skipped"; return 0; fi
    mkdir -p "$LOGDIR" /run/sanlock
    [ -e /var/log/sanlock.log ] || : >> /var/log/sanlock.log
    if [ ! -f "$SHIM" ] || [ "$SHIM_SRC" -nt "$SHIM" ]; then
        gcc -shared -fPIC -O2 -Wall -o "$SHIM.tmp" "$SHIM_SRC" -ldl || die "building $SHIM failed"
        mv "$SHIM.tmp" "$SHIM"
    fi
    setsid -f "$PY" "$SUBREAPER" --log "$LOGDIR/sanlock-subreaper.log" -- \
        /usr/bin/env LD_PRELOAD="$SHIM" /usr/sbin/sanlock daemon -D -w 0 -h 0 -l 0 -U root -G root \
        </dev/null >>"$LOGDIR/sanlock.log" 2>&1 8>&- 9>&-
    local i
    for ((i = 0; i < START_TIMEOUT * 10; i++)); do
        if answering; then log "sanlock started"; return 0; fi
        sleep 0.1
    done
    die "sanlock did not answer within ${START_TIMEOUT}s; see $LOGDIR/sanlock.log"
}

case "${1:-}" in
    start) start ;;
    status) if answering; then log "answering"; else log "not answering"; exit 3; fi ;;
    *) echo "usage: sanlock.sh start|status" >&2; exit 2 ;;
esac
