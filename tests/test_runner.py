"""The session runner: one counter state for every part, privacy mode's sessions, the watchdog's question.

Real parts: the bundled 4-mic counter recording, Silero, Whisper base through whisper.cpp.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from pathlib import Path

import pytest

from madoguchi.app.parts import build_interpreter, recording_source
from madoguchi.app.runner import Runner, Sink, Stop
from madoguchi.config import SessionSettings, load_settings
from madoguchi.counter import CounterState
from madoguchi.events import Interpretation, SessionChanged, Utterance

DEMO = Path(__file__).resolve().parents[1] / "firmware" / "madoguchi" / "data" / "demo"
SETTINGS = load_settings(DEMO / "counter-demo.toml", system_layers=False)
PRIVATE = dataclasses.replace(SETTINGS, session=SessionSettings(start="button", idle_s=30.0))


class Log(Sink):
    """Every event the runner hands out, in order."""

    def __init__(self) -> None:
        self.events: list = []

    async def handle(self, event) -> None:
        self.events.append(event)

    def of(self, kind: type) -> list:
        return [e for e in self.events if isinstance(e, kind)]


class PhraseAt:
    """A wake-phrase listener that hears the phrase once, when the recording reaches ``at_s`` (this file
    tests the session gate; tests/test_wake.py tests the real detector on spoken phrases)."""

    def __init__(self, at_s: float) -> None:
        self.at_samples, self.seen, self.fired = int(at_s * 16000), 0, False

    def __call__(self, mono) -> object | None:
        self.seen += len(mono)
        if self.fired or self.seen < self.at_samples:
            return None
        self.fired = True
        return "heard"


def run(settings, sinks, interpreter=None, wake=None) -> Runner:
    runner = Runner(settings, recording_source(settings, DEMO / "counter-demo.flac"), sinks, interpreter=interpreter, paced=False, wake=wake)
    asyncio.run(runner.run())
    return runner


def test_the_front_end_alone_stops_at_utterances() -> None:
    log = Log()
    runner = run(SETTINGS, [log])
    assert runner.stop_after is Stop.FRONTEND
    assert runner.count == len(log.of(Utterance)) >= 10
    assert log.of(CounterState) == [CounterState(mode=SETTINGS.display.mode)]  # every sink starts from the runner's one state


def test_privacy_mode_starts_closed_and_a_session_opens_on_the_phrase() -> None:
    """Nothing is heard before the session starts; after it, the same utterances as without privacy mode."""
    plain, private = Log(), Log()
    run(SETTINGS, [plain])
    runner = run(dataclasses.replace(PRIVATE, session=SessionSettings(start="wake_phrase", idle_s=30.0)), [private], wake=PhraseAt(12.0))
    (opened,) = private.of(SessionChanged)
    assert opened.open and opened.by == "wake_phrase" and 12.0 <= opened.at_s < 12.2
    assert private.of(CounterState)[0].muted and not runner.counter.muted
    later = [(u.start_s, u.end_s, u.side) for u in plain.of(Utterance) if u.start_s > opened.at_s]
    assert [(u.start_s, u.end_s, u.side) for u in private.of(Utterance)] == later and len(later) >= 5


def test_a_session_closes_after_idle_s_without_speech(tmp_path: Path) -> None:
    """The demo, 8 s of its own room noise, the demo again: the session the phrase opened closes
    5 s into the quiet, and the second conversation (no phrase) is not heard."""
    import numpy as np
    import soundfile as sf

    audio, rate = sf.read(DEMO / "counter-demo.flac", dtype="float32")
    quiet = np.tile(audio[: int(0.8 * rate)], (10, 1))  # before the first turn: the room alone
    recording = tmp_path / "twice.flac"
    sf.write(recording, np.concatenate([audio, quiet, audio]), rate)
    log = Log()
    settings = dataclasses.replace(PRIVATE, session=SessionSettings(start="wake_phrase", idle_s=5.0))
    runner = Runner(settings, recording_source(settings, recording), [log], paced=False, wake=PhraseAt(0.5))
    asyncio.run(runner.run())
    opened, closed = log.of(SessionChanged)
    assert (opened.open, opened.by, closed.open, closed.by) == (True, "wake_phrase", False, "idle")
    last_speech = max(u.end_s for u in log.of(Utterance))
    assert last_speech + 5.0 <= closed.at_s < last_speech + 6.5 and closed.at_s < len(audio) / rate + 8.0
    assert runner.counter.muted and all(u.start_s < closed.at_s for u in log.of(Utterance))


@pytest.fixture(scope="module")
def interpreter(speech_store):
    interpreter = build_interpreter(SETTINGS, speech_store.root)
    yield interpreter
    interpreter.close()


def test_privacy_mode_gives_no_text_before_the_session_and_the_same_text_after(interpreter) -> None:
    """The issue's bar: a replayed conversation in privacy mode."""
    plain, private = Log(), Log()
    run(SETTINGS, [plain], interpreter)
    interpreter.session_lang = None  # a new resident: as a box that just started
    run(dataclasses.replace(PRIVATE, session=SessionSettings(start="wake_phrase", idle_s=30.0)), [private], interpreter, wake=PhraseAt(12.0))
    (opened,) = private.of(SessionChanged)
    texts = [(r.utterance.start_s, r.side, r.text) for r in private.of(Interpretation)]
    assert texts and all(start > opened.at_s for start, _, _ in texts)
    assert texts == [(r.utterance.start_s, r.side, r.text) for r in plain.of(Interpretation) if r.utterance.start_s > opened.at_s]


def test_a_hung_asr_call_makes_the_runner_say_it_is_not_alive(interpreter) -> None:
    """The watchdog's question: a transcribe call that never returns (injected) is seen within hung_after_s."""
    release = threading.Event()
    answers: list[bool] = []
    original = interpreter.recognizer.transcribe

    def hangs(*args, **kwargs):
        release.wait(30)
        return original(*args, **kwargs)

    class Watch(Sink):
        async def start(self, runner: Runner) -> None:
            self.task = asyncio.create_task(self.watch(runner))

        async def watch(self, runner: Runner) -> None:
            while True:
                answers.append(runner.alive())
                if not answers[-1]:
                    release.set()  # seen: let the call return so the run can end
                await asyncio.sleep(0.1)

        async def close(self) -> None:
            self.task.cancel()

    interpreter.recognizer.transcribe = hangs
    try:
        started = time.monotonic()
        runner = Runner(SETTINGS, recording_source(SETTINGS, DEMO / "counter-demo.flac"), [Watch()], interpreter=interpreter, paced=False, hung_after_s=1.0)
        asyncio.run(runner.run())
    finally:
        interpreter.recognizer.transcribe = original
    assert answers[0] and False in answers, "never said it was hung"
    assert time.monotonic() - started < 120


def fake_pi(root: Path, temp_c: float, throttled: int = 0) -> Path:
    zone = root / "sys/class/thermal/thermal_zone0"
    zone.mkdir(parents=True, exist_ok=True)
    (zone / "type").write_text("cpu-thermal\n")
    (zone / "temp").write_text(f"{int(temp_c * 1000)}\n")
    firmware = root / "sys/devices/platform/soc/soc:firmware"
    firmware.mkdir(parents=True, exist_ok=True)
    (firmware / "get_throttled").write_text(f"{throttled:x}\n")
    return root


def test_a_hot_or_throttled_pi_gets_fewer_asr_threads_and_health_says_so(interpreter, tmp_path: Path) -> None:
    from madoguchi.app.sinks import ThermalGuard

    settings = dataclasses.replace(SETTINGS, asr=dataclasses.replace(SETTINGS.asr, threads=4))
    guard = ThermalGuard(settings, root=fake_pi(tmp_path, 60.0))
    runner = Runner(settings, recording_source(settings, DEMO / "counter-demo.flac"), [guard], interpreter=interpreter)
    guard._runner = runner  # as start() does, without running the audio
    original = interpreter.recognizer.threads
    try:
        guard.check()
        assert runner.box_state()["thermal"]["level"] == "normal"
        fake_pi(tmp_path, 86.0)
        guard.check()
        assert interpreter.recognizer.threads == 1 and runner.box_state()["thermal"] == {
            "level": "critical", "asr_threads": 1, "recommend_smaller_model": True, "reason": runner.box_state()["thermal"]["reason"]}
        fake_pi(tmp_path, 70.0, throttled=0x50005)  # cool again, but under-voltage and throttled now
        guard.check()
        assert runner.box_state()["thermal"]["level"] == "hot" and interpreter.recognizer.threads == 2
        fake_pi(tmp_path, 60.0, throttled=0x50000)  # only history: back to normal
        guard.check()
        assert runner.box_state()["thermal"]["level"] == "normal" and interpreter.recognizer.threads == 4
    finally:
        interpreter.recognizer.threads = original
