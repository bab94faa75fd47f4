"""The beams beyond delay-and-sum: MVDR nulls the room's noise, WPE takes off the late reverberation.

Synthetic far-field waves with exact fractional delays (tests/test_doa.py) and a real
pyroomacoustics room; the noise covariance is learned the way the front end learns it, frame
by frame from the background, with the front end's own spectra.
"""

from __future__ import annotations

import numpy as np
import pytest

from madoguchi.frontend.beam import delay_and_sum
from madoguchi.frontend.doa import SrpPhat
from madoguchi.frontend.enhance import FFT_SIZE, NoiseCovariance, enhanced_beam, istft, stft
from tests.test_doa import ARRAYS, FS, C, plane_wave


def learned_covariance(positions: np.ndarray, background: np.ndarray) -> np.ndarray:
    srp = SrpPhat(positions, FS, FFT_SIZE, C, (200.0, 6000.0))
    noise = NoiseCovariance(len(positions), rate=0.05)
    for i in range(0, len(background) - FFT_SIZE, FFT_SIZE):
        noise.update(srp.spectra(background[i : i + FFT_SIZE]))
    return noise.matrix


def test_the_short_time_transform_gives_the_signal_back() -> None:
    x = np.random.default_rng(0).standard_normal((FS, 3))
    assert np.max(np.abs(istft(stft(x)[:, 1, :], len(x)) - x[:, 1])) < 1e-5


def test_without_a_noise_estimate_the_beam_is_delay_and_sum() -> None:
    pos = ARRAYS["4-mic square 32 mm"]
    audio = plane_wave(pos, 90.0, 20.0, seed=1) + plane_wave(pos, 300.0, 0.0, seed=2)
    das = delay_and_sum(audio, pos, 90.0, 20.0, FS, C)
    mvdr = enhanced_beam(audio, pos, 90.0, 20.0, FS, C, covariance=None, wpe=False)
    assert np.corrcoef(das, mvdr)[0, 1] > 0.999


@pytest.mark.parametrize("name", ["4-mic square 32 mm", "6-mic circle"])
def test_mvdr_nulls_a_neighbour_it_heard_between_utterances(name: str) -> None:
    pos = ARRAYS[name]
    neighbour = plane_wave(pos, 0.0, 10.0, seconds=3.0, seed=5)  # along the counter
    covariance = learned_covariance(pos, neighbour[: 2 * FS])
    talker = plane_wave(pos, 90.0, 30.0, seconds=1.0, seed=6)
    mix = talker + neighbour[2 * FS :]
    kept = enhanced_beam(talker, pos, 90.0, 30.0, FS, C, covariance=covariance, wpe=False)
    leaked = enhanced_beam(neighbour[2 * FS :], pos, 90.0, 30.0, FS, C, covariance=covariance, wpe=False)
    das_leaked = delay_and_sum(neighbour[2 * FS :], pos, 90.0, 30.0, FS, C)
    assert np.var(kept) == pytest.approx(np.var(talker[:, 0]), rel=0.1)  # the talker passes undistorted
    assert np.var(leaked) < 0.1 * np.var(das_leaked)  # the neighbour at least 10 dB below delay-and-sum's
    assert np.corrcoef(enhanced_beam(mix, pos, 90.0, 30.0, FS, C, covariance=covariance, wpe=False), kept)[0, 1] > 0.95


def test_wpe_takes_off_the_late_reverberation() -> None:
    """Speech in a hall (RT60 0.7 s): after WPE, less of the room is left in the gaps between words."""
    import pyroomacoustics as pra

    from tests.sim import speech

    pos = ARRAYS["4-mic square 32 mm"]
    words = speech.japanese("こちらの用紙に、新しいご住所をご記入ください。", "jf_alpha")
    e_abs, order = pra.inverse_sabine(0.7, [8.0, 6.0, 3.0])
    room = pra.ShoeBox([8.0, 6.0, 3.0], fs=FS, materials=pra.Material(e_abs), max_order=min(order, 40))
    room.add_source([4.0, 3.8, 1.3], signal=np.concatenate([words, np.zeros(FS // 2)]))
    room.add_microphone_array((pos + [4.0, 3.0, 1.0]).T)
    room.simulate()
    audio = room.mic_array.signals.T[: len(words) + FS // 2]
    dry_power = np.convolve(words**2, np.ones(256) / 256, mode="same")
    gaps = np.concatenate([dry_power < 1e-4 * dry_power.max(), np.ones(FS // 2, bool)])  # the talker silent: only the room speaks

    def room_left(beam: np.ndarray) -> float:
        lag = int(np.argmax(np.correlate(beam[: FS], words[: FS], mode="full"))) - FS + 1  # the path's delay
        shifted = np.roll(gaps, max(0, lag))
        return float(np.mean(beam[shifted] ** 2) / np.mean(beam[~shifted] ** 2))

    plain = enhanced_beam(audio, pos, 90.0, 20.0, FS, C, covariance=None, wpe=False)
    dry = enhanced_beam(audio, pos, 90.0, 20.0, FS, C, covariance=None, wpe=True)
    assert room_left(dry) < 0.6 * room_left(plain)
