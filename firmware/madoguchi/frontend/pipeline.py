"""The streaming front end: multichannel blocks in, utterances with a side and a beam out.

Per 32 ms frame: level against the background, Silero VAD (skipped while the room is too quiet
for speech to open an utterance, which is most of a counter's day), the endpointer, and, for
speech frames, PHAT cross-spectra into the open utterance's DOA accumulator. When the endpointer
closes an utterance, the steered response picks the side and a delay-and-sum beam toward the
talker becomes its audio. Live capture and replay both call ``process`` with whatever blocks
their source yields; nothing here looks ahead or reads a clock.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections import deque
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import NamedTuple

import numpy as np

from madoguchi.config import PROCESSING_RATE_HZ, Settings
from madoguchi.events import FrontendEvent, Side, SpeakerHeard, SpeechPaused, SpeechSoFar, SpeechStarted, Utterance, UtteranceRejected
from madoguchi.frontend import endpoint
from madoguchi.frontend.beam import delay_and_sum
from madoguchi.frontend.doa import SrpPhat
from madoguchi.frontend.elsewhere import Elsewhere, Stretch
from madoguchi.frontend.enhance import NoiseCovariance, enhanced_beam
from madoguchi.frontend.level import BackgroundLevel, frame_level_db
from madoguchi.frontend.ring import FrameRing
from madoguchi.frontend.sides import SideDecision, decide_side
from madoguchi.frontend.spatial import SpatialGate
from madoguchi.frontend.trim import murmur_since, talker_span
from madoguchi.frontend.vad import FRAME_SAMPLES
from madoguchi.timing import StageTimer

FRAME_S = FRAME_SAMPLES / PROCESSING_RATE_HZ
BACKGROUND_WINDOW_S = 4.0
# Audio kept after the talker's end (frontend/trim.py) so ASR hears the word's end: a Japanese
# sentence's last mora (the か of ですか) often stands below the edge the trim keeps, or comes a
# frame after it too faint to hold the utterance (endpoint.FAINT_BELOW_TALKER_DB). Until the next
# turn begins, whatever the endpointer held: also ending it 160 ms after the last held frame cut
# that か once faint frames no longer held it (held-out far-field Japanese 25.9 % CER with that
# bound, 23.9 % without).
TRIMMED_TAIL_MS = 480
# Paused words settle this long after the endpointer would have closed them in a silent room: a
# talker who resumes just after a hangover-long pause (a clerk's comma) is heard resuming first.
SETTLE_MARGIN_MS = 160
# An open utterance's side is corrected from all of its speech so far only this early in it (a
# stray first frame opened it as the other's). Later, the other side's voice is their turn: the
# talker's words so far are kept as theirs (late flips gave the resident the clerk's そうです。).
SIDE_FROM_ALL_SPEECH_MS = 640
UNFINISHED_HOLD_MS = 800  # more silence an utterance waits when ASR heard its words stop mid-sentence
SPEAKER_HINT_S = 0.4  # an utterance this long says who is speaking (faces, side LEDs)
BACKGROUND_POWER_RATE = 0.05  # per learning frame: a time constant of about 1.3 s


class _Observed(NamedTuple):
    """One frame as the cascade saw it; spectra and cross-spectra only if it got that far."""

    evidence: endpoint.FrameEvidence
    level: float
    spectra: np.ndarray | None
    cross: np.ndarray | None


class Frontend:
    """Frames to utterances for one array; feed it with ``process`` and end with ``flush``.

    Speech from outside both sides' sectors never opens an utterance; each stretch of it is
    reported as ``UtteranceRejected("off_counter")`` with its direction (the next counter's
    voices, or ``[sides]`` that do not match the room: frontend/placement.py tells which).
    """

    def __init__(self, settings: Settings, vad: Callable[[np.ndarray], float], timer: StageTimer | None = None) -> None:
        self.settings = settings
        self._vad = vad
        self._timer = timer
        self._positions = np.asarray(settings.array.mic_positions_m, dtype=float)
        self._timing = endpoint.EndpointTiming.from_settings(settings.vad, FRAME_S * 1000)
        self._srp = SrpPhat(self._positions, PROCESSING_RATE_HZ, FRAME_SAMPLES, settings.array.speed_of_sound_m_s, (settings.sides.min_frequency_hz, settings.sides.max_frequency_hz))
        self._gate = SpatialGate(self._srp, settings.sides, PROCESSING_RATE_HZ, settings.array.speed_of_sound_m_s)
        self._pre_roll = round(settings.vad.pre_roll_ms / 1000 / FRAME_S)
        self._trimmed_tail = round(TRIMMED_TAIL_MS / 1000 / FRAME_S)
        self._settle_margin = round(SETTLE_MARGIN_MS / 1000 / FRAME_S)
        self._flip_frames = round(SIDE_FROM_ALL_SPEECH_MS / 1000 / FRAME_S)
        self._unfinished_hold = round(UNFINISHED_HOLD_MS / 1000 / FRAME_S)
        self._hold_request: float | None = None  # hold_unfinished's, until the next frame takes it up
        ring_frames = self._timing.max_utterance_frames + self._timing.hangover_frames + self._unfinished_hold + self._pre_roll + 2
        self._ring = FrameRing(ring_frames, settings.array.n_mics)
        self._background = BackgroundLevel(round(BACKGROUND_WINDOW_S / FRAME_S))
        self._state = endpoint.EndpointState()
        self._pending = np.zeros((0, settings.array.n_mics), np.float32)
        self._frame = 0  # index of the next frame
        # Speech frames' weighted cross-spectra, kept long enough to hand an onset or the start of
        # a new turn (which the endpointer recognises a few frames late) to its own utterance.
        self._recent: deque[tuple[int, np.ndarray]] = deque(maxlen=self._timing.turn_frames + self._timing.min_speech_frames + 2)
        self._accumulated: np.ndarray | None = None
        self._speaker_told = False  # SpeakerHeard was sent for the open utterance
        self._paused: tuple[SpeechPaused, int] | None = None  # the open utterance's pause and the end of the talker's frames then, until its words settle
        self._previous_side: Side | None = None
        self._background_power: np.ndarray | None = None
        self._noise = NoiseCovariance(settings.array.n_mics, BACKGROUND_POWER_RATE) if "mvdr" in settings.beam.method else None
        if settings.beam.method.startswith("wpe"):
            import nara_wpe  # noqa: F401  (the dereverb extra: missing, the box says so at start, not at the first utterance)
        self.above_background_db = -np.inf  # the last frame's level over the room's: the faces' mic meter
        self._elsewhere = Elsewhere(self._timing.hangover_frames, self._timing.min_utterance_frames)

    def _stage(self, name: str) -> AbstractContextManager[None]:
        return self._timer.stage(name) if self._timer else contextlib.nullcontext()

    @property
    def audio_s(self) -> float:
        """Audio time of the frames processed so far."""
        return self._frame * FRAME_S

    @property
    def in_utterance(self) -> bool:
        """Speech has started and not yet ended (a candidate or an open utterance)."""
        return self._state.phase is not endpoint.Phase.SILENCE

    @property
    def background_dbfs(self) -> float | None:
        """What the room sounds like between utterances (health: a dead mic reads -100)."""
        return self._background.db if self._background.settled else None

    def process(self, block: np.ndarray) -> list[FrontendEvent]:
        """Feed (samples, mics) float32 at 16 kHz; returns the events completed by this block."""
        if block.ndim != 2 or block.shape[1] != self.settings.array.n_mics:
            raise ValueError(f"expected blocks of shape (samples, {self.settings.array.n_mics}), got {block.shape}")
        data = np.concatenate([self._pending, block]) if len(self._pending) else block
        n_frames = len(data) // FRAME_SAMPLES
        events: list[FrontendEvent] = []
        for k in range(n_frames):
            events += self._process_frame(data[k * FRAME_SAMPLES : (k + 1) * FRAME_SAMPLES])
        self._pending = data[n_frames * FRAME_SAMPLES :].copy()
        return events

    def flush(self) -> list[FrontendEvent]:
        """End of stream: close whatever utterance is still open."""
        self._state, ep_events = endpoint.finish(self._state, self._timing)
        return self._off_counter(self._elsewhere.ended()) + self._handle(ep_events)

    def hold_unfinished(self, paused_at_s: float) -> None:
        """The words of the utterance paused at ``paused_at_s`` stop mid-sentence (ASR heard them):
        still open, it waits ``UNFINISHED_HOLD_MS`` longer for the talker to go on. Any thread may
        call this; the next frame takes it up."""
        self._hold_request = paused_at_s

    def speech_so_far(self, min_s: float = 1.0) -> SpeechSoFar | None:
        """The open utterance's audio up to now, beamed toward its likely side (for live captions).

        None unless an utterance has been open for ``min_s``. Costs one steered response and one
        beam, so callers ask for it only when ASR is idle.
        """
        state = self._state
        if state.phase is not endpoint.Phase.SPEECH or self._accumulated is None or (self._frame - state.start) * FRAME_S < min_s:
            return None
        if endpoint.talker_paused(state, self._frame, self._timing):
            # The talker paused: the words so far are being interpreted already (SpeechPaused), and
            # whose the speech after the pause is stays open until turn_frames of it are heard.
            return None
        decision = self._side_of_all(self._accumulated)
        if decision.off_counter:
            return None
        first = max(0, state.start - self._pre_roll)
        # Live captions get the cheap beam: they are redone once the utterance is final.
        audio = delay_and_sum(self._ring.span(first, self._frame), self._positions, decision.azimuth_deg, decision.elevation_deg, PROCESSING_RATE_HZ, self.settings.array.speed_of_sound_m_s)
        return SpeechSoFar(start_s=round(state.start * FRAME_S, 3), at_s=round(self._frame * FRAME_S, 3), side=decision.side, audio=audio)

    def _speech_probability(self, mono: np.ndarray) -> float:
        # Silero is recurrent. After frames skipped as too quiet it goes on from the state it
        # had: that state, primed by earlier speech, scores a following short reply far better
        # than a reset one (measured: "はい" peaks at 0.45 after a reset, 0.9 without).
        with self._stage("vad"):
            return self._vad(mono)

    def _evidence(self, frame: np.ndarray) -> _Observed:
        """Level, direction and VAD for one frame, cheapest first."""
        with self._stage("level"):
            mono = frame.mean(axis=1)
            level = frame_level_db(mono)
            settling = not self._background.settled
            if settling:
                self._background.update(level)
            # Until the background is known nothing counts as standing above it.
            above = -np.inf if settling else level - self._background.db
        listening = self._state.phase is not endpoint.Phase.SILENCE
        if not listening and above < self._timing.start_gate_db:
            # Too quiet to open an utterance (most of a counter's day): skip direction and VAD.
            return _Observed(endpoint.FrameEvidence(0.0, above, None), level, None, None)
        with self._stage("spatial"):
            spectra = self._srp.spectra(frame)
            cross = self._srp.cross_spectra(spectra, self._background_power)
            side = self._gate.side_of(cross)
        if not listening and side is None:
            return _Observed(endpoint.FrameEvidence(0.0, above, None), level, spectra, cross)  # from elsewhere: cannot open one
        return _Observed(endpoint.FrameEvidence(self._speech_probability(mono), above, side), level, spectra, cross)

    def _process_frame(self, frame: np.ndarray) -> list[FrontendEvent]:
        index = self._frame
        self._frame += 1
        self._ring.put(index, frame)
        observed = self._evidence(frame)
        evidence = self._settled(index, observed)
        self._ring.note(index, evidence)
        self.above_background_db = evidence.above_background_db
        with self._stage("endpoint"):
            if (hold := self._hold_request) is not None:
                self._hold_request = None
                if self._state.start * FRAME_S <= hold:  # still the utterance that paused then
                    self._state = endpoint.hold_longer(self._state, self._unfinished_hold)
            speech = endpoint.is_speech_frame(self._state, evidence, self._timing, index)
            if self._state.phase is endpoint.Phase.SILENCE and not speech and np.isfinite(evidence.above_background_db):
                self._background.update(observed.level)
                self._learn_background_power(index, frame, observed.spectra)
            self._state, ep_events = endpoint.step(self._state, index, evidence, self._timing)
        silent = self._state.phase is endpoint.Phase.SILENCE
        from_elsewhere = silent and observed.cross is not None and not evidence.from_a_side
        events = self._off_counter(self._elsewhere.heard(index, observed.cross) if from_elsewhere else self._elsewhere.ended(index, silent))
        if speech and observed.cross is not None:
            with self._stage("doa"):
                weighted = self._weighted(evidence, observed.cross)
                self._recent.append((index, weighted))
                if self._accumulated is not None:
                    self._accumulated += weighted
        return events + self._handle(ep_events) + self._speaker_hint() + self._words_settled()

    def _settled(self, index: int, observed: _Observed) -> endpoint.FrameEvidence:
        """Inside an utterance, a frame that may change whose turn it is gets the direction of all the
        speech since the change began, not its own alone.

        One frame's direction is wrong a third of the time in a reverberant hall. Speech after a
        pause is counted by side before it ends a turn, and a run of the other side's frames
        (a challenge) ends it once long enough; summed, a few frames point the right way (per-frame
        votes cut the bundled demo's "Hello. I need to …" in two). The coarse gate on the sum costs
        what it costs on one frame.
        """
        evidence, state = observed.evidence, self._state
        if state.phase is not endpoint.Phase.SPEECH or observed.cross is None or not evidence.from_a_side:
            return evidence
        if endpoint.after_pause(state, index, self._timing):
            first = state.resume_start if state.resume_start >= 0 else index
        elif state.challenge or evidence.side != state.side:
            first = state.challenge_start if state.challenge else index
        else:
            return evidence
        weighted = self._weighted(evidence, observed.cross)
        with self._stage("spatial"):
            if (not state.challenge and self._accumulated is not None and index - state.start < self._flip_frames
                    and self._gate.side_of(self._accumulated + weighted) == evidence.side):
                # All of the utterance so far says it is this frame's side: a stray first frame opened it as the other's.
                self._state = endpoint.with_side(state, evidence.side)
                return evidence
            side = self._gate.side_of(self._since(first) + weighted)
        return dataclasses.replace(evidence, side=side)

    @staticmethod
    def _weighted(evidence: endpoint.FrameEvidence, cross: np.ndarray) -> np.ndarray:
        """A speech frame's cross-spectra weighted for direction finding: frames well above the background carry the talker."""
        return (evidence.probability * float(np.clip(evidence.above_background_db / 6.0, 0.25, 4.0))) * cross

    def _off_counter(self, stretch: Stretch | None) -> list[FrontendEvent]:
        """A stretch of speech from elsewhere that is over, as an event with its direction."""
        if stretch is None:
            return []
        with self._stage("doa"):
            azimuth, _ = self._srp.response(stretch.cross).peak()
        return [UtteranceRejected(round(stretch.first * FRAME_S, 3), round((stretch.last + 1) * FRAME_S, 3), "off_counter", round(azimuth, 1))]

    def _learn_background_power(self, index: int, frame: np.ndarray, spectra: np.ndarray | None) -> None:
        """Average power spectrum of the room without us: noise, babble (every other frame)."""
        if index % 2:
            return
        with self._stage("spatial"):
            spectra = spectra if spectra is not None else self._srp.spectra(frame)
            power = self._srp.band_power(spectra)
            if self._noise is not None:
                self._noise.update(spectra)
            if self._background_power is None:
                self._background_power = power
            else:
                self._background_power += BACKGROUND_POWER_RATE * (power - self._background_power)

    def _beam(self, audio: np.ndarray, azimuth_deg: float, elevation_deg: float) -> np.ndarray:
        """The talker's mono audio for ASR, by ``[beam] method``."""
        method = self.settings.beam.method
        if method == "das":
            return delay_and_sum(audio, self._positions, azimuth_deg, elevation_deg, PROCESSING_RATE_HZ, self.settings.array.speed_of_sound_m_s)
        covariance = self._noise.matrix if self._noise is not None and self._noise.frames else None
        return enhanced_beam(audio, self._positions, azimuth_deg, elevation_deg, PROCESSING_RATE_HZ, self.settings.array.speed_of_sound_m_s,
                             covariance=covariance, wpe=method.startswith("wpe"))

    def _since(self, first: int) -> np.ndarray:
        return sum((c for i, c in self._recent if i >= first), self._srp.empty())

    def _speaker_hint(self) -> list[FrontendEvent]:
        """Once per utterance, after SPEAKER_HINT_S of it: the likely side (one steered response)."""
        state = self._state
        if self._speaker_told or state.phase is not endpoint.Phase.SPEECH or self._accumulated is None:
            return []
        if (self._frame - state.start) * FRAME_S < SPEAKER_HINT_S:
            return []
        self._speaker_told = True
        with self._stage("doa"):
            decision = self._side_of_all(self._accumulated)
        if decision.off_counter:
            return []
        return [SpeakerHeard(round(state.start * FRAME_S, 3), round(self._frame * FRAME_S, 3), decision.side)]

    def _handle(self, ep_events: tuple[endpoint.Event, ...]) -> list[FrontendEvent]:
        events: list[FrontendEvent] = []
        merged = False  # the turn just closed is the new talker's too: their utterance goes on from its start
        for k, event in enumerate(ep_events):
            if not isinstance(event, endpoint.Paused):
                self._paused = None
            if isinstance(event, endpoint.Opened) and merged:
                merged = False
            elif isinstance(event, endpoint.Opened):
                self._accumulated = self._since(event.start)
                self._speaker_told = False
                events.append(SpeechStarted(round(event.start * FRAME_S, 3)))
            elif isinstance(event, endpoint.Paused):
                tentative = self._utterance(event.start, event.end, "pause", self._accumulated)
                if isinstance(tentative, Utterance):
                    events.append(SpeechPaused(tentative))
                    if self._paused is None or not self._paused[0].confirmed_by(tentative):
                        # From the talker's own last frame (the other side's may hold the utterance past it);
                        # the same words paused again after murmur keep the first pause's.
                        self._paused = (events[-1], self._frame - self._timing.early_frames)
            elif isinstance(event, endpoint.Discarded):
                self._accumulated = None
                events.append(UtteranceRejected(event.start * FRAME_S, event.end * FRAME_S, "too_short"))
            else:
                following = ep_events[k + 1] if k + 1 < len(ep_events) else None
                next_start = following.start if isinstance(following, endpoint.Opened) else None
                decision = None
                if next_start is not None and self._accumulated is not None and event.reason == "turn":
                    before = self._accumulated - self._since(next_start)  # those frames are the next turn's
                    with self._stage("doa"):
                        decision = self._side_of_all(before)
                    if not decision.off_counter and decision.side == self._state.side:
                        # By all of its direction the speech before the turn is the new talker's: it
                        # opened as the other side's on a few misleading frames, and the turn is
                        # that talker going on, one utterance from its start.
                        self._state, merged = endpoint.started_at(self._state, event.start), True
                        continue
                    self._accumulated = before
                events.append(self._finish_utterance(event, next_start, decision))
        return events

    def _side_of_all(self, accumulated: np.ndarray | None) -> SideDecision:
        """The side that all the speech summed in ``accumulated`` points to."""
        return decide_side(self._srp.response(accumulated), self.settings.sides, self._previous_side)

    def _words_settled(self) -> list[FrontendEvent]:
        """The latest pause again, settled, once the hangover has passed since it with nothing that
        stands among the talker's own frames, and the trim still ends where it did:
        what held the utterance open was murmur (far-field counters: up to a second of it from the
        talker's side), and their words need not wait for it."""
        if self._paused is None or self._state.phase is not endpoint.Phase.SPEECH:
            return []
        (paused, paused_at), start = self._paused, self._state.start
        if self._frame - paused_at < self._timing.hangover_frames + self._settle_margin + self._state.held_longer:
            return []
        self._paused = None
        levels, sides = self._ring.evidence(start, self._frame)
        if not murmur_since(levels, sides, paused.utterance.side, paused_at - start):
            return []
        first, stop = talker_span(levels, sides, paused.utterance.side)
        if not paused.has_span(round((start + first) * FRAME_S, 3), (start + stop) * FRAME_S):
            return []
        return [SpeechPaused(dataclasses.replace(paused.utterance, decided_at_s=round(self._frame * FRAME_S, 3), close_reason="settled"))]

    def _finish_utterance(self, closed: endpoint.Closed, next_start: int | None = None, decision: SideDecision | None = None) -> Utterance | UtteranceRejected:
        accumulated = self._accumulated
        self._accumulated = None
        result = self._utterance(closed.start, closed.end, closed.reason, accumulated, next_start, decision)
        if isinstance(result, Utterance):
            self._previous_side = result.side
        return result

    def _utterance(self, start: int, end: int, reason: str, accumulated: np.ndarray | None, next_start: int | None = None,
                   decision: SideDecision | None = None) -> Utterance | UtteranceRejected:
        """Side and beam for the speech in frames [start, end), cut down to the talker's own
        stretch of it (frontend/trim.py); changes no state (a pause asks too). ``decision``: the
        side of ``accumulated`` when the caller has it already."""
        start_s, end_s = start * FRAME_S, end * FRAME_S
        if decision is None:
            with self._stage("doa"):
                decision = self._side_of_all(accumulated)
        if decision.off_counter:
            return UtteranceRejected(start_s, end_s, "off_counter", decision.azimuth_deg)
        first_own, stop_own = talker_span(*self._ring.evidence(start, end), decision.side)
        start, end = start + first_own, start + stop_own
        start_s, end_s = start * FRAME_S, end * FRAME_S
        if end - start < self._timing.min_speech_frames:
            # The talker's own stretch of it is shorter than speech has to be to open an utterance.
            return UtteranceRejected(round(start_s, 3), round(end_s, 3), "too_short")
        with self._stage("beam"):
            first = max(0, start - self._pre_roll)
            stop = min(self._frame, end + self._trimmed_tail, next_start if next_start is not None else self._frame)
            audio = self._beam(self._ring.span(first, stop), decision.azimuth_deg, decision.elevation_deg)
        return Utterance(
            start_s=round(start_s, 3),
            end_s=round(end_s, 3),
            side=decision.side,
            azimuth_deg=decision.azimuth_deg,
            elevation_deg=decision.elevation_deg,
            side_confidence=decision.confidence,
            side_held=decision.held,
            decided_at_s=round(self._frame * FRAME_S, 3),
            close_reason=reason,
            audio_start_s=round(first * FRAME_S, 3),
            audio=audio,
        )
