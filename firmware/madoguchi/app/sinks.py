"""What receives the runner's events: one class per destination, assembled per command.

``run``: Printer (JSON lines), Faces, Placement, Telemetry, Systemd. ``replay``/``demo``: Printer,
Placement, Telemetry (with ``[mqtt]``), FrameRecorder (``--frames``). ``calibrate``:
CalibrationCollector.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from madoguchi import __version__
from madoguchi.app.records import caption_record, format_interpretation, format_utterance, interpretation_record, placement_hint, utterance_record
from madoguchi.app.runner import RunEvent, Runner, Sink, Stop
from madoguchi.config import Settings
from madoguchi.counter import CounterState
from madoguchi.events import AudioState, Caption, FrontendEvent, Interpretation, OperatorCalled, Problem, Utterance
from madoguchi.frontend.placement import HINT_CODE, LIVE_WINDOW_S, Placement, PlacementTracker
from madoguchi.interpreter.latency import LatencyTable
from madoguchi.sdnotify import SystemdNotifier
from madoguchi.telemetry.spool import SpoolError

if TYPE_CHECKING:
    from madoguchi.counter_ui import CounterUI
    from madoguchi.display.frames import Moment
    from madoguchi.telemetry.service import Telemetry

log = logging.getLogger(__name__)

class Printer(Sink):
    """One line per finished utterance on ``out`` (JSON, or the readable form); live captions in JSON
    only. ``summary``: the per-stage latency table at the end (replay)."""

    def __init__(self, out: TextIO, as_json: bool = True, summary: TextIO | None = None) -> None:
        self.out, self.as_json, self.summary = out, as_json, summary
        self.latencies = LatencyTable()
        self._stop_after = Stop.ALL

    async def start(self, runner: Runner) -> None:
        self._stop_after = runner.stop_after

    async def handle(self, event: RunEvent) -> None:
        if isinstance(event, Caption):
            if self.as_json:
                self._write(json.dumps(caption_record(event), ensure_ascii=False))
        elif isinstance(event, Interpretation):
            record = interpretation_record(event)
            self._write(json.dumps(record, ensure_ascii=False) if self.as_json else format_interpretation(record))
            self.latencies.add(event.timings_ms)
        elif isinstance(event, Utterance) and self._stop_after is Stop.FRONTEND:
            record = utterance_record(event)
            self._write(json.dumps(record, ensure_ascii=False) if self.as_json else format_utterance(record))

    def _write(self, line: str) -> None:
        self.out.write(line + "\n")
        self.out.flush()

    async def close(self) -> None:
        if self.summary is not None and self._stop_after is Stop.ALL and self.latencies.percentiles():
            self.summary.write(self.latencies.format() + "\n")


async def _cancel(task: asyncio.Task | None) -> None:
    """Stop a sink's background task (a watch loop) and wait until it has."""
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def session_prompt(settings: Settings, phrase: str | None = None) -> str | None:
    """Privacy mode: what the clerk's face says while no session is open (None: no privacy mode)."""
    start, japanese = settings.session.start, settings.languages.staff == "ja"
    if start == "button":
        return "ミュートボタンで通訳を始めます" if japanese else "Press the mute button to start interpreting"
    if start == "wake_phrase":
        said = phrase or "the wake phrase"
        return f"「{said}」で通訳を始めます" if japanese else f'Say "{said}" to start interpreting'
    return None


class Faces(Sink):
    """The two faces, the buttons and the LEDs (counter_ui.py). The buttons change the runner's
    counter state; the faces show what every event says, and the runner's last error."""

    def __init__(self, settings: Settings, pin_factory: object | None = None, prompt: str | None = None) -> None:
        self.settings, self.pin_factory, self.prompt = settings, pin_factory, prompt
        self.ui: CounterUI | None = None
        self._runner: Runner | None = None
        self._task: asyncio.Task | None = None

    async def start(self, runner: Runner) -> None:
        from madoguchi.counter_ui import CounterUI
        from madoguchi.display.faces import mic_level

        self._runner = runner
        self.ui = CounterUI(self.settings, counter=lambda: runner.counter, on_counter=runner.set_counter,
                            on_operator_call=lambda: runner.report(OperatorCalled("button")),
                            on_problem=lambda code, message: runner.report(Problem(code, message)), pin_factory=self.pin_factory)
        self.ui.open(asyncio.get_running_loop())
        if self.ui.faces is not None:
            self.ui.faces.set_session_prompt(self.prompt or session_prompt(self.settings))
        self.ui.mic_level = lambda: mic_level(runner.frontend.above_background_db)
        self.ui.broker = lambda: runner.box_state().get("broker", "off")
        self._task = asyncio.create_task(self.ui.run(), name="faces")

    async def handle(self, event: RunEvent) -> None:
        ui, runner = self.ui, self._runner
        assert ui is not None and runner is not None
        if isinstance(event, FrontendEvent):
            ui.heard(event)
        elif isinstance(event, (Interpretation, Caption)):
            ui.said(event)
        elif isinstance(event, CounterState):
            ui.show_counter(event)
        elif isinstance(event, (AudioState, Problem)):
            ui.set_error(runner.last_error)
        elif isinstance(event, Placement):
            ui.set_hint(HINT_CODE if event.off_sector else None)

    async def close(self) -> None:
        await _cancel(self._task)
        if self.ui is not None:
            self.ui.close()  # panels blank and GPIO released now, not at interpreter exit

    def status(self) -> dict[str, Any]:
        faces = self.ui.faces if self.ui is not None else None
        return {} if faces is None else {"panels": len(faces.panels)}


class PlacementWatch(Sink):
    """Whether most speech comes from outside both sides' sectors (frontend/placement.py). Live:
    checked every few seconds over the last minutes, said once when it starts and once when it is
    over (the log, and a Placement event the faces show). A recording: said once at the end."""

    def __init__(self, settings: Settings, live: bool, summary: TextIO | None = None, interval_s: float = 2.0) -> None:
        self.settings, self.live, self.summary, self.interval_s = settings, live, summary, interval_s
        self.tracker = PlacementTracker.for_settings(settings, LIVE_WINDOW_S) if live else PlacementTracker.for_settings(settings)
        self.verdict: Placement = self.tracker.verdict(0.0)  # replaced whole: health's thread reads it
        self._runner: Runner | None = None
        self._task: asyncio.Task | None = None

    async def start(self, runner: Runner) -> None:
        self._runner = runner
        if self.live:
            self._task = asyncio.create_task(self._watch(), name="placement")

    async def handle(self, event: RunEvent) -> None:
        if isinstance(event, FrontendEvent):
            self.tracker.heard(event)

    async def check(self) -> None:
        assert self._runner is not None
        before, self.verdict = self.verdict, self.tracker.verdict(self._runner.frontend.audio_s)
        if self.verdict.off_sector == before.off_sector:
            return
        if self.verdict.off_sector:
            log.warning("%s (stop the service first: calibrate needs the array)", placement_hint(self.settings, self.verdict))
        else:
            log.info("speech comes from the configured sides again")
        await self._runner.publish(self.verdict)

    async def _watch(self) -> None:
        while True:
            await self.check()
            await asyncio.sleep(self.interval_s)

    async def close(self) -> None:
        await _cancel(self._task)
        if self.live:
            await self.check()  # what the end of the audio showed, before the faces close
            return
        assert self._runner is not None
        self.verdict = self.tracker.verdict(self._runner.frontend.audio_s)
        if self.verdict.off_sector and self.summary is not None:
            self.summary.write(placement_hint(self.settings, self.verdict) + "\n")
            self.summary.flush()

    def status(self) -> dict[str, Any]:
        return {"placement": self.verdict.as_dict()}


class TelemetrySink(Sink):
    """Usage and events to the fleet over MQTT ([mqtt] host set). Usage is built from the
    Interpretation the counter was shown; a spool append (fsync) runs off the event loop."""

    def __init__(self, settings: Settings, layers: list, *, drain_s: float = 2.0, on_settings=None) -> None:
        self.settings, self.layers, self.drain_s, self.on_settings = settings, layers, drain_s, on_settings
        self.telemetry: Telemetry | None = None
        self._runner: Runner | None = None
        self._stop_after = Stop.ALL
        self._audio = AudioState("starting")

    async def start(self, runner: Runner) -> None:
        from madoguchi.frontend.vad import bundled_model_path
        from madoguchi.telemetry.service import Telemetry

        self._stop_after = runner.stop_after
        self._runner = runner
        models = [bundled_model_path().stem] + ([self.settings.asr.model_id, *self.settings.mt.models] if runner.stop_after is Stop.ALL else [])
        try:
            self.telemetry = Telemetry(self.settings, self.layers, models=models, box_state=runner.box_state, on_settings=self.on_settings)
        except SpoolError as err:  # a spool that cannot be made (a full disk) costs the fleet's view, not the counter
            log.error("no telemetry: %s", err)
            runner.report(Problem(err.code, str(err)))
            return
        self.telemetry.start()

    async def handle(self, event: RunEvent) -> None:
        if self.telemetry is None:
            return
        try:
            await self._record(event)
        except SpoolError as err:
            log.error("not spooled: %s", err)
            if not isinstance(event, Problem):
                assert self._runner is not None
                self._runner.report(Problem(err.code, str(err)))

    async def _record(self, event: RunEvent) -> None:
        telemetry = self.telemetry
        assert telemetry is not None
        loop = asyncio.get_running_loop()
        if isinstance(event, Interpretation):
            await loop.run_in_executor(None, telemetry.record_interpretation, event)
        elif isinstance(event, Utterance) and self._stop_after is Stop.FRONTEND:
            await loop.run_in_executor(None, telemetry.record_utterance, event)
        elif isinstance(event, Problem):
            await loop.run_in_executor(None, telemetry.record_event, "error", event.code, event.message)
        elif isinstance(event, OperatorCalled):
            await loop.run_in_executor(None, telemetry.record_event, "operator_call", event.source, "operator call button pressed")
        elif isinstance(event, AudioState):
            before, self._audio = self._audio, event
            if not event.healthy:
                await loop.run_in_executor(None, telemetry.record_event, "error", event.state, event.detail)
            elif before.state in ("mic_lost", "waiting_for_mic"):
                await loop.run_in_executor(None, telemetry.record_event, "recovered", "mic_back", event.detail)

    async def close(self) -> None:
        if self.telemetry is not None:  # what does not go within drain_s stays spooled for next time
            await asyncio.get_running_loop().run_in_executor(None, lambda: self.telemetry.stop(drain_s=self.drain_s))

    def status(self) -> dict[str, Any]:
        if self.telemetry is None:
            return {}
        return {"broker": "up" if self.telemetry.link.connected.is_set() else "down"}


class Systemd(Sink):
    """READY once every other sink is up, STATUS as things happen, WATCHDOG while the runner is
    alive (a hung ASR call stops it, so systemd restarts the service), STOPPING on a stop."""

    def __init__(self, notifier: SystemdNotifier) -> None:
        self.notifier = notifier
        self._runner: Runner | None = None
        self._task: asyncio.Task | None = None

    async def start(self, runner: Runner) -> None:
        self._runner = runner
        interval_s = self.notifier.watchdog_interval_s()
        if interval_s:
            self._task = asyncio.create_task(self._watchdog(interval_s), name="watchdog")
        self.notifier.notify(ready="1", status=f"madoguchi {__version__}: listening ({runner.settings.array.n_mics} mics)")
        log.info("madoguchi %s listening, config %s", __version__, runner.settings.digest())

    async def _watchdog(self, interval_s: float) -> None:
        assert self._runner is not None
        while True:
            if self._runner.alive():
                self.notifier.notify(watchdog="1")
            else:
                log.error("a stage is hung: not feeding the watchdog, so systemd restarts the service")
            await asyncio.sleep(interval_s)

    async def handle(self, event: RunEvent) -> None:
        runner = self._runner
        assert runner is not None
        if isinstance(event, Interpretation):
            self.notifier.notify(status=f"{runner.count} utterances; last: {event.side} {event.lang} in {event.timings_ms['latency_ms']:.0f} ms")
        elif isinstance(event, Utterance) and runner.stop_after is Stop.FRONTEND:
            self.notifier.notify(status=f"{runner.count} utterances; last: {event.side} at {event.azimuth_deg:.0f} deg")
        elif isinstance(event, AudioState):
            (log.info if event.healthy else log.warning)("audio %s%s", event.state, f": {event.detail}" if event.detail else "")
            self.notifier.notify(status=f"audio: {event.state}")
        elif isinstance(event, CounterState):
            self.notifier.notify(status=f"mode {event.mode}, resident language {event.resident_lang or 'auto'}"
                                        f"{', muted' if event.muted else ''}{', sides swapped' if event.swapped else ''}")

    def stopping(self) -> None:
        self.notifier.notify(stopping="1", status="stopping")

    async def close(self) -> None:
        await _cancel(self._task)


class FrameRecorder(Sink):
    """Every frame both faces would have shown, as PNGs and a contact sheet (``--frames``)."""

    def __init__(self, settings: Settings, out_dir: Path, end_s: float | None = None, summary: TextIO | None = None) -> None:
        self.settings, self.out_dir, self.end_s, self.summary = settings, out_dir, end_s, summary
        self.moments: list[Moment] = []

    async def handle(self, event: RunEvent) -> None:
        from madoguchi.display.frames import moment_of

        if isinstance(event, (FrontendEvent, Interpretation, Caption)):
            self.moments.append(moment_of(event))

    async def close(self) -> None:
        from madoguchi.display.frames import write_frames

        written = write_frames(self.settings, self.moments, self.out_dir, end_s=self.end_s)
        if self.summary is not None:
            self.summary.write(f"faces: {written.pairs} frame pairs in {written.directory}, contact sheet {written.contact_sheet}\n")


class CalibrationCollector(Sink):
    """The front end's events while one side speaks; stops the run after ``seconds`` of audio (live)."""

    def __init__(self, seconds: float | None = None, poll_s: float = 0.2) -> None:
        self.seconds, self.poll_s = seconds, poll_s
        self.events: list[FrontendEvent] = []
        self._task: asyncio.Task | None = None

    async def start(self, runner: Runner) -> None:
        if self.seconds is not None:
            self._task = asyncio.create_task(self._stop_after(runner), name="calibration")

    async def _stop_after(self, runner: Runner) -> None:
        while runner.frontend.audio_s < self.seconds:  # noqa: ASYNC110  # audio time advances on the capture thread: polled
            await asyncio.sleep(self.poll_s)
        runner.stop()

    async def handle(self, event: RunEvent) -> None:
        if isinstance(event, FrontendEvent):
            self.events.append(event)

    async def close(self) -> None:
        await _cancel(self._task)


class ThermalGuard(Sink):
    """Takes load off a hot or throttled Pi before its firmware does it erratically (thermal.py's
    policy): fewer ASR threads, said once per change in the log and carried in health. The smaller
    model the policy asks for when hot is reported, not loaded: swapping Whisper mid-session costs
    more than the threads it saves (``recommend_smaller_model`` in health says a site should)."""

    def __init__(self, settings: Settings, root: Path = Path("/"), interval_s: float = 10.0) -> None:
        from madoguchi.thermal import load_level

        self.settings, self.root, self.interval_s = settings, root, interval_s
        self.level = load_level(None, None, max_threads=settings.asr.threads)
        self._runner: Runner | None = None
        self._task: asyncio.Task | None = None

    async def start(self, runner: Runner) -> None:
        self._runner = runner
        self._task = asyncio.create_task(self._watch(), name="thermal")

    def check(self) -> None:
        from madoguchi import thermal

        assert self._runner is not None
        before = self.level
        self.level = thermal.load_level(thermal.cpu_temp_c(self.root), thermal.throttled(self.root), max_threads=self.settings.asr.threads, previous=before)
        if self.level == before:
            return
        (log.warning if self.level.level != "normal" else log.info)("load %s: %s; ASR on %d thread(s)", self.level.level, self.level.reason, self.level.asr_threads)
        self._runner.set_asr_threads(self.level.asr_threads)

    async def _watch(self) -> None:
        while True:
            self.check()
            await asyncio.sleep(self.interval_s)

    async def close(self) -> None:
        await _cancel(self._task)

    def status(self) -> dict[str, Any]:
        level = self.level
        return {"thermal": {"level": level.level, "asr_threads": level.asr_threads, "recommend_smaller_model": level.smaller_model, "reason": level.reason}}
