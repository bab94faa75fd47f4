"""Endpointing: a pure state machine from per-frame speech decisions to utterance boundaries.

Time is counted in frames of audio, never read from a clock, so the same sequence of inputs
always gives the same utterances, live or replayed, and tests drive it with synthetic lists.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum

from madoguchi.config import VadSettings


class Phase(str, Enum):
    SILENCE = "silence"
    ONSET = "onset"  # speech seen, not yet long enough to open an utterance
    SPEECH = "speech"  # an utterance is open (including its hangover)


@dataclass(frozen=True)
class EndpointTiming:
    """VadSettings converted to frame counts for one frame length."""

    speech_threshold: float
    silence_threshold: float
    start_gate_db: float  # level above the background needed to start speech
    hold_gate_db: float  # ... and to continue it
    min_speech_frames: int
    hangover_frames: int
    min_utterance_frames: int
    max_utterance_frames: int
    turn_frames: int  # speech frames from the other side that make a new turn

    @classmethod
    def from_settings(cls, vad: VadSettings, frame_ms: float) -> EndpointTiming:
        def frames(ms: float) -> int:
            return max(1, round(ms / frame_ms))

        return cls(
            speech_threshold=vad.speech_threshold,
            silence_threshold=vad.silence_threshold,
            start_gate_db=vad.energy_gate_db,
            hold_gate_db=vad.hold_gate_db,
            min_speech_frames=frames(vad.min_speech_ms),
            hangover_frames=frames(vad.hangover_ms),
            min_utterance_frames=round(vad.min_utterance_ms / frame_ms),
            max_utterance_frames=frames(vad.max_utterance_s * 1000),
            turn_frames=frames(vad.turn_change_ms),
        )


@dataclass(frozen=True)
class FrameEvidence:
    """What the endpointer knows of one frame."""

    probability: float  # Silero speech probability (0 when it was not run)
    above_background_db: float  # frame level minus the background level
    side: str | None = "staff"  # whose sector the frame's sound came from; None: neither side

    @property
    def from_a_side(self) -> bool:
        return self.side is not None


@dataclass(frozen=True)
class EndpointState:
    phase: Phase = Phase.SILENCE
    start: int = -1  # first speech frame of the candidate or open utterance
    last_speech: int = -1  # last frame judged speech
    side: str | None = None  # the open utterance's side, from its first speech frame
    challenge: int = 0  # leaky count of speech frames from the other side
    challenge_start: int = -1  # where the current challenge began
    last_own: int = -1  # last speech frame that did not come from the other side


@dataclass(frozen=True)
class Opened:
    start: int


@dataclass(frozen=True)
class Closed:
    """An utterance spanning frames [start, end); ``reason``: silence, turn, max_length, end_of_stream."""

    start: int
    end: int
    reason: str


@dataclass(frozen=True)
class Discarded:
    """Speech too short to be an utterance (a cough, a click)."""

    start: int
    end: int


Event = Opened | Closed | Discarded


def is_speech_frame(state: EndpointState, evidence: FrameEvidence, timing: EndpointTiming) -> bool:
    """Hysteresis: starting needs the high threshold and level gate; continuing, the low ones.

    A neighbour's babble is speech to any VAD, so speech also has to stand above the
    background it makes and come from one of the two sides to count.
    """
    if not evidence.from_a_side:
        return False
    if state.phase is Phase.SPEECH:
        return evidence.probability >= timing.silence_threshold and evidence.above_background_db >= timing.hold_gate_db
    return evidence.probability >= timing.speech_threshold and evidence.above_background_db >= timing.start_gate_db


def _close(start: int, end: int, reason: str, timing: EndpointTiming) -> Event:
    if end - start < timing.min_utterance_frames:
        return Discarded(start, end)
    return Closed(start, end, reason)


def _opened(start: int, frame: int, side: str | None) -> EndpointState:
    return EndpointState(Phase.SPEECH, start=start, last_speech=frame, side=side, last_own=frame)


def _continue_speech(state: EndpointState, frame: int, side: str | None, timing: EndpointTiming) -> tuple[EndpointState, tuple[Event, ...]]:
    """A speech frame inside an open utterance: a sustained run from the other side is a new turn.

    Hands-free means nobody waits for a pause: when the resident answers straight after the
    clerk (or babble-filled gaps keep the utterance open), the change of direction closes the
    clerk's utterance and opens the resident's at the frame where the new direction began.
    """
    if side is None or side == state.side:
        return replace(state, last_speech=frame, last_own=frame, challenge=max(0, state.challenge - 1)), ()
    start = state.challenge_start if state.challenge else frame
    state = replace(state, last_speech=frame, challenge=state.challenge + 1, challenge_start=start)
    if state.challenge < timing.turn_frames:
        return state, ()
    # Own-side frames inside the challenge are reverberation or overlap: the new turn gets them.
    end = min(state.last_own + 1, start)
    if end - state.start < timing.min_utterance_frames:
        # What came before was too short to be the other side's turn: it is this side's.
        return replace(state, side=side, challenge=0, last_own=frame), ()
    return _opened(start, frame, side), (Closed(state.start, end, "turn"), Opened(start))


def step(state: EndpointState, frame: int, evidence: FrameEvidence, timing: EndpointTiming) -> tuple[EndpointState, tuple[Event, ...]]:
    """Advance by one frame (index ``frame``); returns the new state and any events."""
    speech = is_speech_frame(state, evidence, timing)
    if state.phase is Phase.SILENCE:
        if not speech:
            return state, ()
        state = EndpointState(Phase.ONSET, start=frame, last_speech=frame, side=evidence.side)
    elif state.phase is Phase.ONSET:
        if not speech:
            return EndpointState(), ()
        state = replace(state, last_speech=frame)
    else:  # SPEECH
        if speech:
            if frame + 1 - state.start >= timing.max_utterance_frames:
                # Split a monologue so downstream stages never wait unboundedly; speech goes on.
                return _opened(frame + 1, frame, state.side), (Closed(state.start, frame + 1, "max_length"), Opened(frame + 1))
            return _continue_speech(state, frame, evidence.side, timing)
        if frame - state.last_speech >= timing.hangover_frames:
            return EndpointState(), (_close(state.start, state.last_speech + 1, "silence", timing),)
        return state, ()
    if state.phase is Phase.ONSET and frame + 1 - state.start >= timing.min_speech_frames:
        return _opened(state.start, frame, state.side), (Opened(state.start),)
    return state, ()


def finish(state: EndpointState, timing: EndpointTiming) -> tuple[EndpointState, tuple[Event, ...]]:
    """End of stream: close an open utterance at its last speech frame."""
    if state.phase is Phase.SPEECH:
        return EndpointState(), (_close(state.start, state.last_speech + 1, "end_of_stream", timing),)
    return EndpointState(), ()
