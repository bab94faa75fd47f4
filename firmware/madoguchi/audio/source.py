"""The one interface every audio source implements, and what they share.

A source yields blocks of float32 samples shaped (frames, mics) at the processing rate (16 kHz),
channels already reduced to the configured mics in geometry order. Live capture and replay both
feed the same streaming front end through this interface, so replay tests the live path.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterator
from types import TracebackType

import numpy as np
import soxr

from madoguchi.config import PROCESSING_RATE_HZ


class AudioSource(abc.ABC):
    """A context manager that yields (frames, mics) float32 blocks at ``sample_rate``."""

    sample_rate: int = PROCESSING_RATE_HZ
    channels: int
    on_state: Callable[[str], None] | None = None  # hears "capturing" / "mic_lost" from live devices

    def __enter__(self) -> AudioSource:
        self.open()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def open(self) -> None:  # noqa: B027 - optional hook
        """Acquire the device or file; errors are AudioSourceError subclasses."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release it; safe to call twice."""

    @abc.abstractmethod
    def blocks(self) -> Iterator[np.ndarray]:
        """Yield blocks until the source ends (replay) or is closed (live)."""


class StreamResampler:
    """Streaming resampler to the processing rate (python-soxr: no edge clicks between blocks)."""

    def __init__(self, in_rate: int, channels: int, out_rate: int = PROCESSING_RATE_HZ) -> None:
        self._stream = None if in_rate == out_rate else soxr.ResampleStream(in_rate, out_rate, channels, dtype="float32", quality="HQ")

    def __call__(self, block: np.ndarray, last: bool = False) -> np.ndarray:
        block = np.ascontiguousarray(block, dtype=np.float32)
        if self._stream is None:
            return block
        return self._stream.resample_chunk(block, last=last)


def select_channels(block: np.ndarray, channel_map: tuple[int, ...], n_mics: int) -> np.ndarray:
    """Pick the mic channels, in geometry order, out of everything a device captured."""
    return block[:, list(channel_map)] if channel_map else block[:, :n_mics]
