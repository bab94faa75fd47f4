"""Japanese phrases matched by reading: Whisper's homophone kanji slips, and what must still not match."""

from __future__ import annotations

import importlib.util
import logging
import sys
import types

import pytest

from madoguchi.mt import fuzzy, reading
from madoguchi.mt.phrasebook import Phrasebook
from madoguchi.mt.textnorm import normalise

needs_reader = pytest.mark.skipif(
    importlib.util.find_spec("fugashi") is None or importlib.util.find_spec("unidic_lite") is None,
    reason="reading needs fugashi and unidic-lite",
)


@pytest.fixture(scope="module")
def book() -> Phrasebook:
    return Phrasebook.load()


def inline(*pairs: tuple[str, str]) -> Phrasebook:
    return Phrasebook.from_entries([{"ja": ja, "en": en} for ja, en in pairs])


@pytest.fixture()
def no_reader(monkeypatch: pytest.MonkeyPatch) -> None:
    """As on a unit without fugashi: its import fails, and the reader has not been tried yet."""
    monkeypatch.setitem(sys.modules, "fugashi", None)
    monkeypatch.setattr(reading, "_STATE", reading._State())


# What Whisper (base) wrote for the bundled demo conversation, and the phrase the clerk said.
WHISPER_SLIPS = [
    ("店入届けですね", "moving_in_right"),  # 転入届ですね
    ("住民表の映しも必要ですか", "also_need_residence_cert"),  # 住民票の写しも必要ですか
    ("手数量は300円です", "fee_300_yen"),  # 手数料は三百円です
    ("こちらが住民表の映しです", "here_is_your_residence_cert"),  # こちらが住民票の写しです
]


@needs_reader
@pytest.mark.parametrize(("text", "phrase_id"), [
    *WHISPER_SLIPS,
    ("住民表を1通ください", "residence_cert_one_copy"),
    ("書類は郵送でお贈りします", "send_by_mail"),  # 贈り/送り
    ("じゅうみんひょうのうつしもひつようですか", "also_need_residence_cert"),  # all in kana
    ("じゅーみんひょーのうつしもひつよーですか", "also_need_residence_cert"),  # long vowels spelled ー
    ("この諸類がいります", "document_needed"),
])
def test_homophone_slips_match_their_phrase(book: Phrasebook, text: str, phrase_id: str) -> None:
    match = book.lookup(text, "ja", "en")
    assert match is not None and match.phrase_id == phrase_id, match
    assert not match.exact and match.score == reading.WEIGHT and match.source_lang == "ja"
    assert match.translation == book.phrase(phrase_id).renderings["en"].text


@needs_reader
def test_a_reading_match_may_also_drop_a_particle(book: Phrasebook) -> None:
    match = book.lookup("住民表の映し必要ですか", "ja", "en")  # も dropped: one hiragana mora in 18
    assert match is not None and match.phrase_id == "also_need_residence_cert"
    assert 0.80 <= match.score < reading.WEIGHT


@needs_reader
def test_a_reading_match_ranks_below_a_writing_match(book: Phrasebook) -> None:
    assert book.lookup("店入届けですね", "ja", "en", min_score=0.96) is None
    assert book.lookup("店入届けですね", "ja", "en", min_score=0.95) is not None


@needs_reader
def test_a_misheard_number_is_not_explained_away(book: Phrasebook) -> None:
    # じゅうにんひょう for じゅうみんひょう: one mora off, and 10 would have to be read as a sound, not
    # a number. Both are refused: 10人の方 (ten people) and 住民の方 (residents) differ the same way.
    assert book.lookup("10人票の映しも必要ですか", "ja", "en") is None


@needs_reader
@pytest.mark.parametrize(("text", "not_this"), [
    ("店出届けですね", "moving_in_right"),  # 入/出 under the slip
    ("転出届ですね", "moving_in_right"),
    ("住民税の映しも必要ですか", "also_need_residence_cert"),  # 税/票
    ("住民表を二通ください", "residence_cert_one_copy"),  # number
    ("住民表を2通ください", "residence_cert_one_copy"),
    ("手数量は500円です", "fee_300_yen"),  # amount
    ("この諸類がいりません", "document_needed"),  # negation
    ("店入届けですか", "moving_in_right"),  # question
    ("店入届けでした", "moving_in_right"),  # tense
    ("そちらが住民表の映しです", "here_is_your_residence_cert"),  # demonstrative
])
def test_near_misses_under_a_slip_do_not_match(book: Phrasebook, text: str, not_this: str) -> None:
    match = book.lookup(text, "ja", "en")
    assert match is None or match.phrase_id != not_this, match


@needs_reader
@pytest.mark.parametrize(("phrase", "query"), [
    ("こちらにお掛けください", "こちらにお書きください"),  # one mora of a kanji word: sit / write
    ("住民の方は2番の窓口へどうぞ", "10人の方は2番の窓口へどうぞ"),  # residents / ten people
    ("病院はどこですか", "美容院はどこですか"),  # びょう/びよう: small and large kana differ
    ("この書類は要ります", "この諸類は要りません"),
    ("住民票を1通ください", "住民表を2通ください"),
    ("保険です", "保健です"),  # 5 morae: too short to match by sound
])
def test_reading_guards_on_inline_phrases(phrase: str, query: str) -> None:
    book = inline((phrase, "x"))
    assert book.lookup(phrase, "ja", "en").exact
    assert book.lookup(query, "ja", "en") is None


@needs_reader
def test_homophone_phrases_are_never_matched_by_reading(caplog: pytest.LogCaptureFixture) -> None:
    pair = [("保険の窓口はこちらです", "The insurance counter is here."), ("保健の窓口はこちらです", "The health counter is here.")]
    with caplog.at_level(logging.INFO, logger="madoguchi.mt.phrasebook"):
        both = inline(*pair)
    assert "sound alike" in caplog.text
    for slip in ("保件の窓口はこちらです", "ほけんのまどぐちはこちらです"):
        assert both.lookup(slip, "ja", "en") is None  # the sound cannot tell which one was meant
    assert both.lookup("保健の窓口はこちらです", "ja", "en").translation == "The health counter is here."  # the writing can
    assert inline(pair[0]).lookup("保件の窓口はこちらです", "ja", "en").translation == pair[0][1]
    same = inline(pair[0], ("保健の窓口はこちらです", pair[0][1]))  # same translation: no harm either way
    assert same.lookup("保件の窓口はこちらです", "ja", "en").translation == pair[0][1]
    near = inline(pair[0], ("保健の窓口がこちらです", pair[1][1]))  # a particle apart: the sound still fits both
    assert near.lookup("保件の窓口はこちらです", "ja", "en") is None
    untranslated = Phrasebook.from_entries([{"ja": pair[0][0], "en": pair[0][1], "zh": "保险窗口在这里。"}, {"ja": pair[1][0], "en": pair[1][1]}])
    assert untranslated.lookup("保件の窓口はこちらです", "ja", "zh") is None  # the other meaning has no Chinese: still unsure


@needs_reader
def test_bundled_phrases_have_no_homophones(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="madoguchi.mt.phrasebook"):
        Phrasebook.load()
    assert "sound alike" not in caplog.text  # else those phrases could never be matched by reading


def test_guard_key_agrees_with_guards_hold(book: Phrasebook) -> None:
    texts = [normalise(f, "ja") for e in book.entries for f in e.renderings["ja"].forms]
    texts += ["住民票を2通ください", "そこでお待ちください", "あそこでお待ちください", "わかりました", "わかりませんか", "ひとつください"]
    keys = {t: fuzzy.guard_key(t, "ja") for t in texts}
    for a in texts:
        for b in texts[::7]:
            assert (keys[a] == keys[b]) == fuzzy.guards_hold(a, b, "ja"), (a, b)


@needs_reader
def test_readings() -> None:
    assert reading.kana("手数料は三百円です") == "テスーリョーハ300エンデス"  # the amount stays a number
    assert reading.kana("転入") != reading.kana("転出") and reading.kana("住民票") != reading.kana("住民税")
    assert reading.kana("市長") == reading.kana("市庁") and reading.kana("保険") == reading.kana("保健")
    assert reading.kana("必要です") == reading.kana("ひつようです") == reading.kana("ひつよーです")
    assert reading.kana("びょういん") != reading.kana("びよういん")


def test_without_fugashi_phrases_match_by_writing_only(no_reader: None, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="madoguchi.mt.reading"):
        book = Phrasebook.load()
        for text, _ in WHISPER_SLIPS:
            assert book.lookup(text, "ja", "en") is None
        assert book.lookup("転入届ですね", "ja", "en").exact
        assert book.lookup("ここにお名前と住所を書いてください", "ja", "en").phrase_id == "write_name_address"
        assert not reading.available() and reading.kana("転入届") is None
        Phrasebook.load()
    assert [r.levelno for r in caplog.records if r.name == "madoguchi.mt.reading"] == [logging.INFO]  # once


def test_fugashi_without_a_dictionary_is_no_error(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    def tagger(*args: object) -> None:
        raise RuntimeError("Failed initializing MeCab")

    monkeypatch.setitem(sys.modules, "fugashi", types.SimpleNamespace(Tagger=tagger))
    monkeypatch.setattr(reading, "_STATE", reading._State())
    with caplog.at_level(logging.INFO, logger="madoguchi.mt.reading"):
        assert Phrasebook.load().lookup("店入届けですね", "ja", "en") is None
    assert "writing only" in caplog.text
