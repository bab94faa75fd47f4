"""The one session runner: every way the box runs (``run``, ``replay``, ``demo``, ``calibrate``) is
this runner with a source and a list of sinks.

It owns the capture thread (source → front end, app/capture.py), the interpreter worker
(app/stages.py), the counter's one state (the buttons' :class:`CounterState`: mute and swap for
capture, mode and language for the interpreter) and the box's one last error. Everything that
happens is one typed, frozen event (``RunEvent``), handed to every sink in order on the event
loop: the printer, the faces, telemetry, systemd, a frame recorder, a calibration collector.
A sink never talks to another; what it changes goes back through the runner (``set_counter``,
``report``, ``publish``), which tells everyone.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Iterable
from enum import Enum
from typing import TYPE_CHECKING, Any

from madoguchi.app.capture import Capture, Heard, Item, WakeListener
from madoguchi.app.parts import build_frontend
from madoguchi.app.stages import Stages
from madoguchi.audio.source import AudioSource
from madoguchi.config import Settings
from madoguchi.counter import CounterState
from madoguchi.events import AudioState, Caption, FrontendEvent, Interpretation, OperatorCalled, Problem, SessionChanged, Utterance
from madoguchi.frontend.pipeline import Frontend
from madoguchi.frontend.placement import Placement

if TYPE_CHECKING:
    from madoguchi.interpreter.stage import Interpreter

log = logging.getLogger(__name__)

HUNG_AFTER_S = 45.0  # one ASR/MT call this long is hung: the watchdog stops being fed (WatchdogSec=30 restarts it)
STALLED_AFTER_S = 10.0  # a capturing source that gave no audio this long is stuck
AUDIO_ERRORS = ("mic_lost", "waiting_for_mic")


class Stop(str, Enum):
    """Where the pipeline stops."""

    FRONTEND = "frontend"  # side detection: utterances, no models
    ALL = "all"  # ASR and translation too


RunEvent = FrontendEvent | Interpretation | Caption | AudioState | CounterState | SessionChanged | Problem | OperatorCalled | Placement


class Sink:
    """Receives every event of a run, in order, on the event loop. Override what you need; a sink
    that blocks (a spool's fsync, an SPI write) does it in an executor."""

    async def start(self, runner: Runner) -> None:
        """Before audio flows (open panels, connect); the runner is ready to be read."""

    async def handle(self, event: RunEvent) -> None:
        """One event; called in the order the runner saw them."""

    def stopping(self) -> None:
        """A stop was asked for (SIGTERM, the end of a recording): say so now, from the loop."""

    async def close(self) -> None:
        """After the last event (sinks close in reverse order of start)."""

    def status(self) -> dict[str, Any]:
        """What this sink adds to the box's state (health, the faces' status line)."""
        return {}


class Runner:
    """One run of the box: a source through the front end, and the interpreter unless ``stop`` is FRONTEND."""

    def __init__(self, settings: Settings, source: AudioSource, sinks: Iterable[Sink] = (), *, interpreter: Interpreter | None = None,
                 paced: bool = True, retry_s: float | None = None, frontend: Frontend | None = None, captions: bool | None = None,
                 hung_after_s: float = HUNG_AFTER_S, wake: WakeListener | None = None) -> None:
        """``wake``: privacy mode's wake-phrase listener (``[session] start = "wake_phrase"``)."""
        self.settings = settings
        self.interpreter = interpreter
        self.stop_after = Stop.ALL if interpreter is not None else Stop.FRONTEND
        self.sinks = list(sinks)
        self.frontend = frontend or build_frontend(settings)
        self.capture = Capture(source, self.frontend, self._post, retry_s=retry_s, paced=paced, consumer=interpreter is not None)
        # Privacy mode starts closed: "muted" until a session opens (the button, or the wake phrase).
        self.counter = CounterState(mode=settings.display.mode, muted=settings.session.private)
        if settings.session.private:
            self.capture.private_idle_s = settings.session.idle_s
            self.capture.wake = wake
        self.audio_state = AudioState("starting")
        self.last_error: str | None = None
        self.count = 0  # finished utterances (interpreted, or from the front end alone)
        self.hung_after_s = hung_after_s
        self._captions = (paced and settings.asr.partials) if captions is None else captions
        self._stages: Stages | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[Item] | None = None
        self._tasks: set[asyncio.Task] = set()

    # -- what sinks and the outside may do ----------------------------------------------------------
    def set_counter(self, counter: CounterState, by: str = "button", at_s: float | None = None) -> None:
        """The counter's new state, for capture (mute, swap), the interpreter (mode, language) and every
        sink. In privacy mode un-muting opens a session and muting closes it (``by`` says who did)."""
        before, self.counter = self.counter, counter
        self.capture.counter = counter
        if self.interpreter is not None:
            self.interpreter.counter = counter
        self._spawn(self.publish(counter))
        if self.settings.session.private and before.muted != counter.muted:
            change = SessionChanged(not counter.muted, by, round(self.frontend.audio_s, 3) if at_s is None else at_s)
            log.info("session %s by %s at %.2f s", "opened" if change.open else "closed", by, change.at_s)
            self._spawn(self.publish(change))

    def set_asr_threads(self, threads: int) -> None:
        """How many threads ASR may use from the next utterance on (a hot Pi gets fewer)."""
        if self.interpreter is not None:
            self.interpreter.recognizer.threads = threads

    def report(self, event: Problem | OperatorCalled) -> None:
        """A problem the box survives (it becomes the last error), or an operator call, for every sink."""
        if isinstance(event, Problem):
            self.last_error = event.code
        self._spawn(self.publish(event))

    def stop(self) -> None:
        """Stop reading audio (SIGTERM, a calibration's time is up); what was heard is still finished."""
        if not self.capture.stopping.is_set():
            log.info("stop requested; closing the audio source")
            self._halt()

    def _halt(self) -> None:
        if self.capture.stopping.is_set():
            return
        for sink in self.sinks:
            sink.stopping()
        self.capture.stop()

    def alive(self, now: float | None = None) -> bool:
        """Every thread is making progress (the watchdog's question): no ASR/MT call hung, and a
        capturing source still gives audio. Waiting for an unplugged mic is alive: it is retrying."""
        now = time.monotonic() if now is None else now
        stages = self._stages
        if stages is not None and stages.busy_since is not None and now - stages.busy_since > self.hung_after_s:
            return False
        last_block = self.capture.last_block_wall
        return not (self.audio_state.healthy and last_block is not None and now - last_block > STALLED_AFTER_S)

    def box_state(self) -> dict[str, Any]:
        """The box's state for health and the status line (read from telemetry's thread: built from immutable values)."""
        counter = self.counter
        state: dict[str, Any] = {
            "audio_state": self.audio_state.state, "last_error": self.last_error, "mic_level_dbfs": self.frontend.background_dbfs,
            "counter": {"mode": counter.mode, "resident_lang": counter.resident_lang, "muted": counter.muted, "swapped": counter.swapped},
        }
        if self.settings.session.private:  # privacy mode: whether speech is being interpreted now
            state["session"] = {"start": self.settings.session.start, "open": not counter.muted}
        for sink in self.sinks:
            state.update(sink.status())
        return state

    async def publish(self, event: RunEvent) -> None:
        for sink in self.sinks:
            await sink.handle(event)

    # -- the run ---------------------------------------------------------------------------------------
    async def run(self) -> int:
        """Until the source ends or ``stop``; returns the number of finished utterances. What was heard
        before a stop is still interpreted and handed to the sinks."""
        loop = self._loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue()
        if self.interpreter is not None:
            self._stages = Stages(self.interpreter, self._output, self.capture, captions=self._captions, on_error=self._stage_failed)
        started: list[Sink] = []
        worker: asyncio.Future | None = None
        try:
            for sink in self.sinks:
                await sink.start(self)
                started.append(sink)
            self.set_counter(self.counter)  # every part starts from the same state
            if self._stages is not None:
                self._stages.start()
            worker = loop.run_in_executor(None, self.capture.run)
            await self._drain()
        finally:
            self._halt()
            if worker is not None:
                await worker
            if self._stages is not None:
                await self._stages.finish()
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
            for sink in reversed(started):
                await sink.close()
        return self.count

    def _post(self, item: Item) -> None:  # the capture thread
        assert self._loop is not None and self._queue is not None
        self._loop.call_soon_threadsafe(self._queue.put_nowait, item)

    def _spawn(self, work) -> None:
        if self._loop is None:  # before run(): the sinks get the state when they start
            work.close()
            return
        task = self._loop.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _drain(self) -> None:
        assert self._queue is not None
        while (item := await self._queue.get()) is not None:
            if isinstance(item, BaseException):
                if self.capture.stopping.is_set():
                    return
                self.last_error = getattr(item, "code", "internal_error")
                await self.publish(Problem(self.last_error, str(item)))
                raise item
            if isinstance(item, SessionChanged):  # the capture thread heard the wake phrase, or silence for idle_s
                self.set_counter(dataclasses.replace(self.counter, muted=not item.open), by=item.by, at_s=item.at_s)
                continue
            if isinstance(item, AudioState):
                if item != self.audio_state:  # retries repeat the same state: say it once
                    self.audio_state = item
                    if not item.healthy:
                        self.last_error = item.state
                    elif self.last_error in AUDIO_ERRORS:  # the mic is back: that error is over
                        self.last_error = None
                    await self.publish(item)
                continue
            await self._heard(item)

    async def _heard(self, heard: Heard) -> None:
        event = heard.event
        if self._stages is None and isinstance(event, Utterance):
            self.count += 1  # before the sinks hear of it: STATUS says "1 utterances" for the first
        await self.publish(event)
        if self._stages is not None and self._stages.takes(event):
            self._stages.submit(heard)

    async def _output(self, output: Interpretation | Caption) -> None:
        if isinstance(output, Interpretation):
            self.count += 1
        await self.publish(output)

    async def _stage_failed(self, err: Exception) -> None:
        self.last_error = getattr(err, "code", "internal_error")
        await self.publish(Problem(self.last_error, str(err)))
