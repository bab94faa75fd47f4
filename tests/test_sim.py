"""Tests for the simulated-counter fixtures (tests/sim): the scorer and one rendered scene."""
from __future__ import annotations

import math
import tomllib

import numpy as np
import pytest
import soundfile as sf

from tests.sim.score import FrontendScore, score, table
from tests.sim.spec import ARRAY_GEOMETRIES, TruthSegment, angular_distance_deg


def seg(start: float, end: float, side: str) -> TruthSegment:
    return TruthSegment(start, end, side, "ja" if side == "staff" else "en", "x", 0.0)


def hyp(start: float, end: float, side: str) -> dict:
    return {"start_s": start, "end_s": end, "side": side}


# --- score.py -------------------------------------------------------------------------------

def test_boundary_errors_inside_collar_are_free() -> None:
    # Hyp starts 0.2 s late and ends 0.1 s early: both inside the 0.25 s collar.
    sc = score([seg(1.0, 3.0, "staff")], [hyp(1.2, 2.9, "staff")])
    assert sc.scored_speech_s == pytest.approx(1.5)  # [1.25, 2.75]
    assert sc.missed_s == pytest.approx(0.0)
    assert sc.false_alarm_s == pytest.approx(0.0)
    assert (sc.side_correct, sc.side_total) == (1, 1)


def test_false_alarm_outside_collar() -> None:
    sc = score([seg(1.0, 3.0, "staff")], [hyp(0.5, 3.5, "staff")])
    assert sc.false_alarm_s == pytest.approx(0.5)  # [0.5, 0.75] + [3.25, 3.5]
    assert sc.false_alarm_rate == pytest.approx(0.5 / 1.5)
    assert score([seg(1.0, 3.0, "staff")], [hyp(0.5, 3.5, "staff")], collar_s=0.0
                 ).false_alarm_s == pytest.approx(1.0)


def test_merged_segments_cost_side_and_gap() -> None:
    truth = [seg(1.0, 2.0, "staff"), seg(3.0, 3.6, "resident")]
    sc = score(truth, [hyp(1.0, 3.6, "staff")])  # front end merged both turns into one
    assert sc.missed_s == pytest.approx(0.0)
    assert sc.false_alarm_s == pytest.approx(0.5)  # gap [2, 3] minus collars -> [2.25, 2.75]
    assert sc.scored_speech_s == pytest.approx(0.5 + 0.1)
    assert (sc.side_correct, sc.side_total) == (1, 2)
    assert (sc.short_correct, sc.short_total) == (0, 1)  # the 0.6 s reply got the wrong side


def test_missed_segment() -> None:
    truth = [seg(1.0, 2.0, "staff"), seg(4.0, 6.0, "resident")]
    sc = score(truth, [hyp(1.0, 2.0, "staff")])
    assert sc.missed_s == pytest.approx(1.5)  # [4.25, 5.75]
    assert sc.missed_rate == pytest.approx(1.5 / 2.0)
    assert sc.false_alarm_s == pytest.approx(0.0)
    assert (sc.side_correct, sc.side_total) == (1, 2)  # no overlapping hyp -> wrong
    assert sc.short_total == 0


def test_side_follows_largest_overlap() -> None:
    truth = [seg(0.0, 4.0, "resident"), seg(5.0, 5.5, "staff")]
    hyps = [hyp(0.0, 1.0, "resident"), hyp(1.0, 4.0, "staff"), hyp(5.1, 5.3, "staff")]
    sc = score(truth, hyps)
    assert (sc.side_correct, sc.side_total) == (1, 2)
    assert (sc.short_correct, sc.short_total) == (1, 1)  # short reply scored despite collars
    assert sc.missed_s == pytest.approx(0.0)


def test_scores_add_and_tabulate() -> None:
    a = FrontendScore(2.0, 0.5, 0.2, 3, 4, 1, 2)
    b = FrontendScore(2.0, 0.0, 0.2, 1, 1, 0, 0)
    total = sum([a, b])
    assert total == FrontendScore(4.0, 0.5, 0.4, 4, 5, 1, 2)
    assert total.missed_rate == pytest.approx(0.125)
    assert total.side_accuracy == pytest.approx(0.8)
    assert math.isnan(FrontendScore().side_accuracy)

    class Spec:
        name, n_mics, array_rotation_deg, rt60_s, n_babble = "demo", 4, 0.0, 0.4, 1

    text = table([(Spec(), a), (Spec(), b)])
    assert "demo" in text and "TOTAL" in text and "80.0" in text


# --- one rendered scene ---------------------------------------------------------------------

def _gcc_phat_lag(x: np.ndarray, y: np.ndarray, max_lag: int, up: int = 16) -> float:
    """Lag (samples) by which y trails x, from GCC-PHAT with `up`-times interpolation."""
    n = 2 * len(x)
    cross = np.fft.rfft(y, n) * np.conj(np.fft.rfft(x, n))
    cc = np.fft.irfft(cross / (np.abs(cross) + 1e-12), n * up)
    lags = np.r_[cc[-max_lag * up:], cc[: max_lag * up + 1]]
    return (int(np.argmax(lags)) - max_lag * up) / up


@pytest.fixture(scope="module")
def small_scene():
    from tests.sim.counter import build_scene, standard_scenes

    # The cheapest standard scene: 16 kHz, lowest RT60, least babble, fewest mics.
    spec = min(standard_scenes(),
               key=lambda s: (s.sample_rate != 16000, s.rt60_s, s.n_babble, s.n_mics))
    return build_scene(spec)


def test_scene_files_and_truth(small_scene) -> None:
    spec = small_scene.spec
    info = sf.info(str(small_scene.wav_path))
    assert info.channels == spec.n_mics
    assert info.samplerate == spec.sample_rate
    segs = small_scene.segments
    assert len(segs) == len(spec.lines) and {s.side for s in segs} == {"staff", "resident"}
    assert segs[0].start_s >= 1.0 and segs[-1].end_s <= info.duration - 0.9
    for a, b in zip(segs, segs[1:]):
        assert a.start_s < a.end_s <= b.start_s
    assert any(s.duration_s <= 0.8 for s in segs)
    assert 25.0 <= info.duration <= 55.0

    audio, _ = sf.read(str(small_scene.wav_path), dtype="float32")
    assert 0.5 < np.max(np.abs(audio)) < 1.0  # normalised near -3 dBFS, no clipping
    lead = audio[: int(0.9 * info.samplerate)]
    first = audio[int(segs[0].start_s * info.samplerate): int(segs[0].end_s * info.samplerate)]
    assert np.sqrt(np.mean(first**2)) > 30 * np.sqrt(np.mean(lead**2))  # no babble here


def test_scene_config_matches_geometry(small_scene) -> None:
    spec = small_scene.spec
    cfg = tomllib.loads(small_scene.config_path.read_text(encoding="utf-8"))
    mics = np.array(cfg["array"]["mic_positions_m"])
    np.testing.assert_allclose(mics, ARRAY_GEOMETRIES[spec.n_mics], atol=1e-6)
    staff, resident = cfg["sides"]["staff_azimuth_deg"], cfg["sides"]["resident_azimuth_deg"]
    assert staff == pytest.approx(spec.staff_azimuth_deg, abs=1e-3)
    assert resident == pytest.approx(spec.resident_azimuth_deg, abs=1e-3)
    assert angular_distance_deg(staff, resident) == pytest.approx(180.0, abs=1e-3)
    for s in small_scene.segments:
        nominal = staff if s.side == "staff" else resident
        assert 0.0 <= s.azimuth_deg < 360.0
        assert angular_distance_deg(s.azimuth_deg, nominal) <= 45.0 + 1e-6


def test_scene_delays_point_to_the_right_side(small_scene) -> None:
    """Inter-mic delays in the audio agree with the configured geometry (sign and size)."""
    spec = small_scene.spec
    audio, sr = sf.read(str(small_scene.wav_path), dtype="float64")
    mics = ARRAY_GEOMETRIES[spec.n_mics]
    pair = (0, spec.n_mics // 2)  # opposite mics: the longest baseline
    baseline = mics[pair[0]] - mics[pair[1]]
    max_lag = int(np.ceil(np.linalg.norm(baseline) / 343.0 * sr)) + 1
    elevations = {t["role"]: t["elevation_deg"] for t in small_scene.truth()["talkers"]}
    for s in small_scene.segments:
        if s.duration_s < 1.5:
            continue
        mid = int((s.start_s + s.end_s) / 2 * sr)
        x = audio[mid - sr // 2: mid + sr // 2]  # 1 s of the middle keeps the FFTs small
        lag = _gcc_phat_lag(x[:, pair[0]], x[:, pair[1]], max_lag)
        az, el = np.deg2rad(s.azimuth_deg), np.deg2rad(elevations[s.side])
        u = np.array([np.cos(az) * np.cos(el), np.sin(az) * np.cos(el), np.sin(el)])
        expected = float(baseline @ u) / 343.0 * sr  # source toward mic 0 -> mic 1 trails
        assert abs(lag - expected) < 0.6, (s.text, lag, expected)
