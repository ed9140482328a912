#!/bin/bash
# Hostvisor multi-host lab: several virtualization "hosts" on this one machine, for tests of
# storage/SPM, migration and the controller.
#
# Usage: lab.sh up [--fresh] N
#                             bring up hosts 1..N (hosts already running are left alone; with
#                             --fresh, for a new owner, only those as they were made: see host_clean)
#        lab.sh down [--kill] [N...]
#                             tear down the given hosts, or (no host) every host and the lab network
#                             (the blackhole route stays: the network fixtures share it). Graceful: destroy domains, sanlock leaves
#                             its lockspaces, SIGTERM, SIGKILL after 2 s. --kill: a power cut, SIGKILL
#                             to everything in the host at once, leases stay on disk.
#        lab.sh status        one line per host and the network; exit 0 when every host answers
#        lab.sh exec H CMD... run CMD inside host H (a number or hvlab-hN): its net, mount and UTS
#                             namespaces, in the current directory
#        lab.sh env H         print the host's paths and addresses as KEY=VALUE lines
#
# Every lab host N (1..32) has:
#  - network namespace hvlab-hN, interface eth0 = 10.250.0.N/24, a veth leg into bridge hvbr0 that
#    lives in its own namespace hvlab-net; the main namespace has leg hvlab0 = 10.250.0.254/24.
#    No namespace has a default route, IPv6 is off on every lab interface, and before any namespace
#    is created the main namespace gets `blackhole 10.250.0.0/16`: only the connected /24 reaches the
#    lab, and every other 10.250.x.x fails locally instead of leaving by the default route.
#  - its own mount and UTS namespace (persistent: bind mounts of the ns files in $NSDIR), hostname
#    hvlab-hN, a fresh sysfs for its netns (no cgroup mounts but its own CPU groups', below), and
#    private bind mounts from its directory D=$LAB/multihost/hosts/hN:
#       D/run/libvirt -> /run/libvirt        D/lib/libvirt   -> /var/lib/libvirt
#       D/etc/libvirt -> /etc/libvirt        D/log/libvirt   -> /var/log/libvirt
#       D/cache/libvirt -> /var/cache/libvirt
#       D/run/sanlock -> /run/sanlock        D/log/sanlock.log -> /var/log/sanlock.log
#       $MH/hosts.txt -> /etc/hosts (hvlab-hN names for 10.250.0.N)
#  - its own virtlogd, libvirtd (tcp on 10.250.0.N:16509, auth none, and TLS on 10.250.0.N:16514,
#    for peer-to-peer migration; TLS with certificates from the lab's own CA, $MH/pki, made once:
#    D/etc/libvirt/pki/{cacert,servercert,serverkey,clientcert,clientkey}.pem, i.e.
#    /etc/libvirt/pki inside the host, the directory a qemu+tls URI names with ?pkipath=)
#    and sanlock daemon (lab settings: -w 0 -h 0 -l 0, under an LD_PRELOAD setrlimit shim built
#    here from setrlimit-shim.c), each under a child subreaper (test/lab/subreaper.py).
#    Clients in the main namespace reach libvirtd at
#       qemu+unix:///system?socket=D/run/libvirt/libvirt-sock
#  - the shared storage directory $LAB/multihost/shared, the same path on every host.
#  - its own CPU accounting, when the machine has cgroup v1 with cpuacct (and cpu) mounted: groups
#    /sys/fs/cgroup/cpuacct/hvlab-hN and /sys/fs/cgroup/cpu/hvlab-hN hold its daemons' subreapers, so
#    libvirtd's QEMU children are in them too, and those hierarchies are mounted at the same paths
#    inside the host (cpuacct.usage counts the host's CPU; the hosts share /proc/stat, so an agent
#    reading that would report the whole machine). libvirtd is told to use no cgroup controller
#    (qemu.conf cgroup_controllers = []), so it leaves its QEMU processes where they are born.
#    `env` prints the groups as HVLAB_CPUACCT_CGROUP / HVLAB_CPU_CGROUP (empty without them).
#
# Safety: lab addresses exist only inside the lab namespaces and on hvlab0. `up` checks the main
# namespace's routes (10.250.0.N via hvlab0, anything else in 10.250/16 unroutable) before it
# returns. Every wait is bounded. Env: HOSTVISOR_LAB (default /var/tmp/hostvisor-lab),
# HVLAB_START_TIMEOUT (s, default 60).
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SELF=$HERE/lab.sh
SUBREAPER=$HERE/../subreaper.py
SHIM_SRC=$HERE/setrlimit-shim.c
LAB=${HOSTVISOR_LAB:-/var/tmp/hostvisor-lab}
MH=$LAB/multihost
NSDIR=$MH/ns
HOSTS=$MH/hosts
SHARED=$MH/shared
SHIM=$MH/setrlimit-shim.so
HOSTS_TXT=$MH/hosts.txt
PKI=$MH/pki
PY=/usr/bin/python3
START_TIMEOUT=${HVLAB_START_TIMEOUT:-60}
MAX_HOSTS=32

NET_PREFIX=10.250.0
RANGE=10.250.0.0/16
NET_NS=hvlab-net
BRIDGE=hvbr0
MAIN_LEG=hvlab0          # in the main namespace
MAIN_PEER=m0             # its peer, on the bridge in hvlab-net
MAIN_ADDR=$NET_PREFIX.254
DAEMON_PATH=/usr/sbin:/usr/bin:/sbin:/bin
CGROOT=/sys/fs/cgroup
CG_CONTROLLERS="cpuacct cpu"

log() { echo "lab.sh: $*" >&2; }
die() { echo "lab.sh: error: $*" >&2; exit 1; }
now_ms() { local t=${EPOCHREALTIME/./}; echo $(( t / 1000 )); }

[ "$(id -u)" = 0 ] || die "must run as root"

netns_of() { echo "hvlab-h$1"; }
dir_of() { echo "$HOSTS/h$1"; }
addr_of() { echo "$NET_PREFIX.$1"; }
uri_of() { echo "qemu+unix:///system?socket=$(dir_of "$1")/run/libvirt/libvirt-sock"; }
mac_of() { printf '02:68:76:6c:00:%02x' "$1"; }
uuid_of() { printf '6876616c-6162-4000-8000-%012x' "$1"; }

# host_index ARG: accept N or hvlab-hN.
host_index() {
    local a=${1#hvlab-h}
    [[ $a =~ ^[0-9]+$ ]] && (( a >= 1 && a <= MAX_HOSTS )) || die "bad host '$1' (1..$MAX_HOSTS or hvlab-hN)"
    echo $(( 10#$a ))
}

# cg_dir N CONTROLLER: host N's group in that cgroup-v1 hierarchy (the same path inside the host).
cg_dir() { echo "$CGROOT/$2/hvlab-h$1"; }
# cg_available CONTROLLER: its cgroup-v1 hierarchy is mounted in the main namespace.
cg_available() { [ -f "$CGROOT/$1/cgroup.procs" ] && findmnt -rn -t cgroup "$CGROOT/$1" >/dev/null 2>&1; }

# ensure_cgroups N: host N's groups in the hierarchies there are; says once what is missing.
ensure_cgroups() {
    local i=$1 c
    for c in $CG_CONTROLLERS; do
        if cg_available "$c"; then
            mkdir -p "$(cg_dir "$i" "$c")" || log "host $i: could not make $(cg_dir "$i" "$c")"
        elif [ "$i" = 1 ]; then
            log "no cgroup-v1 $c hierarchy at $CGROOT/$c: lab hosts get no own $c group (agents can only read the machine's /proc/stat CPU)"
        fi
    done
}

# drop_cgroups N: remove host N's (by now empty) groups; a group still holding a process stays.
drop_cgroups() {
    local i=$1 c
    for c in $CG_CONTROLLERS; do
        [ -d "$(cg_dir "$i" "$c")" ] && { rmdir "$(cg_dir "$i" "$c")" 2>/dev/null || log "host $i: $(cg_dir "$i" "$c") not removed (still in use)"; }
    done
    return 0
}

have_netns() { [ -e "/run/netns/$1" ]; }
ns_mounted() { mountpoint -q "$NSDIR/h$1.mnt" 2>/dev/null && mountpoint -q "$NSDIR/h$1.uts" 2>/dev/null; }

# hx N CMD...: run CMD in host N's net, mount and UTS namespaces.
hx() {
    local i=$1; shift
    nsenter --net="/run/netns/$(netns_of "$i")" --mount="$NSDIR/h$i.mnt" --uts="$NSDIR/h$i.uts" "$@"
}

# pid_from FILE COMM: the live (non-zombie) pid recorded in FILE if its process is COMM.
pid_from() {
    local pid state
    [ -r "$1" ] || return 1
    pid=$(head -c 32 "$1" 2>/dev/null) || return 1
    pid=${pid//[[:space:]]/}
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ] || return 1
    state=$(awk '/^State:/{print $2}' "/proc/$pid/status" 2>/dev/null)
    [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ] || return 1
    echo "$pid"
}
libvirtd_pid() { pid_from "$(dir_of "$1")/run/libvirt/libvirtd.pid" libvirtd; }
virtlogd_pid() { pid_from "$(dir_of "$1")/run/libvirt/virtlogd.pid" virtlogd; }
sanlock_pid() { pid_from "$(dir_of "$1")/run/sanlock/sanlock.pid" sanlock; }

libvirt_answers() { timeout 5 virsh -q -c "$(uri_of "$1")" version >/dev/null 2>&1; }
sanlock_answers() { ns_mounted "$1" && timeout 5 nsenter --net="/run/netns/$(netns_of "$1")" --mount="$NSDIR/h$1.mnt" --uts="$NSDIR/h$1.uts" sanlock client status >/dev/null 2>&1; }

host_running() {
    local i=$1
    have_netns "$(netns_of "$i")" && ns_mounted "$i" && libvirtd_pid "$i" >/dev/null && virtlogd_pid "$i" >/dev/null \
        && sanlock_pid "$i" >/dev/null && libvirt_answers "$i" && sanlock_answers "$i"
}

# --- network -------------------------------------------------------------------------------------

ensure_blackhole() {
    if ! ip route show type blackhole "$RANGE" | grep -q .; then
        ip route add blackhole "$RANGE" || die "could not add blackhole route $RANGE"
        log "added blackhole route $RANGE in the main namespace"
    fi
}

# Quiet the lab links: no IPv6 (no link-local chatter, no router solicitations) in a namespace.
no_ipv6_in() {
    nsenter --net="/run/netns/$1" /bin/sh -c \
        'for f in /proc/sys/net/ipv6/conf/all/disable_ipv6 /proc/sys/net/ipv6/conf/default/disable_ipv6; do [ -w $f ] && echo 1 > $f; done; true'
}

ensure_net() {
    if ! have_netns "$NET_NS"; then
        ip netns add "$NET_NS" || die "ip netns add $NET_NS failed"
    fi
    no_ipv6_in "$NET_NS"
    ip -n "$NET_NS" link set lo up
    if ! ip -n "$NET_NS" link show "$BRIDGE" >/dev/null 2>&1; then
        ip -n "$NET_NS" link add "$BRIDGE" type bridge stp_state 0 forward_delay 0 || die "bridge $BRIDGE failed"
    fi
    ip -n "$NET_NS" link set "$BRIDGE" up
    if ! ip link show "$MAIN_LEG" >/dev/null 2>&1; then
        ip link add "$MAIN_LEG" type veth peer name "$MAIN_PEER" netns "$NET_NS" || die "veth $MAIN_LEG failed"
    fi
    [ -w "/proc/sys/net/ipv6/conf/$MAIN_LEG/disable_ipv6" ] && echo 1 > "/proc/sys/net/ipv6/conf/$MAIN_LEG/disable_ipv6"
    ip -n "$NET_NS" link set "$MAIN_PEER" master "$BRIDGE" up
    if ! ip -4 -o addr show dev "$MAIN_LEG" | grep -q " $MAIN_ADDR/24 "; then
        ip addr add "$MAIN_ADDR/24" dev "$MAIN_LEG" || die "address on $MAIN_LEG failed"
    fi
    ip link set "$MAIN_LEG" up
}

# The main namespace must route lab host addresses over hvlab0 only, and nothing else in the range.
check_routes() {
    local i=$1 r
    r=$(ip -4 route get "$(addr_of "$i")" 2>&1) || die "no route to $(addr_of "$i"): $r"
    [[ $r == *" dev $MAIN_LEG "* ]] || die "UNSAFE: $(addr_of "$i") does not route via $MAIN_LEG: $r"
    if r=$(ip -4 route get 10.250.1.1 2>&1); then
        die "UNSAFE: 10.250.1.1 is routable from the main namespace: $r"
    fi
}

# --- hosts ---------------------------------------------------------------------------------------

ensure_dirs() {
    mkdir -p "$MH" "$NSDIR" "$HOSTS" "$SHARED"
    # The persistent mount-namespace files must sit on a private mount.
    if ! mountpoint -q "$NSDIR"; then
        mount --bind "$NSDIR" "$NSDIR" || die "bind mount $NSDIR failed"
    fi
    mount --make-private "$NSDIR" || die "make-private $NSDIR failed"
    if [ ! -s "$HOSTS_TXT" ]; then
        {
            printf '127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n'
            printf '%s hvlab-main\n' "$MAIN_ADDR"
            local i
            for ((i = 1; i <= MAX_HOSTS; i++)); do printf '%s hvlab-h%d\n' "$(addr_of "$i")" "$i"; done
        } > "$HOSTS_TXT.tmp" && mv "$HOSTS_TXT.tmp" "$HOSTS_TXT"
    fi
    # Bind-mount targets must exist in the main namespace (standard paths; created empty if missing).
    mkdir -p /run/libvirt /var/lib/libvirt /etc/libvirt /var/log/libvirt /var/cache/libvirt /run/sanlock
    [ -e /var/log/sanlock.log ] || : >> /var/log/sanlock.log
}

ensure_shim() {
    if [ ! -f "$SHIM" ] || [ "$SHIM_SRC" -nt "$SHIM" ]; then
        gcc -shared -fPIC -O2 -Wall -o "$SHIM.tmp" "$SHIM_SRC" -ldl || die "building $SHIM failed"
        mv "$SHIM.tmp" "$SHIM"
        log "built $SHIM"
    fi
}

# conf_copy SRC DST KEY...: copy a libvirt config file (if any) without the lines that set KEYs.
conf_copy() {
    local src=$1 dst=$2; shift 2
    local re
    re=$(IFS='|'; echo "$*")
    if [ -f "$src" ]; then
        grep -Ev "^[[:space:]]*($re)[[:space:]]*=" "$src" > "$dst" || true
    else
        : > "$dst"
    fi
}

# lab_ca: the lab's CA for libvirtd's TLS, made once and kept (hosts get fresh certificates from it).
lab_ca() {
    [ -s "$PKI/cacert.pem" ] && [ -s "$PKI/cakey.pem" ] && return 0
    mkdir -p "$PKI" && chmod 700 "$PKI"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -keyout "$PKI/cakey.pem.tmp" -out "$PKI/cacert.pem.tmp" \
        -subj "/O=Hostvisor lab/CN=hvlab libvirt CA" \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign >/dev/null 2>&1 \
        || die "could not make the lab CA in $PKI"
    mv "$PKI/cakey.pem.tmp" "$PKI/cakey.pem" && mv "$PKI/cacert.pem.tmp" "$PKI/cacert.pem"
    log "made the lab's libvirt CA in $PKI"
}

# host_pki N DIR: libvirtd's server and client certificates for host N (its address and name; libvirt
# checks the usages: digital signature + key encipherment, TLS server resp. client). Made once per
# host index under $PKI/hN and copied in (RSA key generation took 1-4 s a host on the loaded
# machine, for every labUp); remade when missing or older than the CA.
host_pki() {
    local i=$1 dir=$2 role eku cache=$PKI/h$1
    if [ ! -s "$cache/servercert.pem" ] || [ ! -s "$cache/clientcert.pem" ] || [ "$PKI/cacert.pem" -nt "$cache/servercert.pem" ]; then
        rm -rf "$cache.tmp" && mkdir -p "$cache.tmp" && chmod 700 "$cache.tmp"
        for role in server client; do
            if [ "$role" = server ]; then eku=serverAuth; else eku=clientAuth; fi
            openssl req -new -newkey rsa:2048 -nodes -keyout "$cache.tmp/${role}key.pem" -out "$cache.tmp/$role.csr" \
                -subj "/O=Hostvisor lab/CN=hvlab-h$i" >/dev/null 2>&1 || die "key for host $i ($role) failed"
            openssl x509 -req -in "$cache.tmp/$role.csr" -CA "$PKI/cacert.pem" -CAkey "$PKI/cakey.pem" -set_serial "0x$(openssl rand -hex 8)" \
                -days 3650 -out "$cache.tmp/${role}cert.pem" -extfile <(printf '%s\n' \
                    "subjectAltName=IP:$(addr_of "$i"),DNS:hvlab-h$i" "extendedKeyUsage=$eku" \
                    "keyUsage=critical,digitalSignature,keyEncipherment" "basicConstraints=critical,CA:FALSE") \
                >/dev/null 2>&1 || die "certificate for host $i ($role) failed"
            rm -f "$cache.tmp/$role.csr"
        done
        rm -rf "$cache" && mv "$cache.tmp" "$cache"
    fi
    mkdir -p "$dir" && chmod 700 "$dir"
    cp "$PKI/cacert.pem" "$dir/cacert.pem"
    cp "$cache"/{server,client}{key,cert}.pem "$dir/"
}

# prepare_dir N: a fresh host directory (the capabilities cache is kept: it makes libvirtd start faster).
prepare_dir() {
    local i=$1 D
    D=$(dir_of "$i")
    mkdir -p "$D"
    rm -rf "$D/run" "$D/lib" "$D/etc" "$D/log" "$D/guests"
    mkdir -p "$D/run/libvirt" "$D/run/sanlock" "$D/lib/libvirt" "$D/etc/libvirt" "$D/log/libvirt/qemu" \
             "$D/cache/libvirt" "$D/guests"
    : > "$D/log/sanlock.log"
    # A copy of the machine's libvirt configuration: top-level files and nwfilter, not its
    # domains (qemu/), networks or secrets.
    local f
    for f in /etc/libvirt/*; do
        [ -f "$f" ] || continue
        case "$f" in *.hostvisor-orig|*.dpkg-*|*~) continue ;; esac
        cp -p "$f" "$D/etc/libvirt/"
    done
    [ -d /etc/libvirt/nwfilter ] && cp -a /etc/libvirt/nwfilter "$D/etc/libvirt/"
    local addr uuid
    addr=$(addr_of "$i"); uuid=$(uuid_of "$i")
    conf_copy /etc/libvirt/libvirtd.conf "$D/etc/libvirt/libvirtd.conf" \
        listen_tls listen_tcp listen_addr auth_tcp auth_unix_ro auth_unix_rw host_uuid host_uuid_source \
        log_outputs log_filters unix_sock_dir key_file cert_file ca_file crl_file tls_no_verify_certificate \
        tls_allowed_dn_list
    host_pki "$i" "$D/etc/libvirt/pki"
    cat >> "$D/etc/libvirt/libvirtd.conf" <<CONF
# hvlab host $i (test/lab/multihost/lab.sh)
listen_tls = 1
key_file = "/etc/libvirt/pki/serverkey.pem"
cert_file = "/etc/libvirt/pki/servercert.pem"
ca_file = "/etc/libvirt/pki/cacert.pem"
listen_tcp = 1
listen_addr = "$addr"
auth_tcp = "none"
auth_unix_ro = "none"
auth_unix_rw = "none"
host_uuid = "$uuid"
log_outputs = "3:file:/var/log/libvirt/libvirtd.log"
CONF
    conf_copy /etc/libvirt/qemu.conf "$D/etc/libvirt/qemu.conf" \
        user group security_driver migration_address migration_host cgroup_controllers
    cat >> "$D/etc/libvirt/qemu.conf" <<CONF
# hvlab host $i (test/lab/multihost/lab.sh)
user = "root"
group = "root"
security_driver = "none"
cgroup_controllers = [ ]
migration_address = "$addr"
migration_host = "$addr"
CONF
    conf_copy /etc/libvirt/virtlogd.conf "$D/etc/libvirt/virtlogd.conf" log_outputs
    echo 'log_outputs = "3:file:/var/log/libvirt/virtlogd.log"' >> "$D/etc/libvirt/virtlogd.conf"
}

# _init N: runs inside the new mount + UTS namespace (see create_host); exits when the mounts are in place.
host_init() {
    local i=$1 D m n=0
    D=$(dir_of "$i")
    set -e
    hostname "hvlab-h$i"
    # Copies of other namespaces' files (ip netns, other lab hosts) would pin those namespaces.
    while read -r m; do
        umount -l "$m" 2>/dev/null || true
        n=$((n + 1)); (( n < 1000 )) || break
    done < <(findmnt -rn -t nsfs -o TARGET)
    mount --bind "$D/run/libvirt" /run/libvirt
    mount --bind "$D/run/sanlock" /run/sanlock
    mount --bind "$D/lib/libvirt" /var/lib/libvirt
    mount --bind "$D/etc/libvirt" /etc/libvirt
    mount --bind "$D/log/libvirt" /var/log/libvirt
    mount --bind "$D/cache/libvirt" /var/cache/libvirt
    mount --bind "$D/log/sanlock.log" /var/log/sanlock.log
    mount --bind "$HOSTS_TXT" /etc/hosts
    # sysfs of this netns (libvirt looks up devices there); this also drops the cgroup mounts.
    # The host's own CPU groups (made by ensure_cgroups), looked up before /sys is replaced.
    local c any=0 groups=()
    for c in $CG_CONTROLLERS; do [ -d "$(cg_dir "$i" "$c")" ] && groups+=("$c"); done
    umount -R -l /sys
    mount -t sysfs sysfs /sys
    # Those groups' hierarchies at the same paths as outside; libvirtd is configured to use no
    # controller (prepare_dir), so it only lives in them.
    for c in "${groups[@]}"; do
        if [ $any = 0 ]; then mount -t tmpfs -o mode=755,size=64k cgroup "$CGROOT"; any=1; fi
        mkdir -p "$CGROOT/$c"
        mount -t cgroup -o "$c" cgroup "$CGROOT/$c"
    done
}

create_host() {
    local i=$1 ns D
    ns=$(netns_of "$i"); D=$(dir_of "$i")
    ip netns add "$ns" || die "ip netns add $ns failed"
    no_ipv6_in "$ns"
    ip -n "$NET_NS" link del "h$i" >/dev/null 2>&1
    # A fixed MAC per host: a host made again (the others and the main namespace kept) is reached
    # at once; with a new random MAC, their neighbour entries for its address pointed at the old
    # one and connections to it timed out until the entries went stale.
    ip -n "$NET_NS" link add "h$i" type veth peer name eth0 address "$(mac_of "$i")" netns "$ns" || die "veth h$i failed"
    ip neigh flush to "$(addr_of "$i")" dev "$MAIN_LEG" >/dev/null 2>&1
    ip -n "$NET_NS" link set "h$i" master "$BRIDGE" up || die "h$i on $BRIDGE failed"
    ip -n "$ns" link set lo up
    ip -n "$ns" addr add "$(addr_of "$i")/24" dev eth0 || die "address on $ns eth0 failed"
    ip -n "$ns" link set eth0 up
    prepare_dir "$i"
    ensure_cgroups "$i"
    : > "$NSDIR/h$i.mnt"; : > "$NSDIR/h$i.uts"
    nsenter --net="/run/netns/$ns" unshare --mount="$NSDIR/h$i.mnt" --uts="$NSDIR/h$i.uts" --propagation private \
        /bin/bash "$SELF" _init "$i" 9>&- || die "mount namespace of host $i failed"
    ns_mounted "$i" || die "namespace files of host $i are not mounted"
}

# spawn_daemon N NAME CMD...: CMD in host N under a detached child subreaper, clean env, output in D/log/NAME.out.
spawn_daemon() {
    local i=$1 name=$2; shift 2
    local D
    D=$(dir_of "$i")
    hx "$i" /bin/bash "$SELF" _cgexec "$i" env -i PATH="$DAEMON_PATH" HOME=/root LANG=C.UTF-8 \
        setsid -f "$PY" "$SUBREAPER" --log "$D/log/$name.out" -- "$@" </dev/null >>"$D/log/$name.out" 2>&1 9>&-
}

start_daemons() {
    local i=$1
    spawn_daemon "$i" virtlogd /usr/sbin/virtlogd -d -f /etc/libvirt/virtlogd.conf -p /run/libvirt/virtlogd.pid
    spawn_daemon "$i" libvirtd /usr/sbin/libvirtd -d --listen -f /etc/libvirt/libvirtd.conf -p /run/libvirt/libvirtd.pid
    spawn_daemon "$i" sanlock /usr/bin/env LD_PRELOAD="$SHIM" \
        /usr/sbin/sanlock daemon -D -w 0 -h 0 -l 0 -U root -G root
}

wait_ready() {
    local i=$1 deadline
    deadline=$(( $(now_ms) + START_TIMEOUT * 1000 ))
    local lv=0 sl=0 vl=0
    while :; do
        [ $vl = 1 ] || { virtlogd_pid "$i" >/dev/null && vl=1; }
        [ $lv = 1 ] || { [ -S "$(dir_of "$i")/run/libvirt/libvirt-sock" ] && libvirt_answers "$i" && lv=1; }
        [ $sl = 1 ] || { [ -S "$(dir_of "$i")/run/sanlock/sanlock.sock" ] && sanlock_answers "$i" && sl=1; }
        [ $lv$sl$vl = 111 ] && return 0
        if (( $(now_ms) >= deadline )); then
            log "host $i not ready after ${START_TIMEOUT}s (libvirtd=$lv sanlock=$sl virtlogd=$vl); logs in $(dir_of "$i")/log"
            return 1
        fi
        sleep 0.05
    done
}

# pids_in N: every live process in host N's network, mount or UTS namespace (one find over /proc).
pids_in() {
    local i=$1 net=none mnt=none uts=none
    have_netns "$(netns_of "$i")" && net=$(stat -L -c %i "/run/netns/$(netns_of "$i")")
    mountpoint -q "$NSDIR/h$i.mnt" 2>/dev/null && mnt=$(stat -L -c %i "$NSDIR/h$i.mnt")
    mountpoint -q "$NSDIR/h$i.uts" 2>/dev/null && uts=$(stat -L -c %i "$NSDIR/h$i.uts")
    [ "$net$mnt$uts" != nonenonenone ] || return 0
    find /proc/[0-9]*/ns/ -maxdepth 1 \( -lname "net:?$net?" -o -lname "mnt:?$mnt?" -o -lname "uts:?$uts?" \) \
        -printf '%h\n' 2>/dev/null | cut -d/ -f3 | sort -un | grep -vx -e "$$" -e "$BASHPID"
}

# destroy_host N [kill]: destroy its domains, stop its daemons and every other process in it, drop its
# namespaces. With "kill" it is a power cut: everything gets SIGKILL at once, and sanlock keeps its
# leases on disk (other hosts see them expire).
destroy_host() {
    local i=$1 mode=${2:-graceful} ns D uri d n pids left t0 deadline
    ns=$(netns_of "$i"); D=$(dir_of "$i"); uri=$(uri_of "$i")
    t0=$(now_ms)
    if [ "$mode" = graceful ]; then
        if [ -S "$D/run/libvirt/libvirt-sock" ] && libvirtd_pid "$i" >/dev/null; then
            n=0
            for d in $(timeout 5 virsh -q -c "$uri" list --name 2>/dev/null); do
                timeout 10 virsh -q -c "$uri" destroy "$d" >/dev/null 2>&1
                n=$((n + 1)); (( n < 200 )) || break
            done
        fi
        # sanlock ignores SIGTERM while it is in lockspaces: ask it to leave them (and to kill the
        # lease holders) first, so that other hosts see the host ids released.
        if sanlock_pid "$i" >/dev/null && ns_mounted "$i" &&
           hx "$i" timeout 3 sanlock client status 2>/dev/null | grep -q '^s '; then
            hx "$i" timeout 5 sanlock client shutdown -f 1 -w 1 >/dev/null 2>&1 \
                || log "host $i: sanlock shutdown -f 1 failed or timed out"
        fi
    fi
    pids=$(pids_in "$i")
    if [ -n "$pids" ] && [ "$mode" = kill ]; then
        kill -KILL $pids 2>/dev/null
        left=$pids
    elif [ -n "$pids" ]; then
        # Everything in the host (daemons, qemu, agents, helpers) gets SIGTERM, then SIGKILL after 2 s.
        kill -TERM $pids 2>/dev/null
        deadline=$(( $(now_ms) + 2000 ))
        while left=$(pids_in "$i"); [ -n "$left" ] && (( $(now_ms) < deadline )); do sleep 0.05; done
        if [ -n "$left" ]; then
            log "host $i: SIGKILL to process(es) still there 2 s after SIGTERM: $(ps -o pid=,comm= -p "$(echo $left | tr ' ' ,)" | tr -s ' \n' ' ')"
            kill -KILL $left 2>/dev/null
        fi
    fi
    if [ -n "$pids" ] && [ -n "$left" ]; then
        deadline=$(( $(now_ms) + 10000 ))
        while left=$(pids_in "$i"); [ -n "$left" ] && (( $(now_ms) < deadline )); do sleep 0.05; done
        [ -z "$left" ] || log "host $i: processes still alive 10 s after SIGKILL: $left"
    fi
    ip -n "$NET_NS" link del "h$i" >/dev/null 2>&1
    umount "$NSDIR/h$i.mnt" 2>/dev/null || { mountpoint -q "$NSDIR/h$i.mnt" && umount -l "$NSDIR/h$i.mnt"; }
    umount "$NSDIR/h$i.uts" 2>/dev/null || { mountpoint -q "$NSDIR/h$i.uts" && umount -l "$NSDIR/h$i.uts"; }
    rm -f "$NSDIR/h$i.mnt" "$NSDIR/h$i.uts"
    have_netns "$ns" && ip netns del "$ns"
    drop_cgroups "$i"
    log "host $i down in $(( $(now_ms) - t0 )) ms"
}

# fingerprint N: what a fresh host N looks like from outside and inside, to tell a host a test
# left clean from one it did not. Its processes (pid + name: the daemons, their subreapers and
# helpers; an agent, a QEMU or a helper a test left is a new line), its network (links, addresses,
# routes, rules, nftables, forwarding sysctls), its mounts, its sanlock lockspaces and resources,
# its libvirt objects (domains, networks, pools, secrets, running or defined), its CPU groups'
# members and quota, and the files in its /var/lib/libvirt. Recorded by `up` once a new host is
# ready (D/clean.baseline); a later session reuses the host only when it is the same (host_clean).
fingerprint() {
    local i=$1 D p c g tmp
    D=$(dir_of "$i")
    tmp=$(mktemp -d "$D/.fp.XXXXXX") || return 1
    # Processes first (the next two enter the host), then those two at once (each is a few
    # hundred ms on the loaded machine). A process gone by the time its name is read is left out.
    for p in $(pids_in "$i"); do c=$(cat "/proc/$p/comm" 2>/dev/null) && echo "$p $c"; done > "$tmp/processes"
    hx "$i" timeout 20 /bin/sh -c 'ip -o link 2>/dev/null; ip -o addr; ip route show table all; ip -6 route show table all; ip rule
        command -v nft >/dev/null && nft list ruleset
        sysctl -a 2>/dev/null | grep -E "^net\.ipv4\.(ip_forward|conf\.(all|default|eth0)\.(forwarding|proxy_arp|rp_filter)) "
        findmnt -rn -o TARGET,FSTYPE,SOURCE | sort
        st=$(sanlock client status) || echo "sanlock does not answer"
        echo "$st" | grep -E "^(s|r) " | sort' > "$tmp/inside" 2>&1 &
    timeout 20 virsh -q -c "$(uri_of "$i")" "list --all --name; net-list --all --name; pool-list --all --name; secret-list" > "$tmp/libvirt" 2>&1 \
        || echo "libvirtd does not answer" >> "$tmp/libvirt" &
    wait
    echo "# processes"; cat "$tmp/processes"
    echo "# inside the host"; cat "$tmp/inside"
    echo "# libvirt"; cat "$tmp/libvirt"
    rm -rf "$tmp"
    echo "# cgroups"
    for c in $CG_CONTROLLERS; do
        g=$(cg_dir "$i" "$c")
        [ -d "$g" ] || continue
        echo "$c: $(sort -n "$g/cgroup.procs" | tr '\n' ' ')"
        [ "$c" = cpu ] && echo "cpu quota $(cat "$g/cpu.cfs_quota_us" "$g/cpu.cfs_period_us" | tr '\n' ' ')"
    done
    echo "# files"
    (cd "$D/lib" && find . -mindepth 1 ! -name '*.pid' ! -name '*.lock' | sort)
}

# host_clean N: host N runs and is as it was made (see fingerprint: the same daemon processes, each
# of them answering); says on stderr what differs.
host_clean() {
    local i=$1 D diffs
    D=$(dir_of "$i")
    have_netns "$(netns_of "$i")" && ns_mounted "$i" || return 1
    [ -s "$D/clean.baseline" ] || { log "host $i: no baseline (made by an older lab.sh?)"; return 1; }
    if ! diffs=$(diff "$D/clean.baseline" <(fingerprint "$i")); then
        log "host $i is not as it was made: $(echo "$diffs" | grep -E '^[<>]' | head -8 | tr '\n' ';')"
        return 1
    fi
}

# reuse_host N: a clean host for the next session: per-session scratch (guests/, QEMU logs) emptied.
reuse_host() {
    local D
    D=$(dir_of "$1")
    find "$D/guests" "$D/log/libvirt/qemu" -mindepth 1 -delete 2>/dev/null
    log "host $1 reused (as it was made)"
}

known_hosts() {
    {
        ip netns list 2>/dev/null | awk '{print $1}' | sed -n 's/^hvlab-h\([0-9]\+\)$/\1/p'
        for f in "$NSDIR"/h*.mnt "$NSDIR"/h*.uts; do
            [ -e "$f" ] || continue
            f=${f##*/h}; echo "${f%.*}"
        done
    } | sort -un
}

# --- commands ------------------------------------------------------------------------------------

cmd_up() {
    local fresh=0
    if [ "${1:-}" = --fresh ]; then fresh=1; shift; fi
    [ $# = 1 ] || die "usage: lab.sh up [--fresh] N"
    local n
    n=$(host_index "$1")
    command -v sanlock >/dev/null || die "sanlock is not installed (run test/lab/setup.sh)"
    [ -f "$SUBREAPER" ] || die "$SUBREAPER missing"
    local t0 i started=() jobs=() hosts=() reused=0 rc=0
    t0=$(now_ms)
    ensure_blackhole                 # first: before any namespace or lab address exists
    ensure_dirs
    lab_ca
    ensure_shim
    ensure_net
    # Hosts are made (or checked) in parallel. A running host is kept; with --fresh (a new owner
    # of the lab) only when it is as it was made (host_clean), else it is made again. Exit status
    # of a host's job: 0 kept, 3 made.
    for ((i = 1; i <= n; i++)); do
        (
            if [ $fresh = 1 ]; then
                host_clean "$i" && { reuse_host "$i"; exit 0; }
            elif host_running "$i"; then
                log "host $i already running, skipped"
                exit 0
            fi
            if have_netns "$(netns_of "$i")" || [ -e "$NSDIR/h$i.mnt" ]; then
                log "host $i is up but not usable as it is: tearing it down first"
                destroy_host "$i"
            fi
            create_host "$i"
            start_daemons "$i"
            exit 3
        ) &
        jobs+=($!)
        hosts+=("$i")
    done
    # A new owner gets no other host a previous session left as it should not be.
    if [ $fresh = 1 ]; then
        for i in $(known_hosts); do
            (( i > n )) || continue
            ( host_clean "$i" || destroy_host "$i" ) &
        done
    fi
    local k s
    for k in "${!jobs[@]}"; do
        wait "${jobs[$k]}"; s=$?
        case $s in
            0) reused=$((reused + 1)) ;;
            3) started+=("${hosts[$k]}") ;;
            *) rc=1 ;;
        esac
    done
    wait
    [ $rc = 0 ] || die "some hosts could not be made"
    for i in "${started[@]}"; do wait_ready "$i" || rc=1; done
    for ((i = 1; i <= n; i++)); do check_routes "$i"; done
    [ $rc = 0 ] || die "some hosts did not start"
    for i in "${started[@]}"; do
        fingerprint "$i" > "$(dir_of "$i")/clean.baseline.tmp" && mv "$(dir_of "$i")/clean.baseline.tmp" "$(dir_of "$i")/clean.baseline" &
    done
    wait
    log "up $n: ${#started[@]} started, $reused already running, $(( $(now_ms) - t0 )) ms"
}

cmd_down() {
    local t0 i all=0 mode=graceful hosts=() jobs=()
    t0=$(now_ms)
    if [ "${1:-}" = --kill ]; then mode=kill; shift; fi
    if [ $# = 0 ]; then
        all=1
        mapfile -t hosts < <(known_hosts)
    else
        for i in "$@"; do hosts+=("$(host_index "$i")"); done
    fi
    # Hosts go down in parallel.
    for i in "${hosts[@]}"; do destroy_host "$i" "$mode" & jobs+=($!); done
    for i in "${jobs[@]}"; do wait "$i"; done
    [ $all = 1 ] || return 0
    ip link del "$MAIN_LEG" >/dev/null 2>&1
    have_netns "$NET_NS" && ip netns del "$NET_NS"
    if mountpoint -q "$NSDIR" 2>/dev/null; then umount "$NSDIR" 2>/dev/null || umount -l "$NSDIR"; fi
    # ip netns leaves /run/netns bind-mounted on itself; drop that too when no namespace is left
    # (a plain umount fails, harmlessly, if someone else's namespace appeared meanwhile).
    if mountpoint -q /run/netns 2>/dev/null && [ -z "$(ls -A /run/netns 2>/dev/null)" ]; then
        umount /run/netns 2>/dev/null || true
    fi
    # The blackhole route stays: the network fixtures (test/agent/network/netlab.ts) rely on the
    # same route for their namespaces and keep it too, and their tests may run while the lab goes
    # down (npm test runs the lab's tests in a lane of their own, beside theirs).
    local left
    left=$( { ip netns list 2>/dev/null | awk '{print $1}' | grep -E '^hvlab-'; ip -o link show "$MAIN_LEG" 2>/dev/null; } )
    if [ -n "$left" ]; then
        die "lab network not fully removed: $left"
    fi
    log "down: ${#hosts[@]} host(s) and network removed (the blackhole route stays) in $(( $(now_ms) - t0 )) ms"
}

cmd_status() {
    local i rc=0 any=0 lv vl sl
    for i in $(known_hosts); do
        any=1
        lv=$(libvirtd_pid "$i" || echo -); vl=$(virtlogd_pid "$i" || echo -); sl=$(sanlock_pid "$i" || echo -)
        local la=no sa=no
        libvirt_answers "$i" && la=yes
        sanlock_answers "$i" && sa=yes
        echo "hvlab-h$i $(addr_of "$i") libvirtd=$lv answering=$la virtlogd=$vl sanlock=$sl answering=$sa dir=$(dir_of "$i")"
        [ "$la$sa" = yesyes ] || rc=3
    done
    [ $any = 1 ] || echo "no lab hosts"
    echo "net: netns $NET_NS $(have_netns "$NET_NS" && echo present || echo absent)," \
         "$MAIN_LEG $(ip -br -4 addr show dev "$MAIN_LEG" 2>/dev/null | awk '{print $3}' || true)," \
         "blackhole $RANGE $(ip route show type blackhole "$RANGE" | grep -q . && echo present || echo absent)"
    return $rc
}

cmd_exec() {
    [ $# -ge 2 ] || die "usage: lab.sh exec HOST CMD..."
    local i
    i=$(host_index "$1"); shift
    ns_mounted "$i" && have_netns "$(netns_of "$i")" || die "host $i is not up"
    exec nsenter --net="/run/netns/$(netns_of "$i")" --mount="$NSDIR/h$i.mnt" --uts="$NSDIR/h$i.uts" --wd="$PWD" -- "$@"
}

cmd_env() {
    local i
    i=$(host_index "$1")
    cat <<ENV
HVLAB_NAME=hvlab-h$i
HVLAB_ADDRESS=$(addr_of "$i")
HVLAB_DIR=$(dir_of "$i")
HVLAB_LIBVIRT_URI=$(uri_of "$i")
HVLAB_SANLOCK_DIR=$(dir_of "$i")/run/sanlock
HVLAB_NETNS=/run/netns/$(netns_of "$i")
HVLAB_MNTNS=$NSDIR/h$i.mnt
HVLAB_UTSNS=$NSDIR/h$i.uts
HVLAB_SHARED=$SHARED
HVLAB_CPUACCT_CGROUP=$( [ -d "$(cg_dir "$i" cpuacct)" ] && cg_dir "$i" cpuacct )
HVLAB_CPU_CGROUP=$( [ -d "$(cg_dir "$i" cpu)" ] && cg_dir "$i" cpu )
ENV
}

# _cgexec N CMD...: join host N's CPU groups (those there are), then exec CMD; what CMD starts
# (a subreaper, its daemon, the daemon's QEMU processes) is born in them.
cmd_cgexec() {
    local i=$1 c; shift
    for c in $CG_CONTROLLERS; do
        [ -f "$(cg_dir "$i" "$c")/cgroup.procs" ] || continue
        echo $$ > "$(cg_dir "$i" "$c")/cgroup.procs" || log "host $i: could not join $(cg_dir "$i" "$c")"
    done
    exec "$@"
}

# Serialize up/down between concurrent callers (fd 9; closed for everything spawned).
locked() {
    mkdir -p "$MH"
    exec 9>"$MH/.lock"
    flock -w 300 9 || die "could not lock $MH/.lock"
    "$@"
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
    up)     locked cmd_up "$@" ;;
    down)   locked cmd_down "$@" ;;
    status) cmd_status ;;
    exec)   cmd_exec "$@" ;;
    env)    [ $# = 1 ] || die "usage: lab.sh env HOST"; cmd_env "$1" ;;
    _init)  host_init "$1" ;;
    _cgexec) cmd_cgexec "$@" ;;
    *) echo "usage: $0 up [--fresh] N | down [--kill] [N...] | status | exec HOST CMD... | env HOST" >&2; exit 2 ;;
esac
