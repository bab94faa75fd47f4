"""`madoguchi doctor`: each check on real parts where they exist (simulated rooms, PulseAudio, mosquitto,
the model store, the spool), fakes only for what this machine lacks (a Pi's /dev and /sys)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pyroomacoustics as pra
import pytest
import soundfile

from madoguchi.audio.capture import InputDevice
from madoguchi.config import ArraySettings, AudioSettings, DisplaySettings, MqttSettings, Settings, SidesSettings, settings_from_layers
from madoguchi.doctor import Probes, analyse_channels, format_table, run_checks
from madoguchi.doctor.base import Check, guarded
from madoguchi.doctor.hardware import font_checks, gpio_check, panels_check, spi_check
from madoguchi.doctor.mics import DeviceScan, channel_checks, mic_checks
from madoguchi.doctor.network import STEPS, broker_checks
from madoguchi.doctor.site import effective_config, model_checks, sides_check
from madoguchi.doctor.system import clock_check, spool_check, thermal_checks
from madoguchi.errors import AudioSourceError, ConfigError, ConfigProblem
from madoguchi.models.store import ModelStore
from madoguchi.telemetry.spool import Spool

ROOT = Path(__file__).resolve().parents[1]
FS = 16000
SQUARE = np.array(ArraySettings().mic_positions_m)


def room_block(azimuth_deg: float, seconds: float = 2.0, rt60: float = 0.3, seed: int = 0) -> np.ndarray:
    """A talker-like sound (noise in syllable bursts) 0.7 m from the default 4-mic square in a reverberant room."""
    rng = np.random.default_rng(seed)
    dims = [5.0, 4.0, 3.0]
    absorption, max_order = pra.inverse_sabine(rt60, dims)
    room = pra.ShoeBox(dims, fs=FS, materials=pra.Material(absorption), max_order=max_order)
    centre = np.array([2.5, 2.0, 1.0])
    room.add_microphone_array((SQUARE + centre).T)
    n = int(seconds * FS)
    bursts = rng.standard_normal(n) * (np.sin(2 * np.pi * 3 * np.arange(n) / FS) > 0)
    az = math.radians(azimuth_deg)
    room.add_source(centre + 0.7 * np.array([math.cos(az), math.sin(az), 0.2]), signal=bursts)
    room.simulate()
    x = room.mic_array.signals[:, :n]
    x = 0.3 * x / np.abs(x).max()
    return x + rng.standard_normal(x.shape) * 1e-3  # the mics' own noise


@pytest.fixture(scope="module")
def scene() -> np.ndarray:
    return room_block(100.0)


def statuses(checks: list[Check]) -> dict[str, str]:
    return {c.name: c.status for c in checks}


# --- the channel analysis (pure) ----------------------------------------------------------------


def test_healthy_array_in_a_room(scene: np.ndarray) -> None:
    report = analyse_channels(scene, SQUARE, FS)
    assert [c.state for c in report.channels] == ["ok"] * 4
    assert report.order.verdict == "ok" and report.order.misfit_samples < 0.2
    lines = statuses(channel_checks(Settings(), scene))
    assert lines == {"mic channels": "ok", "mic channel order": "ok"}


def test_zeroed_channel_is_dead(scene: np.ndarray) -> None:
    block = scene.copy()
    block[2] = 0.0
    report = analyse_channels(block, SQUARE, FS)
    assert [c.state for c in report.channels] == ["ok", "ok", "dead", "ok"]
    assert math.isinf(report.channels[2].rms_dbfs)
    line = channel_checks(Settings(), block)[0]
    assert line.status == "fail" and "mic 2 is digital silence" in line.detail and line.fix


def test_channel_far_below_the_others_is_weak(scene: np.ndarray) -> None:
    block = scene.copy()
    block[1] *= 0.003  # -50 dB: a taped-over or broken capsule still has some noise
    assert analyse_channels(block, SQUARE, FS).channels[1].state == "weak"
    assert channel_checks(Settings(), block)[0].status == "fail"


def test_clipped_channel(scene: np.ndarray) -> None:
    block = scene.copy()
    block[3] = np.clip(block[3] * 20, -1.0, 32767 / 32768)
    report = analyse_channels(block, SQUARE, FS)
    assert report.channels[3].state == "clipping" and report.channels[3].clipped_share > 0.01
    line = channel_checks(Settings(), block)[0]
    assert line.status == "warn" and "mic 3" in line.detail and "gain" in line.fix


def test_swapped_channels_are_found_and_the_suggested_map_fixes_them(scene: np.ndarray) -> None:
    wired = scene[[1, 0, 2, 3]]  # mics 0 and 1 swapped in the cable
    order = analyse_channels(wired, SQUARE, FS).order
    assert order.verdict == "swapped" and order.misfit_samples > 0.5
    fixed = wired[list(order.channel_map)]  # what PyAudioSource delivers with the suggested channel_map
    assert analyse_channels(fixed, SQUARE, FS).order.verdict == "ok"
    line = channel_checks(Settings(), wired)[1]
    assert line.status == "warn" and f"channel_map = {list(order.channel_map)}" in line.fix


def test_swap_suggestion_composes_with_an_existing_channel_map(scene: np.ndarray) -> None:
    # A ReSpeaker-like device: mics on captured channels 1-4, and mics 2 and 3 swapped.
    wired = scene[[0, 1, 3, 2]]
    order = analyse_channels(wired, SQUARE, FS, channel_map=(1, 2, 3, 4)).order
    assert order.verdict == "swapped"
    captured = np.zeros((6, scene.shape[1]))
    captured[[1, 2, 3, 4]] = wired  # what the device delivers
    assert analyse_channels(captured[list(order.channel_map)], SQUARE, FS).order.verdict == "ok"


def test_a_mirror_of_the_array_is_not_called_a_swap(scene: np.ndarray) -> None:
    # Opposite corners swapped = the square mirrored: every direction mirrors, calibration absorbs it.
    assert analyse_channels(scene[[2, 1, 0, 3]], SQUARE, FS).order.verdict == "ok"


def test_diffuse_noise_cannot_judge_the_order() -> None:
    noise = np.random.default_rng(3).standard_normal((4, 2 * FS)) * 0.01
    report = analyse_channels(noise, SQUARE, FS)
    assert [c.state for c in report.channels] == ["ok"] * 4
    assert report.order.verdict == "unknown" and "no single dominant sound" in report.order.detail
    assert channel_checks(Settings(), noise)[1].status == "skip"


def test_one_mic_copied_to_every_channel(scene: np.ndarray) -> None:
    block = np.repeat(scene[:1], 4, axis=0)
    report = analyse_channels(block, SQUARE, FS)
    assert len(report.identical) == 6
    assert channel_checks(Settings(), block)[0].status == "fail"


def test_two_mic_line_has_no_order_to_judge() -> None:
    line = ((-0.03, 0.0, 0.0), (0.03, 0.0, 0.0))
    block = np.random.default_rng(0).standard_normal((2, FS)) * 0.1
    assert analyse_channels(block, line, FS).order.verdict == "unknown"


def test_wrong_shape_is_a_fail_line_not_a_traceback() -> None:
    settings = Settings()
    lines = guarded("mic channels", channel_checks, settings, np.zeros((3, 100)))
    assert lines[0].status == "fail" and "expected a block of 4 channels" in lines[0].detail


# --- capture device and live listening --------------------------------------------------------


def device(channels: int, name: str = "ReSpeaker 4 Mic Array (UAC1.0): USB Audio (hw:2,0)") -> InputDevice:
    return InputDevice(2, name, channels, 16000.0)


def test_device_checks_channel_counts(scene: np.ndarray) -> None:
    settings = Settings()
    few = mic_checks(settings, 1.0, lambda s: DeviceScan((device(2),), device(2)), lambda s, t: scene)
    assert statuses(few) == {"capture device": "fail", "mic channels": "skip", "mic channel order": "skip"}
    assert "captures 4 channels" in few[0].detail
    more = mic_checks(settings, 1.0, lambda s: DeviceScan((device(6),), device(6)), lambda s, t: scene)
    assert more[0].status == "warn" and "channel_map" in more[0].fix
    assert statuses(more)["mic channels"] == "ok"
    mapped = Settings(audio=AudioSettings(channels=6, channel_map=(1, 2, 3, 4)))
    assert mic_checks(mapped, 0, lambda s: DeviceScan((device(6),), device(6)))[0].status == "ok"


def test_missing_device_and_busy_device() -> None:
    settings = Settings()
    missing = mic_checks(settings, 1.0, lambda s: DeviceScan((), None, "saw no input devices at all"))
    assert missing[0].status == "fail" and "arecord -l" in missing[0].fix

    def busy(s: Settings, seconds: float) -> np.ndarray:
        raise AudioSourceError("cannot open ReSpeaker: [Errno -9985] Device unavailable")

    lines = mic_checks(settings, 1.0, lambda s: DeviceScan((device(4),), device(4)), busy)
    assert lines[1].status == "fail" and "systemctl stop madoguchi" in lines[1].fix


def test_listens_through_pulseaudio(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scene: np.ndarray) -> None:
    """The live path: PortAudio's pulse device records a null sink's monitor while paplay plays the
    simulated room with mic 2 silent, through the same PyAudioSource the service uses."""
    from tests.test_capture_pulse import PulseServer

    server = PulseServer(tmp_path / "pulse")
    server.start()
    try:
        for key in ("PULSE_SERVER", "PULSE_CLIENTCONFIG"):
            monkeypatch.setenv(key, server.env[key])
        monkeypatch.setenv("PULSE_SOURCE", "array4.monitor")
        block = scene.copy()
        block[2] = 0.0
        wav = tmp_path / "room.wav"
        soundfile.write(wav, np.tile(block, 3).T, FS, subtype="PCM_16")  # 6 s: longer than we listen
        player = server.play(wav, "array4")
        try:
            lines = mic_checks(Settings(audio=AudioSettings(device="pulse")), 1.0)
        finally:
            player.kill()
            player.wait()
    finally:
        server.kill()
    found = {c.name: c for c in lines}
    assert found["capture device"].status in ("ok", "warn") and '"pulse"' in found["capture device"].detail
    assert found["mic channels"].status == "fail" and "mic 2 is digital silence" in found["mic channels"].detail
    assert found["mic channel order"].status == "skip"


# --- sides, config origins ---------------------------------------------------------------------


def test_sides_defaults_are_not_calibrated() -> None:
    line = sides_check(Settings(), [])
    assert line.status == "warn" and "shipped defaults" in line.detail and "calibrate --live" in line.fix
    one = sides_check(Settings(sides=SidesSettings(staff_azimuth_deg=180.0)), [("site.toml", {"sides": {"staff_azimuth_deg": 180.0}})])
    assert one.status == "warn" and "resident_azimuth_deg" in one.detail and "--write site.toml" in one.fix


def test_calibrated_sides() -> None:
    layer = ("/etc/madoguchi/madoguchi.toml", {"sides": {"staff_azimuth_deg": 175.0, "resident_azimuth_deg": 2.0}})
    line = sides_check(settings_from_layers([layer]), [layer])
    assert line.status == "ok" and "/etc/madoguchi/madoguchi.toml" in line.detail


def test_effective_config_names_the_layer_of_each_key() -> None:
    layers = [("/etc/madoguchi/madoguchi.toml", {"mqtt": {"host": "broker.city.example", "site": "kita"}, "asr": {"threads": 4}}),
              ("/boot/firmware/madoguchi.toml", {"mqtt": {"site": "minami"}})]
    config = effective_config(settings_from_layers(layers), layers)
    assert config["mqtt"]["host"] == {"value": "broker.city.example", "from": "/etc/madoguchi/madoguchi.toml"}
    assert config["mqtt"]["site"] == {"value": "minami", "from": "/boot/firmware/madoguchi.toml"}
    assert config["asr"]["threads"]["from"] == "/etc/madoguchi/madoguchi.toml"
    assert config["vad"]["hangover_ms"] == {"value": 800, "from": "default"}
    assert config["array"]["mic_positions_m"]["value"][0] == [0.032, 0.0, 0.0]  # tuples become JSON lists
    json.dumps(config)


def test_invalid_config_is_a_fail_line_and_the_box_checks_still_run(tmp_path: Path) -> None:
    error = ConfigError([ConfigProblem("site.toml", "[sides] foo", "unknown key; allowed keys: …")])
    checks = run_checks(None, [], config_error=error, probes=Probes(root=tmp_path, clock=lambda: (True, "test")))
    found = statuses(checks)
    assert found["config"] == "fail" and found["broker"] == "skip" and found["clock"] == "ok"
    assert "config check site.toml" in checks[0].fix


# --- hardware (a fake /dev) ---------------------------------------------------------------------


def test_spi_gpio_and_panels_on_a_fake_pi(tmp_path: Path) -> None:
    settings = Settings()
    spi = spi_check(settings, tmp_path)
    assert spi.status == "fail" and "dtparam=spi=on" in spi.fix
    assert gpio_check(settings, tmp_path).status == "fail"
    assert panels_check(settings, lambda s: {}, spi).status == "fail"
    (tmp_path / "dev").mkdir()
    for node in ("spidev0.0", "spidev0.1", "gpiochip0", "gpiochip4"):
        (tmp_path / "dev" / node).touch()
    spi = spi_check(settings, tmp_path)
    assert spi.status == "ok" and gpio_check(settings, tmp_path).detail == "gpiochip0, gpiochip4"
    opened = panels_check(settings, lambda s: {"staff": "ssd1322 256x64", "resident": "ssd1322 256x64"}, spi)
    assert opened.status == "ok" and "resident: ssd1322 256x64" in opened.detail


def test_panels_that_do_not_open_say_why(tmp_path: Path) -> None:
    from madoguchi.doctor.hardware import open_and_close_panels

    # Real luma on this machine: the SPI interface cannot be made (no spidev, no RPi.GPIO).
    line = panels_check(Settings(), open_and_close_panels, Check("spi devices", "ok", "pretend"))
    assert line.status == "fail" and "staff panel" in line.detail and "spi and gpio groups" in line.fix
    none = Settings(display=DisplaySettings(driver="none"))
    assert {spi_check(none, tmp_path).status, panels_check(none, open_and_close_panels, spi_check(none, tmp_path)).status} == {"skip"}
    dummy = Settings(display=DisplaySettings(driver="dummy"))
    assert statuses(guarded("panels", panels_check, dummy, open_and_close_panels, spi_check(dummy, tmp_path))) == {"panels": "skip"}


def test_fonts_and_shaping(tmp_path: Path) -> None:
    assert statuses(font_checks(Settings())) == {"fonts": "ok", "text shaping": "ok"}  # Debian's Noto fonts, Pillow's raqm
    lines = font_checks(Settings(), font_root=tmp_path, has_raqm=lambda: False)
    assert statuses(lines) == {"fonts": "fail", "text shaping": "fail"}
    assert "apt-get install fonts-noto-cjk fonts-noto-core" in lines[0].fix


# --- models -------------------------------------------------------------------------------------


def test_models_missing_corrupt_and_present(tmp_path: Path) -> None:
    store = ModelStore.open(tmp_path / "models")
    missing = {c.name: c for c in model_checks(Settings(), lambda s: store)}
    assert missing["model whisper-base-ggml-q8_0"].status == "fail"
    assert "madoguchi models fetch whisper-base-ggml-q8_0" in missing["model whisper-base-ggml-q8_0"].fix
    assert missing["asr engine"].status == "ok" and missing["model silero-vad"].status == "ok"
    folder = tmp_path / "models" / "whisper-base-ggml-q8_0"
    folder.mkdir(parents=True)
    (folder / "ggml-base-q8_0.bin").write_bytes(b"ggml" + bytes(1000))  # an interrupted copy
    truncated = {c.name: c for c in model_checks(Settings(), lambda s: store)}["model whisper-base-ggml-q8_0"]
    assert truncated.status == "fail" and "truncated" in truncated.detail and "models fetch" in truncated.fix

    manifest = tmp_path / "manifest.toml"
    manifest.write_text('schema = 1\n[[models]]\nid = "tiny-asr"\nengine = "whisper.cpp"\ntask = "asr"\nfiles = ["model.bin"]\nlicence = "MIT"\n'
                        'commercial = true\nlanguages = ["*"]\nsize_mb = 1\n[[models.sources]]\nkind = "upstream"\nurl = "https://example.invalid/tiny"\n')
    tiny = ModelStore.open(tmp_path / "tiny", manifest, tmp_path / "manifest.lock")
    (tmp_path / "tiny" / "tiny-asr").mkdir(parents=True)
    (tmp_path / "tiny" / "tiny-asr" / "model.bin").write_bytes(b"weights")
    import hashlib

    tiny.set_lock("tiny-asr", {"model.bin": {"size": 7, "sha256": hashlib.sha256(b"weights").hexdigest()}})
    settings = settings_from_layers([("site.toml", {"asr": {"model": "tiny-asr"}, "mt": {"models": ["nope"]}})])
    found = {c.name: c for c in model_checks(settings, lambda s: tiny)}
    assert found["model tiny-asr"].status == "ok"
    assert found["model nope"].status == "fail" and "madoguchi models list" in found["model nope"].fix


# --- the broker (a real mosquitto: TLS, passwords, the shipped ACL) ------------------------------


def test_broker_all_steps_pass(broker, tmp_path: Path) -> None:
    site, box = "doctor", f"ok-{uuid.uuid4().hex[:6]}"
    settings = broker.mqtt_settings(broker.add_box(site, box), site, box, spool_path=tmp_path / "spool.sqlite3")
    watch = broker.subscriber(f"madoguchi/v1/{site}/{box}/#")
    try:
        lines = broker_checks(settings)
        assert [(c.name, c.status) for c in lines] == [(step, "ok") for step in STEPS], format_table(lines)
        watch.wait_for(lambda msgs: any(t.endswith("/cmd_result") for t, _, _ in msgs), timeout=5)
        _topic, payload, retained = next(m for m in watch.messages if m[0].endswith("/cmd_result"))
        from madoguchi.telemetry.schemas import problems

        assert problems("cmd_result", json.loads(payload)) == [] and not retained  # what the fleet sees is valid, and not kept
    finally:
        watch.close()


def test_broker_wrong_password(broker, tmp_path: Path) -> None:
    site, box = "doctor", f"pw-{uuid.uuid4().hex[:6]}"
    wrong = tmp_path / "password"
    wrong.write_text("not-the-password")
    settings = broker.mqtt_settings(broker.add_box(site, box), site, box, spool_path=tmp_path / "s.sqlite3", password_file=wrong)
    found = statuses(broker_checks(settings))
    assert found == {"broker dns": "ok", "broker tcp": "ok", "broker tls": "ok", "broker login": "fail", "broker publish": "skip", "broker subscribe": "skip"}


def test_broker_acl_denies_another_boxs_topics(broker, tmp_path: Path) -> None:
    # Box A's login with box B's topics: logged in, but the shipped ACL keeps A out of B's prefix.
    site = "doctor"
    login = broker.add_box(site, f"acl-a-{uuid.uuid4().hex[:6]}")
    settings = broker.mqtt_settings(login, site, f"acl-b-{uuid.uuid4().hex[:6]}", spool_path=tmp_path / "s.sqlite3")
    lines = {c.name: c for c in broker_checks(settings)}
    assert lines["broker login"].status == "ok"
    assert lines["broker publish"].status == "fail" and "not authorized" in lines["broker publish"].detail
    assert lines["broker subscribe"].status == "ok"  # mosquitto 2 grants it and filters delivery (test_broker.py); other brokers refuse here
    assert "acl.example" in lines["broker publish"].fix


def test_broker_untrusted_certificate_and_unknown_host(broker, tmp_path: Path) -> None:
    site, box = "doctor", "tls"
    settings = broker.mqtt_settings(broker.add_box(site, box), site, box, spool_path=tmp_path / "s.sqlite3", ca_file="")  # system CAs
    found = {c.name: c for c in broker_checks(settings)}
    assert found["broker tls"].status == "fail" and "ca_file" in found["broker tls"].fix and found["broker login"].status == "skip"
    nowhere = broker_checks(MqttSettings(host="broker.doctor.invalid", spool_path=str(tmp_path / "s.sqlite3")))
    assert nowhere[0].status == "fail" and nowhere[0].name == "broker dns" and {c.status for c in nowhere[1:]} == {"skip"}


def test_no_broker_configured_is_skipped() -> None:
    assert [(c.name, c.status) for c in broker_checks(MqttSettings())] == [("broker", "skip")]


# --- clock, spool, temperature ------------------------------------------------------------------


def test_clock() -> None:
    assert clock_check(lambda: (True, "timedatectl")).status == "ok"
    late = clock_check(lambda: (False, "timedatectl"))
    assert late.status == "warn" and "UDP 123" in late.fix
    assert clock_check(lambda: (None, "")).status == "skip"
    assert clock_check(lambda: (True, "x"), now=1_000_000_000.0).status == "fail"  # 2001: never set


def test_spool_read_from_the_real_spool(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite3"
    settings = Settings(mqtt=MqttSettings(host="broker", spool_path=str(path), spool_max_mb=1.0))
    assert spool_check(settings).status == "ok"  # not there yet
    with Spool.for_settings(settings.mqtt) as spool:
        for n in range(3):
            spool.append("madoguchi/v1/s/b/usage", {"kind": "utterance", "n": n})
    line = spool_check(settings)
    assert line.status == "ok" and "3 message(s) waiting" in line.detail
    with Spool(path, 2000, 86400.0) as spool:  # a bound it keeps hitting: drops counted
        for n in range(40):
            spool.append("madoguchi/v1/s/b/usage", {"kind": "utterance", "pad": "x" * 100, "n": n})
    full = spool_check(settings)
    assert full.status == "warn" and "dropped" in full.detail and "broker" in full.fix
    assert spool_check(Settings()).status == "skip"


def test_temperature_and_throttling_from_a_fake_sysfs(tmp_path: Path) -> None:
    zone = tmp_path / "sys/class/thermal/thermal_zone0"
    zone.mkdir(parents=True)
    (zone / "type").write_text("cpu-thermal\n")
    (zone / "temp").write_text("82500\n")
    flags = tmp_path / "sys/devices/platform/soc/soc:firmware/get_throttled"
    flags.parent.mkdir(parents=True)
    flags.write_text("50005\n")
    lines = {c.name: c for c in thermal_checks(Settings(), tmp_path)}
    assert lines["temperature"].status == "warn" and "82.5" in lines["temperature"].detail and "1 thread" in lines["temperature"].detail
    assert lines["throttling"].status == "fail" and "under-voltage" in lines["throttling"].detail and "27 W" in lines["throttling"].fix
    flags.write_text("0x10000\n")
    (zone / "temp").write_text("52000\n")
    lines = {c.name: c for c in thermal_checks(Settings(), tmp_path)}
    assert lines["temperature"].status == "ok" and lines["throttling"].status == "warn"
    assert statuses(thermal_checks(Settings(), tmp_path / "elsewhere")) == {"temperature": "skip", "throttling": "skip"}


# --- the whole run, and the command ------------------------------------------------------------


def test_a_check_that_raises_is_a_fail_line(tmp_path: Path) -> None:
    def broken(settings: Settings) -> DeviceScan:
        raise RuntimeError("PortAudio exploded\nsecond line")

    checks = run_checks(Settings(), [], listen_s=0, probes=Probes(root=tmp_path, scan_devices=broken, clock=lambda: (True, "t"),
                                                                   skip=frozenset({"models", "hardware"})))
    first = next(c for c in checks if c.name == "capture device")
    assert first.status == "fail" and "RuntimeError: PortAudio exploded; second line" == first.detail and first.fix
    table = format_table(checks)
    assert len(table.splitlines()) == len(checks) + 1
    assert all("fix:" in line for line in table.splitlines() if line.startswith(("fail", "warn")))


def madoguchi(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "madoguchi", *args], capture_output=True, text=True, timeout=60, check=False, cwd=ROOT, env={**os.environ, **(env or {})})


def test_doctor_command_on_this_machine(tmp_path: Path) -> None:
    """No mic array, no panels, no broker: exit 1, one line per check, every failure with its fix, no traceback."""
    port = __import__("tests.mqtt_broker", fromlist=["free_port"]).free_port()  # nothing listens there
    config = tmp_path / "site.toml"
    config.write_text(f'[paths]\nstate_dir = "{tmp_path / "state"}"\n\n[mqtt]\nhost = "127.0.0.1"\nport = {port}\nspool_path = "{tmp_path / "spool.sqlite3"}"\n'
                      '\n[sides]\nstaff_azimuth_deg = 180\nresident_azimuth_deg = 0\n')
    # No sound server either: a PulseAudio left by another test would be a capture device.
    env = {"MADOGUCHI_MODELS_DIR": str(tmp_path / "models"), "PULSE_SERVER": f"unix:{tmp_path}/no-pulse"}
    started = time.monotonic()
    result = madoguchi("doctor", "--no-system-config", "--config", str(config), env=env)
    assert result.returncode == 1, result
    assert "Traceback" not in result.stdout + result.stderr and result.stderr == ""
    lines = result.stdout.splitlines()
    failed = [line for line in lines if line.startswith("fail")]
    assert failed and all("-> fix: " in line and line.split("-> fix: ")[1].strip() for line in failed)
    by_name = {line.split()[1] + (" " + line.split()[2] if line.split()[1] in ("broker", "capture", "spi", "gpio", "mic", "text") else ""): line for line in lines[:-1]}
    assert by_name["broker tcp"].startswith("fail") and "connection refused" in by_name["broker tcp"]
    assert by_name["broker login"].startswith("skip")
    assert by_name["capture device"].startswith("fail") and by_name["spi devices"].startswith("fail")
    assert lines[-1].endswith("skipped")

    as_json = madoguchi("doctor", "--no-system-config", "--config", str(config), "--json", "--listen", "0", env=env)
    assert as_json.returncode == 1 and as_json.stderr == ""
    document = json.loads(as_json.stdout)
    assert document["ok"] is False and document["sources"] == [str(config)]
    assert {c["status"] for c in document["checks"]} <= {"ok", "warn", "fail", "skip"}
    assert all(c["fix"] for c in document["checks"] if c["status"] in ("warn", "fail"))
    assert document["config"]["mqtt"]["port"] == {"value": port, "from": str(config)}
    assert document["config"]["mqtt"]["tls"] == {"value": True, "from": "default"}
    assert time.monotonic() - started < 20


def test_doctor_command_without_broker_and_with_a_broken_config(tmp_path: Path) -> None:
    env = {"MADOGUCHI_MODELS_DIR": str(tmp_path / "models"), "PULSE_SERVER": f"unix:{tmp_path}/no-pulse"}
    plain = madoguchi("doctor", "--no-system-config", "--listen", "0", env=env)
    assert plain.returncode == 1 and "Traceback" not in plain.stderr
    assert any(line.startswith("skip") and " broker " in line for line in plain.stdout.splitlines())
    broken = tmp_path / "broken.toml"
    broken.write_text("[sides]\nfoo = 1\n")
    result = madoguchi("doctor", "--no-system-config", "--config", str(broken), env=env)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stdout.startswith("fail  ") and f"{broken}: [sides] foo: unknown key" in result.stdout.splitlines()[0]
    assert json.loads(madoguchi("doctor", "--no-system-config", "--config", str(broken), "--json", env=env).stdout)["config"] is None


def test_a_stuck_sound_server_is_a_fail_line_not_a_hang(tmp_path: Path) -> None:
    """A PulseAudio that stopped answering (SIGSTOP) hangs PortAudio's device scan: the doctor
    gives up on it after its scan timeout, says so, and goes on with the other checks."""
    from madoguchi.doctor.mics import SCAN_TIMEOUT_S
    from tests.test_capture_pulse import PulseServer

    server = PulseServer(tmp_path / "pulse")
    server.start()
    server.pause()
    try:
        started = time.monotonic()
        result = subprocess.run([sys.executable, "-m", "madoguchi", "doctor", "--no-system-config", "--listen", "0"], capture_output=True,
                                text=True, timeout=60, check=False, cwd=ROOT, env={**server.env, "MADOGUCHI_MODELS_DIR": str(tmp_path / "models")})
        took = time.monotonic() - started
    finally:
        server.kill()
    assert result.returncode == 1 and "Traceback" not in result.stderr, result
    line = next(line for line in result.stdout.splitlines() if line.startswith("fail  capture device"))
    assert f"did not list its devices in {SCAN_TIMEOUT_S:g} s" in line and "-> fix: restart the sound server" in line
    assert any(line.startswith("skip") and "mic channels" in line for line in result.stdout.splitlines())
    assert any(" fonts " in line for line in result.stdout.splitlines())  # the checks after it still ran
    assert SCAN_TIMEOUT_S <= took < SCAN_TIMEOUT_S + 30
