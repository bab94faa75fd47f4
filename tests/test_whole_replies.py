"""A whole reply ("Yes.", "そうです。") is a record of its own, shown at the talker's pause, even when
the same talker goes on within the hangover.

Real parts: a simulated counter like the demo's (4 mics, RT60 0.5 s, a neighbour talking, Kokoro
voices), Silero, Whisper base through whisper.cpp. The resident says "Yes." and, 0.5 s later,
"Here is my residence card.": shorter than the hangover, so the front end hears one utterance.
"""

from __future__ import annotations

import dataclasses
import io
import json

import pytest

from madoguchi.asr.filters import is_yes_no_reply
from madoguchi.config import load_settings
from madoguchi.replay import run_replay
from tests.sim.catalog import demo_spec
from tests.sim.counter import Scene, build_scene
from tests.sim.score import assign

LINES = (
    ("staff", "ja", "在留カードはありますか。", "jf_alpha"),
    ("resident", "en", "Yes.", "af_heart"),
    ("resident", "en", "Here is my residence card.", "af_heart"),
    ("staff", "ja", "かしこまりました。", "jf_alpha"),
    ("staff", "ja", "少々お待ちください。", "jf_alpha"),
    ("resident", "en", "Thank you.", "af_heart"),
)
# seed 45 puts 0.52 s between "Yes." and the next line and 0.47 s between the clerk's two lines
SPEC = dataclasses.replace(demo_spec(), name="reply-then-more", lines=LINES, seed=45)


@pytest.fixture(scope="module")
def scene() -> Scene:
    return build_scene(SPEC)


def replay(scene: Scene, store, realtime: bool = False, **vad: int) -> list[dict]:
    settings = load_settings(scene.config_path, system_layers=False)
    settings = dataclasses.replace(settings, vad=dataclasses.replace(settings.vad, **vad))
    out = io.StringIO()
    run_replay(settings, scene.wav_path, out, as_json=True, realtime=realtime, model_root=store.root)
    return [r for r in map(json.loads, out.getvalue().splitlines()) if not r.get("partial")]


@pytest.fixture(scope="module")
def records(scene: Scene, speech_store) -> list[dict]:
    return replay(scene, speech_store)


def test_the_scene_has_a_reply_and_more_inside_one_hangover(scene: Scene) -> None:
    yes, more = scene.segments[1], scene.segments[2]
    settings = load_settings(scene.config_path, system_layers=False)
    assert settings.vad.early_asr_ms / 1000 < more.start_s - yes.end_s < settings.vad.hangover_ms / 1000


def test_a_reply_is_shown_on_its_own_and_the_rest_after_it(scene: Scene, records: list[dict]) -> None:
    owner = assign(scene.segments, records)
    yes = [r for r, o in zip(records, owner) if o == 1]
    more = [r for r, o in zip(records, owner) if o == 2]
    assert len(yes) == 1 and is_yes_no_reply(yes[0]["text"], "en") and yes[0]["side"] == "resident", records
    assert len(more) == 1 and "residence card" in more[0]["text"].lower() and not is_yes_no_reply(more[0]["text"], "en"), records
    assert yes[0]["end_s"] <= more[0]["start_s"]
    assert yes[0]["translation"] and more[0]["translation"]  # each read on the clerk's face
    # Shown at the pause: decided early_asr_ms after the reply, not a hangover after the whole turn.
    settings = load_settings(scene.config_path, system_layers=False)
    assert yes[0]["vad_ms"] == pytest.approx(settings.vad.early_asr_ms, abs=40)


def test_with_no_early_work_the_reply_waits_for_the_rest(scene: Scene, records: list[dict], speech_store) -> None:
    """The reply is found by early ASR in the pause; with none (early_asr_ms = the hangover) the
    talker's turn is one record, as the front end heard it."""
    settings = load_settings(scene.config_path, system_layers=False)
    joined = replay(scene, speech_store, early_asr_ms=settings.vad.hangover_ms)
    owner = assign(scene.segments, joined)
    assert len(joined) < len(records)
    (piece,) = [r for r, o in zip(joined, owner) if o in (1, 2)]
    assert "yes" in piece["text"].lower() and "residence card" in piece["text"].lower()


def test_live_the_reply_comes_first_with_the_same_words(scene: Scene, records: list[dict], speech_store) -> None:
    """Paced as a live counter: early work runs beside the capture instead of holding it, so the
    talker's next words arrive while the reply is being heard. Same records, in the same order."""
    live = replay(scene, speech_store, realtime=True)
    fields = ("start_s", "end_s", "side", "lang", "text", "rejected")
    assert [{k: r[k] for k in fields} for r in live] == [{k: r[k] for k in fields} for r in records]
