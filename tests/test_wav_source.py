"""The recording source: any rate and sample format in, 16 kHz float blocks out, clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile

from madoguchi.audio.wav import WavSource
from madoguchi.errors import AudioFormatError, AudioSourceError


def tones(rate: int, channels: int, seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return np.stack([0.3 * np.sin(2 * np.pi * (300 + 200 * c) * t) for c in range(channels)], axis=1)


def dominant_hz(x: np.ndarray, rate: int = 16000) -> float:
    return float(np.argmax(np.abs(np.fft.rfft(x))) * rate / len(x))


def read_all(source: WavSource) -> np.ndarray:
    with source:
        blocks = list(source.blocks())
    assert all(b.dtype == np.float32 and b.ndim == 2 for b in blocks)
    return np.concatenate(blocks)


@pytest.mark.parametrize(("rate", "subtype"), [(16000, "PCM_16"), (48000, "FLOAT"), (44100, "PCM_24"), (22050, "PCM_16")])
def test_any_rate_and_format_comes_out_at_16k_in_channel_order(tmp_path: Path, rate: int, subtype: str) -> None:
    path = tmp_path / "array.wav"
    soundfile.write(path, tones(rate, 4), rate, subtype=subtype)
    audio = read_all(WavSource(path, n_mics=4))
    assert abs(len(audio) - 16000) <= 16  # resampled, nothing lost at the block edges
    assert [round(dominant_hz(audio[:, c])) for c in range(4)] == [300, 500, 700, 900]


def test_blocks_stream_in_small_pieces(tmp_path: Path) -> None:
    path = tmp_path / "array.wav"
    soundfile.write(path, tones(16000, 2, seconds=2.0), 16000)
    with WavSource(path, n_mics=2, block_ms=32) as source:
        sizes = [len(b) for b in source.blocks()]
    assert max(sizes) == 512 and len(sizes) >= 62  # never the whole file at once


def test_channel_map_picks_mics_out_of_a_wider_recording(tmp_path: Path) -> None:
    path = tmp_path / "six.wav"
    soundfile.write(path, tones(16000, 6), 16000)
    audio = read_all(WavSource(path, n_mics=2, channel_map=(5, 1)))
    assert [round(dominant_hz(audio[:, c])) for c in range(2)] == [1300, 500]


def test_wrong_channel_count_says_what_is_needed(tmp_path: Path) -> None:
    path = tmp_path / "stereo.wav"
    soundfile.write(path, tones(16000, 2), 16000)
    with pytest.raises(AudioFormatError, match=r"has 2 channel\(s\) but the configured array needs 4"):
        WavSource(path, n_mics=4).open()


def test_not_audio(tmp_path: Path) -> None:
    path = tmp_path / "notes.wav"
    path.write_text("this is not audio\n")
    with pytest.raises(AudioFormatError, match="not a readable audio file"):
        WavSource(path, n_mics=4).open()


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(AudioSourceError, match="no such recording"):
        WavSource(tmp_path / "absent.wav", n_mics=4).open()


def test_truncated_file_still_plays_what_is_there(tmp_path: Path) -> None:
    path = tmp_path / "cut.wav"
    soundfile.write(path, tones(16000, 4), 16000, subtype="PCM_16")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # a copy interrupted half way
    audio = read_all(WavSource(path, n_mics=4))
    assert 0 < len(audio) <= 8100
