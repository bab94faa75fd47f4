"""ASR and MT as one asyncio task: ``Stages`` takes each utterance through the interpreter on its
own single worker thread (the models are loaded once and never used from two threads), and, only
while that thread would otherwise idle, captions the utterance still being spoken.

Early work: when the front end says the talker paused (``SpeechPaused``), the utterance as it
stands is interpreted at once, without committing anything to the session. If the final
utterance is that one, its result is taken (the words were ready before the hangover ended);
otherwise it is dropped and the final one is interpreted as usual.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from madoguchi.app.capture import Capture, Heard
from madoguchi.events import Caption, FrontendEvent, Interpretation, SpeechPaused, SpeechSoFar, Utterance

if TYPE_CHECKING:
    from madoguchi.interpreter.stage import Interpreter

log = logging.getLogger(__name__)

Output = Interpretation | Caption


@dataclass
class _EarlyWork:
    """A paused utterance being interpreted before anyone knows it is final."""

    paused: SpeechPaused
    paused_wall: float
    work: asyncio.Future
    done_wall: float = 0.0

    def __post_init__(self) -> None:
        self.work.add_done_callback(lambda _: setattr(self, "done_wall", time.monotonic()))

    def timings(self, result: Interpretation, final: Utterance) -> dict[str, float]:
        """The final's timings: its words were ready at the final decision or when the early work
        ended, whichever came later, counted in audio time from the end of speech. (Live, audio and
        wall time run together, so this is the wait a counter sees, queueing included; an unpaced
        replay runs the early work alone and gets the same figure.)"""
        vad_ms = (final.decided_at_s - final.end_s) * 1000.0
        early_ms = (self.paused.utterance.decided_at_s - final.end_s) * 1000.0 + (self.done_wall - self.paused_wall) * 1000.0
        return {**result.timings_ms, "vad_ms": round(vad_ms, 1), "latency_ms": round(max(vad_ms, early_ms), 1)}


class Stages:
    """ASR and MT for each utterance, in order, on one dedicated thread; captions only when idle."""

    def __init__(self, interpreter: Interpreter, on_output: Callable[[Output], Awaitable[None]], capture: Capture | None = None, captions: bool = False,
                 on_error: Callable[[Exception], Awaitable[None]] | None = None) -> None:
        self.interpreter = interpreter
        self._on_output = on_output
        self._on_error = on_error
        self._capture = capture
        self._captions = captions
        self._queue: asyncio.Queue[Heard | None] = asyncio.Queue()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="interpreter")
        self._interval_s = interpreter.settings.asr.partial_interval_s
        self._last_caption = 0.0
        self._task: asyncio.Task[None] | None = None
        self._early: _EarlyWork | None = None
        self.busy_since: float | None = None  # when the worker's current job began (None: idle); a hung call shows here

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="interpreter")
        self._want_caption()

    @staticmethod
    def takes(event: FrontendEvent) -> bool:
        """The front-end events the stages work on (the rest is for the faces and the log)."""
        return isinstance(event, (Utterance, SpeechPaused, SpeechSoFar))

    def submit(self, heard: Heard) -> None:
        self._queue.put_nowait(heard)

    async def finish(self) -> None:
        """Interpret what is queued, then stop (end of a recording, or shutdown)."""
        self._queue.put_nowait(None)
        if self._task is not None:
            await self._task
        self._executor.shutdown(wait=True)

    def _want_caption(self) -> None:
        if self._captions and self._capture is not None and self._queue.empty():
            self._capture.caption_wanted.set()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while (heard := await self._queue.get()) is not None:
            event = heard.event
            if isinstance(event, SpeechSoFar):
                # A final result waiting, or a caption too recent: skip; finals never wait for captions.
                if self._queue.empty() and time.monotonic() - self._last_caption >= self._interval_s:
                    caption = await self._attempt(event, self.interpreter.caption, event)
                    self._last_caption = time.monotonic()
                    if caption is not None:
                        await self._on_output(caption)
                loop.call_later(self._interval_s, self._want_caption)
            elif isinstance(event, SpeechPaused):
                await self._start_early(heard, event)
            elif isinstance(event, Utterance):
                try:
                    result = await self._early_result(event)
                    if result is None:
                        result = await self._attempt(event, self.interpreter.interpret, event, heard.wall_s)
                finally:
                    if self._capture is not None:
                        self._capture.handled()
                if result is not None:
                    await self._on_output(result)
                self._want_caption()

    async def _start_early(self, heard: Heard, paused: SpeechPaused) -> None:
        """Interpret a paused utterance now, without committing it to the session."""
        work = asyncio.ensure_future(self._attempt(paused, functools.partial(self.interpreter.interpret, commit=False), paused.utterance, heard.wall_s))
        self._early = _EarlyWork(paused, heard.wall_s, work)
        try:
            if self._capture is not None and not self._capture.paced:
                await work  # an unpaced replay runs the early work alone, as a live counter would
        finally:
            if self._capture is not None:
                self._capture.handled()

    async def _early_result(self, final: Utterance) -> Interpretation | None:
        """The early result when ``final`` is the paused utterance (committed now), else None."""
        early, self._early = self._early, None
        if early is None:
            return None
        result = await early.work  # even when not ours: the worker is one thread, it must finish first
        if result is None or not early.paused.confirmed_by(final):
            return None
        self.interpreter.commit(result)
        return dataclasses.replace(result, utterance=final, timings_ms=early.timings(result, final))

    async def _attempt(self, event: Utterance | SpeechSoFar, work: Callable, *args: object):
        """One utterance's work on the worker thread. A failure loses that utterance, not the service:
        it is logged with its traceback and reported (on_error: the fleet's error event)."""
        def timed() -> object:
            self.busy_since = time.monotonic()
            try:
                return work(*args)
            finally:
                self.busy_since = None

        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, timed)
        except Exception as err:
            log.exception("interpreting the utterance at %.2f s failed", event.start_s)
            if self._on_error is not None:
                await self._on_error(err)
            return None
