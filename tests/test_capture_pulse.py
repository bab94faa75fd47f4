"""Real capture through PulseAudio: PyAudio -> PortAudio -> ALSA "pulse" plugin -> a private pulseaudio.

A session fixture runs its own daemon (private runtime dir, anonymous unix socket, no autospawn)
with two 4-channel null sinks, ``array4`` at 16 kHz and ``array4_48k`` at 48 kHz. paplay plays
test tones into a sink and PyAudioSource records its monitor (chosen with PULSE_SOURCE), so
these tests exercise the exact code path of the box, with live pacing.

Needs the Debian packages pulseaudio, pulseaudio-utils and libasound2-plugins (CI installs them).
They are not skipped when missing: they fail and say what to install.

Observed behaviour on device loss (pulseaudio 16.1, PortAudio 19.6, alsa-plugins pulse):
- Daemon killed (or its sink unloaded): the next ``stream.read`` raises OSError -9999
  "Unanticipated host error" at once, and PyAudio closes the stream. While the daemon is down a
  fresh PyAudio lists no input devices at all, so reopening reports "not found" until it is back.
- Daemon stopped with SIGSTOP (a hung device): ``stream.read`` blocks forever and so do
  ``stop_stream``/``close`` on that stream, from any thread; only SIGCONT releases them. The
  source notices through its stall deadline, and close() still returns promptly.
- A fresh capture stream on a null-sink monitor may wait up to 2 s for its first block (the idle
  sink renders in 2 s chunks), hence capture.STALL_S = 3 s.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile

from madoguchi.audio import capture
from madoguchi.audio.capture import STALL_S, PyAudioSource, list_input_devices
from madoguchi.config import AudioSettings
from madoguchi.errors import AudioDeviceLostError, AudioDeviceNotFoundError, AudioFormatError

MAP4 = "front-left,front-right,rear-left,rear-right"  # what ALSA's pulse plugin uses for 4 channels
TONES_HZ = (300.0, 500.0, 700.0, 900.0)
SINKS = {"array4": 16000, "array4_48k": 48000}


class PulseServer:
    """A private pulseaudio daemon; start/kill/pause/resume it to simulate a device coming and going."""

    def __init__(self, root: Path) -> None:
        self.root = root
        runtime = root / "run"
        runtime.mkdir(mode=0o700, parents=True)
        (root / "home").mkdir()
        client_conf = root / "client.conf"
        client_conf.write_text("autospawn = no\n")  # a killed daemon must not be respawned by libpulse
        self.log = root / "pulseaudio.log"
        self.env = {**os.environ, "HOME": str(root / "home"), "XDG_RUNTIME_DIR": str(runtime), "PULSE_RUNTIME_PATH": str(runtime / "pulse"),
                    "PULSE_STATE_PATH": str(root / "state"), "PULSE_SERVER": f"unix:{runtime}/pulse/native", "PULSE_CLIENTCONFIG": str(client_conf)}
        self.proc: subprocess.Popen[bytes] | None = None
        self.paused = False

    def modules(self) -> list[str]:
        """The modules the daemon starts with: its socket and one 4-channel null sink per rate."""
        return ["module-native-protocol-unix auth-anonymous=1"] + [
            f"module-null-sink sink_name={name} rate={rate} channels=4 channel_map={MAP4}" for name, rate in SINKS.items()]

    def started(self) -> None:
        """Called once the daemon answers (subclasses load more)."""

    def start(self) -> None:
        # --system=false: we may run as root; -n: no default.pa, only our modules; no realtime or
        # shared memory, which containers may refuse.
        cmd = ["pulseaudio", "-n", "--daemonize=no", "--exit-idle-time=-1", "--system=false", "--use-pid-file=no",
               "--realtime=no", "--high-priority=no", "--disable-shm=yes", "--log-target=stderr"] + [arg for m in self.modules() for arg in ("-L", m)]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(cmd, env=self.env, stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + 10
        while subprocess.run(["pactl", "info"], env=self.env, capture_output=True).returncode != 0:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.kill()
                pytest.fail(f"pulseaudio did not start; its log:\n{self.log.read_text()[-2000:]}")
            time.sleep(0.05)
        self.started()

    def kill(self) -> None:
        self.resume()
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def pause(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        if self.paused and self.proc is not None:
            self.proc.send_signal(signal.SIGCONT)
        self.paused = False

    def ensure_running(self) -> None:
        self.resume()
        if self.proc is None or self.proc.poll() is not None:
            self.start()

    def play(self, path: Path, sink: str) -> subprocess.Popen[bytes]:
        # Without --channel-map paplay assumes a different 4-channel layout and pulse remixes.
        return subprocess.Popen(["paplay", f"--device={sink}", f"--channel-map={MAP4}", str(path)], env=self.env)


@contextlib.contextmanager
def serving(server: PulseServer) -> Iterator[PulseServer]:
    """``server`` started, this process's libpulse pointed at it (PortAudio's "pulse" device
    records ``array4``'s monitor), and killed at the end."""
    missing = [tool for tool in ("pulseaudio", "pactl", "paplay") if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"{', '.join(missing)} not found: apt-get install pulseaudio pulseaudio-utils libasound2-plugins")
    server.start()
    with pytest.MonkeyPatch.context() as mp:
        for key in ("PULSE_SERVER", "PULSE_CLIENTCONFIG"):  # read by libpulse inside the ALSA plugin, in this process
            mp.setenv(key, server.env[key])
        mp.setenv("PULSE_SOURCE", "array4.monitor")
        try:
            if not any(d.name == "pulse" for d in list_input_devices()):
                pytest.fail("PortAudio sees no ALSA 'pulse' device: apt-get install libasound2-plugins")
            yield server
        finally:
            server.kill()


@pytest.fixture(scope="module")
def pulse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PulseServer]:
    with serving(PulseServer(tmp_path_factory.mktemp("pulse"))) as server:
        yield server


@pytest.fixture(autouse=True)
def _pulse_up(pulse: PulseServer, monkeypatch: pytest.MonkeyPatch) -> None:
    pulse.ensure_running()  # a loss test may have left it killed or paused
    monkeypatch.setenv("PULSE_SOURCE", "array4.monitor")


def settings(**changes: object) -> AudioSettings:
    return AudioSettings(**{"device": "pulse", "sample_rate_hz": 16000, "reopen_interval_s": 0.3, **changes})  # type: ignore[arg-type]


def tone_file(path: Path, seconds: float, rate: int) -> Path:
    t = np.arange(int(seconds * rate)) / rate
    soundfile.write(path, np.stack([0.3 * np.sin(2 * np.pi * f * t) for f in TONES_HZ], axis=1), rate, subtype="PCM_16")
    return path


def capture_tones(pulse: PulseServer, source: PyAudioSource, wav: Path, sink: str = "array4") -> tuple[np.ndarray, list[tuple[float, int]]]:
    """Capture while paplay plays ``wav``, until 0.5 s after it ends; returns audio and (wall time, frames) per block."""
    blocks: list[np.ndarray] = []
    times: list[tuple[float, int]] = []
    with source:
        player = pulse.play(wav, sink)
        ended = 0.0
        deadline = time.monotonic() + soundfile.info(str(wav)).duration + 8
        for block in source.blocks():
            assert block.dtype == np.float32 and block.shape[1] == source.channels
            blocks.append(block)
            times.append((time.monotonic(), len(block)))
            if player.poll() is not None:
                ended = ended or time.monotonic()
                if time.monotonic() - ended > 0.5:
                    break
            assert time.monotonic() < deadline, "capture did not finish in time"
    assert player.wait(5) == 0
    return np.concatenate(blocks), times


def dominant_hz(audio: np.ndarray, rate: int = 16000) -> list[float]:
    loud = np.flatnonzero(np.abs(audio).max(axis=1) > 0.1)
    assert len(loud) > rate // 2, f"only {len(loud)} frames of tone captured"
    middle = audio[loud[0] + rate // 10: loud[-1] - rate // 10]
    spectrum = np.abs(np.fft.rfft(middle * np.hanning(len(middle))[:, None], axis=0))
    return list(np.fft.rfftfreq(len(middle), 1 / rate)[spectrum.argmax(axis=0)])


@pytest.mark.parametrize("channel_map", [(), (3, 2, 1, 0)])
def test_channel_order_and_content_survive(pulse: PulseServer, tmp_path: Path, channel_map: tuple[int, ...]) -> None:
    audio, _ = capture_tones(pulse, PyAudioSource(settings(channel_map=channel_map), 4), tone_file(tmp_path / "tones.wav", 1.0, 16000))
    expected = [TONES_HZ[i] for i in channel_map] if channel_map else list(TONES_HZ)
    assert dominant_hz(audio) == pytest.approx(expected, abs=5)
    assert 0.25 < np.abs(audio).max() < 0.35  # int16 -> float scaling, no gain on the way


def test_capture_is_paced_like_a_live_device(pulse: PulseServer, tmp_path: Path) -> None:
    audio, times = capture_tones(pulse, PyAudioSource(settings(), 4), tone_file(tmp_path / "tones.wav", 3.0, 16000))
    loud = np.abs(audio).max(axis=1) > 0.1
    starts = np.cumsum([0] + [n for _, n in times])
    tone_arrivals = [t for (t, n), start in zip(times, starts) if loud[start:start + n].any()]
    assert loud.sum() / 16000 == pytest.approx(3.0, abs=0.1)  # nothing lost, nothing doubled
    assert tone_arrivals[-1] - tone_arrivals[0] >= 2.0  # arrived over real time, not in a burst


def test_48k_capture_is_resampled_to_16k(pulse: PulseServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PULSE_SOURCE", "array4_48k.monitor")
    source = PyAudioSource(settings(sample_rate_hz=48000), 4)
    audio, times = capture_tones(pulse, source, tone_file(tmp_path / "tones48.wav", 1.0, 48000), sink="array4_48k")
    assert source.sample_rate == 16000
    assert np.mean([n for _, n in times]) == pytest.approx(512, rel=0.1)  # 32 ms blocks at 16 kHz
    assert dominant_hz(audio, 16000) == pytest.approx(list(TONES_HZ), abs=5)


def test_device_not_found_names_what_it_saw(pulse: PulseServer) -> None:
    with pytest.raises(AudioDeviceNotFoundError) as caught, PyAudioSource(settings(device="no-such-array"), 4):
        pass
    message = str(caught.value)
    assert "no-such-array" in message and '"pulse" (32 ch)' in message and "\n" not in message


def test_too_few_channels_is_a_format_error(pulse: PulseServer) -> None:
    # The pulse device offers 32 channels (and upmixes), so asking 8 would succeed; a channel_map
    # pointing at channel 40 needs 41, which it cannot give.
    with pytest.raises(AudioFormatError, match=r"offers up to 32 .* asks for 41"), PyAudioSource(settings(channel_map=(0, 1, 2, 40)), 4):
        pass


def test_refused_rate_is_a_format_error(pulse: PulseServer) -> None:
    # pulse takes any rate the config allows (8-192 kHz); 1 MHz bypasses config validation to get a real refusal.
    with pytest.raises(AudioFormatError, match=r"refuses 4 ch int16 at 1000000 Hz"), PyAudioSource(settings(sample_rate_hz=1_000_000), 4):
        pass


class Consumer:
    """Runs blocks() in a thread, as the daemon does, and records on_state calls and audio frames."""

    def __init__(self) -> None:
        self.states: list[str] = []
        self.frames = 0
        self.error: BaseException | None = None
        self.source = PyAudioSource(settings(), 4, on_state=self.states.append)
        self.source.open()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            for block in self.source.blocks():
                self.frames += len(block)
        except Exception as err:  # noqa: BLE001  # checked by the test
            self.error = err

    def wait_for(self, what: str, check: object, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not check():  # type: ignore[operator]
            assert time.monotonic() < deadline, f"no {what} within {timeout} s; states {self.states}"
            time.sleep(0.05)

    def close_promptly(self) -> float:
        started = time.monotonic()
        self.source.close()
        self.thread.join(2)
        assert not self.thread.is_alive(), "blocks() did not return after close()"
        return time.monotonic() - started


@pytest.mark.parametrize("how", ["killed", "hung"])
def test_device_lost_and_back(pulse: PulseServer, how: str) -> None:
    consumer = Consumer()
    consumer.wait_for("audio", lambda: consumer.frames > 1600, 5)
    pulse.kill() if how == "killed" else pulse.pause()
    consumer.wait_for("mic_lost", lambda: "mic_lost" in consumer.states, 2 if how == "killed" else STALL_S + 2)
    pulse.start() if how == "killed" else pulse.resume()
    consumer.wait_for("capturing again", lambda: consumer.states[-1] == "capturing" and len(consumer.states) == 3, 8)
    frames = consumer.frames
    consumer.wait_for("audio after the gap", lambda: consumer.frames > frames + 1600, 5)
    assert consumer.states == ["capturing", "mic_lost", "capturing"]
    assert consumer.close_promptly() < 1.0


@pytest.mark.parametrize("how", ["killed", "hung"])
def test_close_while_device_lost_returns_promptly(pulse: PulseServer, how: str) -> None:
    consumer = Consumer()
    consumer.wait_for("audio", lambda: consumer.frames > 0, 5)
    pulse.kill() if how == "killed" else pulse.pause()
    consumer.wait_for("mic_lost", lambda: "mic_lost" in consumer.states, STALL_S + 2)
    time.sleep(0.5)  # now waiting to reopen (killed) or stuck in a read PortAudio never returns from (hung)
    assert consumer.close_promptly() < 1.0


def test_portaudio_hung_for_good_raises_device_lost(pulse: PulseServer, monkeypatch: pytest.MonkeyPatch) -> None:
    # The read never returns (SIGSTOPped server; PortAudio's ALSA code can also spin forever after a
    # USB unplug): no fresh PortAudio can rescan while it is stuck, so blocks() gives up and raises
    # for the service manager to restart the process. WEDGED_S is 10 s in production.
    monkeypatch.setattr(capture, "WEDGED_S", 1.0)
    consumer = Consumer()
    consumer.wait_for("audio", lambda: consumer.frames > 0, 5)
    pulse.pause()
    consumer.wait_for("the end of blocks()", lambda: not consumer.thread.is_alive(), STALL_S + 3)
    assert isinstance(consumer.error, AudioDeviceLostError) and "restart" in str(consumer.error)
    assert consumer.states == ["capturing", "mic_lost"]
    assert consumer.close_promptly() < 1.0
