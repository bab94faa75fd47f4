"""SRP-PHAT, side decisions and the beam on synthetic far-field waves with exact fractional delays."""

from __future__ import annotations

import math

import numpy as np
import pytest

from madoguchi.config import SidesSettings
from madoguchi.frontend.beam import delay_and_sum
from madoguchi.frontend.doa import SrpPhat, SteeredResponse
from madoguchi.frontend.sides import decide_side
from madoguchi.geometry import angular_distance_deg, arrival_lead_s, unit_vectors

FS = 16000
C = 343.0


def circle(n: int, radius: float) -> np.ndarray:
    return np.array([[radius * math.cos(2 * math.pi * k / n), radius * math.sin(2 * math.pi * k / n), 0.0] for k in range(n)])


ARRAYS = {
    "2-mic line": np.array([[0.03, 0, 0], [-0.03, 0, 0]]),
    "4-mic square 32 mm": circle(4, 0.032),
    "6-mic circle": circle(6, 0.0463),
}


def plane_wave(positions: np.ndarray, azimuth: float, elevation: float, seconds: float = 1.0, seed: int = 0, noise: float = 0.0) -> np.ndarray:
    """White noise arriving from (azimuth, elevation): each mic hears it early by its lead."""
    rng = np.random.default_rng(seed)
    n = int(seconds * FS)
    spectrum = np.fft.rfft(rng.standard_normal(n))
    omega = 2 * np.pi * np.fft.rfftfreq(n, 1 / FS)
    lead = arrival_lead_s(positions, unit_vectors(np.array(azimuth), np.array(elevation)), C)
    x = np.stack([np.fft.irfft(spectrum * np.exp(1j * omega * t), n) for t in lead], axis=1)
    return (0.1 * x + noise * rng.standard_normal(x.shape)).astype(np.float32)


def estimate(positions: np.ndarray, audio: np.ndarray) -> SteeredResponse:
    srp = SrpPhat(positions, FS, 512, C, (200.0, 6000.0))
    accumulated = srp.empty()
    for i in range(0, len(audio) - 512, 512):
        accumulated += srp.cross_spectra(srp.spectra(audio[i : i + 512]))
    return srp.response(accumulated)


@pytest.mark.parametrize("name", ["4-mic square 32 mm", "6-mic circle"])
@pytest.mark.parametrize(("azimuth", "elevation"), [(0.0, 0.0), (37.3, 30.0), (123.7, 10.0), (211.5, 50.0), (301.2, 0.0)])
def test_planar_arrays_find_azimuth_to_a_degree(name: str, azimuth: float, elevation: float) -> None:
    found, _ = estimate(ARRAYS[name], plane_wave(ARRAYS[name], azimuth, elevation, noise=0.02)).peak()
    # A 32 mm square spans ~3 samples: sub-degree accuracy needs sub-sample delays.
    assert angular_distance_deg(found, azimuth) < 1.0


@pytest.mark.parametrize("azimuth", [0.0, 30.0, 150.0, 180.0])
def test_two_mic_line_finds_angle_to_its_axis(azimuth: float) -> None:
    found, _ = estimate(ARRAYS["2-mic line"], plane_wave(ARRAYS["2-mic line"], azimuth, 0.0)).peak()
    # A line is blind to the mirror image across its axis: only the angle to the axis counts.
    assert abs(abs(((found + 180) % 360) - 180) - abs(((azimuth + 180) % 360) - 180)) < 3.0


def test_frontend_band_ignores_out_of_band_interference() -> None:
    pos = ARRAYS["4-mic square 32 mm"]
    talker = plane_wave(pos, 80.0, 20.0, seed=1)
    # A strong 7.5 kHz whistle from elsewhere, above the 6 kHz analysis band.
    t = np.arange(len(talker)) / FS
    lead = arrival_lead_s(pos, unit_vectors(np.array(250.0), np.array(0.0)), C)
    whistle = np.stack([np.sin(2 * np.pi * 7500 * (t + dt)) for dt in lead], axis=1).astype(np.float32)
    found, _ = estimate(pos, talker + whistle).peak()
    assert angular_distance_deg(found, 80.0) < 2.0


SIDES = SidesSettings(staff_azimuth_deg=270.0, resident_azimuth_deg=90.0, max_offset_deg=70.0, min_confidence=0.1)


@pytest.mark.parametrize(("azimuth", "side"), [(270.0, "staff"), (225.0, "staff"), (315.0, "staff"), (90.0, "resident"), (45.0, "resident"), (135.0, "resident")])
def test_side_follows_direction_up_to_45_degrees_off_axis(azimuth: float, side: str) -> None:
    pos = ARRAYS["4-mic square 32 mm"]
    decision = decide_side(estimate(pos, plane_wave(pos, azimuth, 30.0)), SIDES, previous=None)
    assert decision.side == side and not decision.off_counter and not decision.held
    assert decision.confidence > 0.5


def test_off_counter_direction_is_flagged() -> None:
    pos = ARRAYS["4-mic square 32 mm"]
    decision = decide_side(estimate(pos, plane_wave(pos, 0.0, 0.0)), SIDES, previous=None)
    assert decision.off_counter


def test_ambiguous_evidence_keeps_previous_side() -> None:
    azimuths = np.arange(0.0, 360.0)
    flat = SteeredResponse(azimuths, 0.1 + 0.001 * np.cos(np.radians(azimuths - 100.0)), np.zeros(360))
    decision = decide_side(flat, SIDES, previous="staff")
    assert decision.held and decision.side == "staff" and decision.confidence < SIDES.min_confidence
    assert decide_side(flat, SIDES, previous=None).side == "resident"


def test_beam_adds_the_talker_coherently_and_attenuates_the_other_side() -> None:
    pos = ARRAYS["6-mic circle"]
    talker = plane_wave(pos, 90.0, 30.0, seed=2)
    other = plane_wave(pos, 270.0, 30.0, seed=3)
    toward = delay_and_sum(talker + other, pos, 90.0, 30.0, FS, C)
    alone = delay_and_sum(talker, pos, 90.0, 30.0, FS, C)
    assert np.var(alone) == pytest.approx(np.var(talker[:, 0]), rel=0.02)  # no loss toward the talker
    residual = delay_and_sum(other, pos, 90.0, 30.0, FS, C)
    assert np.var(residual) < 0.6 * np.var(other[:, 0])  # the opposite side is attenuated
    assert np.corrcoef(toward, alone)[0, 1] > 0.8
