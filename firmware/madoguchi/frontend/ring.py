"""The last few seconds of multichannel frames, kept so a closed utterance can be beamed and trimmed."""

from __future__ import annotations

import numpy as np

from madoguchi.frontend import endpoint
from madoguchi.frontend.vad import FRAME_SAMPLES


class FrameRing:
    """The last N frames of multichannel audio, addressed by absolute frame index, with what the
    endpointer saw of each (level over the background, side)."""

    def __init__(self, n_frames: int, channels: int) -> None:
        self._data = np.zeros((n_frames, FRAME_SAMPLES, channels), np.float32)
        self._levels = np.full(n_frames, -np.inf)
        self._sides: list[str | None] = [None] * n_frames

    def put(self, index: int, frame: np.ndarray) -> None:
        self._data[index % len(self._data)] = frame

    def note(self, index: int, evidence: endpoint.FrameEvidence) -> None:
        self._levels[index % len(self._data)] = evidence.above_background_db
        self._sides[index % len(self._data)] = evidence.side

    def evidence(self, first: int, stop: int) -> tuple[list[float], list[str | None]]:
        """Levels and sides of frames [first, stop), all still in the ring."""
        slots = [i % len(self._data) for i in range(first, stop)]
        return [float(self._levels[k]) for k in slots], [self._sides[k] for k in slots]

    def span(self, first: int, stop: int) -> np.ndarray:
        """Frames [first, stop) as (samples, channels); what has left the ring is left out."""
        first = max(first, stop - len(self._data))
        return np.concatenate([self._data[i % len(self._data)] for i in range(first, stop)]) if stop > first else np.zeros((0, self._data.shape[2]), np.float32)
