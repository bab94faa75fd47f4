"""Do the configured sides match the room? The placement verdict (frontend/placement.py).

Synthetic event sequences pin the rule; the bundled demo replayed with a wrong ``[sides]`` is the
issue's bar (``madoguchi replay --stages frontend`` prints the hint); the simulated counters with
their neighbours talking are where it must never fire.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from madoguchi.app.parts import frontend_events
from madoguchi.app.records import placement_hint
from madoguchi.config import Settings, SidesSettings, load_settings
from madoguchi.events import Utterance, UtteranceRejected
from madoguchi.frontend.placement import CLEAR_SHARE, MIN_HEARD_S, OFF_SHARE, PlacementTracker, line_axis_deg
from madoguchi.geometry import angular_distance_deg
from madoguchi.telemetry.schemas import problems

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "firmware" / "madoguchi" / "data" / "demo"
SIDES = SidesSettings(staff_azimuth_deg=183.0, resident_azimuth_deg=90.0)  # the wrong config


def said(start: float, seconds: float, azimuth: float, side: str = "resident") -> Utterance:
    return Utterance(start, start + seconds, side, azimuth, 20.0, 0.5, False, start + seconds + 0.3, "silence", start - 0.25, np.zeros(0, np.float32))


def elsewhere(start: float, seconds: float, azimuth: float | None) -> UtteranceRejected:
    return UtteranceRejected(start, start + seconds, "off_counter", azimuth)


def conversation(tracker: PlacementTracker, turns: int, t0: float = 0.0, *, side_az: float = 103.0, other_az: float = 261.0, other_side: str | None = None) -> float:
    """Turns alternating between a heard side and another talker (off-sector unless ``other_side``); returns the end time."""
    t = t0
    for _ in range(turns):
        tracker.heard(said(t, 1.5, side_az))
        t += 2.0
        tracker.heard(said(t, 1.5, other_az, other_side) if other_side else elsewhere(t, 1.5, other_az))
        t += 2.0
    return t


# --- the rule, on synthetic events ---------------------------------------------------------------


def test_a_talker_across_the_counter_outside_both_sectors_is_reported_with_the_directions() -> None:
    tracker = PlacementTracker(SIDES)
    conversation(tracker, 5)
    verdict = tracker.verdict()
    assert verdict.off_sector and verdict.heard_s == pytest.approx(15.0) and verdict.share == pytest.approx(0.5)
    assert sorted((round(d.azimuth_deg), d.seconds, d.side or "") for d in verdict.directions) == [(103, 7.5, "resident"), (261, 7.5, "")]
    text = verdict.describe(SIDES)
    assert "7.5 of 15.0 s of speech (50 %) came from outside both sides' sectors" in text and "261 deg 7.5 s (outside both)" in text
    assert "staff 183 deg, resident 90 deg" in text
    assert not problems("health", {"ts": 1.0, "uptime_s": 1.0, "spool": {"pending": 0, "bytes": 0, "oldest_age_s": None, "dropped_total": 0, "dropped": {}},
                                   "placement": verdict.as_dict()})


def test_a_normal_counter_with_neighbours_talking_is_not_reported() -> None:
    tracker = PlacementTracker(SidesSettings())
    t = conversation(tracker, 8, side_az=100.0, other_az=265.0, other_side="staff")
    for k in range(6):  # the next counter's babble, beside the box, now and then
        tracker.heard(elsewhere(t + k, 0.5, 5.0 + 3 * k))
    verdict = tracker.verdict()
    assert not verdict.off_sector and verdict.share < 0.15


def test_babble_beside_the_box_is_not_a_wrong_side_however_much_of_it() -> None:
    """An idle counter beside busy ones: the little the sides get is the neighbours' babble too, from beside."""
    tracker = PlacementTracker(SidesSettings())
    t = 0.0
    for k in range(10):
        tracker.heard(elsewhere(t, 2.0, 178.0))
        tracker.heard(said(t + 2.5, 0.5, 150.0, "resident" if k % 2 else "staff"))  # leaked in at a sector's edge
        t += 4.0
    verdict = tracker.verdict()
    assert verdict.share > 0.7 and not verdict.off_sector


def test_neighbours_on_both_sides_are_not_a_wrong_side() -> None:
    """Babble from one neighbour leaks into a sector's edge, the other neighbour is across: the side
    'heard' is not where the config puts a talker, so it is no evidence of a misplaced one."""
    sides = SidesSettings(staff_azimuth_deg=255.0, resident_azimuth_deg=75.0)
    leaking, talking = PlacementTracker(sides), PlacementTracker(sides)
    for k in range(5):
        leaking.heard(said(4.0 * k, 1.5, 318.0, "staff"))  # 63 deg from the staff's azimuth: the neighbour at 333, leaking in
        talking.heard(said(4.0 * k, 1.5, 262.0, "staff"))  # a clerk where the config says
        for tracker in (leaking, talking):
            tracker.heard(elsewhere(4.0 * k + 2, 1.5, 150.0))
    assert not leaking.verdict().off_sector and talking.verdict().off_sector


def test_no_verdict_on_too_little_speech_or_on_none_from_either_side() -> None:
    few = PlacementTracker(SIDES)
    few.heard(said(0.0, 2.0, 103.0))
    few.heard(elsewhere(3.0, 2.0, 261.0))
    assert few.verdict().heard_s < MIN_HEARD_S and not few.verdict().off_sector
    nobody = PlacementTracker(SIDES)  # all off-sector: idle beside busy counters looks the same as a box turned round
    for k in range(20):
        nobody.heard(elsewhere(2.0 * k, 1.5, 0.0 if k % 2 else 180.0))
    assert nobody.verdict().share == 1.0 and not nobody.verdict().off_sector


def test_only_utterances_and_located_off_counter_speech_count() -> None:
    tracker = PlacementTracker(SIDES)
    conversation(tracker, 5)
    before = tracker.verdict()
    tracker.heard(UtteranceRejected(30.0, 30.1, "too_short"))
    tracker.heard(elsewhere(31.0, 3.0, None))  # no direction: nothing to say about it
    assert tracker.verdict() == before


def test_a_line_array_compares_angles_from_its_axis() -> None:
    """A 2-mic line cannot tell a direction from its mirror image: 300 deg is 60 deg from its axis, like 60 deg."""
    assert line_axis_deg([[0.03, 0, 0], [-0.03, 0, 0]]) in (0.0, 180.0)
    assert line_axis_deg(Settings().array.mic_positions_m) is None
    events = [said(4.0 * k, 1.5, 300.0, "staff") for k in range(5)] + [elsewhere(4.0 * k + 2, 1.5, 90.0) for k in range(5)]
    planar, line = PlacementTracker(SidesSettings()), PlacementTracker(SidesSettings(), axis_deg=0.0)
    for event in events:
        planar.heard(event)
        line.heard(event)
    assert planar.verdict().off_sector and not line.verdict().off_sector


def test_live_the_verdict_holds_until_clearly_over_and_forgets_old_speech() -> None:
    tracker = PlacementTracker(SIDES, window_s=60.0)
    t = conversation(tracker, 5)
    assert tracker.verdict(t).off_sector
    # Fixed (or the misplaced talker left): speech from the sides only. It stays on while the
    # off-sector share is above CLEAR_SHARE, then clears; the window forgets the old speech.
    shares = []
    while tracker.verdict(t).off_sector:
        tracker.heard(said(t, 1.5, 103.0))
        t += 2.0
        shares.append(tracker.verdict(t).share)
    assert shares[-1] < CLEAR_SHARE and any(CLEAR_SHARE <= s < OFF_SHARE for s in shares)  # hysteresis: it held below OFF_SHARE
    t += 120.0
    assert tracker.verdict(t).heard_s == 0.0 and not tracker.verdict(t).off_sector


# --- the front end that feeds it -----------------------------------------------------------------


def _wrong_demo_settings() -> Settings:
    settings = load_settings(DEMO / "counter-demo.toml", system_layers=False)
    return dataclasses.replace(settings, sides=dataclasses.replace(settings.sides, staff_azimuth_deg=183.0))


def _verdict(settings: Settings):
    tracker = PlacementTracker.for_settings(settings)
    for event in frontend_events(settings, DEMO / "counter-demo.flac"):
        tracker.heard(event)
    return tracker.verdict()


def test_the_front_end_reports_speech_from_elsewhere_with_its_direction() -> None:
    """With the clerk's sector in the wrong place, the clerk's speech opens nothing: it comes as off-counter stretches."""
    events = list(frontend_events(_wrong_demo_settings(), DEMO / "counter-demo.flac"))
    elsewhere = [e for e in events if isinstance(e, UtteranceRejected) and e.reason == "off_counter"]
    assert sum(e.end_s - e.start_s for e in elsewhere) > 6.0
    assert all(e.azimuth_deg is not None for e in elsewhere)
    assert sum(angular_distance_deg(e.azimuth_deg, 261.0) < 15 for e in elsewhere) >= len(elsewhere) // 2


def test_the_demo_with_the_right_sides_is_fine_and_with_a_wrong_one_is_reported() -> None:
    fine = _verdict(load_settings(DEMO / "counter-demo.toml", system_layers=False))
    assert not fine.off_sector and fine.share < 0.1 and fine.heard_s > 15
    wrong = _wrong_demo_settings()
    verdict = _verdict(wrong)
    assert verdict.off_sector and verdict.share > 0.35
    outside = [d for d in verdict.directions if d.side is None]
    assert outside and angular_distance_deg(outside[0].azimuth_deg, 261.0) < 10 and outside[0].seconds > 6  # the clerk, ignored
    assert any(d.side == "resident" and angular_distance_deg(d.azimuth_deg, 103.0) < 10 for d in verdict.directions)
    hint = placement_hint(wrong, verdict)
    assert "madoguchi calibrate --config" in hint and "--live" in hint and "--write" in hint


def _replay(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "madoguchi", "replay", "--no-system-config", "--config", str(config), "--stages", "frontend", str(DEMO / "counter-demo.flac")],
                          capture_output=True, check=False, text=True, timeout=300, cwd=ROOT, env={**os.environ, "PYTHONWARNINGS": "ignore"})


def test_replay_says_once_on_stderr_when_the_sides_do_not_match_the_room(tmp_path: Path) -> None:
    """The issue's bar: the demo with staff at 183 instead of 270 deg prints the hint, the directions and the fix."""
    config = tmp_path / "wrong-sides.toml"
    config.write_text((DEMO / "counter-demo.toml").read_text().replace("staff_azimuth_deg = 270.000", "staff_azimuth_deg = 183.0"))
    result, right = _replay(config), _replay(DEMO / "counter-demo.toml")
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) < len(right.stdout.splitlines())  # the clerk's speech was ignored
    assert result.stderr.count("came from outside both sides' sectors") == 1
    heard = next(line for line in result.stderr.splitlines() if "heard from:" in line)
    assert "deg" in heard and "(outside both)" in heard and "(resident)" in heard
    assert f"madoguchi calibrate --config {config} --live 8 --write {config}" in result.stderr
    assert right.returncode == 0 and "outside both sides" not in right.stderr


def test_the_faces_status_line_shows_the_hint_unless_an_error_is_showing() -> None:
    from madoguchi.display.state import DisplayState, Surroundings, views
    from madoguchi.frontend.placement import HINT_CODE

    settings = Settings()
    hinted = views(DisplayState(), settings, Surroundings(hint=HINT_CODE), 0.0)
    assert {face.status.error for face in hinted.values()} == {"check_sides"}
    both = views(DisplayState(), settings, Surroundings(error="mic_lost", hint=HINT_CODE), 0.0)
    assert {face.status.error for face in both.values()} == {"mic_lost"}
    assert {face.status.error for face in views(DisplayState(), settings, Surroundings(), 0.0).values()} == {None}
