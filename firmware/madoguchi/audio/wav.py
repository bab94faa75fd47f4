"""Multichannel recording source (WAV, FLAC, anything libsndfile reads), streamed block by block.

Blocks are read and resampled incrementally, exactly as they would arrive from a device: the
front end never sees the file as a whole.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile

from madoguchi.audio.source import AudioSource, StreamResampler, select_channels
from madoguchi.errors import AudioFormatError, AudioSourceError

log = logging.getLogger(__name__)


class WavSource(AudioSource):
    """Replays a recording whose channels are the array's mics (or a superset, via channel_map)."""

    def __init__(self, path: Path, n_mics: int, channel_map: tuple[int, ...] = (), block_ms: int = 32, realtime: bool = False) -> None:
        self.path = Path(path)
        self.channels = n_mics
        self._channel_map = channel_map
        self._block_ms = block_ms
        self._realtime = realtime  # pace blocks like a live device (demos, latency measurements)
        self._closed = threading.Event()
        self._reading = False
        self._file: soundfile.SoundFile | None = None

    def open(self) -> None:
        if self._file is not None:
            return
        self._closed.clear()
        if not self.path.is_file():
            raise AudioSourceError(f"{self.path}: no such recording")
        try:
            self._file = soundfile.SoundFile(str(self.path))
        except (soundfile.LibsndfileError, RuntimeError) as err:
            raise AudioFormatError(f"{self.path}: not a readable audio file ({err}); allowed: WAV/FLAC/OGG with one channel per mic, int16/int32/float") from err
        needed = max(self._channel_map) + 1 if self._channel_map else self.channels
        have = self._file.channels
        if (self._channel_map and have < needed) or (not self._channel_map and have != self.channels):
            self.close()
            wanted = f"at least {needed}" if self._channel_map else f"{self.channels}"
            raise AudioFormatError(f"{self.path}: has {have} channel(s) but the configured array needs {wanted} (one per mic in [array] mic_positions_m, or map them with [audio] channel_map)")
        log.info("replaying %s: %d ch, %d Hz, %.1f s", self.path, have, self._file.samplerate, self._file.frames / self._file.samplerate)

    @property
    def duration_s(self) -> float:
        """The recording's length (open it first)."""
        if self._file is None:
            raise AudioSourceError(f"{self.path}: not open")
        return self._file.frames / self._file.samplerate

    def close(self) -> None:
        """Stop ``blocks()`` (from any thread) and release the file.

        While ``blocks()`` is reading, the reading thread closes the file itself: libsndfile
        must not see a close from one thread during a read in another.
        """
        self._closed.set()
        if not self._reading:
            self._release()

    def _release(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def blocks(self) -> Iterator[np.ndarray]:
        if self._file is None:
            self.open()
        assert self._file is not None
        file = self._file
        resample = StreamResampler(file.samplerate, self.channels)
        block_frames = max(1, file.samplerate * self._block_ms // 1000)
        started, played_s = time.monotonic(), 0.0
        self._reading = True
        try:
            for raw in file.blocks(blocksize=block_frames, dtype="float32", always_2d=True):
                if self._closed.is_set():
                    return
                if self._realtime:
                    played_s += len(raw) / file.samplerate
                    if self._closed.wait(max(0.0, started + played_s - time.monotonic())):
                        return
                out = resample(select_channels(raw, self._channel_map, self.channels))
                if len(out):
                    yield out
        except (soundfile.LibsndfileError, RuntimeError) as err:
            raise AudioFormatError(f"{self.path}: unreadable audio after {file.tell() / file.samplerate:.1f} s ({err})") from err
        finally:
            self._reading = False
            if self._closed.is_set():
                self._release()
        tail = resample(np.zeros((0, self.channels), np.float32), last=True)
        if len(tail):
            yield tail
