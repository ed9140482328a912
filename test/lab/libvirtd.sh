#!/bin/bash
# Hostvisor lab: start/stop the system libvirtd (and virtlogd) on a machine without systemd.
#
# Usage: libvirtd.sh start            start virtlogd + libvirtd if libvirtd is not answering
#        libvirtd.sh stop [--kill]    stop libvirtd (SIGTERM, or SIGKILL with --kill) and wait until it is gone
#        libvirtd.sh restart [--kill] stop, then start
#        libvirtd.sh status           print pids and whether libvirtd answers (exit 0 answering, 3 not)
#
# Each daemon runs under its own child subreaper (subreaper.py, run with /usr/bin/python3), detached
# with setsid and its stdio in $HOSTVISOR_LAB/log, so orphaned QEMU processes are reaped at once
# instead of by the slow PID 1. Only processes named in libvirt's own pid files are signalled.
#
# Env: HOSTVISOR_LAB (default /var/tmp/hostvisor-lab)
#      LIBVIRTD_START_TIMEOUT / LIBVIRTD_STOP_TIMEOUT in seconds (default 30 / 15)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LAB=${HOSTVISOR_LAB:-/var/tmp/hostvisor-lab}
LOGDIR=$LAB/log
PY=/usr/bin/python3            # the system python, never a pyenv shim from PATH
SUBREAPER=$HERE/subreaper.py
CONN=qemu:///system
LIBVIRTD_PIDFILE=/run/libvirtd.pid
VIRTLOGD_PIDFILE=/run/virtlogd.pid
START_TIMEOUT=${LIBVIRTD_START_TIMEOUT:-30}
STOP_TIMEOUT=${LIBVIRTD_STOP_TIMEOUT:-15}

log() { echo "libvirtd.sh: $*"; }
die() { echo "libvirtd.sh: error: $*" >&2; exit 1; }

now_ms() { local t=${EPOCHREALTIME/./}; echo $(( t / 1000 )); }

# answering: libvirtd accepts a qemu:///system connection (bounded by a timeout).
answering() { timeout 5 virsh -c "$CONN" version >/dev/null 2>&1; }

# pid_of PIDFILE COMM: print the pid recorded in PIDFILE if that process is alive, is COMM and is
# not a zombie; fail otherwise.
pid_of() {
    local file=$1 comm=$2 pid state
    [ -r "$file" ] || return 1
    pid=$(head -c 32 "$file" 2>/dev/null) || return 1    # libvirt writes it without a newline
    pid=${pid//[[:space:]]/}
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$comm" ] || return 1
    state=$(awk '/^State:/{print $2}' "/proc/$pid/status" 2>/dev/null) || return 1
    [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ] || return 1
    echo "$pid"
}

# spawn NAME CMD...: run CMD under a detached child subreaper; output goes to $LOGDIR/NAME.log.
spawn() {
    local name=$1; shift
    [ -x "$PY" ] || die "$PY not found (install python3)"
    [ -f "$SUBREAPER" ] || die "$SUBREAPER missing"
    mkdir -p "$LOGDIR"
    # setsid -f: new session, no controlling tty, and the caller does not wait for it.
    # stdin from /dev/null, stdout/stderr to the log, and no other fds (lock files) inherited.
    LIBVIRT_LOG_OUTPUTS="3:file:$LOGDIR/$name.log" \
        setsid -f "$PY" "$SUBREAPER" --log "$LOGDIR/$name-subreaper.log" -- "$@" \
        </dev/null >>"$LOGDIR/$name-subreaper.log" 2>&1 8>&- 9>&-
}

ensure_virtlogd() {
    local pid
    if pid=$(pid_of "$VIRTLOGD_PIDFILE" virtlogd); then
        log "virtlogd already running (pid $pid), skipped"
        return 0
    fi
    spawn virtlogd /usr/sbin/virtlogd -d
    local i
    for ((i = 0; i < 100; i++)); do
        if pid=$(pid_of "$VIRTLOGD_PIDFILE" virtlogd); then
            log "virtlogd started (pid $pid)"
            return 0
        fi
        sleep 0.05
    done
    die "virtlogd did not start; see $LOGDIR/virtlogd-subreaper.log and $LOGDIR/virtlogd.log"
}

wait_answering() {
    local deadline=$(( $(now_ms) + START_TIMEOUT * 1000 ))
    while ! answering; do
        if (( $(now_ms) >= deadline )); then return 1; fi
        sleep 0.1
    done
}

do_start() {
    local t0 pid
    t0=$(now_ms)
    if answering; then
        pid=$(pid_of "$LIBVIRTD_PIDFILE" libvirtd || echo '?')
        log "libvirtd already answering (pid $pid), skipped"
        return 0
    fi
    mkdir -p "$LAB/run" "$LOGDIR"
    ensure_virtlogd
    if pid=$(pid_of "$LIBVIRTD_PIDFILE" libvirtd); then
        log "libvirtd running (pid $pid) but not answering yet; waiting up to ${START_TIMEOUT}s"
    else
        spawn libvirtd /usr/sbin/libvirtd -d
    fi
    if ! wait_answering; then
        die "libvirtd not answering after ${START_TIMEOUT}s; see $LOGDIR/libvirtd.log and $LOGDIR/libvirtd-subreaper.log"
    fi
    pid=$(pid_of "$LIBVIRTD_PIDFILE" libvirtd || echo '?')
    log "libvirtd answering (pid $pid) after $(( $(now_ms) - t0 )) ms"
}

do_stop() {
    local sig=TERM pid t0 deadline
    case "${1:-}" in
        --kill|-9) sig=KILL ;;
        '') ;;
        *) die "stop: unknown option '$1'" ;;
    esac
    if ! pid=$(pid_of "$LIBVIRTD_PIDFILE" libvirtd); then
        log "libvirtd not running, skipped"
        return 0
    fi
    t0=$(now_ms)
    kill -s "$sig" "$pid" 2>/dev/null || true
    deadline=$(( t0 + STOP_TIMEOUT * 1000 ))
    while pid_of "$LIBVIRTD_PIDFILE" libvirtd >/dev/null; do
        if (( $(now_ms) >= deadline )); then
            if [ "$sig" = KILL ]; then
                die "libvirtd (pid $pid) still alive ${STOP_TIMEOUT}s after SIGKILL"
            fi
            log "libvirtd (pid $pid) ignored SIGTERM for ${STOP_TIMEOUT}s; sending SIGKILL"
            sig=KILL
            kill -s KILL "$pid" 2>/dev/null || true
            deadline=$(( $(now_ms) + 5000 ))
        fi
        sleep 0.02
    done
    log "libvirtd (pid $pid) stopped with SIG$sig after $(( $(now_ms) - t0 )) ms"
}

do_status() {
    local lpid vpid rc=0
    lpid=$(pid_of "$LIBVIRTD_PIDFILE" libvirtd || echo none)
    vpid=$(pid_of "$VIRTLOGD_PIDFILE" virtlogd || echo none)
    if answering; then
        echo "libvirtd: pid $lpid, answering on $CONN"
    else
        echo "libvirtd: pid $lpid, NOT answering on $CONN"
        rc=3
    fi
    echo "virtlogd: pid $vpid"
    return $rc
}

# Serialize start/stop between concurrent callers (fd 9; closed for the spawned daemons).
locked() {
    mkdir -p "$LAB"
    exec 9>"$LAB/.libvirtd.lock"
    flock -w 120 9 || die "could not lock $LAB/.libvirtd.lock"
    "$@"
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
    start)   locked do_start ;;
    stop)    locked do_stop "$@" ;;
    restart) locked do_stop "$@"; do_start ;;
    status)  do_status ;;
    *) echo "usage: $0 start | stop [--kill] | restart [--kill] | status" >&2; exit 2 ;;
esac
