"""The buttons' state reaching the interpreter: caption mode, easy Japanese, a chosen language.

Real parts: the demo recording's utterances from the front end, Whisper base through whisper.cpp,
the bundled phrasebook; only the recognizer's call is watched (wrapped, not replaced).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from madoguchi.app.parts import build_interpreter, frontend_events
from madoguchi.asr.filters import normalize
from madoguchi.asr.vocabulary import prompt_terms
from madoguchi.config import load_settings
from madoguchi.counter import CounterState
from madoguchi.events import Utterance

DEMO = Path(__file__).resolve().parents[1] / "firmware" / "madoguchi" / "data" / "demo"
SETTINGS = load_settings(DEMO / "counter-demo.toml", system_layers=False)


@pytest.fixture(scope="module")
def turns() -> dict[str, Utterance]:
    """The demo's staff turn 転入届ですね。在留カードはありますか。, the resident's "Hello. I need to register my new
    address." and "Yes, here is my residence card."."""
    utterances = [e for e in frontend_events(SETTINGS, DEMO / "counter-demo.flac") if isinstance(e, Utterance) and e.end_s < 16.0]
    staff = [u for u in utterances if u.side == "staff" and u.start_s > 7.0]
    resident = [u for u in utterances if u.side == "resident"]
    return {"staff": staff[0], "resident": resident[0], "resident_long": next(u for u in resident if u.duration_s > 1.5)}


@pytest.fixture(scope="module")
def interpreter(speech_store):
    interpreter = build_interpreter(SETTINGS, speech_store.root)
    calls: list[dict] = []
    real = interpreter.recognizer.transcribe

    def watched(audio, **kwargs):
        calls.append(kwargs)
        return real(audio, **kwargs)

    interpreter.recognizer.transcribe = watched
    interpreter.calls = calls
    yield interpreter
    interpreter.close()


def interpret(interpreter, utterance: Utterance, counter: CounterState):
    interpreter.counter = counter
    interpreter.session_lang = None
    interpreter.calls.clear()
    return interpreter.interpret(utterance)


def test_caption_mode_shows_the_words_as_said_in_the_staff_language(interpreter, turns) -> None:
    staff = interpret(interpreter, turns["staff"], CounterState(mode="caption"))
    assert staff.mode == "caption" and staff.lang == "ja"
    assert staff.translation.method == "same_language" and staff.translation.text == staff.text
    resident = interpret(interpreter, turns["resident"], CounterState(mode="caption"))
    assert interpreter.calls[0]["language"] == "ja"  # a hearing-impaired resident at a Japanese counter
    assert resident.side == "resident"
    if resident.rejected is None:  # English forced into Japanese is often judged not words
        assert resident.translation.method == "same_language"


def test_easy_japanese_rewrites_the_clerks_words_for_the_resident(interpreter, turns) -> None:
    result = interpret(interpreter, turns["staff"], CounterState(mode="easy_japanese"))
    assert result.translation.method == "easy_japanese" and result.translation.target_lang == "ja"
    easy = result.translation.text
    assert " " in easy  # 分かち書き
    assert "転入" in result.text and "てんにゅう" in easy, (result.text, easy)  # a municipal term with its reading
    assert easy == interpreter.easy_japanese().text(result.text)


def test_in_easy_japanese_a_resident_who_answers_in_english_is_translated_for_the_clerk(interpreter, turns) -> None:
    result = interpret(interpreter, turns["resident_long"], CounterState(mode="easy_japanese"))
    assert set(interpreter.calls[0]["candidates"]) == {"ja", *SETTINGS.languages.residents}  # Japanese competes
    assert result.lang == "en" and result.side == "resident"
    assert result.translation.target_lang == "ja" and result.translation.method == "phrasebook", result.translation


def test_a_chosen_resident_language_skips_identification_and_is_the_staff_target(interpreter, turns) -> None:
    resident = interpret(interpreter, turns["resident"], CounterState(resident_lang="en"))
    assert interpreter.calls[0]["language"] == "en" and resident.lang == "en"
    staff = interpret(interpreter, turns["staff"], CounterState(resident_lang="en"))
    assert staff.translation.target_lang == "en"
    settings_residents = SETTINGS.languages.residents
    assert interpreter.settings.languages.residents == settings_residents  # the site's config is untouched


def test_the_mode_at_start_comes_from_config(speech_store) -> None:
    settings = dataclasses.replace(SETTINGS, display=dataclasses.replace(SETTINGS.display, mode="easy_japanese"))
    interpreter = build_interpreter(settings, speech_store.root)
    try:
        assert interpreter.counter.mode == "easy_japanese"
    finally:
        interpreter.close()


@pytest.mark.parametrize("terms", [3, 20])
def test_whisper_is_prompted_with_the_glossarys_first_terms(speech_store, terms) -> None:
    settings = dataclasses.replace(SETTINGS, asr=dataclasses.replace(SETTINGS.asr, vocabulary_terms=terms))
    interpreter = build_interpreter(settings, speech_store.root)
    try:
        prompt = interpreter.recognizer._prompts["ja"]  # what whisper.cpp is given before each staff utterance
        glossary = list(dict.fromkeys(interpreter.translation.glossary.vocabulary("ja")))
        assert prompt_terms(prompt) == [normalize(term) for term in glossary[:terms]]
    finally:
        interpreter.close()
