"""Typed, frozen events the front end emits; later stages consume and extend them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

Side = Literal["staff", "resident"]


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
    close_reason: str  # silence | max_length | end_of_stream
    audio_start_s: float  # where ``audio`` starts (pre-roll included)
    audio: np.ndarray = field(repr=False, compare=False)  # mono float32 at 16 kHz

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

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


FrontendEvent = SpeechStarted | Utterance | UtteranceRejected
