"""Frame level and the background level it is compared with.

The background is the median level of recent frames that were not part of an utterance: in a
quiet office that is the noise floor, beside a busy counter the neighbours' babble. Speech must
stand ``energy_gate_db`` above it to open an utterance. The gate is deliberately low (a quiet
resident in a busy hall is barely louder than the babble): direction, not level, is what tells
the neighbours apart (``spatial.py``). The level gate keeps the costlier stages idle in a
quiet room and stops noise bursts below speech level from being considered at all. Speech
must stand ``energy_gate_db`` above it to open an utterance, which is what keeps distant
talkers (quieter at the array than the two people at this counter) from opening one. It also
decides when the comparatively costly neural VAD needs to run at all.
"""

from __future__ import annotations

import numpy as np

SILENT_DB = -100.0


def frame_level_db(frame: np.ndarray) -> float:
    """RMS level in dBFS of a mono float frame."""
    power = float(np.mean(np.square(frame, dtype=np.float64)))
    return max(SILENT_DB, 10.0 * np.log10(power + 1e-12))


BACKGROUND_PERCENTILE = 50.0


class BackgroundLevel:
    """Running percentile of non-speech frame levels over a window of frames (no clock).

    Until ``settle_frames`` frames have been seen the estimate is not trusted (``settled`` is
    False): speech cannot be told from background before the background is known.
    """

    def __init__(self, window_frames: int, settle_frames: int = 8, update_every: int = 4) -> None:
        self._levels = np.full(window_frames, np.nan)
        self._next = 0
        self._seen = 0
        self._settle = settle_frames
        self._update_every = update_every
        self.db = SILENT_DB

    @property
    def settled(self) -> bool:
        return self._seen >= self._settle

    def update(self, level_db: float) -> float:
        self._levels[self._next] = level_db
        self._next = (self._next + 1) % len(self._levels)
        self._seen += 1
        # The first frames set the estimate at once; after that every few frames is plenty.
        if self._seen <= self._settle or self._seen % self._update_every == 0:
            # The window fills from index 0: until it wraps, only its first ``_seen`` slots hold levels.
            # (np.percentile on those, not np.nanpercentile on all: 40x cheaper, the same value.)
            filled = self._levels[: min(self._seen, len(self._levels))]
            self.db = float(np.percentile(filled, BACKGROUND_PERCENTILE))
        return self.db
