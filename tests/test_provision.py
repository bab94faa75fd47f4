"""systemd/madoguchi-provision.sh: per-box provisioning from the SD card's boot partition.

The real script runs under bash against a temporary boot partition (BOOT) and root (ROOT), with
the firmware's own `madoguchi config check`; what it writes is then read back with the
firmware's config loader, layered as on the box (/etc/madoguchi/madoguchi.toml, then the
card's madoguchi.toml). No root privileges are needed except for the one chown test.
"""

from __future__ import annotations

import base64
import os
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from madoguchi.config import Settings, read_toml, settings_from_layers

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "systemd" / "madoguchi-provision.sh"
BASH = shutil.which("bash") or "/bin/bash"
MADOGUCHI = str(Path(sys.executable).with_name("madoguchi"))
ARRAY = REPO / "hw" / "arrays" / "usb-4mic-square-32mm.toml"
SITE = ARRAY.read_text(encoding="utf-8") + '\n[mqtt]\n# the site broker\nhost = "mqtt.city-hall.example"\nsite = "city-hall"\nca_file = "/etc/madoguchi/site-ca.crt"\n'
SERIAL = "10000000abcd1234"
SSH_UNIT = "[Unit]\nDescription=OpenBSD Secure Shell server\n\n[Service]\nExecStart=/usr/sbin/sshd -D\n\n[Install]\nWantedBy=multi-user.target\nAlias=sshd.service\n"


def ssh_key(seed: int, comment: str = "admin@pc") -> str:
    """A well-formed ssh-ed25519 public key line (the script checks the blob names its type)."""
    kind = b"ssh-ed25519"
    blob = len(kind).to_bytes(4, "big") + kind + (32).to_bytes(4, "big") + bytes([seed]) * 32
    return f"ssh-ed25519 {base64.b64encode(blob).decode()} {comment}"


@dataclass
class Card:
    """One SD card: its boot partition and the root file system the script provisions."""

    boot: Path
    root: Path

    @property
    def etc(self) -> Path:
        return self.root / "etc/madoguchi"

    def put(self, name: str, text: str) -> Path:
        path = self.boot / name
        path.write_text(text, encoding="utf-8")
        return path

    def run(self, **env: str) -> subprocess.CompletedProcess[str]:
        full = {**os.environ, "BOOT": str(self.boot), "ROOT": str(self.root), "MADOGUCHI": MADOGUCHI, "PYTHON": sys.executable,
                "SERIAL_FILE": str(self.root / "serial-number"), **env}
        return subprocess.run([BASH, str(SCRIPT)], env=full, capture_output=True, text=True, timeout=60, check=False)

    def settings(self) -> Settings:
        """The settings the service would run with: /etc first, then the card's file (config.py's order)."""
        layers = [(str(p), read_toml(p)) for p in (self.etc / "madoguchi.toml", self.boot / "madoguchi.toml") if p.is_file()]
        return settings_from_layers(layers)


def tree(path: Path) -> dict[str, tuple[int, bytes | str]]:
    """Every file and link under path with its mode and content: 'nothing changed' means equal trees."""
    out: dict[str, tuple[int, bytes | str]] = {}
    for item in sorted(path.rglob("*")):
        info = item.lstat()
        if item.is_symlink():
            out[str(item.relative_to(path))] = (info.st_mode, os.readlink(item))
        elif item.is_file():
            out[str(item.relative_to(path))] = (info.st_mode, item.read_bytes())
        else:
            out[str(item.relative_to(path))] = (info.st_mode, "dir")
    return out


@pytest.fixture()
def card(tmp_path: Path) -> Card:
    boot, root = tmp_path / "boot", tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    boot.mkdir()
    (root / "etc/hostname").write_text("raspberrypi\n")
    (root / "etc/hosts").write_text("127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n\n127.0.1.1\t\traspberrypi\n")
    (root / "lib/systemd/system").mkdir(parents=True)
    (root / "lib/systemd/system/ssh.service").write_text(SSH_UNIT)
    (root / "serial-number").write_bytes(SERIAL.encode() + b"\0")  # as the device tree has it: NUL-terminated
    card = Card(boot, root)
    card.put("madoguchi.toml", SITE)
    return card


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A client certificate and its key, and a second key that does not match it."""
    folder = tmp_path_factory.mktemp("certs")
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed")
    subprocess.run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(folder / "kita-01.key"),
                    "-out", str(folder / "kita-01.crt"), "-days", "2", "-subj", "/CN=city-hall\\/kita-01"], check=True, capture_output=True)
    subprocess.run([openssl, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(folder / "other.key")],
                   check=True, capture_output=True)
    return folder


def wants(card: Card) -> Path:
    return card.root / "etc/systemd/system/multi-user.target.wants/ssh.service"


# --- the two ways ------------------------------------------------------------------------------


def test_per_card_file_with_a_password(card: Card) -> None:
    card.put("madoguchi-box.toml", 'box_id = "kita-01"\nmqtt_password = "s3cret pass"\n')
    result = card.run()
    assert result.returncode == 0, result.stderr
    assert all(line.startswith("madoguchi-provision: ") for line in result.stdout.splitlines())
    assert "provisioned: box kita-01" in result.stdout

    settings = card.settings()
    assert settings.mqtt.box_id == "kita-01"
    assert settings.mqtt.username == "city-hall/kita-01", "the shipped broker ACL's login: <site>/<box_id>"
    assert settings.mqtt.password_file == "/etc/madoguchi/mqtt.password"
    assert settings.mqtt.host == "mqtt.city-hall.example" and settings.array.n_mics == 4
    password = card.etc / "mqtt.password"
    assert password.read_text() == "s3cret pass\n"
    assert stat.S_IMODE(password.stat().st_mode) == 0o600
    assert stat.S_IMODE((card.etc / "madoguchi.toml").stat().st_mode) == 0o644
    # The site file's comments survive; the firmware itself accepts the result.
    written = (card.etc / "madoguchi.toml").read_text()
    assert "# the site broker" in written and "# Mount the array flat on the counter" in written
    check = subprocess.run([sys.executable, "-m", "madoguchi", "config", "check", str(card.etc / "madoguchi.toml")], capture_output=True, text=True, check=False)
    assert check.returncode == 0 and ": ok (4 mics" in check.stdout, check.stderr

    assert (card.root / "etc/hostname").read_text() == "kita-01\n"
    hosts = (card.root / "etc/hosts").read_text().splitlines()
    assert "127.0.1.1\tkita-01" in hosts and "raspberrypi" not in "".join(hosts) and "127.0.0.1\tlocalhost" in hosts
    # The secret is gone from the card; the site file stays (the box still reads it, last).
    assert not (card.boot / "madoguchi-box.toml").exists()
    assert (card.boot / "madoguchi.toml").read_text() == SITE
    assert not wants(card).exists() and not (card.root / "root/.ssh").exists()


def test_per_card_file_with_a_client_certificate(card: Card, certs: Path) -> None:
    shutil.copy(certs / "kita-01.crt", card.boot / "kita-01.crt")
    shutil.copy(certs / "kita-01.key", card.boot / "kita-01.key")
    card.put("madoguchi-box.toml", 'box_id = "kita-01"\nmqtt_cert = "kita-01.crt"\nmqtt_key = "kita-01.key"\n')
    result = card.run()
    assert result.returncode == 0, result.stderr

    settings = card.settings()
    assert (settings.mqtt.box_id, settings.mqtt.username) == ("kita-01", "city-hall/kita-01")
    assert settings.mqtt.cert_file == "/etc/madoguchi/mqtt-client.crt" and settings.mqtt.key_file == "/etc/madoguchi/mqtt-client.key"
    assert settings.mqtt.password_file == ""
    assert (card.etc / "mqtt-client.crt").read_bytes() == (certs / "kita-01.crt").read_bytes()
    assert (card.etc / "mqtt-client.key").read_bytes() == (certs / "kita-01.key").read_bytes()
    for name in ("mqtt-client.crt", "mqtt-client.key"):
        assert stat.S_IMODE((card.etc / name).stat().st_mode) == 0o600
    assert {p.name for p in card.boot.iterdir()} == {"madoguchi.toml"}, "the box file, the key and the certificate left the card"


def test_shared_file_picks_this_pi_by_serial_and_leaves_the_card(card: Card, certs: Path) -> None:
    shutil.copy(certs / "kita-01.crt", card.boot / "minami-02.crt")
    shutil.copy(certs / "kita-01.key", card.boot / "minami-02.key")
    card.put("madoguchi-boxes.toml", f"""# every box of the city hall, by serial number
[box."{SERIAL}"]
box_id = "kita-01"
mqtt_password = "kita-secret"

[box."10000000deadbeef"]
box_id = "minami-02"
mqtt_cert = "minami-02.crt"
mqtt_key = "minami-02.key"
""")
    result = card.run()
    assert result.returncode == 0, result.stderr
    assert f"serial number is {SERIAL}" in result.stdout
    settings = card.settings()
    assert (settings.mqtt.box_id, settings.mqtt.username, settings.mqtt.password_file) == ("kita-01", "city-hall/kita-01", "/etc/madoguchi/mqtt.password")
    assert (card.etc / "mqtt.password").read_text() == "kita-secret\n"
    # The shared file and every secret it names (other boxes' too) are wiped from this card.
    assert {p.name for p in card.boot.iterdir()} == {"madoguchi.toml"}


def test_shared_file_serial_from_cpuinfo(card: Card) -> None:
    (card.root / "proc").mkdir()
    (card.root / "proc/cpuinfo").write_text("processor\t: 0\nBogoMIPS\t: 108.00\n\nRevision\t: d04170\nSerial\t\t: 00000000abcd1234\nModel\t\t: Raspberry Pi 5\n")
    card.put("madoguchi-boxes.toml", '[box.ABCD1234]\nbox_id = "higashi-03"\nmqtt_username = "higashi"\nmqtt_password = "pw"\n')
    result = card.run(SERIAL_FILE="")  # the real sources under ROOT: no device tree here, so /proc/cpuinfo
    assert result.returncode == 0, result.stderr
    settings = card.settings()
    assert (settings.mqtt.box_id, settings.mqtt.username) == ("higashi-03", "higashi"), "leading zeros and case do not matter; mqtt_username wins"


def test_shared_file_serial_from_the_device_tree(card: Card) -> None:
    tree_dir = card.root / "sys/firmware/devicetree/base"
    tree_dir.mkdir(parents=True)
    (tree_dir / "serial-number").write_bytes(b"10000000cafe0001\0")
    card.put("madoguchi-boxes.toml", '[box."10000000cafe0001"]\nbox_id = "nishi-04"\nmqtt_password = "pw"\n')
    assert card.run(SERIAL_FILE="").returncode == 0
    assert card.settings().mqtt.box_id == "nishi-04"


def test_without_a_site_file_the_identity_is_the_whole_config(card: Card) -> None:
    (card.boot / "madoguchi.toml").unlink()
    card.put("madoguchi-box.toml", 'box_id = "kita-01"\nmqtt_password = "pw"\n')
    assert card.run().returncode == 0
    assert card.settings().mqtt.username == "site/kita-01", "the firmware's default site name"


def test_files_saved_on_windows(card: Card) -> None:
    """CRLF line ends everywhere, and Notepad's BOM on the box file (the firmware never reads that one)."""
    card.put("madoguchi.toml", "")
    (card.boot / "madoguchi.toml").write_bytes(SITE.replace("\n", "\r\n").encode())
    (card.boot / "madoguchi-box.toml").write_bytes(b'\xef\xbb\xbfbox_id = "kita-01"\r\nmqtt_password = "pw"\r\n')
    result = card.run()
    assert result.returncode == 0, result.stderr
    written = (card.etc / "madoguchi.toml").read_bytes()
    assert b'box_id = "kita-01"\r\n' in written and b"\n" not in written.replace(b"\r\n", b"")
    assert card.settings().mqtt.box_id == "kita-01"
    assert (card.etc / "mqtt.password").read_text() == "pw\n"


def test_site_mqtt_as_dotted_keys_is_rewritten_without_comments(card: Card) -> None:
    card.put("madoguchi.toml", 'mqtt.host = "mqtt.city-hall.example"  # dotted keys: no [mqtt] line to add to\nmqtt.site = "city-hall"\n' + ARRAY.read_text(encoding="utf-8"))
    card.put("madoguchi-box.toml", 'box_id = "kita-01"\nmqtt_password = "pw"\n')
    result = card.run()
    assert result.returncode == 0, result.stderr
    assert "without its comments" in result.stdout
    settings = card.settings()
    assert (settings.mqtt.host, settings.mqtt.box_id, settings.mqtt.username) == ("mqtt.city-hall.example", "kita-01", "city-hall/kita-01")
    assert settings.array.n_mics == 4 and settings.audio.device == "USB Audio"


# --- ssh -----------------------------------------------------------------------------------------


def test_ssh_on_when_asked_with_root_keys(card: Card) -> None:
    card.put("madoguchi-box.toml", f'box_id = "kita-01"\nmqtt_password = "pw"\nssh = true\nssh_authorized_keys = ["{ssh_key(1)}"]\n')
    result = card.run()
    assert result.returncode == 0, result.stderr
    assert os.readlink(wants(card)) == "/lib/systemd/system/ssh.service"
    assert os.readlink(card.root / "etc/systemd/system/sshd.service") == "/lib/systemd/system/ssh.service"
    keys = card.root / "root/.ssh/authorized_keys"
    assert keys.read_text() == ssh_key(1) + "\n"
    assert stat.S_IMODE(keys.stat().st_mode) == 0o600 and stat.S_IMODE(keys.parent.stat().st_mode) == 0o700
    assert "ssh is on" in result.stdout

    # Re-provisioned later with one more key: keys already there are not repeated.
    card.put("madoguchi-box.toml", f'box_id = "kita-01"\nmqtt_password = "pw"\nssh = true\nssh_authorized_keys = ["{ssh_key(1)}", "{ssh_key(2, "second")}"]\n')
    assert card.run().returncode == 0
    assert keys.read_text() == ssh_key(1) + "\n" + ssh_key(2, "second") + "\n"


def test_ssh_on_with_raspberry_pi_os_ssh_file(card: Card) -> None:
    card.put("madoguchi-box.toml", 'box_id = "kita-01"\nmqtt_password = "pw"\n')
    card.put("ssh", "")
    assert card.run().returncode == 0
    assert wants(card).is_symlink()
    assert (card.boot / "ssh").exists(), "Pi OS's own switch is Pi OS's to consume"


def test_ssh_off_unless_asked(card: Card) -> None:
    wants(card).parent.mkdir(parents=True)
    wants(card).symlink_to("/lib/systemd/system/ssh.service")  # e.g. enabled on the image
    card.put("madoguchi-box.toml", f'box_id = "kita-01"\nmqtt_password = "pw"\nssh_authorized_keys = ["{ssh_key(1)}"]\n')
    result = card.run()
    assert result.returncode == 0, result.stderr
    assert not wants(card).is_symlink() and not (card.root / "etc/systemd/system/sshd.service").is_symlink()
    assert not (card.root / "root/.ssh").exists()
    assert "ssh is off" in result.stdout and "not installed" in result.stdout


# --- ownership, idempotence, nothing to do ---------------------------------------------------------


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")
def test_secrets_belong_to_the_service_user_of_the_root(card: Card) -> None:
    (card.root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/bash\nmadoguchi:x:4242:4243:Madoguchi:/var/lib/madoguchi:/usr/sbin/nologin\n")
    card.put("madoguchi-box.toml", 'box_id = "kita-01"\nmqtt_password = "pw"\n')
    assert card.run().returncode == 0
    info = (card.etc / "mqtt.password").stat()
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (4242, 4243, 0o600)
    assert (card.etc / "madoguchi.toml").stat().st_uid == 0


def test_running_again_changes_nothing(card: Card) -> None:
    card.put("madoguchi-box.toml", f'box_id = "kita-01"\nmqtt_password = "pw"\nssh = true\nssh_authorized_keys = ["{ssh_key(3)}"]\n')
    assert card.run().returncode == 0
    root_before, boot_before = tree(card.root), tree(card.boot)
    again = card.run()
    assert again.returncode == 0, again.stderr
    assert tree(card.root) == root_before and tree(card.boot) == boot_before
    assert "keeping this box's identity (box_id 'kita-01')" in again.stdout and "unchanged" in again.stdout
    assert card.settings().mqtt.password_file == "/etc/madoguchi/mqtt.password"


def test_reprovisioning_with_a_certificate_drops_the_old_password(card: Card, certs: Path) -> None:
    card.put("madoguchi-box.toml", 'box_id = "kita-01"\nmqtt_password = "pw"\n')
    assert card.run().returncode == 0
    shutil.copy(certs / "kita-01.crt", card.boot / "c.pem")
    shutil.copy(certs / "kita-01.key", card.boot / "k.pem")
    card.put("madoguchi-box.toml", 'box_id = "kita-01"\nmqtt_cert = "c.pem"\nmqtt_key = "k.pem"\n')
    assert card.run().returncode == 0
    assert not (card.etc / "mqtt.password").exists()
    assert card.settings().mqtt.password_file == "" and card.settings().mqtt.key_file == "/etc/madoguchi/mqtt-client.key"
    assert (card.etc / "madoguchi.toml").read_text().count("box_id") == 1


def test_nothing_to_provision(card: Card) -> None:
    (card.boot / "madoguchi.toml").unlink()
    before = tree(card.root)
    result = card.run()
    assert result.returncode == 0
    assert result.stdout.strip() == f"madoguchi-provision: nothing to provision: no madoguchi.toml, madoguchi-box.toml or madoguchi-boxes.toml in {card.boot}"
    assert tree(card.root) == before


def test_site_file_alone_is_copied(card: Card) -> None:
    result = card.run()
    assert result.returncode == 0, result.stderr
    assert (card.etc / "madoguchi.toml").read_text() == SITE
    assert (card.root / "etc/hostname").read_text() == "raspberrypi\n", "no box_id given: the host name stays"


# --- invalid inputs: one line, which file, what is allowed; nothing changed ------------------------

BOX_PW = 'box_id = "kita-01"\nmqtt_password = "pw"\n'
INVALID = {
    "bad TOML": ({"madoguchi-box.toml": "box_id = kita-01\n"}, ["madoguchi-box.toml: not valid TOML"]),
    "box_id not MQTT-safe": ({"madoguchi-box.toml": 'box_id = "kita/01"\nmqtt_password = "pw"\n'}, ["box_id = 'kita/01' is not allowed", "1-64 letters"]),
    "box_id missing": ({"madoguchi-box.toml": 'mqtt_password = "pw"\n'}, ["box_id is missing"]),
    "unknown key": ({"madoguchi-box.toml": BOX_PW + 'password = "x"\n'}, ["unknown key 'password'", "allowed keys: box_id, mqtt_username"]),
    "no secret": ({"madoguchi-box.toml": 'box_id = "kita-01"\n'}, ["no MQTT secret", 'mqtt_password = "…"']),
    "two secrets": ({"madoguchi-box.toml": BOX_PW + 'mqtt_cert = "c.pem"\nmqtt_key = "k.pem"\n'}, ["both mqtt_password and mqtt_cert"]),
    "certificate file missing": ({"madoguchi-box.toml": 'box_id = "kita-01"\nmqtt_cert = "kita-01.crt"\nmqtt_key = "kita-01.key"\n', "kita-01.key": "x"},
                                 ["mqtt_cert = 'kita-01.crt', but", "does not exist"]),
    "key without certificate": ({"madoguchi-box.toml": 'box_id = "kita-01"\nmqtt_key = "kita-01.key"\n'}, ["mqtt_cert is missing"]),
    "path outside the card": ({"madoguchi-box.toml": 'box_id = "kita-01"\nmqtt_cert = "../etc/shadow"\nmqtt_key = "k"\n'}, ["mqtt_cert = '../etc/shadow' is not allowed"]),
    "ssh not a boolean": ({"madoguchi-box.toml": BOX_PW + 'ssh = "yes"\n'}, ["ssh = 'yes' is not allowed", "true or false"]),
    "bad ssh key": ({"madoguchi-box.toml": BOX_PW + 'ssh = true\nssh_authorized_keys = ["ssh-ed25519 notbase64!"]\n'}, ["ssh_authorized_keys[0]", "not an OpenSSH public key"]),
    "serial not listed": ({"madoguchi-boxes.toml": '[box."10000000deadbeef"]\n' + BOX_PW}, [f"serial number {SERIAL} is not listed", "10000000deadbeef", f'[box."{SERIAL}"]']),
    "same box_id twice": ({"madoguchi-boxes.toml": f'[box."{SERIAL}"]\n{BOX_PW}\n[box."1234"]\n{BOX_PW}'}, ["both have box_id = 'kita-01'"]),
    "both box files": ({"madoguchi-box.toml": BOX_PW, "madoguchi-boxes.toml": f'[box."{SERIAL}"]\n' + BOX_PW}, ["both madoguchi-box.toml and madoguchi-boxes.toml"]),
    "Windows .txt": ({"madoguchi-box.toml.txt": BOX_PW}, ["madoguchi-box.toml.txt: the name ends in .txt", "exactly madoguchi-box.toml"]),
    "site file sets the identity": ({"madoguchi.toml": SITE.replace('site = "city-hall"', 'site = "city-hall"\nusername = "shared"'), "madoguchi-box.toml": BOX_PW},
                                    ["madoguchi.toml: [mqtt] username is set in the site file"]),
    "site file invalid": ({"madoguchi.toml": SITE + "\n[vad]\nspeech_threshold = 2.0\n", "madoguchi-box.toml": BOX_PW},
                          ["madoguchi.toml: [vad] speech_threshold: 2.0 is not allowed", "the site file"]),
    "site file with BOM": ({"madoguchi.toml": "\ufeff" + SITE}, ["madoguchi.toml: starts with a byte-order mark", "UTF-8 without BOM"]),
}


@pytest.mark.parametrize("files, expected", list(INVALID.values()), ids=list(INVALID))
def test_invalid_input_is_one_clear_line_and_changes_nothing(card: Card, files: dict[str, str], expected: list[str]) -> None:
    for name, text in files.items():
        card.put(name, text)
    root_before, boot_before = tree(card.root), tree(card.boot)
    result = card.run()
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("madoguchi-provision: error: "), result.stderr
    assert "allowed" in lines[0]
    for text in expected:
        assert text in lines[0]
    assert tree(card.root) == root_before and tree(card.boot) == boot_before


def test_mismatched_key_is_refused(card: Card, certs: Path) -> None:
    shutil.copy(certs / "kita-01.crt", card.boot / "kita-01.crt")
    shutil.copy(certs / "other.key", card.boot / "kita-01.key")
    card.put("madoguchi-box.toml", 'box_id = "kita-01"\nmqtt_cert = "kita-01.crt"\nmqtt_key = "kita-01.key"\n')
    before = tree(card.root)
    result = card.run()
    assert result.returncode == 1 and len(result.stderr.splitlines()) == 1
    assert "cannot be loaded together" in result.stderr and "its own unencrypted PEM private key" in result.stderr
    assert tree(card.root) == before and (card.boot / "kita-01.key").exists()


def test_ssh_asked_but_not_installed(card: Card) -> None:
    (card.root / "lib/systemd/system/ssh.service").unlink()
    card.put("madoguchi-box.toml", BOX_PW + "ssh = true\n")
    result = card.run()
    assert result.returncode == 1 and "no ssh.service (openssh-server is not installed)" in result.stderr
    assert not (card.etc).exists()


def test_script_is_shellcheck_clean() -> None:
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck is not installed")
    result = subprocess.run([shellcheck, str(SCRIPT)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout
