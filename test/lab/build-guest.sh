#!/bin/bash
# Hostvisor lab: build the tiny test guest into $HOSTVISOR_LAB/guest (called by setup.sh).
#
#   vmlinuz     Debian kernel (bzImage) from the package linux-image-amd64 depends on
#   vmlinux     the uncompressed ELF cut out of the bzImage's xz stream: boots via PVH, ~2x faster under TCG
#   initrd.img  gzip newc cpio: busybox-static, virtio/button/evdev/net modules, test/lab/guest/init
#   .stamp      sha256 of init + this script + the kernel package name (+ busybox version)
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

STAMP=$( {
    echo "init $(sha256sum <"$INIT" | cut -d' ' -f1)"
    echo "script $(sha256sum <"$SELF" | cut -d' ' -f1)"
    echo "kernel $KPKG"
    echo "busybox-static $BBVER"
} )

if [ "${FORCE:-0}" != 1 ] && [ -s "$G/vmlinux" ] && [ -s "$G/initrd.img" ] && [ -f "$G/.stamp" ] \
        && [ "$(cat "$G/.stamp")" = "$STAMP" ]; then
    log "guest up to date in $G ($KPKG), skipped"
    exit 0
fi
log "building guest in $G ($KPKG)"

mkdir -p "$PKGS" "$G"
cd "$PKGS"

# Kernel package: reuse a downloaded or apt-cached .deb, else apt-get download it.
shopt -s nullglob
debs=("$PKGS/${KPKG}"_*_amd64.deb)
if [ ${#debs[@]} -eq 0 ]; then
    cached=(/var/cache/apt/archives/"${KPKG}"_*_amd64.deb)
    if [ ${#cached[@]} -gt 0 ]; then
        log "using apt cache ${cached[-1]}"
        cp "${cached[-1]}" "$PKGS/"
    else
        log "apt-get download $KPKG"
        # _apt cannot write here; apt then downloads as root and says so.
        apt-get download -q "$KPKG" 2>&1 | grep -v 'unsandboxed as root' || true
    fi
    debs=("$PKGS/${KPKG}"_*_amd64.deb)
fi
shopt -u nullglob
[ ${#debs[@]} -gt 0 ] || die "could not get ${KPKG}_*.deb"
DEB=${debs[-1]}

WORK=$(mktemp -d "$LAB/.guest-build.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# Only the kernel image and the modules we need: extracting the whole package is ~400 MB.
MODS="drivers/virtio/virtio_ring drivers/virtio/virtio drivers/virtio/virtio_pci_legacy_dev
      drivers/virtio/virtio_pci_modern_dev drivers/virtio/virtio_pci drivers/block/virtio_blk
      drivers/acpi/button drivers/input/evdev net/core/failover drivers/net/net_failover
      drivers/net/virtio_net"
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
install -m 0755 "$INIT" "$R/init"
(cd "$R" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0 | gzip -1) > "$WORK/initrd.img"

# Install atomically-ish: files first, stamp last.
for f in vmlinuz vmlinux initrd.img; do
    mv -f "$WORK/$f" "$G/$f.new"
    mv -f "$G/$f.new" "$G/$f"
done
printf '%s\n' "$STAMP" > "$G/.stamp"
log "built: $(cd "$G" && ls -l vmlinuz vmlinux initrd.img | awk '{printf "%s=%s ", $9, $5}')"
