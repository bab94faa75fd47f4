"""The issue's bars, measured on simulated counters (real speech, rooms, babble; Silero VAD).

Scenes are built once and cached (tests/sim); the front end runs on each exactly as
``madoguchi replay`` would, block by block.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np
import pytest

from madoguchi.app.parts import frontend_events, recording_source
from madoguchi.config import load_settings
from madoguchi.events import SpeechPaused, Utterance
from madoguchi.frontend.pipeline import UNFINISHED_HOLD_MS, Frontend
from madoguchi.frontend.placement import OFF_SHARE, PlacementTracker
from madoguchi.frontend.vad import SileroVad
from tests.bench.evaluate import SceneRun, run_scene
from tests.sim.counter import build_scene, standard_scenes
from tests.sim.score import FrontendScore, score, table

pytestmark = pytest.mark.slow
SNAPSHOT = Path(__file__).parent / "snapshots" / "demo_frontend.json"
DEMO = Path(__file__).resolve().parents[1] / "firmware" / "madoguchi" / "data" / "demo"


@pytest.fixture(scope="module")
def runs() -> list[tuple[SceneRun, FrontendScore]]:
    out = []
    for spec in standard_scenes():
        run = run_scene(build_scene(spec))
        out.append((run, score(run.scene.segments, run.hypotheses())))
    return out


def test_at_least_twenty_scenes_cover_the_conditions(runs) -> None:
    specs = [r.scene.spec for r, _ in runs]
    assert len(specs) >= 20
    assert {s.n_mics for s in specs} == {2, 4, 6}
    assert min(s.rt60_s for s in specs) <= 0.2 and max(s.rt60_s for s in specs) >= 0.9
    assert any(s.resident_gain_db < 0 for s in specs) and any(s.n_babble >= 3 for s in specs)
    assert max(max(abs(s.staff_offset_deg), abs(s.resident_offset_deg)) for s in specs) >= 40


def test_the_front_end_holds_up_in_every_kind_of_room(runs, capsys) -> None:
    """What must always hold, far from today's figures; the issue's bars (side >= 97 %, missed and
    false alarm <= 5 %) are measured and printed by ``python -m tests.bench.frontend``, where a new
    library version that moves a figure by a point is a row to read, not a red suite."""
    total = sum((s for _, s in runs), FrontendScore())
    with capsys.disabled():
        print("\n" + table([(r.scene.spec, s) for r, s in runs]))
    assert total.side_accuracy >= 0.90
    assert total.short_accuracy >= 0.75 and total.short_total >= 20
    assert total.missed_rate <= 0.12
    assert total.false_alarm_rate <= 0.12
    for run, scene_score in runs:  # no room where the front end stops working
        assert scene_score.side_accuracy >= 0.6 and scene_score.missed_rate <= 0.5, run.scene.spec.name


def test_no_hint_about_the_sides_on_counters_with_neighbours_talking(runs) -> None:
    """Every standard scene (1-3 neighbours talking in most), sides as installed: the placement
    verdict (frontend/placement.py) never says the sides look wrong."""
    shares = {}
    for run, _ in runs:
        tracker = PlacementTracker.for_settings(run.settings)
        for event in sorted((*run.utterances, *run.rejected), key=lambda e: e.start_s):
            tracker.heard(event)
        verdict = tracker.verdict()
        assert not verdict.off_sector, (run.scene.spec.name, verdict)
        shares[run.scene.spec.name] = verdict.share
    assert max(shares.values()) < OFF_SHARE / 1.5, shares  # with room to spare


def test_utterances_close_one_hangover_after_their_speech(runs) -> None:
    """Closed by silence one hangover after the last frame held as speech. That is the talker's end,
    or in a reverberant room with neighbours the murmur after it that the utterance is trimmed of
    (frontend/trim.py): most close one hangover after the talker, none before it."""
    delays = [(u.decided_at_s - u.end_s, r.settings.vad.hangover_ms / 1000) for r, _ in runs for u in r.utterances if u.close_reason == "silence"]
    assert len(delays) > 100
    assert all(delay >= hangover - 0.04 for delay, hangover in delays)  # a frame of 32 ms at most
    held = [delay - hangover for delay, hangover in delays]
    assert np.median(held) <= 0.04 and np.percentile(held, 90) <= 0.4


def test_words_settled_before_the_close_are_all_the_talker_said(runs) -> None:
    """A pause is settled (its words shown before the utterance closes) only when what held the
    utterance open since was murmur or the other side, never the talker going on: no true speech
    of theirs is left after the settled words, before the utterance closed."""
    settled = [(pause, run) for run, _ in runs for pause in run.settled]
    assert len(settled) >= 10  # murmur does hold utterances open in these rooms
    for pause, run in settled:
        words = pause.utterance
        final = next(u for u in run.utterances if u.start_s < words.end_s and u.end_s > words.start_s)
        assert words.decided_at_s <= final.decided_at_s
        said_after = [t.text for t in run.scene.segments if t.side == words.side and words.end_s + 0.1 < t.start_s < final.end_s]
        assert not said_after, (run.scene.spec.name, words.end_s, said_after)


def _heard_as(runs, scene: str, said: str) -> list[tuple[str, float, float]]:
    """(side, start, end) of the utterances that overlap what a talker ``said`` in ``scene``."""
    run = next(r for r, _ in runs if r.scene.spec.name.startswith(scene))
    truth = next(t for t in run.scene.segments if t.text == said)
    return [(u.side, u.start_s, u.end_s) for u in run.utterances if u.start_s < truth.end_s and u.end_s > truth.start_s]


def test_a_talker_keeps_their_words_when_the_other_side_answers(runs) -> None:
    """An utterance's side is corrected from all of its speech only early in it (pipeline
    ``SIDE_FROM_ALL_SPEECH_MS``). Late, the resident's answer had the whole utterance given to them:
    the clerk's そうです。 (RT60 0.7 s) went out as the resident's, one utterance with their Thanks."""
    assert [side for side, _, _ in _heard_as(runs, "s20-", "そうです。")] == ["staff"]


def test_speech_before_a_change_of_turn_from_the_new_talker_stays_theirs(runs) -> None:
    """RT60 0.8 s: the clerk's first frames pointed at the resident, and what looked like the clerk
    taking the turn was the clerk going on. By all its direction the speech before it was the
    clerk's, so it is one utterance (it was two, 印鑑登録を / ご希望ですか)."""
    assert [side for side, _, _ in _heard_as(runs, "s14-", "印鑑登録をご希望ですか。")] == ["staff"]


def test_a_piece_where_the_talker_spoke_less_than_speech_needs_is_not_an_utterance() -> None:
    """Closed by a turn, a far-field piece trimmed to its talker's own stretch (frontend/trim.py)
    kept one frame: Whisper wrote 届けですね。 for 32 ms. Shorter than ``min_speech_ms`` it is
    rejected as too short, as the endpointer rejects such speech before it opens an utterance."""
    from tests.sim.catalog import farfield_scenes

    run = run_scene(build_scene(next(spec for spec in farfield_scenes() if spec.name.startswith("ff03-"))))
    floor = run.settings.vad.min_speech_ms / 1000
    assert min(u.end_s - u.start_s for u in run.utterances) >= floor - 1e-6
    assert any(r.reason == "too_short" and r.end_s - r.start_s < floor for r in run.rejected)  # the piece is there


def test_every_utterance_has_a_beam_covering_its_speech(runs) -> None:
    for run, _ in runs:
        for u in run.utterances:
            assert u.audio.dtype == np.float32
            covered = len(u.audio) / 16000
            assert u.audio_start_s <= u.start_s and u.audio_start_s + covered >= u.end_s - 0.001


def test_block_size_does_not_change_the_result() -> None:
    """Streaming: the same audio cut into other blocks gives the same utterances (no look-ahead)."""
    scene = build_scene(standard_scenes()[1])
    settings = load_settings(scene.config_path, system_layers=False)

    def utterances(block_ms: int) -> list[dict]:
        tuned = dataclasses.replace(settings, audio=dataclasses.replace(settings.audio, block_ms=block_ms))
        frontend = Frontend(tuned, SileroVad())
        events = []
        with recording_source(tuned, scene.wav_path) as source:
            for block in source.blocks():
                events += frontend.process(block)
        events += frontend.flush()
        return [e.summary() for e in events if isinstance(e, Utterance)]

    assert utterances(10) == utterances(32) == utterances(250)


def test_an_utterance_held_for_unfinished_words_waits_longer_for_its_talker(runs) -> None:
    """Asked at every pause, as the stages ask when ASR heard the words stop mid-sentence, the front
    end holds each utterance open UNFINISHED_HOLD_MS longer: one that closes on silence was silent
    for the hangover and the hold, and pieces a plain run cut at a long pause come out joined."""
    joined = closed_on_silence = 0
    for run, _ in runs[:8]:
        settings = run.settings
        frontend = Frontend(settings, SileroVad())
        held: list[Utterance] = []
        with recording_source(settings, run.scene.wav_path) as source:
            for block in source.blocks():
                for event in frontend.process(block):
                    if isinstance(event, SpeechPaused):
                        frontend.hold_unfinished(event.utterance.decided_at_s)
                    elif isinstance(event, Utterance):
                        held.append(event)
        held += [e for e in frontend.flush() if isinstance(e, Utterance)]
        waited = [u.decided_at_s - u.end_s for u in held if u.close_reason == "silence"]
        assert all(w >= (settings.vad.hangover_ms + UNFINISHED_HOLD_MS) / 1000 - 0.001 for w in waited), waited
        closed_on_silence += len(waited)
        assert len(held) <= len(run.utterances)
        joined += len(run.utterances) - len(held)
    assert joined >= 1 and closed_on_silence >= 5


def test_demo_event_log_matches_snapshot() -> None:
    """The whole event log of the bundled demo, compared with the stored snapshot.

    Set MADOGUCHI_UPDATE_SNAPSHOTS=1 to rewrite it after an intended change.
    """
    settings = load_settings(DEMO / "counter-demo.toml", system_layers=False)

    def fields(event) -> dict:
        inner = event.utterance if isinstance(event, SpeechPaused) else event  # a pause carries the utterance as it stands
        return {k: v for k, v in dataclasses.asdict(inner).items() if k != "audio"}

    log = [{"event": type(e).__name__, **fields(e)} for e in frontend_events(settings, DEMO / "counter-demo.flac")]
    if os.environ.get("MADOGUCHI_UPDATE_SNAPSHOTS"):
        SNAPSHOT.write_text(json.dumps(log, indent=1, ensure_ascii=False) + "\n")
    expected = json.loads(SNAPSHOT.read_text())
    assert [e["event"] for e in log] == [e["event"] for e in expected]
    for got, want in zip(log, expected):
        assert got.keys() == want.keys()
        for key, value in want.items():
            if isinstance(value, float):
                # Silero's float paths differ slightly between CPUs: a frame, a degree, 0.05.
                tolerance = {"azimuth_deg": 1.5, "side_confidence": 0.05}.get(key, 0.033)
                assert got[key] == pytest.approx(value, abs=tolerance), (key, got, want)
            else:
                assert got[key] == value, (key, got, want)
