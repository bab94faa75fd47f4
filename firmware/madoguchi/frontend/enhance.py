"""Beams other than delay-and-sum, for the ASR's audio: MVDR toward the talker, WPE dereverberation.

All work on one closed utterance at a time (a few seconds of multichannel audio), in a short-time
Fourier domain whose frames match the front end's (512 samples, Hann), so the noise covariance
the front end learns between utterances applies bin for bin.

- **MVDR** (minimum variance distortionless response): per frequency, the weights that pass the
  talker's direction unchanged and minimise everything else, given the room's noise covariance
  ``Φ`` (the next counter's babble, ventilation) learned from the frames between utterances.
  Where delay-and-sum only adds the talker up, MVDR also steers nulls at the neighbours.
  Diagonal loading keeps it close to delay-and-sum when ``Φ`` is poorly known.
- **WPE** (weighted prediction error, nara-wpe): removes the late reverberation each mic hears by
  predicting it from the past frames (taps 10, delay 3, as Kaldi's REVERB recipe), before the beam.

Which one the box uses is ``[beam] method``, chosen by Whisper's error rate on simulated counters
(tests/bench/attribution.py), never by SNR. Pure numpy apart from nara-wpe; no device, no clock.
"""

from __future__ import annotations

import numpy as np

from madoguchi.geometry import arrival_lead_s, unit_vectors

FFT_SIZE = 512  # the front end's frame: 32 ms at 16 kHz
HOP = FFT_SIZE // 4
WPE_TAPS, WPE_DELAY, WPE_ITERATIONS = 10, 3, 3
LOADING = 1e-2  # diagonal loading, relative to the covariance's mean power per mic


def _window() -> np.ndarray:
    return np.sqrt(np.hanning(FFT_SIZE + 1)[:-1]).astype(np.float64)  # periodic √Hann: analysis and synthesis


def stft(audio: np.ndarray) -> np.ndarray:
    """(samples, mics) -> (bins, mics, frames), padded so every sample is in FFT_SIZE / HOP frames."""
    n, mics = audio.shape
    padded = np.pad(audio, ((FFT_SIZE - HOP, FFT_SIZE), (0, 0)))
    count = (len(padded) - FFT_SIZE) // HOP + 1
    index = np.arange(FFT_SIZE)[None, :] + HOP * np.arange(count)[:, None]
    frames = padded[index] * _window()[None, :, None]  # (frames, FFT_SIZE, mics)
    return np.fft.rfft(frames, axis=1).transpose(1, 2, 0)


def istft(spectra: np.ndarray, n: int) -> np.ndarray:
    """(bins, frames) -> (n,) by weighted overlap-add (√Hann at a quarter hop sums to a constant)."""
    frames = np.fft.irfft(spectra.T, n=FFT_SIZE, axis=1) * _window()[None, :]
    out = np.zeros(HOP * (len(frames) - 1) + FFT_SIZE)
    for k, frame in enumerate(frames):
        out[k * HOP : k * HOP + FFT_SIZE] += frame
    gain = FFT_SIZE / (2 * HOP)  # Σ window² over overlapping frames
    return (out[FFT_SIZE - HOP : FFT_SIZE - HOP + n] / gain).astype(np.float32)


def steering(positions_m: np.ndarray, azimuth_deg: float, elevation_deg: float, sample_rate: int, speed_m_s: float) -> np.ndarray:
    """(bins, mics): the phase each mic hears a far-field wave from (azimuth, elevation) with."""
    lead = arrival_lead_s(positions_m, unit_vectors(np.array(azimuth_deg), np.array(elevation_deg)), speed_m_s)
    omega = 2 * np.pi * np.fft.rfftfreq(FFT_SIZE, 1.0 / sample_rate)
    return np.exp(1j * omega[:, None] * lead[None, :])


class NoiseCovariance:
    """The room without the talkers, per frequency: Φ(f) = E[x xᴴ], learned from background frames."""

    def __init__(self, mics: int, rate: float) -> None:
        self.matrix = np.zeros((FFT_SIZE // 2 + 1, mics, mics), np.complex128)
        self.frames = 0
        self._rate = rate

    def update(self, spectra: np.ndarray) -> None:
        """One frame's spectra (mics, bins) from the front end (Hann, FFT_SIZE)."""
        x = spectra.T  # (bins, mics)
        outer = x[:, :, None] * x[:, None, :].conj()
        if self.frames == 0:
            self.matrix = outer
        else:
            self.matrix += self._rate * (outer - self.matrix)
        self.frames += 1


def mvdr_weights(covariance: np.ndarray | None, steer: np.ndarray) -> np.ndarray:
    """(bins, mics) weights w = Φ⁻¹d / (dᴴΦ⁻¹d); delay-and-sum's when Φ is unknown."""
    mics = steer.shape[1]
    if covariance is None:
        return steer / mics
    power = np.real(np.trace(covariance, axis1=1, axis2=2)) / mics  # (bins,)
    loaded = covariance + (LOADING * power + 1e-12)[:, None, None] * np.eye(mics)[None]
    solved = np.linalg.solve(loaded, steer[:, :, None])[:, :, 0]  # Φ⁻¹d
    return solved / np.sum(steer.conj() * solved, axis=1, keepdims=True).conj()


def dereverberate(spectra: np.ndarray) -> np.ndarray:
    """WPE on (bins, mics, frames); the same shape back, late reverberation removed."""
    from nara_wpe.wpe import wpe_v8

    return wpe_v8(spectra, taps=WPE_TAPS, delay=WPE_DELAY, iterations=WPE_ITERATIONS, statistics_mode="full")


def enhanced_beam(audio: np.ndarray, positions_m: np.ndarray, azimuth_deg: float, elevation_deg: float, sample_rate: int, speed_m_s: float, *,
                  covariance: np.ndarray | None, wpe: bool) -> np.ndarray:
    """(samples, mics) -> (samples,): optional WPE, then MVDR toward the talker (delay-and-sum without Φ)."""
    n = len(audio)
    if n == 0:
        return np.zeros(0, np.float32)
    spectra = stft(audio.astype(np.float64))
    if wpe:
        spectra = dereverberate(spectra)
    weights = mvdr_weights(covariance, steering(positions_m, azimuth_deg, elevation_deg, sample_rate, speed_m_s))
    beam = np.einsum("bm,bmt->bt", weights.conj(), spectra)
    return istft(beam, n)
