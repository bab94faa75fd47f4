"""Source → front end on a worker thread, posting what it hears to the runner's event loop.

Muted, nothing is heard: the front end does not run, audio is read and dropped. In privacy mode
(``[session] start`` button or wake_phrase) "muted" is the closed session: the front end still runs
so that levels and the room's background stay current and the wake phrase can be listened for,
but its events are dropped and the turn open when the session starts (the wake phrase itself) is
discarded. A session with no speech for ``idle_s`` closes.

Live audio is paced by the microphone. A recording replayed faster than real time is not: there
the thread waits after each utterance (and each pause's early work) until it is interpreted, so
that ``latency_ms`` measures the stages and not a queue that no counter would ever build.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from madoguchi.audio.source import AudioSource
from madoguchi.counter import CounterState
from madoguchi.errors import AudioDeviceNotFoundError
from madoguchi.events import AudioState, FrontendEvent, SessionChanged, SpeakerHeard, SpeechPaused, SpeechSoFar, SpeechStarted, Utterance, other_side
from madoguchi.frontend.pipeline import Frontend

log = logging.getLogger(__name__)

CAPTION_MIN_S = 1.0  # an utterance open this long gets live captions


@dataclass(frozen=True)
class Heard:
    """A front-end event and the clock when the front end produced it (for latency)."""

    event: FrontendEvent
    wall_s: float


Item = Heard | AudioState | SessionChanged | BaseException | None
WakeListener = Callable[[np.ndarray], object | None]  # 16 kHz mono → something when the wake phrase was heard


def as_counter_sees(event: FrontendEvent, counter: CounterState) -> FrontendEvent | None:
    """Privacy mute drops speech before anything transcribes it; swap exchanges the sides.

    (While muted the capture thread does not even run the front end: audio is read and dropped.)

    Swapping relabels the front end's decision rather than its azimuths, so hysteresis and the
    off-counter gate (both symmetric) are unchanged by a box turned round.
    """
    if counter.muted:
        return None
    if counter.swapped and isinstance(event, (SpeakerHeard, SpeechSoFar, Utterance)):
        return dataclasses.replace(event, side=other_side(event.side))
    if counter.swapped and isinstance(event, SpeechPaused):
        return dataclasses.replace(event, utterance=as_counter_sees(event.utterance, counter))
    return event


class Capture:
    """Source → front end on a worker thread; ``None`` posted at the end, exceptions posted, not lost."""

    def __init__(self, source: AudioSource, frontend: Frontend, post: Callable[[Item], None], *, retry_s: float | None = None, paced: bool = True,
                 consumer: bool = True) -> None:
        """``consumer``: something interprets the utterances and says ``handled`` (unpaced, the thread waits for it)."""
        self.source = source
        self.frontend = frontend
        self._post = post
        self._retry_s = retry_s
        self._paced = paced
        self._waits = consumer and not paced
        self.stopping = threading.Event()
        self.caption_wanted = threading.Event()
        self._handled = threading.Semaphore(0)
        self.counter = CounterState()  # the runner replaces it whole
        self.last_block_wall: float | None = None  # when the source last gave audio (the watchdog's evidence)
        self.private_idle_s: float | None = None  # privacy mode: a session closes after this long without speech
        self.wake: WakeListener | None = None  # privacy mode: opens a session when the phrase is heard
        self._last_speech_s = 0.0

    @property
    def paced(self) -> bool:
        """Audio arrives in real time (a device, or a replay at its own pace)."""
        return self._paced

    def stop(self) -> None:
        self.stopping.set()
        self._handled.release()  # never leave the thread waiting for an utterance nobody handles
        self.source.close()

    def hold_unfinished(self, paused: SpeechPaused) -> None:
        """Its words stop mid-sentence: the front end holds the utterance open longer (``Frontend.hold_unfinished``)."""
        self.frontend.hold_unfinished(paused.utterance.decided_at_s)

    def handled(self) -> None:
        """The consumer finished an utterance or a pause (unpaced replay waits for this before reading on)."""
        if self._waits:
            self._handled.release()

    def _source_state(self, state: str) -> None:
        """The source's own news (called on this thread, from inside blocks()). A turn cut by an
        unplugged array is finished now with what was heard of it, not held through the outage and
        glued to the first words after it."""
        if state == "mic_lost":
            self._emit(self.frontend.flush())
        self._post(AudioState(state))

    def _open_when_present(self) -> bool:
        """Open the source; with ``retry_s``, wait for an unplugged array to appear. False if stopped first.

        The service (``--wait-for-mic``) waits for the array and says so in its status, rather than
        failing and exhausting systemd's restart budget; by hand, a missing array is an error.
        """
        while not self.stopping.is_set():
            try:
                self.source.open()
                return True
            except AudioDeviceNotFoundError as err:
                if self._retry_s is None:
                    raise
                self._post(AudioState("waiting_for_mic", str(err)))
                self.stopping.wait(self._retry_s)
        return False

    def _emit(self, events: list[FrontendEvent]) -> None:
        counter = self.counter
        for event in events:
            seen = as_counter_sees(event, counter)
            if seen is None:
                continue
            if isinstance(seen, (SpeechStarted, SpeakerHeard, Utterance)):
                self._last_speech_s = self.frontend.audio_s
            self._post(Heard(seen, time.monotonic()))
            if isinstance(seen, (Utterance, SpeechPaused)) and self._waits:
                self._handled.acquire()

    def _closed_session(self, block: np.ndarray) -> None:
        """Privacy mode between sessions: levels and background go on, events go nowhere."""
        self.frontend.process(block)
        if self.wake is not None and self.wake(block.mean(axis=1)) is not None:
            self._ask(SessionChanged(True, "wake_phrase", round(self.frontend.audio_s, 3)))

    def _opened_session(self) -> None:
        if self.private_idle_s is not None:
            self.frontend.flush()  # the turn heard while closed (the wake phrase) is nobody's words
        self._last_speech_s = self.frontend.audio_s

    def _close_when_idle(self) -> None:
        if self.private_idle_s is not None and self.frontend.audio_s - self._last_speech_s > self.private_idle_s and not self.frontend.in_utterance:
            self._ask(SessionChanged(False, "idle", round(self.frontend.audio_s, 3)))

    def _ask(self, change: SessionChanged) -> None:
        """The runner decides; until it has, this thread already behaves as asked (no repeats)."""
        self.counter = dataclasses.replace(self.counter, muted=not change.open)
        self._post(change)

    def run(self) -> None:
        self.source.on_state = self._source_state
        try:
            if not self._open_when_present():
                self._post(None)
                return
            with self.source:
                was_muted = False
                for block in self.source.blocks():
                    self.last_block_wall = time.monotonic()
                    if self.counter.muted:
                        if not was_muted:  # the turn open at the press is dropped, never transcribed later
                            self.frontend.flush()
                            was_muted = True
                        if self.private_idle_s is not None:
                            self._closed_session(block)
                        continue
                    if was_muted:
                        self._opened_session()
                        was_muted = False
                    self._emit(self.frontend.process(block))
                    self._close_when_idle()
                    if self.caption_wanted.is_set():
                        snapshot = self.frontend.speech_so_far(CAPTION_MIN_S)
                        if snapshot is not None:
                            self.caption_wanted.clear()
                            self._emit([snapshot])
                self._emit(self.frontend.flush())
        except BaseException as err:  # noqa: BLE001  # handed to the loop, which re-raises it: nothing is swallowed
            self._post(err)
            return
        self._post(None)
