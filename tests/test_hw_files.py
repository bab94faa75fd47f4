"""The hardware and deployment files: example configs, pin map, wiring table, units, image script.

Fast and hermetic: no root, no loop devices, no network. The image script is exercised through
``--stage-only`` with a wheelhouse that already holds a (dummy) madoguchi wheel, so it never
builds the real wheel (that needs the build backend from the package index and takes ~5 s).
"""

from __future__ import annotations

import configparser
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

import pytest

from madoguchi.config import load_settings
from madoguchi.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
HW = ROOT / "hw"
SCRIPT = ROOT / "build-image.sh"
BASH = shutil.which("bash") or "/bin/bash"
ARRAYS = sorted((HW / "arrays").glob("*.toml"))

# Pins nothing on the header may share with buttons, LEDs or panel control lines.
SPI0 = {7, 8, 9, 10, 11}
I2C1 = {2, 3}
I2S = {18, 19, 20, 21}
HAT_ID = {0, 1}
UART = {14, 15}
# BCM GPIO -> physical pin on the 40-pin header (identical on every 40-pin Raspberry Pi).
PHYSICAL = {
    2: 3,
    3: 5,
    4: 7,
    14: 8,
    15: 10,
    17: 11,
    18: 12,
    27: 13,
    22: 15,
    23: 16,
    24: 18,
    10: 19,
    9: 21,
    25: 22,
    11: 23,
    8: 24,
    7: 26,
    0: 27,
    1: 28,
    5: 29,
    6: 31,
    12: 32,
    13: 33,
    19: 35,
    16: 36,
    26: 37,
    20: 38,
    21: 40,
}


# --- example array configs ---------------------------------------------------------------


def test_the_three_known_arrays_have_examples() -> None:
    assert {p.name for p in ARRAYS} >= {"usb-4mic-square-32mm.toml", "respeaker-6mic-circular.toml", "i2s-2mic-hat.toml"}


@pytest.mark.parametrize("path", ARRAYS, ids=lambda p: p.name)
def test_array_example_is_a_valid_config(path: Path) -> None:
    settings = load_settings(path, system_layers=False)
    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    assert {"array", "audio", "sides"} <= raw.keys(), "each example is a complete config"
    assert settings.array.n_mics == len(raw["array"]["mic_positions_m"])
    assert path.read_text(encoding="utf-8").count("#") >= 10, "examples are commented"


def test_usb_square_matches_the_brief() -> None:
    settings = load_settings(HW / "arrays" / "usb-4mic-square-32mm.toml", system_layers=False)
    assert settings.array.mic_positions_m == ((0.032, 0, 0), (0, 0.032, 0), (-0.032, 0, 0), (0, -0.032, 0))
    assert (settings.sides.staff_azimuth_deg, settings.sides.resident_azimuth_deg) == (270, 90)


def test_six_mic_circle_and_its_channel_layout() -> None:
    settings = load_settings(HW / "arrays" / "respeaker-6mic-circular.toml", system_layers=False)
    for i, (x, y, z) in enumerate(settings.array.mic_positions_m):
        assert math.hypot(x, y) == pytest.approx(0.0463, abs=1e-5)
        assert math.degrees(math.atan2(y, x)) % 360 == pytest.approx(60 * i, abs=0.01)
        assert z == 0
    assert settings.audio.channels == 8 and settings.audio.channel_map == (0, 1, 2, 3, 4, 5)


def test_two_mic_hat_has_its_axis_across_the_counter(tmp_path: Path) -> None:
    path = HW / "arrays" / "i2s-2mic-hat.toml"
    settings = load_settings(path, system_layers=False)
    (x0, y0, _), (x1, y1, _) = settings.array.mic_positions_m
    assert (y0, y1) == (0, 0) and x1 - x0 == pytest.approx(0.058)
    assert (settings.sides.staff_azimuth_deg, settings.sides.resident_azimuth_deg) == (180, 0)
    # The same HAT along the counter must be refused, as the docs say.
    along = tmp_path / "along.toml"
    text = path.read_text(encoding="utf-8")
    along.write_text(text.replace("staff_azimuth_deg = 180.0", "staff_azimuth_deg = 270.0").replace("resident_azimuth_deg = 0.0", "resident_azimuth_deg = 90.0"), encoding="utf-8")
    with pytest.raises(ConfigError, match="cannot tell staff"):
        load_settings(along, system_layers=False)


# --- pin map and wiring ------------------------------------------------------------------


def _pinmap() -> dict:
    return tomllib.loads((HW / "pinmap.toml").read_text(encoding="utf-8"))


def _used_pins(pinmap: dict) -> list[tuple[str, int]]:
    pins = [(f"spi0.{k}", v) for k, v in pinmap["spi0"].items()]
    for side, panel in pinmap["panels"].items():
        pins += [(f"panels.{side}.{k}", panel[k]) for k in ("dc", "rst")]
    pins += [(f"buttons.{k}", v) for k, v in pinmap["buttons"].items()]
    pins += [(f"leds.{k}", v) for k, v in pinmap["leds"].items()]
    return pins


def test_pinmap_has_every_part() -> None:
    pinmap = _pinmap()
    assert pinmap["meta"]["numbering"] == "BCM"
    assert pinmap["spi0"] == {"mosi": 10, "sclk": 11, "ce0": 8, "ce1": 7}
    assert set(pinmap["panels"]) == {"staff", "resident"}
    assert (pinmap["panels"]["staff"]["spi_device"], pinmap["panels"]["resident"]["spi_device"]) == (0, 1)
    assert set(pinmap["buttons"]) == {"language", "swap_sides", "caption_mode", "privacy_mute", "operator_call"}
    assert set(pinmap["leds"]) == {"staff_side", "resident_side", "status"}


def test_pinmap_uses_no_pin_twice() -> None:
    pins = _used_pins(_pinmap())
    seen: dict[int, str] = {}
    for name, pin in pins:
        assert isinstance(pin, int) and 0 <= pin <= 27, f"{name} = {pin!r} is not a header GPIO"
        assert pin not in seen, f"GPIO{pin} used by both {seen[pin]} and {name}"
        seen[pin] = name


def test_pinmap_keeps_buses_free() -> None:
    pinmap = _pinmap()
    forbidden = SPI0 | I2C1 | I2S | HAT_ID | UART
    for name, pin in _used_pins(pinmap):
        if not name.startswith("spi0."):
            assert pin not in forbidden, f"{name} = GPIO{pin} collides with SPI0/I2C/I2S/HAT-ID/UART"
    reserved = {pin for pins in pinmap["reserved"].values() for pin in pins}
    assert SPI0 | I2C1 | I2S <= reserved


def test_wiring_table_matches_the_pinmap() -> None:
    rows = re.findall(r"^\|([^|]+)\|\s*GPIO(\d+)\s*\|\s*(\d+)\s*\|", (HW / "wiring.md").read_text(encoding="utf-8"), flags=re.MULTILINE)
    table = {int(gpio): int(pin) for _, gpio, pin in rows}
    for name, gpio in _used_pins(_pinmap()):
        assert gpio in table, f"{name} (GPIO{gpio}) is missing from hw/wiring.md"
        assert table[gpio] == PHYSICAL[gpio], f"hw/wiring.md puts GPIO{gpio} on pin {table[gpio]}, it is pin {PHYSICAL[gpio]}"


def test_config_txt_lines_are_explained() -> None:
    text = (HW / "config.txt.d" / "madoguchi.txt").read_text(encoding="utf-8")
    active = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    assert "dtparam=spi=on" in active
    assert any(re.match(r"#\s*dtoverlay=\S+", line) for line in text.splitlines()), "the I2S HAT overlay is offered, commented out"
    for paragraph in text.split("\n\n"):
        lines = paragraph.strip().splitlines()
        directives = [line for line in lines if re.match(r"#?\s*\[?[a-z_]+[=\]]", line)]
        if directives:
            assert any(line.startswith("# ") for line in lines), f"no comment explains {directives}"


# --- systemd units -----------------------------------------------------------------------


def _unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # systemd keys are case-sensitive
    parser.read_string((ROOT / "systemd" / name).read_text(encoding="utf-8"))
    return parser


def test_service_unit() -> None:
    unit = _unit("madoguchi.service")
    service = unit["Service"]
    assert service["Type"] == "notify"
    assert service["NotifyAccess"] == "main"
    assert service["WatchdogSec"] == "30"
    command = service["ExecStart"].split()
    assert command[:2] == ["/opt/madoguchi/venv/bin/madoguchi", "run"] and "--wait-for-mic" in command
    from madoguchi.cli import build_parser

    build_parser().parse_args(command[1:])  # the CLI still accepts what the unit runs
    assert service["Restart"] == "on-failure" and "RestartSec" in service
    assert "StartLimitBurst" in unit["Unit"] and "StartLimitIntervalSec" in unit["Unit"]
    assert service["User"] == "madoguchi"
    assert set(service["SupplementaryGroups"].split()) >= {"audio", "gpio", "spi"}
    assert service["ProtectSystem"] == "strict" and service["StateDirectory"] == "madoguchi"
    assert set(service["RestrictAddressFamilies"].split()) == {"AF_UNIX", "AF_INET", "AF_INET6", "AF_NETLINK"}
    assert service["KillSignal"] == "SIGTERM" and "TimeoutStopSec" in service
    assert unit["Install"]["WantedBy"] == "multi-user.target"
    text = (ROOT / "systemd" / "madoguchi.service").read_text(encoding="utf-8")
    assert re.search(r"^DeviceAllow=char-alsa rw$", text, flags=re.MULTILINE), "the sound devices are allowed"


def test_firstboot_unit_runs_the_staged_script() -> None:
    service = _unit("madoguchi-firstboot.service")["Service"]
    assert service["Type"] == "oneshot"
    assert service["ExecStart"] == "/usr/local/lib/madoguchi/firstboot.sh"
    assert "madoguchi.service" in _unit("madoguchi-firstboot.service")["Unit"]["Before"].split()
    script = (ROOT / "systemd" / "madoguchi-firstboot.sh").read_text(encoding="utf-8")
    assert "/usr/local/lib/madoguchi/provision.sh" in script and 'overlayroot="tmpfs:' in script


# --- build-image.sh ----------------------------------------------------------------------


def _run(*args: str, env: dict[str, str] | None = None, prefix: tuple[str, ...] = (), script: Path = SCRIPT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*prefix, BASH, str(script), *args], check=False, capture_output=True, text=True, timeout=60, env=env, cwd=ROOT)


@pytest.mark.parametrize("script", ["build-image.sh", "systemd/madoguchi-firstboot.sh", "systemd/madoguchi-maintenance.sh", "tests/image/base-image.sh"])
def test_scripts_parse(script: str) -> None:
    subprocess.run([BASH, "-n", str(ROOT / script)], check=True)
    assert (ROOT / script).read_text(encoding="utf-8").startswith("#!"), "scripts are executable as they are"


def test_help() -> None:
    result = _run("--help")
    assert result.returncode == 0
    assert "--stage-only" in result.stdout and "--wheelhouse" in result.stdout and "--base" in result.stdout


@pytest.fixture()
def wheelhouse(tmp_path: Path) -> Path:
    house = tmp_path / "wheelhouse"
    house.mkdir()
    (house / "madoguchi-0.0.0-py3-none-any.whl").write_bytes(b"stand-in: the script only copies it")
    (house / "numpy-2.0.0-cp311-cp311-manylinux_2_17_aarch64.whl").write_bytes(b"stand-in")
    return house


def test_stage_only_writes_the_overlay_tree(tmp_path: Path, wheelhouse: Path) -> None:
    stage = tmp_path / "stage"
    config = HW / "arrays" / "usb-4mic-square-32mm.toml"
    env = {**os.environ, "PYTHON": sys.executable}
    result = _run("--stage-only", str(stage), "--wheelhouse", str(wheelhouse), "--config", str(config), env=env)
    assert result.returncode == 0, result.stderr
    assert re.findall(r"^\[(\d)/3\]", result.stdout, flags=re.MULTILINE) == ["1", "2", "3"]
    assert "ok (4 mics" in result.stdout, "the site config was checked"

    units = stage / "etc/systemd/system"
    assert (units / "madoguchi.service").read_bytes() == (ROOT / "systemd/madoguchi.service").read_bytes()
    assert (units / "madoguchi-firstboot.service").is_file()
    wants = units / "multi-user.target.wants/madoguchi-firstboot.service"
    assert wants.is_symlink() and os.readlink(wants) == "/etc/systemd/system/madoguchi-firstboot.service"
    service_wants = units / "multi-user.target.wants/madoguchi.service"
    assert service_wants.is_symlink() and os.readlink(service_wants) == "/etc/systemd/system/madoguchi.service"
    for script in ("usr/local/lib/madoguchi/firstboot.sh", "usr/local/lib/madoguchi/provision.sh", "usr/local/sbin/madoguchi-maintenance"):
        assert os.access(stage / script, os.X_OK), script
    assert (stage / "boot/firmware/madoguchi-box.toml.example").is_file()
    assert (stage / "boot/firmware/madoguchi.toml").read_bytes() == config.read_bytes()
    assert (stage / "boot/firmware/madoguchi-config.txt").read_bytes() == (HW / "config.txt.d/madoguchi.txt").read_bytes()
    assert (stage / "etc/systemd/journald.conf.d/madoguchi.conf").is_file()
    assert (stage / "etc/madoguchi").is_dir()
    assert {p.name for p in (stage / "opt/madoguchi/doc/arrays").iterdir()} == {p.name for p in ARRAYS}


def test_stage_only_refuses_an_invalid_site_config(tmp_path: Path, wheelhouse: Path) -> None:
    bad = tmp_path / "site.toml"
    bad.write_text("[array]\nmic_positions_m = [[32, 0, 0], [-32, 0, 0]]\n", encoding="utf-8")
    result = _run("--stage-only", str(tmp_path / "stage"), "--wheelhouse", str(wheelhouse), "--config", str(bad), env={**os.environ, "PYTHON": sys.executable})
    assert result.returncode != 0
    assert "mic_positions_m" in result.stderr and result.stderr.strip().splitlines()[-1].startswith("build-image.sh: site config is invalid")


def test_stage_only_refuses_a_non_empty_directory(tmp_path: Path, wheelhouse: Path) -> None:
    (tmp_path / "stage").mkdir()
    (tmp_path / "stage" / "old").write_text("x")
    result = _run("--stage-only", str(tmp_path / "stage"), "--wheelhouse", str(wheelhouse))
    assert result.returncode != 0 and "not empty" in result.stderr


def _one_line_refusal(result: subprocess.CompletedProcess[str], words: str) -> None:
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("build-image.sh: ") and words in lines[0], result.stderr


def test_refuses_a_missing_base_image(tmp_path: Path) -> None:
    _one_line_refusal(_run("--base", str(tmp_path / "nope.img.xz"), "--out", str(tmp_path / "out.img.xz")), "base image not found")
    assert not (tmp_path / "out.img.xz").exists()


def test_refuses_missing_tools(tmp_path: Path) -> None:
    base = tmp_path / "raspios.img.xz"
    base.write_bytes(b"")
    empty_path = tmp_path / "bin"
    empty_path.mkdir()
    result = _run("--base", str(base), "--out", str(tmp_path / "out.img.xz"), env={"PATH": str(empty_path)})
    _one_line_refusal(result, "missing required tool: losetup")


@pytest.fixture()
def public_dir():
    where = Path(tempfile.mkdtemp(prefix="madoguchi-test-"))  # not under pytest's 0700 tmp root
    where.chmod(0o755)
    yield where
    shutil.rmtree(where, ignore_errors=True)


def test_refuses_without_root(public_dir: Path) -> None:
    # A copy in a directory anyone can read: the script needs nothing else before this check,
    # and the copy itself serves as the "base image" (any existing file passes that check).
    where = public_dir
    script = where / "build-image.sh"
    shutil.copy(SCRIPT, script)
    script.chmod(0o755)
    args = ("--base", str(script), "--out", str(where / "out.img.xz"))
    if os.geteuid() != 0:
        result = _run(*args, script=script)
    elif shutil.which("setpriv"):
        result = _run(*args, script=script, prefix=("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"))
    else:
        pytest.skip("running as root and setpriv is not available to drop privileges")
    _one_line_refusal(result, "needs root")


def test_stage_only_bakes_verified_models(tmp_path: Path, wheelhouse: Path, speech_store) -> None:
    models = tmp_path / "models"
    shutil.copytree(speech_store.folder("whisper-base-ggml-q8_0"), models / "whisper-base-ggml-q8_0")
    stage = tmp_path / "stage"
    result = _run("--stage-only", str(stage), "--wheelhouse", str(wheelhouse), "--models", str(models), env={**os.environ, "PYTHON": sys.executable})
    assert result.returncode == 0, result.stderr
    baked = stage / "var/lib/madoguchi/models/whisper-base-ggml-q8_0/ggml-base-q8_0.bin"
    assert baked.read_bytes() == (models / "whisper-base-ggml-q8_0" / "ggml-base-q8_0.bin").read_bytes()


def test_stage_only_refuses_a_damaged_model(tmp_path: Path, wheelhouse: Path, speech_store) -> None:
    models = tmp_path / "models"
    shutil.copytree(speech_store.folder("whisper-base-ggml-q8_0"), models / "whisper-base-ggml-q8_0")
    weights = models / "whisper-base-ggml-q8_0" / "ggml-base-q8_0.bin"
    with weights.open("r+b") as f:
        f.truncate(weights.stat().st_size // 2)
    result = _run("--stage-only", str(tmp_path / "stage"), "--wheelhouse", str(wheelhouse), "--models", str(models), env={**os.environ, "PYTHON": sys.executable})
    assert result.returncode != 0
    assert "model_truncated" in result.stderr and "cannot be baked" in result.stderr


def test_stage_only_refuses_non_commercial_models_without_accept_licence(tmp_path: Path, wheelhouse: Path) -> None:
    folder = tmp_path / "models" / "nllb-200-distilled-600m"
    folder.mkdir(parents=True)
    for name in ("model.bin", "config.json", "shared_vocabulary.json", "sentencepiece.bpe.model"):
        (folder / name).write_bytes(b"stand-in")
    result = _run("--stage-only", str(tmp_path / "stage"), "--wheelhouse", str(wheelhouse), "--models", str(tmp_path / "models"), env={**os.environ, "PYTHON": sys.executable})
    assert result.returncode != 0
    assert "model_unlicensed" in result.stderr and "--accept-licence" in result.stderr
    assert not (tmp_path / "stage/var/lib/madoguchi/models/nllb-200-distilled-600m").exists()


def test_refuses_a_base_image_that_does_not_match_its_checksum(tmp_path: Path) -> None:
    base = tmp_path / "raspios.img.xz"
    base.write_bytes(b"half a download")
    (tmp_path / "raspios.img.xz.sha256").write_text("0" * 64 + "  raspios.img.xz\n")
    _one_line_refusal(_run("--base", str(base), "--out", str(tmp_path / "out.img.xz")), "does not match")


def test_refuses_an_output_that_is_not_img_xz(tmp_path: Path) -> None:
    base = tmp_path / "raspios.img.xz"
    base.write_bytes(b"")
    result = _run("--base", str(base), "--out", str(tmp_path / "out.img"))
    assert result.returncode == 2 and "--out must end in .img.xz" in result.stderr
