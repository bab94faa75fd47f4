"""``madoguchi calibrate``: learn each side's azimuth from recordings of that side speaking."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from madoguchi.calibrate import side_azimuth, write_sides
from madoguchi.config import load_settings
from madoguchi.events import Utterance
from madoguchi.geometry import angular_distance_deg
from tests.sim.counter import build_scene, standard_scenes

ROOT = Path(__file__).resolve().parents[1]


def one_side(spec, side: str):
    return build_scene(dataclasses.replace(spec, name=f"{spec.name}-{side}-only", lines=tuple(line for line in spec.lines if line[0] == side)))


@pytest.mark.parametrize("index", [1, 14])  # a 4-mic square and a 6-mic circle, both with babble
def test_calibration_learns_where_each_side_sits(tmp_path: Path, index: int) -> None:
    spec = standard_scenes()[index]
    staff, resident = one_side(spec, "staff"), one_side(spec, "resident")
    config = tmp_path / "site.toml"
    # The installer's config: the right geometry, but sides left at the defaults.
    geometry = staff.config_path.read_text().split("[sides]")[0]
    config.write_text("# site config\n" + geometry + "[vad]\nhangover_ms = 320\n")
    result = subprocess.run(
        [sys.executable, "-m", "madoguchi", "calibrate", "--no-system-config", "--config", str(config), "--staff", str(staff.wav_path), "--resident", str(resident.wav_path), "--write", str(config)],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    learned = load_settings(config, system_layers=False)
    assert angular_distance_deg(learned.sides.staff_azimuth_deg, spec.talker_azimuth_deg("staff")) < 8.0
    assert angular_distance_deg(learned.sides.resident_azimuth_deg, spec.talker_azimuth_deg("resident")) < 8.0
    assert "hangover_ms = 320" in config.read_text() and "# site config" in config.read_text()  # the rest is kept


def _heard(azimuth_deg: float, start_s: float, seconds: float) -> Utterance:
    end_s = start_s + seconds
    return Utterance(start_s, end_s, "staff", azimuth_deg, 20.0, 0.05, False, end_s + 0.3, "silence", start_s, np.zeros(16, np.float32))


def test_voices_from_elsewhere_do_not_pull_the_side() -> None:
    """With the sectors still unknown, the next counter's voices reach calibration: they are named, not averaged in."""
    clerk = [_heard(az, 3.0 * k, 2.0) for k, az in enumerate((6.6, 5.6, 7.2, 7.3, 4.6, 6.0, 5.5))]
    neighbours = [_heard(306.2, 2.0, 0.64), _heard(306.6, 8.0, 0.58), _heard(306.7, 11.0, 0.35), _heard(107.1, 21.0, 0.22)]
    estimate = side_azimuth("staff", clerk + neighbours)
    assert angular_distance_deg(estimate.azimuth_deg, 6.1) < 0.5
    assert estimate.speech_s == pytest.approx(14.0)
    assert sorted(round(az) for az, _ in estimate.other_voices) == [107, 306, 307, 307]
    assert estimate.share > 0.8
    # A talker across 0/360 is one cluster, not two.
    wrapped = side_azimuth("staff", [_heard(az, 3.0 * k, 2.0) for k, az in enumerate((358.0, 2.0, 359.0, 1.0))])
    assert angular_distance_deg(wrapped.azimuth_deg, 0.0) < 0.5 and not wrapped.other_voices


def test_calibration_without_speech_is_a_clear_error(tmp_path: Path) -> None:
    import soundfile

    silence = tmp_path / "silence.wav"
    soundfile.write(silence, np.zeros((32000, 4), np.float32), 16000)
    result = subprocess.run([sys.executable, "-m", "madoguchi", "calibrate", "--no-system-config", "--staff", str(silence), "--resident", str(silence)], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 1
    assert "[calibration_failed]" in result.stderr and "staff: heard only 0.0 s of speech" in result.stderr
    assert "Traceback" not in result.stderr


def test_write_sides_replaces_keys_in_place(tmp_path: Path) -> None:
    config = tmp_path / "a.toml"
    config.write_text("[sides]\nstaff_azimuth_deg = 1\nmax_offset_deg = 60\n\n[vad]\nhangover_ms = 300\n")
    write_sides(config, 181.5, 2.5)
    text = config.read_text()
    assert "staff_azimuth_deg = 181.5" in text and "resident_azimuth_deg = 2.5" in text
    assert text.count("staff_azimuth_deg") == 1 and "max_offset_deg = 60" in text and "hangover_ms = 300" in text
    settings = load_settings(config, system_layers=False)
    assert (settings.sides.staff_azimuth_deg, settings.sides.resident_azimuth_deg, settings.sides.max_offset_deg) == (181.5, 2.5, 60.0)
