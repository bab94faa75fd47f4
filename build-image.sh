#!/usr/bin/env bash
# Build a Madoguchi SD-card image from an official Raspberry Pi OS Lite arm64 image.
# Run ./build-image.sh --help for usage; systemd/README.md explains the first boot.
set -euo pipefail
umask 022

src=${BASH_SOURCE[0]}
[[ $src == */* ]] || src=./$src
HERE=$(cd "${src%/*}" && pwd)
PROG=build-image.sh
PYTHON=${PYTHON:-python3}

usage() {
    cat <<EOF
Usage: $PROG --base RASPIOS.img.xz --out madoguchi.img [options]
       $PROG --stage-only DIR [options]

Writes a copy of an official Raspberry Pi OS Lite (64-bit) image with Madoguchi added: the
wheels in /opt/madoguchi/wheels, madoguchi.service, a first-boot unit that installs them
offline into /opt/madoguchi/venv, and the config.txt lines from hw/config.txt.d/.

  --base FILE        the Raspberry Pi OS Lite arm64 image (.img.xz or .img); not modified
  --out FILE         the image to write (overwritten)
  --config FILE      a site config, validated and copied to /boot/firmware/madoguchi.toml
  --wheelhouse DIR   wheels to ship: aarch64 wheels for the image's Python (cp311 on bookworm,
                     cp313 on trixie) of madoguchi's dependencies. If DIR holds no
                     madoguchi-*.whl, the project wheel is built from this checkout.
  --debs DIR         .deb files to install at first boot: libportaudio2 (PyAudio), libicu72
                     (PyICU) and fonts-noto-cjk, fonts-noto-core (the faces), if the base lacks them
  --models DIR       a model store (as `madoguchi models fetch` fills it, one folder per model
                     id) to bake into /var/lib/madoguchi/models; every model is verified
                     against models/manifest.lock, and one whose licence forbids commercial
                     use (NLLB) is refused unless --accept-licence is given too
  --accept-licence   allow baking non-commercial models (the site has the right to use them)
  --stage-only DIR   write the root-filesystem overlay tree into DIR (new or empty) and stop:
                     no image, no root, no loop devices. DIR/boot/firmware/ is what goes to
                     the boot partition (madoguchi-config.txt is appended to config.txt).
  -h, --help         this help

Building an image needs root, losetup, mount and xz (pv is used for progress if present).
EOF
}

die() { echo "$PROG: $*" >&2; exit 1; }
usage_error() { echo "$PROG: $* (see --help)" >&2; exit 2; }

BASE="" OUT="" CONFIG="" WHEELHOUSE="" DEBS="" MODELS="" STAGE_ONLY="" ACCEPT_LICENCE=()
while (($#)); do
    case "$1" in
        -h|--help) usage; exit 0 ;;
        --accept-licence) ACCEPT_LICENCE=(--accept-licence) && shift ;;
        --base|--out|--config|--wheelhouse|--debs|--models|--stage-only)
            (($# >= 2)) || usage_error "$1 needs a value"
            name=${1#--} && name=${name//-/_} && declare "${name^^}=$2" && shift 2 ;;
        *) usage_error "unknown argument: $1" ;;
    esac
done

STEP=0
TOTAL=$([[ -n $STAGE_ONLY ]] && echo 4 || echo 10)
step() { STEP=$((STEP + 1)); echo "[$STEP/$TOTAL] $*"; }

# Everything that is set up is torn down here, on success, error or Ctrl-C alike.
MNT="" WORK="" WROTE=0 OK=0 LOOPS=()
cleanup() {
    set +e
    if [[ -n $MNT ]]; then
        sync
        mountpoint -q "$MNT/boot/firmware" && umount "$MNT/boot/firmware"
        mountpoint -q "$MNT" && umount "$MNT"
        rmdir "$MNT"
    fi
    for ((i = ${#LOOPS[@]} - 1; i >= 0; i--)); do losetup -d "${LOOPS[i]}"; done
    LOOPS=()
    [[ -n $WORK ]] && rm -rf "$WORK"
    if ((WROTE && !OK)) && [[ -f $OUT ]]; then
        echo "$PROG: failed; removing the incomplete $OUT" >&2
        rm -f "$OUT"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step "Checking inputs"
[[ -z $CONFIG || -f $CONFIG ]] || die "site config not found: $CONFIG"
[[ -z $WHEELHOUSE || -d $WHEELHOUSE ]] || die "wheelhouse is not a directory: $WHEELHOUSE"
[[ -z $DEBS || -d $DEBS ]] || die "--debs is not a directory: $DEBS"
[[ -z $MODELS || -d $MODELS ]] || die "--models is not a directory: $MODELS"
if [[ -n $STAGE_ONLY ]]; then
    [[ ! -e $STAGE_ONLY || -d $STAGE_ONLY ]] || die "stage directory is not a directory: $STAGE_ONLY"
    [[ -z $(ls -A "$STAGE_ONLY" 2>/dev/null) ]] || die "stage directory is not empty: $STAGE_ONLY"
else
    [[ -n $BASE && -n $OUT ]] || usage_error "--base and --out are required (or --stage-only DIR)"
    [[ -f $BASE ]] || die "base image not found: $BASE"
    [[ ! $OUT -ef $BASE ]] || die "--out must not be the base image itself: $OUT"
    tools=(losetup mount umount mountpoint)
    [[ $BASE == *.xz ]] && tools+=(xz)
    for tool in "${tools[@]}"; do
        command -v "$tool" >/dev/null || die "missing required tool: $tool"
    done
    ((EUID == 0)) || die "building an image needs root (loop devices and mounts); try sudo, or --stage-only DIR"
fi

STAGE=$STAGE_ONLY
[[ -n $STAGE ]] || { WORK=$(mktemp -d "${TMPDIR:-/tmp}/madoguchi-image.XXXXXX") && STAGE=$WORK/stage; }
mkdir -p "$STAGE"

step "Collecting wheels"
wheels=$STAGE/opt/madoguchi/wheels
mkdir -p "$wheels"
[[ -n $WHEELHOUSE ]] && find "$WHEELHOUSE" -maxdepth 1 -name '*.whl' -exec cp {} "$wheels/" \;
if ! compgen -G "$wheels/madoguchi-*.whl" >/dev/null; then
    echo "    building the madoguchi wheel from $HERE"
    "$PYTHON" -m pip wheel --no-deps --quiet -w "$wheels" "$HERE" || die "building the madoguchi wheel failed"
fi
echo "    $(find "$wheels" -name '*.whl' | wc -l) wheel(s): $(cd "$wheels" && echo *.whl)"
[[ -n $WHEELHOUSE ]] || echo "    note: no --wheelhouse; the first boot can only install if the image's Python already has madoguchi's dependencies"

step "Checking the site config"
if [[ -n $CONFIG ]]; then
    if PYTHONPATH="$HERE/firmware" "$PYTHON" -c 'import numpy' 2>/dev/null; then
        PYTHONPATH="$HERE/firmware" "$PYTHON" -m madoguchi config check "$CONFIG" || die "site config is invalid: $CONFIG"
    else
        echo "    skipped: $PYTHON cannot import numpy (set PYTHON=/path/to/venv/bin/python to check it)"
    fi
else
    echo "    none given (the box runs on defaults until /boot/firmware/madoguchi.toml is added)"
fi

step "Staging the overlay tree in $STAGE"
units=$STAGE/etc/systemd/system
install -d "$units/multi-user.target.wants" "$STAGE/etc/madoguchi" "$STAGE/etc/systemd/journald.conf.d" \
    "$STAGE/usr/local/lib/madoguchi" "$STAGE/opt/madoguchi/doc/arrays" "$STAGE/boot/firmware"
install -m 0644 "$HERE/systemd/madoguchi.service" "$HERE/systemd/madoguchi-firstboot.service" "$units/"
ln -sfn /etc/systemd/system/madoguchi-firstboot.service "$units/multi-user.target.wants/madoguchi-firstboot.service"
install -m 0755 "$HERE/systemd/madoguchi-firstboot.sh" "$STAGE/usr/local/lib/madoguchi/firstboot.sh"
# The model manifest and its lock (what `madoguchi models` fetches and verifies; never weights).
install -Dm 0644 "$HERE/models/manifest.toml" "$STAGE/usr/share/madoguchi/models/manifest.toml"
install -Dm 0644 "$HERE/models/manifest.lock" "$STAGE/usr/share/madoguchi/models/manifest.lock"
install -m 0644 "$HERE/systemd/journald-madoguchi.conf" "$STAGE/etc/systemd/journald.conf.d/madoguchi.conf"
install -m 0644 "$HERE/hw/README.md" "$HERE/hw/wiring.md" "$HERE/hw/pinmap.toml" "$STAGE/opt/madoguchi/doc/"
install -m 0644 "$HERE/systemd/README.md" "$STAGE/opt/madoguchi/doc/systemd.md"
install -m 0644 "$HERE"/hw/arrays/*.toml "$STAGE/opt/madoguchi/doc/arrays/"
if [[ -n $DEBS ]]; then
    mkdir -p "$STAGE/opt/madoguchi/debs"
    find "$DEBS" -maxdepth 1 -name '*.deb' -exec cp {} "$STAGE/opt/madoguchi/debs/" \;
fi
if [[ -n $MODELS ]]; then
    # Through `madoguchi models import`: each model verified against the lock, licences enforced.
    for folder in "$MODELS"/*/; do
        id=$(basename "$folder")
        [[ $id == .* ]] && continue
        echo "    baking model $id"
        MADOGUCHI_MODELS_DIR="$STAGE/var/lib/madoguchi/models" PYTHONPATH="$HERE/firmware" \
            "$PYTHON" -m madoguchi models import --no-system-config "$id" "$folder" "${ACCEPT_LICENCE[@]}" \
            || die "model $id cannot be baked into the image (see the error above)"
    done
fi
install -m 0644 "$HERE/hw/config.txt.d/madoguchi.txt" "$STAGE/boot/firmware/madoguchi-config.txt"
[[ -z $CONFIG ]] || install -m 0644 "$CONFIG" "$STAGE/boot/firmware/madoguchi.toml"

if [[ -n $STAGE_ONLY ]]; then
    OK=1
    echo "Staged in $STAGE_ONLY (no image written)."
    exit 0
fi

step "Decompressing $BASE to $OUT"
WROTE=1
if [[ $BASE == *.xz ]]; then
    if command -v pv >/dev/null; then
        size=$(xz --robot --list "$BASE" | awk '$1 == "totals" { print $5 }')
        xz -dc "$BASE" | pv -s "${size:-0}" >"$OUT"
    else
        echo "    (install pv for a progress bar)"
        xz -dc "$BASE" >"$OUT"
    fi
else
    cp --sparse=always "$BASE" "$OUT"
fi

step "Attaching $OUT to loop devices"
part() {  # byte offset and length of MBR partition $1 (Raspberry Pi OS images use an MBR)
    local start count
    read -r start count < <(od -An -t u4 -j $((446 + 16 * ($1 - 1) + 8)) -N 8 "$OUT")
    ((count > 0)) || die "$OUT has no partition $1: is $BASE a Raspberry Pi OS image?"
    echo $((start * 512)) $((count * 512))
}
LOOPS+=("$(losetup --find --show --partscan "$OUT")")
for _ in $(seq 30); do [[ -b ${LOOPS[0]}p2 ]] && break; sleep 0.1; done
if [[ -b ${LOOPS[0]}p1 && -b ${LOOPS[0]}p2 ]]; then
    BOOT_DEV=${LOOPS[0]}p1 ROOT_DEV=${LOOPS[0]}p2
else  # no partition nodes (no udev in a container, or no partition support): a loop per partition
    read -r off len < <(part 1)
    BOOT_DEV=$(losetup --find --show --offset "$off" --sizelimit "$len" "$OUT") && LOOPS+=("$BOOT_DEV")
    read -r off len < <(part 2)
    ROOT_DEV=$(losetup --find --show --offset "$off" --sizelimit "$len" "$OUT") && LOOPS+=("$ROOT_DEV")
fi
echo "    boot $BOOT_DEV, root $ROOT_DEV"

step "Mounting the root and boot partitions"
MNT=$(mktemp -d "${TMPDIR:-/tmp}/madoguchi-root.XXXXXX")
mount "$ROOT_DEV" "$MNT"
[[ -d $MNT/boot/firmware ]] || die "no /boot/firmware in the root partition: Raspberry Pi OS bookworm or later is needed"
mount "$BOOT_DEV" "$MNT/boot/firmware"
[[ -f $MNT/boot/firmware/config.txt ]] || die "no config.txt on the boot partition: is $BASE a Raspberry Pi OS image?"

step "Copying the overlay into the image"
need_kb=$(du -sk "$STAGE" | cut -f1)
free_kb=$(df --output=avail -k "$MNT" | tail -1)
((need_kb + 65536 < free_kb)) || die "the root partition has ${free_kb} KiB free, the overlay needs ${need_kb} KiB plus 64 MiB spare"
(cd "$STAGE" && tar --exclude=./boot -cf - .) | tar -C "$MNT" --no-same-owner --no-overwrite-dir -xf -
[[ -z $CONFIG ]] || cp "$STAGE/boot/firmware/madoguchi.toml" "$MNT/boot/firmware/madoguchi.toml"
echo "    $need_kb KiB into the root partition"

step "Appending the Madoguchi lines to config.txt"
if grep -q '^# --- madoguchi ---' "$MNT/boot/firmware/config.txt"; then
    echo "    already there; left as is"
else
    printf '\n' >>"$MNT/boot/firmware/config.txt"
    cat "$STAGE/boot/firmware/madoguchi-config.txt" >>"$MNT/boot/firmware/config.txt"
fi

step "Unmounting and detaching"
OK=1
cleanup
MNT="" WORK=""
echo "Done: $OUT (write it with: dd if=$OUT of=/dev/sdX bs=4M conv=fsync status=progress)"
