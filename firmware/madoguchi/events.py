"""Typed, frozen events the front end emits; later stages consume and extend them."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np

from madoguchi.config import PROCESSING_RATE_HZ

Side = Literal["staff", "resident"]

# Ends this close are the same span: two of the front end's 32 ms frames.
SAME_END_S = 0.07


def other_side(side: Side) -> Side:
    return "resident" if side == "staff" else "staff"


@dataclass(frozen=True)
class SpeechStarted:
    """An utterance opened at ``start_s`` (audio time): the moment to show "listening"."""

    start_s: float


@dataclass(frozen=True)
class Utterance:
    """A finished utterance: where its speech is, who spoke, and the beamformed audio for ASR."""

    start_s: float  # first speech frame
    end_s: float  # end of the last speech frame
    side: Side
    azimuth_deg: float
    elevation_deg: float
    side_confidence: float
    side_held: bool  # too ambiguous to call: the previous side was kept
    decided_at_s: float  # audio time at which the endpointer closed it
    close_reason: str  # silence | turn | max_length | end_of_stream; pause, settled: the tentative one of a SpeechPaused
    audio_start_s: float  # where ``audio`` starts (pre-roll included)
    audio: np.ndarray = field(repr=False, compare=False)  # mono float32 at 16 kHz

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    def after(self, t_s: float) -> Utterance:
        """The same utterance from audio time ``t_s`` on: what the talker said after a reply that
        was shown on its own."""
        skip = min(len(self.audio), max(0, round((t_s - self.audio_start_s) * PROCESSING_RATE_HZ)))
        return replace(self, start_s=max(self.start_s, t_s), audio_start_s=self.audio_start_s + skip / PROCESSING_RATE_HZ, audio=self.audio[skip:])

    def summary(self) -> dict[str, object]:
        """The JSON-able fields of ``madoguchi replay --stages frontend``."""
        return {
            "start_s": round(self.start_s, 3),
            "end_s": round(self.end_s, 3),
            "side": self.side,
            "azimuth_deg": self.azimuth_deg,
            "side_confidence": self.side_confidence,
        }


@dataclass(frozen=True)
class UtteranceRejected:
    """Speech that is not an utterance: ``too_short`` or ``off_counter`` (from another counter)."""

    start_s: float
    end_s: float
    reason: str
    azimuth_deg: float | None = None


@dataclass(frozen=True)
class SpeechSoFar:
    """The still-open utterance's audio so far, beamformed toward its likely side: for live captions."""

    start_s: float
    at_s: float  # audio time of the snapshot
    side: Side
    audio: np.ndarray = field(repr=False, compare=False)


@dataclass(frozen=True)
class SpeakerHeard:
    """Who is likely speaking, once an open utterance has lasted a moment: for the faces and the
    side LEDs. The side that counts comes later, with the Utterance."""

    start_s: float
    at_s: float
    side: Side


@dataclass(frozen=True)
class SpeechPaused:
    """The talker paused: ``utterance`` is what will be final unless speech resumes within the
    hangover. ASR may start on it early; a final Utterance with the same span confirms it."""

    utterance: Utterance

    @property
    def start_s(self) -> float:
        return self.utterance.start_s

    @property
    def settled(self) -> bool:
        """The paused words are final, though murmur holds the utterance open: the talker has been
        quiet for the hangover after them (their trimmed span has not moved since the pause)."""
        return self.utterance.close_reason == "settled"

    def has_span(self, start_s: float, end_s: float) -> bool:
        """The paused words run from ``start_s`` to ``end_s``: the same start, an end within ``SAME_END_S``."""
        return self.utterance.start_s == start_s and abs(end_s - self.utterance.end_s) <= SAME_END_S

    def confirmed_by(self, final: Utterance) -> bool:
        """The final utterance is this one: the same talker's speech over the same span, so the same
        words. Its audio may differ: murmur after the pause can hold the endpointer on (a longer
        tail kept after the words) and turn the beam's aim a degree or two; neither is the
        talker's words, and decoding them again cost held-out far-field counters up to 0.6 s.
        Its end may lie a frame or two from the paused one's (the trim weighs a fading last
        syllable's frames anew), as long as the paused audio reached it."""
        mine = self.utterance
        if (mine.side, mine.audio_start_s) != (final.side, final.audio_start_s):
            return False
        heard_until_s = mine.audio_start_s + len(mine.audio) / PROCESSING_RATE_HZ
        return self.has_span(final.start_s, final.end_s) and heard_until_s >= final.end_s


FrontendEvent = SpeechStarted | SpeakerHeard | SpeechSoFar | SpeechPaused | Utterance | UtteranceRejected


@dataclass(frozen=True)
class Caption:
    """Live text of a still-open utterance (``partial``): shown, never counted or translated."""

    start_s: float
    at_s: float
    side: Side
    lang: str
    text: str
    partial: bool = True


@dataclass(frozen=True)
class Translation:
    """What the other side reads. ``text`` is None when nothing could translate it.

    ``method``: phrasebook (curated), mt (a model), mixed (some sentences each way), same_language,
    or unavailable (no phrase matched and no installed model covers the pair).
    """

    text: str | None
    source_lang: str
    target_lang: str
    method: str
    needs_review: bool = False  # a curated phrase not yet checked by a native speaker
    route: tuple[str, ...] = ()  # languages through which MT went, e.g. ("ja", "en", "vi")
    untranslated: int = 0  # sentences left out
    glossary_terms: tuple[str, ...] = ()


@dataclass(frozen=True)
class Interpretation:
    """One finished utterance through the whole pipeline: who, what was said, what the other side reads.

    ``rejected`` says why nothing is shown (no_speech, hallucination …): the front end heard a
    voice, but ASR judged it was not words addressed to the counter.
    """

    utterance: Utterance
    side: Side  # the utterance's side, corrected by language ID when the direction was ambiguous
    lang: str
    text: str
    translation: Translation | None
    rejected: str | None
    lang_probability: float | None
    timings_ms: dict[str, float] = field(compare=False)
    mode: str = "interpret"  # interpret | caption | easy_japanese: what the other face was given


@dataclass(frozen=True)
class AudioState:
    """The capture device's state: capturing, mic_lost, waiting_for_mic (``detail``: what was seen)."""

    state: str
    detail: str = ""

    @property
    def healthy(self) -> bool:
        return self.state == "capturing"


@dataclass(frozen=True)
class Problem:
    """A failure the box survives and reports (a panel that will not open, an utterance whose ASR
    failed): ``code`` as in the errors' codes, ``message`` for the log and the fleet."""

    code: str
    message: str = ""


@dataclass(frozen=True)
class OperatorCalled:
    """The clerk asked for a remote human interpreter (the operator button or a remote command)."""

    source: str = "button"


@dataclass(frozen=True)
class SessionChanged:
    """Privacy mode: a session opened (speech is interpreted) or closed (nothing is transcribed or
    kept). ``by``: button, wake_phrase or idle; ``at_s``: audio time."""

    open: bool
    by: str
    at_s: float
