"""ASR and MT as one asyncio task: ``Stages`` takes each utterance through the interpreter on its
own single worker thread (the models are loaded once and never used from two threads), and, only
while that thread would otherwise idle, captions the utterance still being spoken.

Early work: when the front end says the talker paused (``SpeechPaused``), the utterance as it
stands is interpreted at once, without committing anything to the session. If the final
utterance is that one, its result is taken (the words were ready before the hangover ended);
otherwise it is dropped and the final one is interpreted as usual. Murmur can make the talker
seem to go on and pause again; every pause of the open utterance is kept, and one whose span the
final has (or the new pause has: then nothing is decoded again) stands, however long ago it was.

Except for a whole reply ("Yes.", "そうです。", "かしこまりました。", ``policy.is_standalone_reply``):
that is shown as soon as its words are ready, as a record of its own. If the talker goes on
after it, the rest of the utterance, from the pause on, is the next record, not the reply again
with the next sentence glued to it. So are paused words that settled (``SpeechPaused.settled``:
the front end heard only murmur for a hangover after them while it held the utterance open).
Early words that stop mid-sentence (``policy.is_unfinished``) ask the front end, through the
capture, to hold the utterance open longer for the rest.
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
from madoguchi.interpreter.policy import is_standalone_reply, is_unfinished

if TYPE_CHECKING:
    from madoguchi.interpreter.stage import Interpreter

log = logging.getLogger(__name__)

Output = Interpretation | Caption


# The rest of an utterance after a reply shown on its own starts this long before the pause was
# said: the talker resumed after it, and Whisper wants a little lead-in before the first word.
RESUME_LEAD_S = 0.1
# Less speech than this after the reply (up to the utterance's end) is not the talker going on.
MIN_REST_S = 0.2


@dataclass
class _EarlyWork:
    """A paused utterance being interpreted before anyone knows it is final."""

    paused: SpeechPaused
    paused_wall: float
    work: asyncio.Future | None = None  # resolves to the Interpretation (None: it failed)
    done_wall: float = 0.0
    shown: bool = False  # a whole reply, already shown as a record of its own

    def timings(self, result: Interpretation, final: Utterance) -> dict[str, float]:
        """The final's timings: its words were ready at the final decision or when the early work
        ended, whichever came later, counted in audio time from the end of speech. (Live, audio and
        wall time run together, so this is the wait a counter sees, queueing included; an unpaced
        replay runs the early work alone and gets the same figure.)"""
        vad_ms = (final.decided_at_s - final.end_s) * 1000.0
        early_ms = (self.paused.utterance.decided_at_s - final.end_s) * 1000.0 + (self.done_wall - self.paused_wall) * 1000.0
        return {**result.timings_ms, "vad_ms": round(vad_ms, 1), "latency_ms": round(max(vad_ms, early_ms), 1)}

    def holds(self, utterance: Utterance) -> bool:
        """``utterance`` is the one that paused here, as it stood or gone on (utterances never overlap)."""
        return utterance.start_s < self.paused.utterance.end_s

    @property
    def rest_from_s(self) -> float:
        """Where the talker's words after a reply shown on its own begin, at the earliest."""
        paused = self.paused.utterance
        return max(paused.end_s, paused.decided_at_s - RESUME_LEAD_S)


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
        self._early: list[_EarlyWork] = []  # the open utterance's pauses, oldest first
        self._reply_shown: _EarlyWork | None = None  # a reply shown on its own inside the open utterance
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
            elif isinstance(event, SpeechPaused) and event.settled:
                await self._show_settled(event)
            elif isinstance(event, SpeechPaused):
                await self._start_early(heard, event)
            elif isinstance(event, Utterance):
                try:
                    result = await self._final_result(event, heard.wall_s)
                finally:
                    if self._capture is not None:
                        self._capture.handled()
                if result is not None:
                    await self._on_output(result)
                self._want_caption()

    async def _start_early(self, heard: Heard, paused: SpeechPaused) -> None:
        """Interpret a paused utterance now, without committing it to the session; not again if an
        earlier pause of it had the same span."""
        self._early = [early for early in self._early if early.holds(paused.utterance)]
        previous = self._early[-1] if self._early else None
        if previous is not None and previous.work is not None:
            await previous.work  # the talker went on: a reply in it is shown before the next pause's words
        if (standing := self._standing(paused.utterance)) is not None:
            if self._capture is not None:
                if standing.work is not None and (words := await standing.work) is not None and is_unfinished(words):
                    self._capture.hold_unfinished(paused)  # the pause after murmur ended the first hold
                self._capture.handled()
            return
        early = _EarlyWork(paused, heard.wall_s)
        early.work = asyncio.ensure_future(self._interpret_early(early))
        self._early.append(early)
        try:
            if self._capture is not None and not self._capture.paced:
                await early.work  # an unpaced replay runs the early work alone, as a live counter would
        finally:
            if self._capture is not None:
                self._capture.handled()

    async def _show_settled(self, settled: SpeechPaused) -> None:
        """The paused words are final while murmur holds the utterance open: show them now, as a
        reply is shown; if the talker goes on after all, the rest is the next record."""
        try:
            early = self._standing(settled.utterance)
            if early is None or early.shown or early.work is None:
                return
            result = await early.work
            if result is None or result.rejected:  # a rejected piece is decoded again with what follows
                return
            await self._show_on_its_own(early, result, settled.utterance)
        finally:
            if self._capture is not None:
                self._capture.handled()

    async def _show_on_its_own(self, early: _EarlyWork, result: Interpretation, decided: Utterance) -> None:
        """Show ``early``'s words now, committed, as a record of its own before the utterance
        closes (a whole reply, or words that settled), timed as ``decided`` was (the faces show it
        then); what the talker says after it is the next record."""
        early.shown = True
        self._reply_shown = early
        self.interpreter.commit(result)
        shown = dataclasses.replace(result.utterance, decided_at_s=decided.decided_at_s, close_reason=decided.close_reason)
        await self._on_output(dataclasses.replace(result, utterance=shown, timings_ms=early.timings(result, decided)))

    def _standing(self, utterance: Utterance) -> _EarlyWork | None:
        """The latest pause of the open utterance with ``utterance``'s span, none before a reply
        shown on its own (those words hold the reply)."""
        for early in reversed(self._early):
            if early.paused.confirmed_by(utterance):
                return early
            if early.shown:
                return None
        return None

    async def _interpret_early(self, early: _EarlyWork) -> Interpretation | None:
        """The paused utterance's words (after a reply already shown in it); a whole reply is shown now."""
        if self._nothing_after_reply(early.paused.utterance):
            return None
        utterance = self._rest(early.paused.utterance)
        result = await self._attempt(early.paused, functools.partial(self.interpreter.interpret, commit=False), utterance, early.paused_wall)
        early.done_wall = time.monotonic()
        if result is not None and is_unfinished(result) and self._capture is not None:
            self._capture.hold_unfinished(early.paused)
        if result is not None and is_standalone_reply(result):
            await self._show_on_its_own(early, result, result.utterance)
        return result

    def _nothing_after_reply(self, utterance: Utterance) -> bool:
        """``utterance`` holds a reply already shown, and too little after it to be words: decoding
        that tail of murmur gave a second "Yes." after "Thank you." on a far-field counter."""
        shown = self._reply_shown
        return shown is not None and shown.holds(utterance) and utterance.end_s - shown.rest_from_s < MIN_REST_S

    def _rest(self, utterance: Utterance) -> Utterance:
        """``utterance`` without the reply already shown from it, if any."""
        shown = self._reply_shown
        return utterance.after(shown.rest_from_s) if shown is not None and shown.holds(utterance) else utterance

    async def _final_result(self, final: Utterance, wall_s: float) -> Interpretation | None:
        """The final utterance's record: the early result of a pause with ``final``'s span
        (committed now), nothing more when that was a reply already shown, else its words (after
        a reply shown from it) interpreted now."""
        for early in self._early:
            if early.work is not None:
                await early.work  # the worker is one thread: it finishes them first
        early = self._standing(final)
        self._early = []
        result = early.work.result() if early is not None and early.work is not None else None
        try:
            if early is not None:
                if early.shown:
                    return None
                if result is not None:
                    self.interpreter.commit(result)
                    return dataclasses.replace(result, utterance=self._rest(final), timings_ms=early.timings(result, final))
            if self._nothing_after_reply(final):
                return None
            rest = self._rest(final)
            return await self._attempt(rest, self.interpreter.interpret, rest, wall_s)
        finally:
            self._reply_shown = None

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
