#!/usr/bin/env bash
# A stand-in for Raspberry Pi OS Lite (64-bit), made from Debian arm64 for the image tests:
# the same partition layout (MBR; FAT "bootfs" with config.txt and cmdline.txt; ext4 "rootfs"),
# Debian bookworm's python3 (3.11, as on Pi OS bookworm), plus what the emulator needs and a Pi
# does not: Debian's arm64 kernel and initrd, which the test boots with qemu's `virt` machine.
#
#   tests/image/base-image.sh OUT.img
#
# Needs root, debootstrap, qemu-user-static with binfmt_misc (aarch64 binaries run in the
# chroot), mkfs.vfat, mtools, sfdisk and mke2fs. No loop devices: the partitions are built as
# files (mke2fs -d, mcopy) and written into the image. The apt mirror is the host's own.
set -euo pipefail
PROG=base-image.sh
die() { echo "$PROG: $*" >&2; exit 1; }
(($# == 1)) || die "usage: $PROG OUT.img"
OUT=$1
SUITE=${SUITE:-bookworm}
BOOT_MB=256
ROOT_MB=${ROOT_MB:-1800}
((EUID == 0)) || die "needs root (debootstrap)"
for tool in debootstrap mkfs.vfat mcopy sfdisk mke2fs; do
    command -v "$tool" >/dev/null || die "missing $tool: apt-get install debootstrap dosfstools mtools fdisk e2fsprogs"
done
[[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]] || die "aarch64 binaries cannot run here: apt-get install qemu-user-static, then" \
    "mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc && /usr/lib/systemd/systemd-binfmt"

# The host's Debian mirror, read from its apt sources (deb822 or one-line format).
mirror=$(sed -n 's/^URIs: *\([^ ]*\).*/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | grep -v security | head -1 || true)
[[ -n $mirror ]] || mirror=$(awk '$1 == "deb" && $3 !~ /security/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
[[ -n $mirror ]] || die "no Debian mirror in /etc/apt/sources.list(.d)"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/madoguchi-base.XXXXXX")
cleanup() {
    for m in proc sys dev; do mountpoint -q "$WORK/root/$m" && umount -l "$WORK/root/$m"; done
    rm -rf "$WORK"
}
trap cleanup EXIT
ROOT=$WORK/root

echo "[1/4] debootstrap $SUITE arm64, then Debian's arm64 kernel (a few minutes under emulation)"
packages=systemd-sysv,udev,kmod,dbus,initramfs-tools,python3,ca-certificates,iproute2,procps,util-linux,e2fsprogs,fdisk,sudo
debootstrap --arch=arm64 --variant=minbase --include="$packages" "$SUITE" "$ROOT" "$mirror" >"$WORK/debootstrap.log" 2>&1 \
    || { tail -30 "$WORK/debootstrap.log" >&2; die "debootstrap failed (log above)"; }
# The emulator's disk and root need only these modules (overlayroot's hook adds its own). A
# small initramfs is built in seconds instead of minutes under emulation, here and on every
# image build (installing overlayroot rebuilds it). A real Pi OS keeps its own initramfs.
printf 'MODULES=list\n' >"$ROOT/etc/initramfs-tools/conf.d/madoguchi-test.conf"
printf '%s\n' virtio_mmio virtio_pci virtio_blk crc32c_generic ext4 >>"$ROOT/etc/initramfs-tools/modules"
cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf"
for m in proc sys dev; do mount --bind "/$m" "$ROOT/$m"; done
chroot "$ROOT" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q --no-install-recommends linux-image-arm64 >>"$WORK/debootstrap.log" 2>&1 \
    || { tail -30 "$WORK/debootstrap.log" >&2; die "installing the kernel failed (log above)"; }
for m in proc sys dev; do umount -l "$ROOT/$m"; done
: >"$ROOT/etc/resolv.conf"

echo "[2/4] configuring it like Pi OS: hostname, fstab by label, boot partition at /boot/firmware"
echo raspberrypi >"$ROOT/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\traspberrypi\n' >"$ROOT/etc/hosts"
cat >"$ROOT/etc/fstab" <<'EOF'
LABEL=rootfs  /               ext4  defaults,noatime  0 1
LABEL=bootfs  /boot/firmware  vfat  defaults          0 2
EOF
mkdir -p "$ROOT/boot/firmware"
printf 'deb %s %s main\n' "$mirror" "$SUITE" >"$ROOT/etc/apt/sources.list"
: >"$ROOT/etc/machine-id"  # generated on the first boot, as on a flashed card
rm -f "$ROOT"/var/cache/apt/archives/*.deb "$ROOT"/var/lib/apt/lists/*_Packages
# The test's probe (not part of Pi OS, nor of the product): reports the box's state on the console.
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
install -Dm 0644 "$HERE/probe/probe.py" "$ROOT/usr/local/lib/madoguchi-test/probe.py"
install -Dm 0644 "$HERE/probe/madoguchi-test-probe.service" "$ROOT/etc/systemd/system/madoguchi-test-probe.service"
ln -sf /etc/systemd/system/madoguchi-test-probe.service "$ROOT/etc/systemd/system/multi-user.target.wants/madoguchi-test-probe.service"

echo "[3/4] the boot partition: config.txt, cmdline.txt, and the kernel for the emulator"
mkdir "$WORK/boot"
cat >"$WORK/boot/config.txt" <<'EOF'
# Stand-in for Raspberry Pi OS's config.txt (madoguchi's build appends its own lines).
arm_64bit=1
auto_initramfs=1
EOF
echo "console=serial0,115200 console=tty1 root=LABEL=rootfs rootfstype=ext4 fsck.repair=yes rootwait" >"$WORK/boot/cmdline.txt"
cp "$ROOT"/boot/vmlinuz-* "$WORK/boot/vmlinuz"
cp "$ROOT"/boot/initrd.img-* "$WORK/boot/initrd.img"
boot_img=$WORK/boot.img
mkfs.vfat -C -n bootfs -F 32 "$boot_img" $((BOOT_MB * 1024)) >/dev/null
mcopy -i "$boot_img" "$WORK"/boot/* ::/

echo "[4/4] assembling $OUT (MBR: ${BOOT_MB} MiB FAT32 + ${ROOT_MB} MiB ext4)"
root_img=$WORK/root.img
mke2fs -q -t ext4 -L rootfs -d "$ROOT" "$root_img" "${ROOT_MB}M"
rm -f "$OUT.part"
truncate -s $(((4 + BOOT_MB + ROOT_MB) * 1024 * 1024)) "$OUT.part"
sfdisk -q "$OUT.part" <<EOF
label: dos
start=4MiB, size=${BOOT_MB}MiB, type=c
start=$((4 + BOOT_MB))MiB, type=83
EOF
dd if="$boot_img" of="$OUT.part" bs=1M seek=4 conv=notrunc,sparse status=none
dd if="$root_img" of="$OUT.part" bs=1M seek=$((4 + BOOT_MB)) conv=notrunc,sparse status=none
mv "$OUT.part" "$OUT"
echo "$PROG: wrote $OUT"
