#!/bin/bash
# Madoguchi first boot (run by madoguchi-firstboot.service, as root, with no network needed):
#   1. install any .deb files shipped in /opt/madoguchi/debs (e.g. libportaudio2),
#   2. create the madoguchi system user (groups audio, gpio, spi),
#   3. create /opt/madoguchi/venv and install madoguchi from /opt/madoguchi/wheels offline,
#   4. enable and start madoguchi.service, and leave /opt/madoguchi/.installed behind.
# On failure nothing is marked done, so the next boot tries again; the journal says why
# (journalctl -u madoguchi-firstboot).
set -euo pipefail

PREFIX=${MADOGUCHI_PREFIX:-/opt/madoguchi}
WHEELS=$PREFIX/wheels
VENV=$PREFIX/venv
USER_NAME=madoguchi
STATE=/var/lib/madoguchi

say() { echo "madoguchi-firstboot: $*"; }

shopt -s nullglob
debs=("$PREFIX"/debs/*.deb)
if ((${#debs[@]})); then
    say "installing ${#debs[@]} package(s) from $PREFIX/debs"
    dpkg -i "${debs[@]}"
fi

for group in audio gpio spi; do
    if ! getent group "$group" >/dev/null; then
        say "group $group is missing; creating it (device access may still need a udev rule)"
        groupadd --system "$group"
    fi
done
if ! id "$USER_NAME" >/dev/null 2>&1; then
    say "creating user $USER_NAME"
    useradd --system --user-group --home-dir "$STATE" --no-create-home \
        --shell /usr/sbin/nologin --comment "Madoguchi counter interpreter" "$USER_NAME"
fi
usermod -a -G audio,gpio,spi "$USER_NAME"
install -d -m 0755 /etc/madoguchi

wheels=("$WHEELS"/madoguchi-*.whl)
if ((${#wheels[@]} == 0)); then
    say "no madoguchi wheel in $WHEELS; nothing to install"
    exit 1
fi

# Pi OS's python3 (3.11 on bookworm, 3.13 on trixie); the wheels must match it.
# --system-site-packages lets the venv see apt-installed python3-lgpio for gpiozero on a Pi 5.
rm -rf "$VENV"
trap 'rm -rf "$VENV"' ERR
say "creating $VENV with $(python3 --version)"
if ! python3 -m venv --system-site-packages "$VENV"; then
    # No ensurepip (python3-venv not installed): bootstrap pip from a pip wheel if one was shipped.
    pip_wheels=("$WHEELS"/pip-*.whl)
    ((${#pip_wheels[@]})) || { say "python3 -m venv failed and no pip wheel in $WHEELS"; exit 1; }
    rm -rf "$VENV"
    python3 -m venv --system-site-packages --without-pip "$VENV"
    "$VENV/bin/python" "${pip_wheels[0]}/pip" install --no-index --find-links "$WHEELS" pip
fi
say "installing madoguchi offline from $WHEELS"
"$VENV/bin/python" -m pip install --no-index --find-links "$WHEELS" --no-cache-dir madoguchi
trap - ERR

ln -sf "$VENV/bin/madoguchi" /usr/local/bin/madoguchi
touch "$PREFIX/.installed"
systemctl enable madoguchi.service
# --no-block: madoguchi.service is ordered after this unit, which is still starting.
systemctl start --no-block madoguchi.service
say "done: $("$VENV/bin/madoguchi" --version)"
