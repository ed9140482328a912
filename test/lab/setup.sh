#!/bin/bash
# Hostvisor lab setup: the single entry point, run as root on a Debian 12 machine (by `npm test`,
# `npm start`, `npm run setup`). Idempotent: every step checks first, and says what it skipped.
#
#   1. Debian packages: those of test/lab/programs.tsv, the one list of the programs we run
#      (installed only if missing; apt-get update only then)
#   2. the libvirt-qemu system user and group
#   3. /etc/libvirt/qemu.conf: user/group root, security_driver "none" (backup kept once)
#   4. virtlogd + libvirtd under a child subreaper (test/lab/libvirtd.sh start)
#   5. the tiny test guest in $HOSTVISOR_LAB/guest (test/lab/build-guest.sh)
#
# It creates no networks and sends no traffic beyond apt's own downloads.
# Env: HOSTVISOR_LAB (default /var/tmp/hostvisor-lab)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export HOSTVISOR_LAB=${HOSTVISOR_LAB:-/var/tmp/hostvisor-lab}
LAB=$HOSTVISOR_LAB
export DEBIAN_FRONTEND=noninteractive

PROGRAMS=$HERE/programs.tsv
QEMU_CONF=/etc/libvirt/qemu.conf

log() { echo "setup: $*"; }
die() { echo "setup: error: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root"

now_ms() { local t=${EPOCHREALTIME/./}; echo $(( t / 1000 )); }
T_ALL=$(now_ms)
# step NAME FUNCTION: run one step and print its duration.
step() {
    local name=$1 t0; shift
    t0=$(now_ms)
    "$@"
    local ms=$(( $(now_ms) - t0 ))
    printf 'setup: [%-9s] %d.%03d s\n' "$name" $((ms / 1000)) $((ms % 1000))
}

mkdir -p "$LAB" "$LAB/run" "$LAB/log"
# One setup at a time (npm test and npm start may race). fd 8 is closed for the daemons.
exec 8>"$LAB/.setup.lock"
flock -w 900 8 || die "another setup.sh holds $LAB/.setup.lock"

# --- 1. packages ---------------------------------------------------------------------------
# The packages of programs.tsv, each once (packages.sh reads the list).
PACKAGES=()
load_packages() {
    mapfile -t PACKAGES < <(bash "$HERE/packages.sh")
    [ ${#PACKAGES[@]} -gt 0 ] || die "no packages in $PROGRAMS"
}

packages() {
    local program package rest seen=' '
    [ -r "$PROGRAMS" ] || die "$PROGRAMS missing"
    while IFS=$'\t' read -r program package rest; do
        [[ -z $program || $program == '#'* || -z $package || $package == - ]] && continue
        [[ $seen == *" $package "* ]] && continue
        seen+="$package "
        PACKAGES+=("$package")
    done < "$PROGRAMS"
    [ ${#PACKAGES[@]} -gt 0 ] || die "no packages in $PROGRAMS"
}

packages() {
    local missing=() p installed
    load_packages
    # One dpkg-query for the whole list (one per package took seconds); a package it does not
    # know is left out of its output and so counts as missing.
    installed=" $(dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' "${PACKAGES[@]}" 2>/dev/null \
        | awk '$1 == "ii" {printf "%s ", $2}' || true)"
    for p in "${PACKAGES[@]}"; do
        [[ $installed == *" $p "* ]] || missing+=("$p")
    done
    if [ ${#missing[@]} -eq 0 ]; then
        log "all ${#PACKAGES[@]} packages installed, skipped"
        return 0
    fi
    log "installing: ${missing[*]}"
    apt-get update -q
    # No recommends: they would pull libvirt-daemon-config-network (an autostarted NAT network).
    apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# --- 2. libvirt-qemu user ------------------------------------------------------------------
qemu_user() {
    local did=0
    if ! getent group libvirt-qemu >/dev/null; then
        groupadd --system libvirt-qemu
        log "created group libvirt-qemu"; did=1
    fi
    if ! getent passwd libvirt-qemu >/dev/null; then
        useradd --system --gid libvirt-qemu --no-create-home --home-dir /var/lib/libvirt \
                --shell /usr/sbin/nologin --comment "Libvirt Qemu" libvirt-qemu
        log "created user libvirt-qemu"; did=1
    fi
    [ $did = 1 ] || log "user and group libvirt-qemu exist, skipped"
}

# --- 3. qemu.conf --------------------------------------------------------------------------
QEMU_CONF_CHANGED=0
# conf_set KEY VALUE: make the only active "KEY = VALUE" line in qemu.conf read exactly that.
conf_set() {
    local key=$1 value=$2 want line
    want="$key = $value"
    if grep -qE "^[[:space:]]*$key[[:space:]]*=" "$QEMU_CONF"; then
        line=$(grep -E "^[[:space:]]*$key[[:space:]]*=" "$QEMU_CONF")
        [ "$line" = "$want" ] && return 0
        # Replace the first active line, drop any further ones.
        sed -i -E "0,/^[[:space:]]*$key[[:space:]]*=.*/s//$want/; /^[[:space:]]*$key[[:space:]]*=/{/^$want\$/!d}" "$QEMU_CONF"
    else
        printf '%s\n' "$want" >> "$QEMU_CONF"
    fi
    log "qemu.conf: $want"
    QEMU_CONF_CHANGED=1
}
qemu_conf() {
    mkdir -p "$(dirname "$QEMU_CONF")"
    if [ -f "$QEMU_CONF" ] && [ ! -e "$QEMU_CONF.hostvisor-orig" ]; then
        cp -a "$QEMU_CONF" "$QEMU_CONF.hostvisor-orig"
        log "backup of the original in $QEMU_CONF.hostvisor-orig"
    elif [ ! -e "$QEMU_CONF" ]; then
        # No original: an empty backup means the same thing to libvirt (all defaults).
        : > "$QEMU_CONF.hostvisor-orig"
        printf '# Hostvisor lab settings (test/lab/setup.sh)\n' > "$QEMU_CONF"
        log "created $QEMU_CONF (there was none; empty backup in $QEMU_CONF.hostvisor-orig)"
    fi
    conf_set user '"root"'
    conf_set group '"root"'
    conf_set security_driver '"none"'
    [ $QEMU_CONF_CHANGED = 1 ] || log "qemu.conf already set, skipped"
}

# --- 4. daemons ----------------------------------------------------------------------------
daemons() {
    if [ $QEMU_CONF_CHANGED = 1 ] && bash "$HERE/libvirtd.sh" status >/dev/null 2>&1; then
        log "qemu.conf changed while libvirtd runs: restarting it"
        bash "$HERE/libvirtd.sh" restart 8>&-
    else
        bash "$HERE/libvirtd.sh" start 8>&-
    fi
}

# --- 5. guest ------------------------------------------------------------------------------
guest() {
    bash "$HERE/build-guest.sh" 8>&-
}

step packages packages
step user qemu_user
step qemu.conf qemu_conf
step libvirtd daemons
step guest guest
ms=$(( $(now_ms) - T_ALL ))
printf 'setup: [%-9s] %d.%03d s\n' total $((ms / 1000)) $((ms % 1000))
echo "lab ready: $LAB/guest"
