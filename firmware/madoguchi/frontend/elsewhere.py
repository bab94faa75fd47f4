"""Speech from outside both sides' sectors (the next counter's voices), gathered into stretches.

Such speech never opens an utterance; each stretch of it is reported once it is over, with the
direction it came from (``UtteranceRejected("off_counter")``), which is how the box notices
``[sides]`` that do not match the room.
"""

from __future__ import annotations

import numpy as np


class Stretch:
    """Loud frames from elsewhere, ``first`` to ``last``, and their summed cross-spectra."""

    def __init__(self, frame: int, cross: np.ndarray) -> None:
        self.first = self.last = frame
        self.cross = cross.astype(np.complex128)
        self.frames = 1


class Elsewhere:
    """The stretch in progress: frames join it across gaps of up to ``max_gap`` frames; one of
    fewer than ``min_frames`` frames is not reported."""

    def __init__(self, max_gap: int, min_frames: int) -> None:
        self._max_gap = max_gap
        self._min_frames = max(1, min_frames)
        self._stretch: Stretch | None = None

    def heard(self, index: int, cross: np.ndarray) -> Stretch | None:
        """A loud frame from elsewhere while no utterance is open; returns the stretch it ended, if any."""
        stretch = self._stretch
        if stretch is not None and index - stretch.last <= self._max_gap:
            stretch.last, stretch.frames = index, stretch.frames + 1
            stretch.cross += cross
            return None
        self._stretch = Stretch(index, cross)
        return self._reported(stretch)

    def ended(self, index: int | None = None, gap_can_go_on: bool = True) -> Stretch | None:
        """The stretch in progress, once it is over: ``index`` frames on with no more of it (and
        ``gap_can_go_on`` false when an utterance has opened since), or at once (``index`` None)."""
        stretch = self._stretch
        if stretch is None or (index is not None and gap_can_go_on and index - stretch.last <= self._max_gap):
            return None
        self._stretch = None
        return self._reported(stretch)

    def _reported(self, stretch: Stretch | None) -> Stretch | None:
        return stretch if stretch is not None and stretch.frames >= self._min_frames else None
