#!/bin/bash
# Madoguchi per-box provisioning, run as root once at first boot (from madoguchi-firstboot),
# before madoguchi.service starts. Admins flash one image onto many SD cards, then put on each
# card's FAT boot partition (editable from any PC):
#   madoguchi.toml        the site config, shared by every box (may already be on the image);
#   madoguchi-box.toml    this card's box: box_id, MQTT login and secret, ssh; or
#   madoguchi-boxes.toml  every box of the site, one [box."<serial>"] table per Pi serial number.
# This script checks all of it before it changes anything, then:
#   - writes /etc/madoguchi/madoguchi.toml: the site config (comments kept) plus this box's
#     [mqtt] box_id, username and password_file or cert_file/key_file;
#   - puts the secret in /etc/madoguchi/ (mode 0600, owned by the service user if it exists);
#   - sets the host name (/etc/hostname, the 127.0.1.1 line of /etc/hosts) from box_id;
#   - turns ssh.service on (with root's authorized keys) only if asked, off otherwise;
#   - wipes the box file(s) and secret files from the boot partition.
# The card's madoguchi.toml stays: the firmware reads /etc/madoguchi/madoguchi.toml and then
# /boot/firmware/madoguchi.toml, so admins keep editing the card's copy; the /etc copy is what
# the box falls back on for any key the card's file no longer sets. Docs: hw/provisioning.md.
#
# Environment (for tests and image builds): BOOT (/boot/firmware), ROOT (/), MADOGUCHI
# (madoguchi: the command that checks configs), PYTHON (python3: 3.11+ for tomllib),
# SERIAL_FILE (default: the device tree's serial-number, else /proc/cpuinfo's Serial line).
#
# Exit 0: provisioned, or nothing to provision. Exit 1: one line on stderr says which file is
# wrong, what is wrong and what is allowed; nothing has been changed.
set -euo pipefail

BOOT=${BOOT:-/boot/firmware}
ROOT=${ROOT:-/}
ROOT=${ROOT%/}    # "/" becomes "", so "$ROOT/etc" is /etc on the box
MADOGUCHI=${MADOGUCHI:-madoguchi}
PYTHON=${PYTHON:-python3}
SERVICE_USER=madoguchi
ETC=$ROOT/etc/madoguchi

say() { printf 'madoguchi-provision: %s\n' "$*"; }
die() { printf 'madoguchi-provision: error: %s\n' "$*" >&2; exit 1; }

# `madoguchi config check` prints one line per problem; the journal and the tests want one.
one_line() {
    local line out=""
    while IFS= read -r line; do
        line=${line#madoguchi: config error: }
        if [[ -n $line ]]; then out+="${out:+; }$line"; fi
    done
    printf '%s' "$out"
}

site=$BOOT/madoguchi.toml
box=$BOOT/madoguchi-box.toml
boxes=$BOOT/madoguchi-boxes.toml

[[ -d $BOOT ]] || die "$BOOT is not a directory: the boot partition is not mounted (set BOOT= to where it is)"
# Windows hides known extensions, so Notepad's "madoguchi-box.toml" is often really .toml.txt.
for file in "$site" "$box" "$boxes"; do
    if [[ -e $file.txt && ! -e $file ]]; then
        die "$file.txt: the name ends in .txt (Windows hides known extensions); allowed: exactly ${file##*/}"
    fi
done
if [[ ! -f $site && ! -f $box && ! -f $boxes ]]; then
    say "nothing to provision: no madoguchi.toml, madoguchi-box.toml or madoguchi-boxes.toml in $BOOT"
    exit 0
fi
if [[ -f $box && -f $boxes ]]; then
    die "$BOOT has both madoguchi-box.toml and madoguchi-boxes.toml; allowed: one of them (a card's own box file, or the site's list of boxes by serial number)"
fi
command -v "$PYTHON" >/dev/null || die "$PYTHON not found; allowed: a Python 3.11+ (tomllib) as PYTHON="

if [[ -f $site ]]; then
    # The firmware reads the card's file as it is, and Python's TOML reader refuses a BOM.
    if [[ $(head -c 3 "$site" | od -An -tx1 | tr -d ' \n') == efbbbf ]]; then
        die "$site: starts with a byte-order mark (saved as \"UTF-8 with BOM\"); allowed: UTF-8 without BOM"
    fi
    if command -v "$MADOGUCHI" >/dev/null; then
        if ! out=$("$MADOGUCHI" config check "$site" 2>&1); then
            die "$(one_line <<<"$out") (the site file; fix it on the SD card's boot partition)"
        fi
        say "$out"
    else
        say "$MADOGUCHI is not on PATH: $site is checked as TOML only"
    fi
fi

# Staging holds secrets for a moment: RAM (/run) when possible, never the boot partition.
tmpbase=${TMPDIR:-/tmp}
[[ -d /run && -w /run ]] && tmpbase=/run
stage=$(mktemp -d "$tmpbase/madoguchi-provision.XXXXXX")
trap 'rm -rf "$stage"' EXIT

# Read, check and plan everything in Python (tomllib); it only writes into $stage.
export BOOT ROOT STAGE=$stage SERIAL_FILE=${SERIAL_FILE:-}
"$PYTHON" - <<'PY' || exit 1
import base64, json, math, os, re, ssl, sys, tomllib
from pathlib import Path, PurePosixPath

boot, stage = Path(os.environ["BOOT"]), Path(os.environ["STAGE"])
root = Path(os.environ["ROOT"] or "/")
ETC = "/etc/madoguchi"
PASSWORD_FILE, CERT_FILE, KEY_FILE = f"{ETC}/mqtt.password", f"{ETC}/mqtt-client.crt", f"{ETC}/mqtt-client.key"
# The same rule as firmware/madoguchi/config.py's _MQTT_NAME: box_id becomes one MQTT topic level.
MQTT_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
MQTT_NAME_TEXT = "1-64 letters, digits, '_', '.' or '-' (it becomes one MQTT topic level)"
IDENTITY = ("box_id", "username", "password_file", "cert_file", "key_file")
BOX_KEYS = ("box_id", "mqtt_username", "mqtt_password", "mqtt_cert", "mqtt_key", "ssh", "ssh_authorized_keys")
KEY_TYPES = ("ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
             "sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com")
MARK = "# madoguchi-provision:"


class Bad(Exception):
    """One line for the admin: which file, what is wrong, what is allowed."""


def say(text):
    print(f"madoguchi-provision: {text}", flush=True)


def read_toml(path, bom_ok=True):
    raw = path.read_bytes()
    if bom_ok and raw.startswith(b"\xef\xbb\xbf"):  # Notepad's "UTF-8 with BOM": harmless in our own files
        raw = raw[3:]
    try:
        return raw.decode("utf-8"), tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise Bad(f"{path}: not UTF-8 text; allowed: a text file saved as UTF-8") from None
    except tomllib.TOMLDecodeError as err:
        raise Bad(f"{path}: not valid TOML: {err}; allowed: TOML like the examples in hw/provisioning.md "
                  '(strings in double quotes, e.g. box_id = "kita-01")') from None


def plain_text(value):
    return isinstance(value, str) and value != "" and value == value.strip() and not any(ord(c) < 32 or ord(c) == 127 for c in value)


def boot_file(name, where, key):
    """A file named in a box entry: relative to the boot partition, never outside it."""
    rel = name.replace("\\", "/") if isinstance(name, str) else ""
    parts = PurePosixPath(rel).parts
    if not rel or rel.startswith("/") or ":" in rel or ".." in parts:
        raise Bad(f"{where}: {key} = {name!r} is not allowed; allowed: the name of a file on the boot partition, e.g. \"kita-01.crt\"")
    path = boot / rel
    if not path.is_file():
        raise Bad(f"{where}: {key} = {name!r}, but {path} does not exist; allowed: the name of a file copied onto the boot partition beside it")
    return path


def public_key(line, where, index):
    """An OpenSSH public key line: known type, base64 blob that names the same type, optional comment."""
    text = line.strip() if isinstance(line, str) else ""
    fields = text.split(None, 2)
    ok = len(fields) >= 2 and fields[0] in KEY_TYPES and "\n" not in text and "\r" not in text
    if ok:
        try:
            blob = base64.b64decode(fields[1], validate=True)
            size = int.from_bytes(blob[:4], "big")
            ok = blob[4:4 + size] == fields[0].encode()
        except ValueError:
            ok = False
    if not ok:
        raise Bad(f"{where}: ssh_authorized_keys[{index}] = {str(line)[:40]!r} is not an OpenSSH public key; "
                  f"allowed: one line as in a .pub file, e.g. \"ssh-ed25519 AAAAC3Nza… admin@pc\" ({', '.join(KEY_TYPES[:3])}, …)")
    return text


def ssh_unit():
    for folder in ("usr/lib/systemd/system", "lib/systemd/system"):
        if (root / folder / "ssh.service").is_file():
            return f"/{folder}/ssh.service"
    return ""


def box_entry(entry, where, site):
    """Validate one box's table; returns the plan for it. Raises Bad on the first problem."""
    if not isinstance(entry, dict):
        raise Bad(f"{where}: expected a table of keys; allowed keys: {', '.join(BOX_KEYS)}")
    for key in entry:
        if key not in BOX_KEYS:
            raise Bad(f"{where}: unknown key {key!r}; allowed keys: {', '.join(BOX_KEYS)}")
    box_id = entry.get("box_id")
    if box_id is None:
        raise Bad(f"{where}: box_id is missing; allowed: box_id = \"…\" with {MQTT_NAME_TEXT}")
    if not isinstance(box_id, str) or not MQTT_NAME.fullmatch(box_id):
        raise Bad(f"{where}: box_id = {box_id!r} is not allowed; allowed: {MQTT_NAME_TEXT}")
    # The shipped broker ACL (fleet/broker/acl.example) wants the login "<site>/<box_id>".
    username = entry.get("mqtt_username", f"{site}/{box_id}")
    if not plain_text(username):
        raise Bad(f"{where}: mqtt_username = {username!r} is not allowed; allowed: a non-empty string without control characters "
                  f"or leading/trailing spaces (default \"{site}/{box_id}\", as the shipped broker ACL expects)")
    plan = {"box_id": box_id, "username": username, "files": {}, "remove": []}
    password, cert, key = entry.get("mqtt_password"), entry.get("mqtt_cert"), entry.get("mqtt_key")
    if password is not None and (cert is not None or key is not None):
        raise Bad(f"{where}: both mqtt_password and mqtt_cert/mqtt_key are set; allowed: one secret, a password or a client certificate")
    if password is not None:
        # The firmware strips the password file, so edge spaces could never be sent.
        if not plain_text(password):
            raise Bad(f"{where}: mqtt_password is not allowed (empty, a control character, or spaces at either end); "
                      "allowed: a non-empty one-line string without leading or trailing spaces")
        plan["files"]["mqtt.password"] = (password + "\n").encode()
        plan["config"] = {"password_file": PASSWORD_FILE}
        plan["secret"] = "password"
    elif cert is not None or key is not None:
        if cert is None or key is None:
            raise Bad(f"{where}: {'mqtt_key' if cert is not None else 'mqtt_cert'} is missing; allowed: mqtt_cert and mqtt_key together, "
                      "each naming a PEM file on the boot partition")
        cert_path, key_path = boot_file(cert, where, "mqtt_cert"), boot_file(key, where, "mqtt_key")
        try:  # what the firmware will do (telemetry/mqtt.py): the key must fit the certificate and need no pass phrase
            ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_cert_chain(cert_path, key_path, password=lambda: b"")
        except (OSError, ssl.SSLError) as err:
            raise Bad(f"{where}: mqtt_cert {cert!r} and mqtt_key {key!r} cannot be loaded together ({err}); "
                      "allowed: a PEM client certificate and its own unencrypted PEM private key") from None
        plan["files"]["mqtt-client.crt"] = cert_path.read_bytes()
        plan["files"]["mqtt-client.key"] = key_path.read_bytes()
        plan["config"] = {"cert_file": CERT_FILE, "key_file": KEY_FILE}
        plan["secret"] = "client certificate"
        plan["remove"] += [cert_path, key_path]
    else:
        raise Bad(f"{where}: no MQTT secret; allowed: mqtt_password = \"…\", or mqtt_cert = \"FILE\" and mqtt_key = \"FILE\" "
                  "naming files on the boot partition")
    ssh = entry.get("ssh", False)
    if not isinstance(ssh, bool):
        raise Bad(f"{where}: ssh = {ssh!r} is not allowed; allowed: true or false (without quotes)")
    keys = entry.get("ssh_authorized_keys", [])
    if not isinstance(keys, list):
        raise Bad(f"{where}: ssh_authorized_keys is not a list; allowed: [\"ssh-ed25519 AAAA… admin@pc\", …]")
    plan["ssh"] = ssh
    plan["keys"] = [public_key(line, where, i) for i, line in enumerate(keys)]
    return plan


def serial_number():
    """This Pi's serial: the device tree's serial-number (Pi 5), else /proc/cpuinfo's Serial line."""
    if os.environ.get("SERIAL_FILE"):
        candidates = [Path(os.environ["SERIAL_FILE"])]
    else:
        candidates = [root / "sys/firmware/devicetree/base/serial-number", root / "proc/device-tree/serial-number", root / "proc/cpuinfo"]
    for path in candidates:
        try:
            text = path.read_bytes().decode("ascii", "replace")
        except OSError:
            continue
        if path.name == "cpuinfo":
            found = re.search(r"^Serial\s*:\s*([0-9A-Fa-f]+)\s*$", text, flags=re.MULTILINE)
            text = found.group(1) if found else ""
        text = text.replace("\0", "").strip()
        if re.fullmatch(r"[0-9A-Fa-f]{1,16}", text):
            return text.lower()
    raise Bad(f"cannot read this Pi's serial number from {' or '.join(str(p) for p in candidates)}; "
              "allowed: a Raspberry Pi, or madoguchi-box.toml instead of madoguchi-boxes.toml")


def normal_serial(text):
    # "10000000abcd1234", "0x…" and the 8-digit form without leading zeros all name one Pi.
    return text.lower().removeprefix("0x").lstrip("0") or "0"


def shared_entry(path, site):
    _, doc = read_toml(path)
    for key in doc:
        if key != "box":
            raise Bad(f"{path}: unknown key or table {key!r}; allowed: only [box.\"<serial number>\"] tables")
    table = doc.get("box")
    if not isinstance(table, dict) or not table:
        raise Bad(f"{path}: no boxes listed; allowed: one [box.\"<serial number>\"] table per box, e.g. [box.\"10000000abcd1234\"]")
    serials, ids = {}, {}
    for serial, entry in table.items():
        if not re.fullmatch(r"(0x)?[0-9A-Fa-f]{1,16}", serial):
            raise Bad(f"{path}: [box.\"{serial}\"]: {serial!r} is not a serial number; allowed: up to 16 hex digits, e.g. \"10000000abcd1234\"")
        if normal_serial(serial) in serials:
            raise Bad(f"{path}: [box.\"{serial}\"] and [box.\"{serials[normal_serial(serial)]}\"] are the same serial number; allowed: each Pi once")
        serials[normal_serial(serial)] = serial
        box_id = entry.get("box_id") if isinstance(entry, dict) else None
        if isinstance(box_id, str) and box_id in ids:
            raise Bad(f"{path}: [box.\"{serial}\"] and [box.\"{ids[box_id]}\"] both have box_id = {box_id!r}; allowed: a different box_id for every box")
        ids[box_id] = serial
    mine = serial_number()
    say(f"this Pi's serial number is {mine}")
    if normal_serial(mine) not in serials:
        listed = ", ".join(list(serials.values())[:5]) + (", …" if len(serials) > 5 else "")
        raise Bad(f"{path}: this Pi's serial number {mine} is not listed (listed: {listed}); allowed: a [box.\"{mine}\"] table for this box")
    serial = serials[normal_serial(mine)]
    plan = box_entry(table[serial], f"{path}: [box.\"{serial}\"]", site)
    # The shared file holds every box's secret: it and every key file it names leave this card.
    plan["remove"] = [path]
    for other in table.values():
        for key in ("mqtt_cert", "mqtt_key"):
            name = other.get(key) if isinstance(other, dict) else None
            try:
                plan["remove"].append(boot_file(name, path, key))
            except Bad:
                pass  # another box's missing file is that box's problem, found on its own first boot
    return plan


def toml_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ("nan" if value != value else ("inf" if value > 0 else "-inf"))
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise Bad(f"cannot write {value!r} back as TOML; allowed in the site file: strings, numbers, true/false and lists")


def toml_key(key):
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def write_toml(doc):
    """The small writer for a config the line editor could not handle: tables of plain values."""
    out = [f"{MARK} written from the site file and this box's identity; the site file's comments could not be kept"]
    out += [f"{toml_key(k)} = {toml_value(v)}" for k, v in doc.items() if not isinstance(v, dict)]
    for table, body in doc.items():
        if isinstance(body, dict):
            out += ["", f"[{toml_key(table)}]"]
            for key, value in body.items():
                if isinstance(value, dict):
                    raise Bad(f"cannot write [{table}] {key} back as TOML; allowed in the site file: tables of plain keys")
                out.append(f"{toml_key(key)} = {toml_value(value)}")
    return "\n".join(out) + "\n"


def merge(base_text, base_doc, identity):
    """base_text with [mqtt]'s identity keys replaced, keeping every comment; falls back to write_toml."""
    if not isinstance(base_doc.get("mqtt", {}), dict):
        raise Bad("[mqtt] of the site config is not a table; allowed: a [mqtt] table")
    expected = dict(base_doc)
    mqtt = {k: v for k, v in base_doc.get("mqtt", {}).items() if k not in IDENTITY}
    expected["mqtt"] = {**mqtt, **identity}
    nl = "\r\n" if "\r\n" in base_text else "\n"
    block = [f"{MARK} this box's own identity (hw/provisioning.md); the shared site file must not set these{nl}"]
    block += [f"{k} = {toml_value(v)}{nl}" for k, v in identity.items()]
    lines = base_text.splitlines(keepends=True)
    header = next((i for i, line in enumerate(lines) if re.fullmatch(r"\s*\[\s*mqtt\s*\]\s*(#.*)?", line.rstrip("\r\n"))), None)
    if header is None:
        if lines and not lines[-1].endswith("\n"):
            lines[-1] += nl
        lines += ([nl] if lines else []) + [f"[mqtt]{nl}"] + block
    else:
        end = next((i for i in range(header + 1, len(lines)) if re.match(r"\s*\[", lines[i])), len(lines))
        ours = re.compile(r"\s*(" + "|".join(IDENTITY) + r")\s*=|" + re.escape(MARK))
        kept = [line for line in lines[header + 1:end] if not ours.match(line)]
        lines = lines[:header + 1] + block + kept + lines[end:]
    text = "".join(lines)
    try:
        if tomllib.loads(text) == expected:
            return text
    except tomllib.TOMLDecodeError:
        pass
    say("the site file's [mqtt] table is written in a form this script cannot edit line by line; "
        "writing /etc/madoguchi/madoguchi.toml without its comments")
    text = write_toml(expected)
    if tomllib.loads(text) != expected:
        raise Bad("cannot merge this box's identity into the site config; allowed: a site file with a plain [mqtt] table")
    return text


def main():
    site_path, box_path, boxes_path = boot / "madoguchi.toml", boot / "madoguchi-box.toml", boot / "madoguchi-boxes.toml"
    etc_path = root / "etc/madoguchi/madoguchi.toml"
    site_text, site_doc = read_toml(site_path, bom_ok=False) if site_path.is_file() else (None, {})
    etc_text, etc_doc = read_toml(etc_path, bom_ok=False) if etc_path.is_file() else (None, {})
    base_text, base_doc = (site_text, site_doc) if site_text is not None else (etc_text or "", etc_doc)
    site_mqtt = site_doc.get("mqtt", {}) if isinstance(site_doc.get("mqtt"), dict) else {}
    site_name = base_doc.get("mqtt", {}).get("site", "site") if isinstance(base_doc.get("mqtt"), dict) else "site"

    plan = None
    if box_path.is_file():
        _, doc = read_toml(box_path)
        plan = box_entry(doc, str(box_path), site_name)
        plan["remove"].insert(0, box_path)
    elif boxes_path.is_file():
        plan = shared_entry(boxes_path, site_name)

    if plan is not None:
        identity = {"box_id": plan["box_id"], "username": plan["username"], **plan["config"]}
        clash = [k for k in IDENTITY if k in site_mqtt]
        if clash:
            raise Bad(f"{site_path}: [mqtt] {clash[0]} is set in the site file, which every box shares and which the box reads after "
                      f"/etc/madoguchi/madoguchi.toml, so it would override this box's own; allowed: leave "
                      f"{', '.join(IDENTITY)} out of madoguchi.toml and give them per box (hw/provisioning.md)")
    else:
        # No new box: keep the identity an earlier run (or an admin) put in /etc, where the card's file does not set it.
        etc_mqtt = etc_doc.get("mqtt", {}) if isinstance(etc_doc.get("mqtt"), dict) else {}
        identity = {k: etc_mqtt[k] for k in IDENTITY if k in etc_mqtt and k not in site_mqtt}

    text = merge(base_text, base_doc, identity) if identity else base_text
    (stage / "madoguchi.toml").write_text(text, encoding="utf-8", newline="")
    if plan is None:
        say("no madoguchi-box.toml or madoguchi-boxes.toml: " +
            (f"keeping this box's identity (box_id {identity['box_id']!r})" if "box_id" in identity else "box_id stays the host name"))
        return

    (stage / "secrets").mkdir(mode=0o700)
    for name, data in plan["files"].items():
        (stage / "secrets" / name).write_bytes(data)
    # The other kind of secret, from an earlier provisioning, would only confuse whoever reads /etc later.
    stale = ["mqtt-client.crt", "mqtt-client.key"] if "password_file" in plan["config"] else ["mqtt.password"]
    (stage / "stale").write_text("".join(f"{n}\n" for n in stale))

    host = re.sub(r"[^a-z0-9-]+", "-", plan["box_id"].lower()).strip("-")[:63].strip("-")
    if host:
        if host != plan["box_id"]:
            say(f"box_id {plan['box_id']!r} is not a valid host name; the host name will be {host!r}")
        (stage / "hostname").write_text(host + "\n")
        hosts_path = root / "etc/hosts"
        lines = hosts_path.read_text(encoding="utf-8").splitlines() if hosts_path.is_file() else ["127.0.0.1\tlocalhost"]
        entry = f"127.0.1.1\t{host}"
        if any(re.match(r"\s*127\.0\.1\.1\s", line) for line in lines):
            lines = [entry if re.match(r"\s*127\.0\.1\.1\s", line) else line for line in lines]
        else:
            lines.append(entry)
        (stage / "hosts").write_text("\n".join(lines) + "\n", encoding="utf-8")

    # ssh: Raspberry Pi OS's own switch (an empty file "ssh" or "ssh.txt" on the boot partition) counts as asking.
    flag = next((boot / n for n in ("ssh", "ssh.txt") if (boot / n).exists()), None)
    ssh_on = plan["ssh"] or flag is not None
    if ssh_on and not ssh_unit():
        raise Bad(f"{box_path if box_path.is_file() else boxes_path}: ssh is asked for{f' ({flag})' if flag and not plan['ssh'] else ''}, "
                  "but this image has no ssh.service (openssh-server is not installed); allowed: ssh = false, or an image with openssh-server")
    (stage / "ssh").write_text(("on " + ssh_unit()) if ssh_on else "off")
    if ssh_on and plan["keys"]:
        keys_path = root / "root/.ssh/authorized_keys"
        old = keys_path.read_text(encoding="utf-8") if keys_path.is_file() else ""
        new = [k for k in plan["keys"] if k.split()[1] not in old]
        (stage / "authorized_keys").write_text(old + ("\n" if old and not old.endswith("\n") else "") + "".join(k + "\n" for k in new))
        say(f"{len(plan['keys'])} ssh key(s) for root, {len(new)} new")
    elif plan["keys"]:
        say(f"ssh is off, so the {len(plan['keys'])} ssh_authorized_keys are not installed")

    removals = list(dict.fromkeys(str(p) for p in plan["remove"]))
    (stage / "remove").write_text("".join(f"{p}\n" for p in removals))
    (stage / "summary").write_text(f"box {plan['box_id']}, MQTT user {plan['username']!r} with a {plan['secret']}, "
                                   f"ssh {'on' if ssh_on else 'off'}")


try:
    main()
except Bad as err:
    print(f"madoguchi-provision: error: {err}", file=sys.stderr)
    sys.exit(1)
PY

if command -v "$MADOGUCHI" >/dev/null && ! cmp -s "$stage/madoguchi.toml" "$site"; then
    # A safety net: the firmware's own check of exactly what /etc/madoguchi/madoguchi.toml will hold.
    if ! out=$("$MADOGUCHI" config check "$stage/madoguchi.toml" 2>&1); then
        die "$(one_line <<<"${out//"$stage/madoguchi.toml"/"$ETC/madoguchi.toml (as it would be written)"}")"
    fi
fi

# --- Everything is checked; from here on, apply. -------------------------------------------

# uid:gid of the service user inside ROOT (chown by name would use this machine's users).
owner=""
if [[ -z $ROOT ]]; then
    if id "$SERVICE_USER" >/dev/null 2>&1; then owner="$(id -u "$SERVICE_USER"):$(id -g "$SERVICE_USER")"; fi
elif [[ -f $ROOT/etc/passwd ]]; then
    owner=$(awk -F: -v u="$SERVICE_USER" '$1 == u { print $3 ":" $4 }' "$ROOT/etc/passwd")
fi

# put SRC DEST MODE [OWNER]: replace DEST atomically (rename), or leave it alone if it is the same.
put() {
    local src=$1 dest=$2 mode=$3 own=${4:-}
    if [[ -f $dest ]] && cmp -s "$src" "$dest"; then
        chmod "$mode" "$dest"
        if [[ -n $own ]]; then chown "$own" "$dest"; fi
        say "$dest: unchanged"
        return 0
    fi
    install -m "$mode" "$src" "$dest.provision-new"
    if [[ -n $own ]]; then chown "$own" "$dest.provision-new"; fi
    mv -f "$dest.provision-new" "$dest"
    say "wrote $dest (mode $mode${own:+, owner $own})"
}

install -d -m 0755 "$ETC"
if [[ -d $stage/secrets ]]; then
    [[ -n $owner ]] || say "user $SERVICE_USER does not exist yet: the secret stays root's; the service cannot read it until it is chowned to $SERVICE_USER"
    for secret in "$stage"/secrets/*; do
        put "$secret" "$ETC/${secret##*/}" 0600 "$owner"
    done
    while read -r name; do
        if [[ -e $ETC/$name ]]; then rm -f "$ETC/$name"; say "removed $ETC/$name (the other kind of secret, from an earlier provisioning)"; fi
    done <"$stage/stale"
fi
put "$stage/madoguchi.toml" "$ETC/madoguchi.toml" 0644

if [[ -f $stage/hostname ]]; then
    host=$(<"$stage/hostname")
    put "$stage/hostname" "$ROOT/etc/hostname" 0644
    put "$stage/hosts" "$ROOT/etc/hosts" 0644
    if [[ -z $ROOT ]] && command -v hostname >/dev/null && [[ $(hostname) != "$host" ]]; then
        hostname "$host"   # now, so that what starts after us (mDNS, the service) sees it
        say "host name is now $host"
    fi
fi

if [[ -f $stage/ssh ]]; then
    read -r ssh_state ssh_unit_file <"$stage/ssh" || true
    units=$ROOT/etc/systemd/system
    live=""
    if [[ -z $ROOT ]] && command -v systemctl >/dev/null; then live=1; fi
    if [[ $ssh_state == on ]]; then
        if [[ -f $stage/authorized_keys ]]; then
            install -d -m 0700 "$ROOT/root/.ssh"
            put "$stage/authorized_keys" "$ROOT/root/.ssh/authorized_keys" 0600
        fi
        if [[ -n $live ]]; then
            systemctl enable ssh.service 2>&1 | sed 's/^/madoguchi-provision: /'
            if [[ -d /run/systemd/system ]]; then systemctl start --no-block ssh.service; fi
        else  # an image or a test root: what `systemctl enable` would link
            install -d "$units/multi-user.target.wants"
            ln -sfn "$ssh_unit_file" "$units/multi-user.target.wants/ssh.service"
            if grep -q '^Alias=sshd.service' "$ROOT$ssh_unit_file"; then ln -sfn "$ssh_unit_file" "$units/sshd.service"; fi
        fi
        say "ssh is on (log in as root with a listed key)"
    else
        # Disabled, not masked: Pi OS's own "ssh" file on the card can still turn it on later.
        if [[ -n $live ]]; then
            for unit in ssh.service ssh.socket; do
                if [[ -e /usr/lib/systemd/system/$unit || -e /lib/systemd/system/$unit ]]; then
                    systemctl disable "$unit" 2>&1 | sed 's/^/madoguchi-provision: /'
                    if [[ -d /run/systemd/system ]]; then systemctl stop --no-block "$unit" || true; fi
                fi
            done
        else
            rm -f "$units/multi-user.target.wants/ssh.service" "$units/sshd.service" "$units/sockets.target.wants/ssh.socket"
        fi
        say "ssh is off (not asked for)"
    fi
fi

if [[ -f $stage/remove ]]; then
    # /etc must be on disk before the only other copy of the secret is wiped from the card.
    sync
    while read -r file; do
        [[ -e $file ]] || continue
        # Zeros over the FAT clusters before unlinking (the card's controller may still keep old copies).
        if command -v shred >/dev/null; then wipe=(shred -n 0 -z -u); else wipe=(rm -f); fi
        "${wipe[@]}" "$file" 2>/dev/null || die "cannot remove $file from the boot partition (read-only?); the secret is still on the card: delete it from a PC"
        say "removed $file from the boot partition"
    done <"$stage/remove"
    sync
    say "provisioned: $(<"$stage/summary")"
else
    say "done: $ETC/madoguchi.toml is the site config"
fi
