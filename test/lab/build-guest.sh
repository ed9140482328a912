#!/bin/bash
# Hostvisor lab: build the tiny test guest into $HOSTVISOR_LAB/guest (called by setup.sh).
#
#   vmlinuz     Debian kernel (bzImage) from the package linux-image-amd64 depends on
#   vmlinux     the uncompressed ELF cut out of the bzImage's xz stream: boots via PVH, ~2x faster under TCG
#   initrd.img  gzip newc cpio: busybox-static, virtio/button/evdev/net/console modules, qemu-ga (from
#               Debian's qemu-guest-agent .deb) with the shared libraries ldd names, test/lab/guest/init
#   .stamp      sha256 of init + this script + the kernel package name (+ busybox and qemu-ga versions)
#
# Skips the build when vmlinux and initrd.img exist and the stamp matches; rebuilds otherwise.
# Env: HOSTVISOR_LAB (default /var/tmp/hostvisor-lab)
#      HOSTVISOR_KERNEL_PKG  pin the kernel package (default: resolved from linux-image-amd64)
#      FORCE=1  rebuild even if the stamp matches
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LAB=${HOSTVISOR_LAB:-/var/tmp/hostvisor-lab}
G=$LAB/guest
PKGS=$LAB/pkgs
INIT=$HERE/guest/init
SELF=$HERE/build-guest.sh
export DEBIAN_FRONTEND=noninteractive

log() { echo "build-guest: $*"; }
die() { echo "build-guest: error: $*" >&2; exit 1; }

[ -f "$INIT" ] || die "$INIT missing"
[ -x /bin/busybox ] || die "/bin/busybox missing (install busybox-static)"

kernel_pkg() {
    apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}'
}

KPKG=${HOSTVISOR_KERNEL_PKG:-}
if [ -z "$KPKG" ]; then
    KPKG=$(kernel_pkg || true)
    if [ -z "$KPKG" ]; then
        log "apt lists do not know linux-image-amd64; running apt-get update"
        apt-get update -qq
        KPKG=$(kernel_pkg || true)
    fi
fi
[[ $KPKG =~ ^linux-image-[0-9][A-Za-z0-9.+-]*$ ]] || die "cannot resolve the kernel package of linux-image-amd64 (got '$KPKG')"
KVER=${KPKG#linux-image-}
BBVER=$(dpkg-query -W -f='${Version}' busybox-static 2>/dev/null || echo unknown)
# The guest agent comes from the .deb, not from an install on this host (it is a guest program).
QGAVER=$(apt-cache policy qemu-guest-agent 2>/dev/null | awk '/Candidate:/{print $2; exit}')
[ -n "$QGAVER" ] && [ "$QGAVER" != '(none)' ] || die "apt does not know qemu-guest-agent (run apt-get update)"

STAMP=$( {
    echo "init $(sha256sum <"$INIT" | cut -d' ' -f1)"
    echo "script $(sha256sum <"$SELF" | cut -d' ' -f1)"
    echo "kernel $KPKG"
    echo "busybox-static $BBVER"
    echo "qemu-guest-agent $QGAVER"
} )

if [ "${FORCE:-0}" != 1 ] && [ -s "$G/vmlinux" ] && [ -s "$G/initrd.img" ] && [ -f "$G/.stamp" ] \
        && [ "$(cat "$G/.stamp")" = "$STAMP" ]; then
    log "guest up to date in $G ($KPKG), skipped"
    exit 0
fi
log "building guest in $G ($KPKG)"

mkdir -p "$PKGS" "$G"
cd "$PKGS"

# fetch_deb PKG [VERSION]: path of PKG's amd64 .deb in $PKGS: one downloaded before, else a copy
# from apt's cache, else apt-get download. VERSION (as apt spells it) names the file to want.
fetch_deb() {
    local pkg=$1 ver=${2:-} pat debs cached
    pat="${pkg}_*_amd64.deb"
    # A .deb file name spells the epoch's colon as %3a.
    [ -n "$ver" ] && pat="${pkg}_${ver/:/%3a}_amd64.deb"
    # found GLOB: the existing files it names (a pattern without wildcards is kept as is by nullglob).
    found() { local f; for f in $1; do [ -f "$f" ] && echo "$f"; done; return 0; }
    mapfile -t debs < <(found "$PKGS/$pat")
    if [ ${#debs[@]} -eq 0 ]; then
        mapfile -t cached < <(found "/var/cache/apt/archives/$pat")
        if [ ${#cached[@]} -gt 0 ]; then
            log "using apt cache ${cached[-1]}" >&2
            cp "${cached[-1]}" "$PKGS/"
        else
            log "apt-get download $pkg${ver:+=$ver}" >&2
            # _apt cannot write here; apt then downloads as root and says so.
            (cd "$PKGS" && apt-get download -q "$pkg${ver:+=$ver}" 2>&1 | grep -v 'unsandboxed as root' >&2) || true
        fi
        mapfile -t debs < <(found "$PKGS/$pat")
    fi
    [ ${#debs[@]} -gt 0 ] || die "could not get $pat"
    echo "${debs[-1]}"
}
DEB=$(fetch_deb "$KPKG")
QGADEB=$(fetch_deb qemu-guest-agent "$QGAVER")

WORK=$(mktemp -d "$LAB/.guest-build.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# Only the kernel image and the modules we need: extracting the whole package is ~400 MB.
MODS="drivers/virtio/virtio_ring drivers/virtio/virtio drivers/virtio/virtio_pci_legacy_dev
      drivers/virtio/virtio_pci_modern_dev drivers/virtio/virtio_pci drivers/block/virtio_blk
      drivers/acpi/button drivers/input/evdev net/core/failover drivers/net/net_failover
      drivers/net/virtio_net drivers/char/virtio_console"
members=("./boot/vmlinuz-$KVER")
for m in $MODS; do
    members+=("./lib/modules/$KVER/kernel/$m.ko" "./lib/modules/$KVER/kernel/$m.ko.xz")
done
dpkg-deb --fsys-tarfile "$DEB" | tar -x -C "$WORK" --wildcards "${members[@]}" 2>/dev/null || true
[ -s "$WORK/boot/vmlinuz-$KVER" ] || die "no boot/vmlinuz-$KVER in $DEB"

# vmlinux: the bzImage payload is an xz stream; decompress from its magic to get the ELF kernel.
cp "$WORK/boot/vmlinuz-$KVER" "$WORK/vmlinuz"
OFF=$(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$WORK/vmlinuz" | head -n 1 | cut -d: -f1 || true)
[ -n "$OFF" ] || die "no xz stream in vmlinuz-$KVER"
# xz complains about the bytes that follow the stream; the ELF check below is what counts.
tail -c +$((OFF + 1)) "$WORK/vmlinuz" | xz -dc > "$WORK/vmlinux" 2>/dev/null || true
[ "$(head -c 4 "$WORK/vmlinux" | od -An -c | tr -d ' ')" = '177ELF' ] || die "vmlinux is not an ELF file"

# initramfs root
R=$WORK/root
mkdir -p "$R"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,etc,tmp,run,var/log,lib/modules}
cp /bin/busybox "$R/bin/busybox"
for applet in $("$R/bin/busybox" --list); do
    [ -e "$R/bin/$applet" ] || ln -s busybox "$R/bin/$applet"
done
for m in $MODS; do
    src=$WORK/lib/modules/$KVER/kernel/$m
    dst=$R/lib/modules/$(basename "$m").ko
    if [ -f "$src.ko" ]; then cp "$src.ko" "$dst"
    elif [ -f "$src.ko.xz" ]; then xz -dc "$src.ko.xz" > "$dst"
    else die "module $m not in $DEB"; fi
done
# qemu-ga and every shared library it loads (ldd on this host: the same Debian release), at the
# paths ldd names, so the guest's loader finds them without an ld.so.cache.
dpkg-deb --fsys-tarfile "$QGADEB" | tar -x -C "$WORK" ./usr/sbin/qemu-ga
[ -x "$WORK/usr/sbin/qemu-ga" ] || die "no usr/sbin/qemu-ga in $QGADEB"
install -m 0755 "$WORK/usr/sbin/qemu-ga" "$R/usr/sbin/qemu-ga"
libs=$(ldd "$R/usr/sbin/qemu-ga") || die "ldd qemu-ga failed"
if grep -q 'not found' <<<"$libs"; then
    die "qemu-ga needs libraries this host lacks (setup.sh installs them): $(grep 'not found' <<<"$libs" | tr -s ' \t\n' ' ')"
fi
for lib in $(awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' <<<"$libs"); do
    mkdir -p "$R$(dirname "$lib")"
    cp -L "$lib" "$R$lib"
done
install -m 0755 "$INIT" "$R/init"
(cd "$R" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0 | gzip -1) > "$WORK/initrd.img"

# Install atomically-ish: files first, stamp last.
for f in vmlinuz vmlinux initrd.img; do
    mv -f "$WORK/$f" "$G/$f.new"
    mv -f "$G/$f.new" "$G/$f"
done
printf '%s\n' "$STAMP" > "$G/.stamp"
log "built: $(cd "$G" && ls -l vmlinuz vmlinux initrd.img | awk '{printf "%s=%s ", $9, $5}')"
