"""``madoguchi run``: the box's service, live capture through the whole pipeline under systemd.

One asyncio loop owns the process: a worker thread captures and runs the front end (blocking
PortAudio reads and numpy stay off the loop) and posts events back; ASR and MT run on their own
thread (interpreter/pipeline.py); the loop prints results, reports usage, keeps systemd informed
(READY, STATUS, WATCHDOG) and stops everything cleanly on SIGTERM or SIGINT.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
from collections.abc import Callable
from typing import TYPE_CHECKING, TextIO

from madoguchi import __version__
from madoguchi.audio.source import AudioSource
from madoguchi.config import Settings
from madoguchi.controls.counter import CounterState
from madoguchi.counter_ui import CounterUI
from madoguchi.display.faces import mic_level
from madoguchi.events import Caption, FrontendEvent, Interpretation, Utterance
from madoguchi.frontend.pipeline import Frontend
from madoguchi.frontend.placement import HINT_CODE, LIVE_WINDOW_S, Placement, PlacementTracker
from madoguchi.frontend.vad import bundled_model_path
from madoguchi.interpreter.pipeline import AudioState, Capture, Item, Stages
from madoguchi.replay import build_frontend, caption_record, interpretation_record, placement_hint, usage_details, utterance_record
from madoguchi.sdnotify import SystemdNotifier

if TYPE_CHECKING:
    from madoguchi.interpreter.stage import Interpreter

log = logging.getLogger(__name__)


async def _report_audio_state(state: AudioState, previous: AudioState, box: dict, notifier: SystemdNotifier, telemetry: object | None) -> None:
    """Log, STATUS and (with telemetry) an error event on loss, a recovered event when it is back."""
    healthy = state.state == "capturing"
    (log.info if healthy else log.warning)("audio %s%s", state.state, f": {state.detail}" if state.detail else "")
    notifier.notify(status=f"audio: {state.state}")
    box["audio_state"] = state.state
    if not healthy:
        box["last_error"] = state.state
    event = ("error", state.state) if not healthy else ("recovered", "mic_back") if previous.state in ("mic_lost", "waiting_for_mic") else None
    if telemetry is not None and event is not None:
        await asyncio.get_running_loop().run_in_executor(None, telemetry.record_event, *event, state.detail)


class _PlacementNotice:
    """Say it once when most speech of the last minutes came from outside both sides (the log and the
    faces' status line; health carries the verdict itself), and once when that is over."""

    def __init__(self, settings: Settings, frontend: Frontend, ui: CounterUI) -> None:
        self.settings, self.frontend, self.ui = settings, frontend, ui
        self.tracker = PlacementTracker.for_settings(settings, LIVE_WINDOW_S)
        self.verdict: Placement = self.tracker.verdict(0.0)  # replaced whole: health's thread reads it
        self.shown = False

    def heard(self, event: FrontendEvent) -> None:
        self.tracker.heard(event)

    def check(self) -> None:
        self.verdict = self.tracker.verdict(self.frontend.audio_s)
        if self.verdict.off_sector == self.shown:
            return
        self.shown = self.verdict.off_sector
        if self.shown:
            log.warning("%s (stop the service first: calibrate needs the array)", placement_hint(self.settings, self.verdict))
        else:
            log.info("speech comes from the configured sides again")
        self.ui.set_hint(HINT_CODE if self.shown else None)

    async def run(self, interval_s: float = 2.0) -> None:
        while True:
            self.check()
            await asyncio.sleep(interval_s)


async def _watchdog(notifier: SystemdNotifier, interval_s: float) -> None:
    while True:
        notifier.notify(watchdog="1")
        await asyncio.sleep(interval_s)


async def serve(settings: Settings, source: AudioSource, out: TextIO, notifier: SystemdNotifier | None = None, wait_for_device: bool = False,
                layers: list | None = None, interpreter: Interpreter | None = None, pin_factory: object | None = None) -> int:
    """Run until the source ends or a stop signal arrives; returns the number of utterances.

    Without an ``interpreter`` (``--stages frontend``) utterances are reported after side
    detection. With ``[mqtt] host`` set, usage and events go to the fleet (``layers``: the parsed
    config files, which remote set_config commands extend). The faces and buttons
    (counter_ui.py) follow ``[display]`` and ``[controls]``; ``pin_factory`` is gpiozero's (tests
    pass its MockFactory).
    """
    notifier = notifier or SystemdNotifier()
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Item] = asyncio.Queue()
    frontend = build_frontend(settings)
    box = {"audio_state": "starting", "last_error": None}

    ui: CounterUI | None = None  # opened once telemetry can report what fails
    placement: _PlacementNotice | None = None

    def box_state() -> dict[str, object]:  # read by telemetry's health thread
        heard = {"mic_level_dbfs": frontend.background_dbfs, **({"placement": placement.verdict.as_dict()} if placement is not None else {})}
        if ui is None or ui.faces is None:
            return {**box, **heard}
        counter = ui.counter
        return {**box, **heard, "panels": len(ui.faces.panels),
                "counter": {"mode": counter.mode, "resident_lang": counter.resident_lang, "muted": counter.muted, "swapped": counter.swapped}}

    def apply_live(new: Settings) -> None:
        logging.getLogger().setLevel(new.log.level)

    telemetry = None
    if settings.mqtt.enabled:
        from madoguchi.telemetry.service import Telemetry

        models = [bundled_model_path().stem] + ([settings.asr.model_id, *settings.mt.models] if interpreter is not None else [])
        telemetry = Telemetry(settings, layers or [], models=models, box_state=box_state, on_settings=apply_live)
        telemetry.start()

    post: Callable[[Item], None] = lambda item: loop.call_soon_threadsafe(queue.put_nowait, item)  # noqa: E731
    retry_s = settings.audio.reopen_interval_s if wait_for_device else None
    capture = Capture(source, frontend, post, retry_s=retry_s, paced=True)
    count = 0

    def record_event(kind: str, code: str, message: str = "") -> None:
        if telemetry is not None:  # a spool append (fsync): off the event loop
            loop.run_in_executor(None, telemetry.record_event, kind, code, message)

    def on_counter(counter: CounterState) -> None:
        capture.counter = counter
        if interpreter is not None:
            interpreter.counter = counter
        notifier.notify(status=f"mode {counter.mode}, resident language {counter.resident_lang or 'auto'}{', muted' if counter.muted else ''}{', sides swapped' if counter.swapped else ''}")

    def on_problem(code: str, message: str) -> None:
        box["last_error"] = code
        record_event("error", code, message)

    ui = CounterUI(settings, on_counter=on_counter, on_operator_call=lambda: record_event("operator_call", "button", "operator call button pressed"),
                   on_problem=on_problem, pin_factory=pin_factory)
    ui.open(loop)
    on_counter(ui.counter)
    ui.mic_level = lambda: mic_level(frontend.above_background_db)
    if telemetry is not None:
        ui.broker = lambda: "up" if telemetry.link.connected.is_set() else "down"

    async def report(output: Interpretation | Caption) -> None:
        nonlocal count
        ui.said(output)
        if isinstance(output, Caption):
            out.write(json.dumps(caption_record(output), ensure_ascii=False) + "\n")
            out.flush()
            return
        count += 1
        record = interpretation_record(output)
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
        out.flush()
        if telemetry is not None:  # a spool append (fsync): off the event loop
            details = usage_details(record, output.timings_ms)
            await loop.run_in_executor(None, lambda: telemetry.record_utterance(output.utterance, **details))
        notifier.notify(status=f"{count} utterances; last: {output.side} {output.lang} in {output.timings_ms['latency_ms']:.0f} ms")

    async def report_error(err: Exception) -> None:
        box["last_error"] = getattr(err, "code", "internal_error")
        ui.set_error(box["last_error"])
        if telemetry is not None:
            await loop.run_in_executor(None, telemetry.record_event, "error", box["last_error"], str(err))

    stages = Stages(interpreter, report, capture, captions=settings.asr.partials, on_error=report_error) if interpreter is not None else None

    def stop() -> None:
        if not capture.stopping.is_set():
            log.info("stop requested; closing the audio source")
            notifier.notify(stopping="1", status="stopping")
            capture.stop()

    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not in the main thread (tests)
            loop.add_signal_handler(sig, stop)
    source.on_state = lambda state: post(AudioState(state))
    if stages is not None:
        stages.start()
    worker = loop.run_in_executor(None, capture.run)
    watchdog_s = notifier.watchdog_interval_s()
    watchdog = asyncio.create_task(_watchdog(notifier, watchdog_s)) if watchdog_s else None
    ui_task = asyncio.create_task(ui.run(), name="faces")
    placement = _PlacementNotice(settings, frontend, ui)
    placement_task = asyncio.create_task(placement.run(), name="placement")
    notifier.notify(ready="1", status=f"madoguchi {__version__}: listening ({settings.array.n_mics} mics)")
    log.info("madoguchi %s listening, config %s", __version__, settings.digest())
    audio_state = AudioState("starting")
    try:
        while (item := await queue.get()) is not None:
            if isinstance(item, BaseException):
                if capture.stopping.is_set():
                    break
                if telemetry is not None:
                    await loop.run_in_executor(None, telemetry.record_event, "error", getattr(item, "code", "internal_error"), str(item))
                raise item
            if isinstance(item, AudioState):
                if item != audio_state:  # retries repeat the same state: say it once
                    await _report_audio_state(item, audio_state, box, notifier, telemetry)
                    ui.set_error(None if item.state == "capturing" else item.state)
                audio_state = item
                continue
            ui.heard(item.event)
            placement.heard(item.event)
            if stages is not None and stages.takes(item.event):
                stages.submit(item)
            elif isinstance(item.event, Utterance):
                count += 1
                out.write(json.dumps(utterance_record(item.event)) + "\n")
                out.flush()
                if telemetry is not None:  # a spool append (fsync): off the event loop
                    await loop.run_in_executor(None, telemetry.record_utterance, item.event)
                notifier.notify(status=f"{count} utterances; last: {item.event.side} at {item.event.azimuth_deg:.0f} deg")
    finally:
        stop()
        if watchdog:
            watchdog.cancel()
        placement_task.cancel()
        await worker
        placement.check()  # what the end of a recording (--replay) showed, before the faces close
        if stages is not None:
            await stages.finish()  # what was heard before the stop is still interpreted and counted
        ui_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ui_task
        ui.close()  # panels blank and GPIO released now, not at interpreter exit
        if telemetry is not None:
            await loop.run_in_executor(None, telemetry.stop)
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
    return count
