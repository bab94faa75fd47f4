#!/bin/bash
# madoguchi-maintenance: change a box whose root is read-only (overlayroot), then lock it again.
#
#   madoguchi-maintenance status            is the root read-only now, and after the next boot?
#   madoguchi-maintenance on                 next boot: a writable root (for updates); reboots
#   madoguchi-maintenance off                next boot: the read-only root again; reboots
#   madoguchi-maintenance update DIR         install newer madoguchi wheels from DIR (a USB stick,
#                                            or a folder under /var/lib/madoguchi) into the venv;
#                                            only with a writable root (after `on`)
#
# Without a reboot nothing written to a read-only root lasts: writes go to a RAM layer. The
# lower layer (/media/root-ro) is changed only here, for overlayroot's own setting.
set -euo pipefail
PROG=madoguchi-maintenance
CONF=overlayroot.local.conf
VENV=/opt/madoguchi/venv
NO_REBOOT=${MADOGUCHI_NO_REBOOT:-0}  # tests: change the setting, do not reboot

die() { echo "$PROG: $*" >&2; exit 1; }
((EUID == 0)) || die "needs root: sudo $PROG $*"

overlay_now() { [[ $(findmnt -n -o FSTYPE /) == overlay ]]; }
lower() { if overlay_now; then echo /media/root-ro; else echo /; fi; }
setting() { sed -n 's/^overlayroot="\(.*\)"/\1/p' "$(lower)/etc/$CONF" 2>/dev/null | tail -1; }

write_setting() {  # $1: the overlayroot value for the next boot
    local dir
    dir=$(lower)/etc
    if overlay_now; then mount -o remount,rw /media/root-ro; fi
    printf '# Written by %s on %s\noverlayroot="%s"\n' "$PROG" "$(date -u +%FT%TZ)" "$1" >"$dir/$CONF.new"
    mv "$dir/$CONF.new" "$dir/$CONF"
    sync
    if overlay_now; then mount -o remount,ro /media/root-ro; fi
}

reboot_now() {
    if [[ $NO_REBOOT == 1 ]]; then echo "$PROG: reboot to apply"; else echo "$PROG: rebooting"; systemctl reboot; fi
}

case ${1:-} in
    status)
        echo "root now: $(overlay_now && echo "read-only (overlay in RAM)" || echo writable)"
        next=$(setting)
        echo "next boot: $([[ -n $next && $next != disabled ]] && echo read-only || echo writable)"
        ;;
    on)
        write_setting disabled
        echo "$PROG: the next boot has a writable root; run \`$PROG off\` when the change is done"
        reboot_now
        ;;
    off)
        write_setting "tmpfs:swap=0,recurse=0"
        echo "$PROG: the next boot has the read-only root again"
        reboot_now
        ;;
    update)
        dir=${2:-}
        [[ -d $dir ]] || die "update needs a folder of wheels: $PROG update /media/usb/wheels"
        overlay_now && die "the root is read-only now: run \`$PROG on\` first (it reboots), then update"
        compgen -G "$dir/madoguchi-*.whl" >/dev/null || die "no madoguchi-*.whl in $dir"
        systemctl stop madoguchi.service || true
        "$VENV/bin/python" -m pip install --no-index --find-links "$dir" --upgrade madoguchi \
            || die "pip could not install from $dir (the old version is still installed; see above)"
        echo "$PROG: now $("$VENV/bin/madoguchi" --version); run \`$PROG off\` to lock the root again (it reboots)"
        ;;
    *) die "usage: $PROG status | on | off | update DIR" ;;
esac
