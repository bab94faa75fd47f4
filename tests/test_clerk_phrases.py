"""A clerk's set phrases and the site's terms come out as written at a reverberant counter, and
set phrases are not made up.

Whisper base hears a far-field かしこまりました as 歌詞が困りました, 歌詞が終わりました or nothing it
trusts; the clerk's prompt (asr/vocabulary.py) speaks in the clerk's register, and then it writes
the phrase. Real parts: a standard simulated counter (2 mics, RT60 0.9 s; kokoro clerk, espeak
Indonesian resident), Silero, Whisper base through whisper.cpp, with the defaults; before the
prompt had the phrases this scene showed neither of its two かしこまりました, and 転出届け for the
glossary's 転出届 before the site's terms were written as it writes them (mt/soundalike.py).
"""

from __future__ import annotations

import io
import json

import pytest

from madoguchi.asr.filters import normalize
from madoguchi.config import load_settings
from madoguchi.replay import run_replay
from tests.sim.catalog import standard_scenes
from tests.sim.counter import Scene, build_scene
from tests.sim.score import assign

SCENE = "s15-"  # a 住民票 / 転出届 exchange with two of the clerk's かしこまりました
SET_PHRASES = ("かしこまりました", "少々お待ちください")


@pytest.fixture(scope="module")
def scene() -> Scene:
    return build_scene(next(spec for spec in standard_scenes() if spec.name.startswith(SCENE)))


@pytest.fixture(scope="module")
def records(scene: Scene, speech_store) -> list[dict]:
    out = io.StringIO()
    run_replay(load_settings(scene.config_path, system_layers=False), scene.wav_path, out, as_json=True, model_root=speech_store.root)
    return [r for r in map(json.loads, out.getvalue().splitlines()) if not r.get("partial")]


def test_every_kashikomarimashita_is_shown_as_said(scene: Scene, records: list[dict]) -> None:
    owner = assign(scene.segments, records)
    said = [k for k, segment in enumerate(scene.segments) if normalize(segment.text) == "かしこまりました"]
    assert len(said) == 2
    for k in said:
        shown = [normalize(r["text"]) for r, o in zip(records, owner) if o == k and not r["rejected"]]
        assert shown == ["かしこまりました"], (scene.segments[k], records)


def test_no_set_phrase_is_shown_where_the_clerk_did_not_say_it(scene: Scene, records: list[dict]) -> None:
    owner = assign(scene.segments, records)
    for record, k in zip(records, owner):
        truth = normalize(scene.segments[k].text) if k is not None else ""
        for phrase in SET_PHRASES:
            if phrase in normalize(record["text"]) and not record["rejected"]:
                assert phrase in truth, (record, truth)


def test_the_clerks_terms_are_written_as_the_glossary_writes_them(scene: Scene, records: list[dict]) -> None:
    owner = assign(scene.segments, records)
    k = next(k for k, segment in enumerate(scene.segments) if segment.text.startswith("転出届ですね"))
    shown = [r["text"] for r, o in zip(records, owner) if o == k and not r["rejected"]]
    assert shown and shown[0].startswith("転出届ですね"), shown  # Whisper wrote 転出届けですね
