"""Delay-and-sum beam toward the talker: the mono signal ASR hears.

Fractional delays are applied in the frequency domain on the whole utterance (a few seconds,
one FFT per channel), so a 32 mm array's sub-sample delays are exact. Pure numpy.
"""

from __future__ import annotations

import numpy as np

from madoguchi.geometry import arrival_lead_s, unit_vectors


def fast_fft_length(n: int) -> int:
    """The smallest 2^a 3^b 5^c >= n: FFTs of awkward lengths (large prime factors) are ~5x slower."""
    best = 1 << max(0, (n - 1).bit_length())
    power5 = 1
    while power5 < best:
        power35 = power5
        while power35 < best:
            candidate = power35 << max(0, (-(-n // power35) - 1).bit_length())
            best = min(best, candidate)
            power35 *= 3
        power5 *= 5
    return best


def delay_and_sum(audio: np.ndarray, positions_m: np.ndarray, azimuth_deg: float, elevation_deg: float, sample_rate: int, speed_m_s: float) -> np.ndarray:
    """Align every mic on a far-field wave from (azimuth, elevation) and average; (n, mics) -> (n,)."""
    n = len(audio)
    if n == 0:
        return np.zeros(0, np.float32)
    lead = arrival_lead_s(positions_m, unit_vectors(np.array(azimuth_deg), np.array(elevation_deg)), speed_m_s)
    pad = 64  # room for the largest delay so the circular shift does not wrap speech around
    n_fft = fast_fft_length(n + pad)
    spectra = np.fft.rfft(audio, n=n_fft, axis=0)  # (bins, mics)
    omega = 2 * np.pi * np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    # A mic that hears the wave early (positive lead) is delayed by its lead to line up.
    aligned = spectra * np.exp(-1j * omega[:, None] * lead[None, :])
    return np.fft.irfft(aligned.mean(axis=1), n=n_fft)[:n].astype(np.float32)
