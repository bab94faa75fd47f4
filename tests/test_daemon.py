"""``madoguchi run`` as systemd runs it: READY, STATUS, WATCHDOG, clean stop on SIGTERM."""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from madoguchi.audio.source import AudioSource
from madoguchi.config import Settings
from madoguchi.daemon import serve
from madoguchi.errors import AudioDeviceNotFoundError
from madoguchi.sdnotify import SystemdNotifier
from tests.notify import NotifySocket

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "firmware" / "madoguchi" / "data" / "demo"


@pytest.fixture()
def listener(tmp_path: Path):
    notify = NotifySocket(tmp_path / "notify.sock")
    yield notify
    notify.close()


def test_service_notifies_and_stops_cleanly_on_sigterm(listener: NotifySocket) -> None:
    env = {**os.environ, "NOTIFY_SOCKET": str(listener.path), "WATCHDOG_USEC": "2000000"}
    process = subprocess.Popen(
        [sys.executable, "-m", "madoguchi", "run", "--stages", "frontend", "--no-system-config", "--config", str(DEMO / "counter-demo.toml"), "--replay", str(DEMO / "counter-demo.flac")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT,
    )
    try:
        assert "listening" in listener.wait_for("READY", "1")["STATUS"]
        listener.wait_for("WATCHDOG", "1")
        # Paced like live audio: the first utterance (speech ends at 1.9 s) shows up in STATUS.
        started = time.monotonic()
        listener.wait_for("STATUS", contains="1 utterances", timeout=15)
        assert time.monotonic() - started > 1.5  # not faster than real time
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=10)
    finally:
        process.kill()
    assert process.returncode == 0, err
    assert "Traceback" not in err
    listener.wait_for("STOPPING", "1", timeout=2)
    records = [json.loads(line) for line in out.splitlines()]
    assert records and all(r["side"] in ("staff", "resident") for r in records)


def test_service_interprets_live_with_captions_first(listener: NotifySocket, speech_store) -> None:
    """The whole pipeline paced like live audio: captions while a turn is spoken, then its result."""
    env = {**os.environ, "NOTIFY_SOCKET": str(listener.path), "MADOGUCHI_MODELS_DIR": str(speech_store.root)}
    done = subprocess.run(
        [sys.executable, "-m", "madoguchi", "run", "--no-system-config", "--config", str(DEMO / "counter-demo.toml"), "--replay", str(DEMO / "counter-demo.flac")],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=240,
    )
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.stdout.splitlines()]
    finals = [r for r in records if not r.get("partial")]
    captions = [r for r in records if r.get("partial")]
    assert len(finals) >= 10 and {r["lang"] for r in finals} >= {"ja", "en"}
    assert all(r["latency_ms"] >= r["vad_ms"] for r in finals)
    # Every caption belongs to a turn still open when it was shown, and comes before that turn's result.
    assert captions, "no live captions: turns of 1.3-2.4 s should get at least one"
    for caption in captions:
        final = next(i for i, r in enumerate(records) if not r.get("partial") and abs(r["start_s"] - caption["start_s"]) < 0.2)
        decided_s = records[final]["end_s"] + records[final]["vad_ms"] / 1000  # when the front end closed that turn
        assert records.index(caption) < final and caption["at_s"] <= decided_s + 0.05
    assert listener.wait_for("STATUS", contains="utterances; last:")


class AbsentArray(AudioSource):
    """An array that is not plugged in: every open fails as PyAudioSource's does."""

    channels = 4

    def __init__(self) -> None:
        self.attempts = 0

    def open(self) -> None:
        self.attempts += 1
        raise AudioDeviceNotFoundError('no input device whose name contains "ReSpeaker"; saw no input devices at all')

    def blocks(self):
        raise AssertionError("never opened")


def test_service_waits_for_an_unplugged_array_and_still_stops(listener: NotifySocket) -> None:
    settings = Settings()
    settings = settings.__class__(**{**settings.__dict__, "audio": settings.audio.__class__(reopen_interval_s=0.1)})
    source = AbsentArray()

    async def scenario() -> int:
        task = asyncio.create_task(serve(settings, source, io.StringIO(), SystemdNotifier(str(listener.path)), wait_for_device=True))
        await asyncio.sleep(0.6)
        os.kill(os.getpid(), signal.SIGTERM)  # the handler serve() installed stops it
        return await asyncio.wait_for(task, 5)

    assert asyncio.run(scenario()) == 0
    assert source.attempts >= 3  # it kept trying instead of dying
    assert listener.wait_for("STATUS", "audio: waiting_for_mic")
    listener.wait_for("STOPPING", "1")


def test_missing_array_without_waiting_is_a_one_line_error(listener: NotifySocket) -> None:
    async def scenario() -> int:
        return await serve(Settings(), AbsentArray(), io.StringIO(), SystemdNotifier(str(listener.path)))

    with pytest.raises(AudioDeviceNotFoundError, match="ReSpeaker"):
        asyncio.run(scenario())


def test_run_without_any_audio_device_exits_with_one_line(tmp_path: Path) -> None:
    """No sound card and no PulseAudio: PortAudio sees nothing; the admin gets one line."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULSE")}
    env.update(PULSE_SERVER=f"unix:{tmp_path}/none")  # no sound server either
    result = subprocess.run([sys.executable, "-m", "madoguchi", "run", "--stages", "frontend", "--no-system-config"], capture_output=True, text=True, timeout=60, env=env, cwd=ROOT)
    assert result.returncode == 1, result
    lines = [line for line in result.stderr.splitlines() if line.startswith("madoguchi:")]
    assert len(lines) == 1 and "[mic_not_found]" in lines[0] and "Traceback" not in result.stderr


def test_run_without_the_speech_model_names_the_fix(tmp_path: Path) -> None:
    env = {**os.environ, "MADOGUCHI_MODELS_DIR": str(tmp_path / "empty-store")}
    result = subprocess.run([sys.executable, "-m", "madoguchi", "run", "--no-system-config", "--replay", str(DEMO / "counter-demo.flac")], capture_output=True, text=True, timeout=60, env=env, cwd=ROOT)
    assert result.returncode == 1, result
    lines = [line for line in result.stderr.splitlines() if line.startswith("madoguchi:")]
    assert len(lines) == 1 and "[model_missing]" in lines[0] and "madoguchi models fetch whisper-base-ggml-q8_0" in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_status_never_blocks_on_a_listener_that_stopped_reading(tmp_path: Path) -> None:
    silent = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)  # bound, never read
    silent.bind(str(tmp_path / "stuck.sock"))
    notifier = SystemdNotifier(str(tmp_path / "stuck.sock"))
    started = time.monotonic()
    for i in range(200):  # far beyond a Unix datagram queue (10 by default)
        notifier.notify(status=f"{i} utterances")
    assert time.monotonic() - started < 2.0
    assert b"STATUS=0 utterances" in silent.recv(4096)  # the first ones queued; the rest dropped, not waited for
    silent.close()


def test_a_failing_utterance_is_reported_and_the_service_goes_on(listener: NotifySocket, speech_store, tmp_path: Path) -> None:
    """ASR failing on one utterance (injected into the real recognizer) loses that one only. (Every pass
    over it fails: the early ones in its pauses and the final one, all starting with the same audio.)"""
    import soundfile

    from madoguchi.app.parts import build_interpreter, recording_source
    from madoguchi.asr.errors import AsrEngineError
    from madoguchi.config import load_settings

    audio, rate = soundfile.read(DEMO / "counter-demo.flac", dtype="float32")
    short = tmp_path / "first-8s.flac"
    soundfile.write(short, audio[: 8 * rate], rate)
    settings = load_settings(DEMO / "counter-demo.toml", system_layers=False)
    interpreter = build_interpreter(settings, speech_store.root)
    real, calls = interpreter.recognizer.transcribe, []

    def flaky(audio, **kwargs):
        if not kwargs.get("partial"):
            calls.append(audio[:1600].copy())
            if np.allclose(calls[-1], calls[0], atol=1e-3):  # the beam of a longer span differs by rounding
                raise AsrEngineError("whisper.cpp transcription failed (status -7)")
        return real(audio, **kwargs)

    interpreter.recognizer.transcribe = flaky
    out = io.StringIO()
    try:
        count = asyncio.run(serve(settings, recording_source(settings, short), out, SystemdNotifier(str(listener.path)), interpreter=interpreter))
    finally:
        interpreter.close()
    finals = [json.loads(line) for line in out.getvalue().splitlines() if '"partial"' not in line]
    assert count == len(finals) >= 2  # the utterances after the failure were still interpreted
    assert finals[0]["start_s"] > 1.5  # the first one (1.09 s) was the one lost
