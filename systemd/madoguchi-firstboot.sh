#!/bin/bash
# Madoguchi first boot of a flashed image (madoguchi-firstboot.service, as root, no network needed).
# The root is still writable on this boot; the image already holds the venv, the units and the
# service user (build-image.sh). This script:
#   1. provisions the box from its boot partition: site config, identity, secret, SSH
#      (provision.sh; hw/provisioning.md);
#   2. grows the data partition (/var/lib/madoguchi) to fill the card;
#   3. turns the read-only root on from the next boot (overlayroot) and marks the box as done.
# The service then starts on this same boot (it is ordered after this unit): a box at the
# counter interprets a minute after it is first plugged in, and its root is read-only from
# its first restart (at the latest the evening's power-off) on.
# On failure nothing is marked done, so the next boot tries again; `journalctl -u
# madoguchi-firstboot` (or the console) says why. A provisioning error leaves the root writable
# and the service running on whatever config it has, so the box can be fixed in place.
set -euo pipefail

DONE=${MADOGUCHI_FIRSTBOOT_DONE:-/etc/madoguchi/.firstboot-done}
DATA=/var/lib/madoguchi
OVERLAY_CONF=/etc/overlayroot.local.conf

say() { echo "madoguchi-firstboot: $*"; }

say "provisioning from the boot partition"
/usr/local/lib/madoguchi/provision.sh

# The data partition was made small so the image stays small; give it the rest of the card.
data_dev=$(findmnt -n -o SOURCE "$DATA" || true)
if [[ -b $data_dev ]]; then
    part_name=$(basename "$(readlink -f "$data_dev")")
    disk=/dev/$(lsblk -n -o PKNAME "/dev/$part_name" | head -1)
    part_num=$(cat "/sys/class/block/$part_name/partition")
    before=$(lsblk -b -n -o SIZE "/dev/$part_name")
    # Only the last partition can grow, and only when there is room behind it.
    if echo ", +" | sfdisk -q --no-reread --no-tell-kernel -N "$part_num" "$disk" 2>/dev/null; then
        partx -u -n "$part_num" "$disk" || true
        resize2fs "/dev/$part_name" >/dev/null 2>&1 || say "resize2fs could not grow $data_dev; it keeps its size"
    fi
    say "data partition $data_dev: $((before / 1048576)) MB -> $(($(lsblk -b -n -o SIZE "/dev/$part_name") / 1048576)) MB"
else
    say "no data partition mounted on $DATA (not an image from build-image.sh?); nothing to grow"
fi

# From the next boot on, the root is a read-only lower layer under a RAM overlay: a power cut
# cannot damage it, and nothing the box hears is written to it. The data partition is not
# overlaid (recurse=0): the spool, state and models stay persistent.
if command -v overlayroot-chroot >/dev/null && [[ -f $OVERLAY_CONF ]]; then
    printf '# Written by madoguchi-firstboot; madoguchi-maintenance on|off changes it.\noverlayroot="tmpfs:swap=0,recurse=0"\n' >"$OVERLAY_CONF"
    say "read-only root: on from the next boot"
else
    say "overlayroot is not installed: the root stays writable"
fi
install -d -m 0755 "$(dirname "$DONE")"
date -u +%FT%TZ >"$DONE"
sync
say "done"
