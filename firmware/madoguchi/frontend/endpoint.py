"""Endpointing: a pure state machine from per-frame speech decisions to utterance boundaries.

Time is counted in frames of audio, never read from a clock, so the same sequence of inputs
always gives the same utterances, live or replayed, and tests drive it with synthetic lists.

Two silences matter. A talker pauses between phrases and sentences of one turn (up to about
0.7 s), so an utterance ends only after ``hangover`` (0.8 s) of silence: shorter, and one
sentence reaches the other side in pieces, each translated without the rest. Waiting that long
before starting ASR would cost the whole hangover in latency, so 0.32 s (``early_asr_ms``) after
the talker's own last frame the endpointer says ``Paused``, even while a few frames of the other
side's voice (too few for a turn) hold the utterance open: ASR may start on it as it stands. If
nobody speaks again before the hangover ends, the ``Closed`` utterance is the paused one (the same
span once the front end has trimmed both) and its words are ready; if the talker goes on, that
early work is dropped. When ``Paused`` is said changes no boundary: what speech after a pause has
to show is fixed by ``PAUSE_MS``.

A neighbouring counter's voice heard from the talker's side passes every test above: it is speech
to the VAD, above the room, from the talker's sector. Bursts of it a few hundred ms apart would
hold a short reply open until the talker's next sentence ("No." joined to "Just for me, please."
a second later). The talker is 0.5–1 m from the array, the neighbour 2–3 m: so a frame of the
talker's side ``FAINT_BELOW_TALKER_DB`` below the loudest of the utterance so far is faint. It
neither holds the utterance open nor resumes it (the pause and the hangover run on through it),
yet it is still the talker's side where sides are counted: it wears down the other side's
challenge and votes for the talker when speech after a pause is counted. Straight on from held
speech (no frame between) a faint frame is the talker's own word fading out, and holds as ever.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from enum import Enum

from madoguchi.config import VadSettings
from madoguchi.events import other_side

PAUSE_MS = 320  # silence after which a talker has paused: going on needs what starting needs
CHALLENGE_GAP_FRAMES = 3  # a gap in the other side's speech longer than this (~100 ms) restarts its challenge
# Set on the far-field rooms (tests/bench/attribution.py, README "Measured"): at 12 dB sentences
# were cut at the talker's own quiet words, at 18 dB neighbours held replies open again.
FAINT_BELOW_TALKER_DB = 15.0


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
    pause_frames: int  # silence after which the talker has paused (PAUSE_MS)
    early_frames: int  # silence after which Paused is said (no more than the hangover)
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
            pause_frames=min(frames(PAUSE_MS), frames(vad.hangover_ms)),
            early_frames=min(frames(vad.early_asr_ms), frames(vad.hangover_ms)),
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
    challenge_last: int = -1  # its latest frame
    # Speech again after a pause: whose it is, counted frame by frame until turn_frames of it.
    resume_start: int = -1  # first frame of that speech (-1: not resuming)
    resume_end: int = -1  # after the talker's last own frame (at first: where the pause began)
    resume_other_start: int = -1  # the other side's current run of frames in it: where their turn
    resume_other_last: int = -1  # would begin, and its latest frame
    resume_own: int = 0  # its frames from the utterance's side ...
    resume_other: int = 0  # ... and from the other side
    last_own: int = -1  # last speech frame that did not come from the other side
    held_longer: int = 0  # frames added to the hangover: the words so far are unfinished (``hold_longer``)
    loudest_db: float = float("-inf")  # the talker's loudest speech frame so far, over the background


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
class Paused:
    """Silence for ``pause_frames`` after [start, end): the utterance as it stands, if it ends here."""

    start: int
    end: int


@dataclass(frozen=True)
class Discarded:
    """Speech too short to be an utterance (a cough, a click)."""

    start: int
    end: int


Event = Opened | Paused | Closed | Discarded


def is_speech_frame(state: EndpointState, evidence: FrameEvidence, timing: EndpointTiming, frame: int | None = None) -> bool:
    """Hysteresis: starting needs the high threshold and level gate; continuing, the low ones.

    A neighbour's babble is speech to any VAD, so speech also has to stand above the
    background it makes and come from one of the two sides to count. Once the talker has
    paused (``pause_frames`` of silence before ``frame``), going on needs what starting needs:
    the long hangover is for a talker who resumes, not for the room's murmur to hold it open.
    """
    if not evidence.from_a_side:
        return False
    if state.phase is Phase.SPEECH and not (frame is not None and _paused(state, frame, timing)):
        return evidence.probability >= timing.silence_threshold and evidence.above_background_db >= timing.hold_gate_db
    return _voiced_to_start(evidence, timing)


def _voiced_to_start(evidence: FrameEvidence, timing: EndpointTiming) -> bool:
    """Loud and likely enough to start speech, whatever its direction."""
    return evidence.probability >= timing.speech_threshold and evidence.above_background_db >= timing.start_gate_db


def _paused(state: EndpointState, frame: int, timing: EndpointTiming) -> bool:
    return frame - state.last_speech > timing.pause_frames


def after_pause(state: EndpointState, frame: int, timing: EndpointTiming) -> bool:
    """Frame ``frame`` of an open utterance comes after the talker paused: either the silence is
    that long already, or speech resumed after it and whose it is has not been settled yet."""
    return state.resume_start >= 0 or _paused(state, frame, timing)


def talker_paused(state: EndpointState, frame: int, timing: EndpointTiming) -> bool:
    """The open utterance's talker has stopped for ``pause_frames``, counting only their own
    frames: a few frames of the other side's voice (too few for a turn yet) hold the utterance
    open, but they are not the talker's words, so live captions of them stop here."""
    return after_pause(state, frame, timing) or frame - state.last_own > timing.pause_frames


def with_side(state: EndpointState, side: str) -> EndpointState:
    """The open utterance is ``side``'s after all: its first frames' directions misled the count
    (the front end knows from all of its speech so far); any challenge by that side is over."""
    return replace(state, side=side, challenge=0, challenge_start=-1)


def started_at(state: EndpointState, start: int) -> EndpointState:
    """The open utterance began at ``start``: the speech before its turn began was its talker's too."""
    return replace(state, start=start) if state.phase is Phase.SPEECH else state


def _close(start: int, end: int, reason: str, timing: EndpointTiming) -> Event:
    if end - start < timing.min_utterance_frames:
        return Discarded(start, end)
    return Closed(start, end, reason)


def hold_longer(state: EndpointState, frames: int) -> EndpointState:
    """The open utterance waits ``frames`` more of silence before it ends: its words so far are
    unfinished (ASR heard a sentence stop mid-way: a clerk's comma can last longer than the
    hangover). Until the talker goes on; an answer from the other side still ends it as before."""
    return replace(state, held_longer=frames) if state.phase is Phase.SPEECH else state


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
    # A challenge is a run of the other side's speech: after a gap it starts again where the voice
    # is now, so a stray frame of the neighbours' babble earlier does not become the new turn's start.
    going_on = state.challenge and frame - state.challenge_last <= CHALLENGE_GAP_FRAMES
    start, count = (state.challenge_start, state.challenge) if going_on else (frame, 0)
    state = replace(state, last_speech=frame, challenge=count + 1, challenge_start=start, challenge_last=frame)
    if state.challenge < timing.turn_frames:
        return state, ()
    # Own-side frames inside the challenge are reverberation or overlap: the new turn gets them.
    end = min(state.last_own + 1, start)
    if end - state.start < timing.min_utterance_frames:
        # What came before was too short to be the other side's turn: it is this side's.
        return replace(state, side=side, challenge=0, last_own=frame), ()
    return _opened(start, frame, side), (Closed(state.start, end, "turn"), Opened(start))


_RESUME_FIELDS = {f.name: f.default for f in fields(EndpointState) if f.name.startswith("resume_")}


def _not_resuming(state: EndpointState) -> EndpointState:
    return replace(state, **_RESUME_FIELDS)


def _resume(state: EndpointState, frame: int, side: str | None, timing: EndpointTiming, faint: bool) -> tuple[EndpointState, tuple[Event, ...]]:
    """Speech after a pause: the same talker going on, or the other side's turn? Single frames'
    directions are noisy in a reverberant room, so turn_frames of it are counted by side first;
    if most came from the other side the pause ended the utterance and the new turn starts where
    that side's speech began; the talker's own words heard before it (a quiet last phrase) stay
    theirs. A reply shorter than that is settled once the talker has been silent for the
    hangover, in ``step``. A faint frame votes for the talker but is not them going on."""
    if state.resume_start < 0:
        state = replace(_not_resuming(state), resume_start=frame, resume_end=state.last_speech + 1)
    if side == state.side:
        state = replace(state, resume_own=state.resume_own + 1)
        if not faint:
            state = replace(state, last_own=frame, resume_end=frame + 1, last_speech=frame)
    else:
        # As in a challenge: after a gap the other side's run starts again where the voice is now.
        run_on = state.resume_other_start >= 0 and frame - state.resume_other_last <= CHALLENGE_GAP_FRAMES
        state = replace(state, resume_other=state.resume_other + 1, resume_other_last=frame, last_speech=frame,
                        resume_other_start=state.resume_other_start if run_on else frame)
    if state.resume_own + state.resume_other < timing.turn_frames:
        return state, ()
    if state.resume_other > state.resume_own:
        return _opened(state.resume_other_start, frame, other_side(state.side)), (Closed(state.start, _talker_end(state), "turn"), Opened(state.resume_other_start))
    went_on = state.last_own >= state.resume_start  # faint frames alone leave unfinished words waiting
    return replace(_not_resuming(state), challenge=0, held_longer=0 if went_on else state.held_longer), ()


def _bridged(state: EndpointState, frame: int, evidence: FrameEvidence, timing: EndpointTiming) -> EndpointState:
    """A voiced frame from neither sector inside the other side's run after a pause carries the
    run on without counting for it: their first word is loud in every direction of a reverberant
    room, and restarting the run there would put their turn's start at its last frames ("No." kept
    as 30 ms and discarded)."""
    if state.resume_other_start < 0 or evidence.from_a_side or frame - state.resume_other_last > CHALLENGE_GAP_FRAMES:
        return state
    return replace(state, resume_other_last=frame) if _voiced_to_start(evidence, timing) else state


def _talker_end(state: EndpointState) -> int:
    """Where the talker's utterance ends if the speech after its pause is the other side's turn:
    after its own frames, but never inside the other side's run (there they are reverberation)."""
    return min(state.resume_end, state.resume_other_start) if state.resume_other_start >= 0 else state.resume_end


def step(state: EndpointState, frame: int, evidence: FrameEvidence, timing: EndpointTiming) -> tuple[EndpointState, tuple[Event, ...]]:
    """Advance by one frame (index ``frame``); returns the new state and any events."""
    new, events = _step(state, frame, evidence, timing)
    return _with_loudest(state, new, frame, evidence), events


def _with_loudest(before: EndpointState, after: EndpointState, frame: int, evidence: FrameEvidence) -> EndpointState:
    """``after`` knowing its talker's loudest frame: carried on within one utterance (or its
    onset), started afresh by a new one, raised by this frame if it was the talker speaking."""
    if after.phase is Phase.SILENCE:
        return after
    same = before.phase is not Phase.SILENCE and before.start == after.start
    loudest = before.loudest_db if same else float("-inf")
    talker = evidence.side == after.side and (after.last_own == frame or (after.phase is Phase.ONSET and after.last_speech == frame))
    return replace(after, loudest_db=max(loudest, evidence.above_background_db) if talker else loudest)


def _step(state: EndpointState, frame: int, evidence: FrameEvidence, timing: EndpointTiming) -> tuple[EndpointState, tuple[Event, ...]]:
    speech = is_speech_frame(state, evidence, timing, frame)
    if state.phase is Phase.SILENCE:
        if not speech:
            return state, ()
        state = EndpointState(Phase.ONSET, start=frame, last_speech=frame, side=evidence.side)
    elif state.phase is Phase.ONSET:
        if not speech:
            return EndpointState(), ()
        state = replace(state, last_speech=frame)
    else:  # SPEECH
        state, events = _speech_goes_on(state, frame, evidence, speech, timing)
        return state, events or _talker_paused_here(state, frame, timing)
    if state.phase is Phase.ONSET and frame + 1 - state.start >= timing.min_speech_frames:
        return _opened(state.start, frame, state.side), (Opened(state.start),)
    return state, ()


def _speech_goes_on(state: EndpointState, frame: int, evidence: FrameEvidence, speech: bool, timing: EndpointTiming) -> tuple[EndpointState, tuple[Event, ...]]:
    """One frame of an open utterance: the talker going on, the other side's turn, or silence."""
    # Straight on from held speech a faint frame is the talker's word fading out, as it always was.
    faint = (speech and frame != state.last_speech + 1 and evidence.side == state.side
             and evidence.above_background_db < state.loudest_db - FAINT_BELOW_TALKER_DB)
    if speech and after_pause(state, frame, timing):
        return _resume(state, frame, evidence.side, timing, faint)
    if faint:  # the talker's side, but not the talker: it wears the other side's challenge down, holds nothing
        state, speech = replace(state, challenge=max(0, state.challenge - 1)), False
    if speech:
        if frame + 1 - state.start >= timing.max_utterance_frames:
            # Split a monologue so downstream stages never wait unboundedly; speech goes on.
            return _opened(frame + 1, frame, state.side), (Closed(state.start, frame + 1, "max_length"), Opened(frame + 1))
        return _continue_speech(state, frame, evidence.side, timing)
    state = _bridged(state, frame, evidence, timing)
    if _replied(state) and frame - (_talker_end(state) - 1) >= timing.hangover_frames:
        # Speech after the pause came mostly from the other side, too little of it to be a turn
        # yet ("Sí."), and the talker has been silent for the hangover: their utterance ended
        # where they stopped, not where the reply did (their paused words are the final ones).
        # The reply goes on as the other side's utterance, with its own hangover.
        reply = _opened(state.resume_other_start, state.last_speech, other_side(state.side))
        return reply, (Closed(state.start, _talker_end(state), "turn"), Opened(state.resume_other_start))
    if frame - state.last_speech >= timing.hangover_frames + state.held_longer:
        return EndpointState(), (_close(state.start, state.last_speech + 1, "silence", timing),)
    return state, ()


def _replied(state: EndpointState) -> bool:
    return state.resume_start >= 0 and state.resume_other > state.resume_own


def _talker_paused_here(state: EndpointState, frame: int, timing: EndpointTiming) -> tuple[Event, ...]:
    """Paused, once, ``early_frames`` after the talker's own last frame, with the utterance as it
    stands. The other side's frames, too few for a turn yet, may hold it open past that (a
    neighbour's babble from the resident's side held a clerk's question 1.4 s): they are not the
    talker's words, and the front end trims them off the paused utterance as off the final one.
    No second Paused for a reply: the utterance as it stood at the first is the one that ends.
    None when ``early_asr_ms`` is the hangover: then nothing starts early."""
    if frame - state.last_own != timing.early_frames or timing.early_frames >= timing.hangover_frames or _replied(state):
        return ()
    return (Paused(state.start, state.last_speech + 1),) if state.last_speech + 1 - state.start >= timing.min_utterance_frames else ()


def finish(state: EndpointState, timing: EndpointTiming) -> tuple[EndpointState, tuple[Event, ...]]:
    """End of stream: close an open utterance at its last speech frame."""
    if state.phase is Phase.SPEECH:
        return EndpointState(), (_close(state.start, state.last_speech + 1, "end_of_stream", timing),)
    return EndpointState(), ()
