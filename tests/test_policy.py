"""Which language ASR listens for and where the translation goes: pure decisions on synthetic utterances."""

from __future__ import annotations

import numpy as np
import pytest

from madoguchi.config import LanguageSettings
from madoguchi.events import Interpretation, Utterance
from madoguchi.interpreter import policy

SITE = LanguageSettings(staff="ja", residents=("vi", "en", "ne"), resident_weights=(3.0, 2.0, 1.0))


def utterance(side: str, confidence: float = 0.6, held: bool = False, seconds: float = 2.0) -> Utterance:
    return Utterance(1.0, 1.0 + seconds, side, 90.0, 0.0, confidence, held, 1.3 + seconds, "silence", 0.75, np.zeros(16000, np.float32))  # type: ignore[arg-type]


def test_confident_staff_side_fixes_the_staff_language() -> None:
    request = policy.language_request(utterance("staff"), SITE, session_lang="vi")
    assert request.language == "ja" and request.candidates == ()


def test_confident_resident_side_identifies_among_site_languages_only() -> None:
    request = policy.language_request(utterance("resident"), SITE, session_lang=None)
    assert request.language is None
    assert set(request.candidates) == {"vi", "en", "ne"}
    assert request.priors["vi"] == pytest.approx(0.5) and request.priors["ne"] == pytest.approx(1 / 6)


def test_a_single_resident_language_is_fixed_not_identified() -> None:
    """A site with one resident language, or the one chosen with the language button."""
    one = LanguageSettings(staff="ja", residents=("vi",))
    request = policy.language_request(utterance("resident"), one, session_lang=None)
    assert request.language == "vi" and request.candidates == ()
    ambiguous = policy.language_request(utterance("resident", confidence=0.05, held=True), one, None)
    assert ambiguous.language is None and set(ambiguous.candidates) == {"ja", "vi"}  # the side can still be wrong


def test_session_language_is_boosted() -> None:
    plain = policy.language_request(utterance("resident"), SITE, None).priors
    boosted = policy.language_request(utterance("resident"), SITE, "ne").priors
    assert boosted["ne"] > plain["ne"] * 2
    assert sum(boosted.values()) == pytest.approx(1.0)


def test_a_short_reply_keeps_the_resident_language_already_heard() -> None:
    """Half a second of "Sí." is no evidence of a language: once the resident's language is known it is kept."""
    short = policy.language_request(utterance("resident", seconds=0.5), SITE, "ne")
    assert short.language == "ne" and short.candidates == ()
    assert policy.language_request(utterance("resident", seconds=0.5), SITE, None).language is None  # nothing heard yet: identify
    assert policy.language_request(utterance("resident", seconds=3.0), SITE, "ne").language is None  # long enough to tell: identify again
    assert policy.language_request(utterance("resident", confidence=0.05, held=True, seconds=0.5), SITE, "ne").language is None  # maybe the clerk


@pytest.mark.parametrize("side", ["staff", "resident"])
def test_ambiguous_side_lets_japanese_compete_weighted_by_direction(side: str) -> None:
    request = policy.language_request(utterance(side, confidence=0.05, held=True), SITE, None)
    assert request.language is None
    assert request.candidates[0] == "ja" and set(request.candidates[1:]) == {"vi", "en", "ne"}
    assert sum(request.priors.values()) == pytest.approx(1.0)
    staff_share = request.priors["ja"]
    assert (staff_share >= 0.5) if side == "staff" else (staff_share <= 0.5)


def test_language_heard_corrects_only_an_ambiguous_side() -> None:
    assert policy.speaker_side(utterance("resident", 0.05, True), "ja", SITE) == "staff"
    assert policy.speaker_side(utterance("staff", 0.05, True), "vi", SITE) == "resident"
    assert policy.speaker_side(utterance("resident", 0.8), "ja", SITE) == "resident"  # direction is sure


def test_target_language() -> None:
    assert policy.target_language("resident", SITE, "vi") == "ja"
    assert policy.target_language("staff", SITE, "ne") == "ne"
    assert policy.target_language("staff", SITE, None) == "vi"  # the site's most common
    assert policy.target_language("staff", LanguageSettings(residents=("en", "zh")), None) == "en"  # equal weights: first listed


def test_caption_mode_hears_both_sides_in_the_staff_language_unless_a_language_was_chosen() -> None:
    assert policy.language_request(utterance("resident"), SITE, "vi", mode="caption").language == "ja"
    assert policy.language_request(utterance("resident"), SITE, None, mode="caption", chosen="ne").language == "ne"
    assert policy.language_request(utterance("staff"), SITE, None, mode="caption", chosen="ne").language == "ja"
    ambiguous = utterance("resident", confidence=0.05, held=True)
    assert policy.speaker_side(ambiguous, "ja", SITE, mode="caption") == "resident"  # the direction alone decides
    assert policy.speaker_side(ambiguous, "ja", SITE) == "staff"


def test_easy_japanese_lets_the_staff_language_compete_with_the_residents() -> None:
    assert policy.language_request(utterance("staff"), SITE, None, mode="easy_japanese").language == "ja"
    request = policy.language_request(utterance("resident"), SITE, None, mode="easy_japanese")
    assert request.language is None and set(request.candidates) == {"ja", "vi", "en", "ne"}
    assert request.priors["ja"] == pytest.approx(0.5) and sum(request.priors.values()) == pytest.approx(1.0)


def heard(text: str, lang: str, rejected: str | None = None) -> Interpretation:
    return Interpretation(utterance("resident", seconds=0.5), "resident", lang, text, None, rejected, None, {})


@pytest.mark.parametrize(("text", "lang"), [("Yes.", "en"), ("No, no.", "en"), ("そうです。", "ja"), ("かしこまりました。", "ja"), ("Sure.", "en"),
                                            ("是的", "zh"), ("Gracias.", "es"), ("Não!", "pt"),
                                            ("ありがとうございます。", "ja"), ("감사합니다.", "ko"), ("Cảm ơn.", "vi")])
def test_a_whole_reply_stands_on_its_own(text: str, lang: str) -> None:
    assert policy.is_standalone_reply(heard(text, lang))


@pytest.mark.parametrize(("text", "lang", "rejected"), [
    ("Yes, here is my card.", "en", None),  # the reply and more: one sentence
    ("こちらの用紙に", "ja", None),  # the start of a sentence
    ("Hello.", "en", None),  # a greeting opens a turn; what follows belongs with it
    ("Yes.", "ja", None),  # words of another language than the one heard
    ("", "en", "low_confidence"),
    ("Yes.", "en", "low_confidence"),  # not shown at all
])
def test_other_words_wait_for_the_rest_of_the_turn(text: str, lang: str, rejected: str | None) -> None:
    assert not policy.is_standalone_reply(heard(text, lang, rejected))


@pytest.mark.parametrize(("text", "lang", "rejected", "unfinished"), [
    ("暗証番号を", "ja", None, True),  # a clerk's sentence cut at its comma
    ("本人確認のため、", "ja", None, True),
    ("数字四桁で決めてください。", "ja", None, False),
    ("在留カードはお持ちですか?", "ja", None, False),
    ("是的", "zh", None, False),  # Whisper often leaves Chinese and Korean unpunctuated: no signal
    ("네", "ko", None, False),
    ("", "ja", "low_confidence", False),
    ("暗証番号を", "ja", "repetition", False),  # not shown: nothing to wait for
])
def test_japanese_words_without_a_sentence_end_are_unfinished(text: str, lang: str, rejected: str | None, unfinished: bool) -> None:
    assert policy.is_unfinished(heard(text, lang, rejected)) is unfinished
