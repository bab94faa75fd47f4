"""Direction of arrival by SRP-PHAT over the configured geometry, any number of mics.

Per frame, each mic pair's cross-spectrum is PHAT-whitened (only phase is kept, so loud low
vowels do not dominate) and added, weighted, into the open utterance's accumulator. When the
utterance closes, each pair's generalised cross-correlation is computed once, upsampled by
zero-padding (sub-sample delay resolution: a 32 mm array spans only ~3 samples at 16 kHz) and the
steered response is the sum over pairs of each correlation at the delay that direction implies,
on a 1-degree azimuth grid at a few elevations (mouths are above the array, not level with it).
Pure numpy on arrays in, arrays out: no device, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from madoguchi.geometry import arrival_lead_s, linear_axis, mic_pairs, unit_vectors

AZIMUTH_STEP_DEG = 1.0
ELEVATIONS_DEG = (0.0, 20.0, 40.0, 60.0)
UPSAMPLE = 16


@dataclass(frozen=True)
class SteeredResponse:
    """SRP over the azimuth grid (max over elevations) and the best elevation per azimuth.

    ``power`` is normalised by what a perfectly coherent source would give, so 1 means every
    frame, pair and frequency agreed on that direction and 0 means no evidence at all.
    """

    azimuth_deg: np.ndarray
    power: np.ndarray
    elevation_deg: np.ndarray

    def peak(self) -> tuple[float, float]:
        """Peak azimuth refined by a parabola through its neighbours, and its elevation."""
        i = int(np.argmax(self.power))
        left, mid, right = self.power[i - 1], self.power[i], self.power[(i + 1) % len(self.power)]
        curvature = left - 2 * mid + right
        offset = 0.5 * (left - right) / curvature if curvature < 0 else 0.0
        step = self.azimuth_deg[1] - self.azimuth_deg[0]
        return float((self.azimuth_deg[i] + offset * step) % 360.0), float(self.elevation_deg[i])


class SrpPhat:
    """SRP-PHAT for one array geometry and frame size."""

    def __init__(self, positions_m: np.ndarray, sample_rate: int, frame_samples: int, speed_m_s: float, band_hz: tuple[float, float]) -> None:
        self.positions = np.asarray(positions_m, dtype=float)
        self.pairs = np.array(mic_pairs(len(self.positions)))
        self.n_fft = frame_samples
        freqs = np.fft.rfftfreq(frame_samples, 1.0 / sample_rate)
        self.band = (freqs >= band_hz[0]) & (freqs <= band_hz[1])
        self.window = np.hanning(frame_samples).astype(np.float32)
        self.azimuths = np.arange(0.0, 360.0, AZIMUTH_STEP_DEG)
        # A mic line cannot tell elevation from azimuth (a cone of directions shares each delay):
        # scan it in its own plane only, where "azimuth" is the angle to its axis.
        self.elevations = np.array((0.0,) if linear_axis(self.positions) is not None else ELEVATIONS_DEG)
        az, el = np.meshgrid(self.azimuths, self.elevations, indexing="ij")
        lead = arrival_lead_s(self.positions, unit_vectors(az, el), speed_m_s)  # (az, el, mics)
        # X_i X_j* correlates to a peak at arrival_i - arrival_j = lead_j - lead_i (upsampled samples).
        lag = (lead[..., self.pairs[:, 1]] - lead[..., self.pairs[:, 0]]) * sample_rate * UPSAMPLE
        self._lag = lag  # (az, el, pairs), fractional upsampled lags
        self._n_corr = frame_samples * UPSAMPLE

    def empty(self) -> np.ndarray:
        """A zero accumulator for cross-spectra."""
        return np.zeros((len(self.pairs), self.n_fft // 2 + 1), np.complex128)

    def spectra(self, frame: np.ndarray) -> np.ndarray:
        """Windowed spectra (mics, bins) of one (samples, mics) frame."""
        return np.fft.rfft(frame * self.window[:, None], axis=0).T

    def band_power(self, spectra: np.ndarray) -> np.ndarray:
        """Power per bin averaged over mics: what the background estimate is made of."""
        return np.mean(np.abs(spectra) ** 2, axis=0)

    def cross_spectra(self, spectra: np.ndarray, background_power: np.ndarray | None = None) -> np.ndarray:
        """PHAT-whitened cross-spectra (pairs, bins), each bin weighted by its speech dominance.

        Plain PHAT gives every bin one vote; beside a busy counter most bins of a frame belong
        to the babble or the room, which are coherent between close mics and pull estimates
        toward broadside. Weighting each bin by a Wiener-like gain 1 - noise/power (from the
        background's power spectrum) leaves the vote to the bins where the talker dominates.
        """
        cross = spectra[self.pairs[:, 0]] * np.conj(spectra[self.pairs[:, 1]])
        weight = self.band.astype(float)
        if background_power is not None:
            weight = weight * np.clip(1.0 - background_power / (self.band_power(spectra) + 1e-20), 0.0, 1.0)
        return cross * (weight / (np.abs(cross) + 1e-20))

    def response(self, accumulated: np.ndarray) -> SteeredResponse:
        """The steered response of summed cross-spectra (pairs, bins)."""
        corr = np.fft.irfft(accumulated, n=self._n_corr, axis=1)  # (pairs, lags), circular
        lag = self._lag
        base = np.floor(lag).astype(int)
        frac = lag - base
        pair_index = np.arange(len(self.pairs))
        lo = corr[pair_index, base % self._n_corr]
        hi = corr[pair_index, (base + 1) % self._n_corr]
        srp = np.sum(lo * (1 - frac) + hi * frac, axis=-1)  # (az, el)
        coherent = np.sum(np.fft.irfft(np.abs(accumulated), n=self._n_corr, axis=1)[:, 0])
        srp = srp / coherent if coherent > 0 else np.zeros_like(srp)
        best_el = np.argmax(srp, axis=1)
        return SteeredResponse(self.azimuths, srp.max(axis=1), self.elevations[best_el])
