"""The site's terms written as the glossary writes them where Whisper wrote a homophone.

Real parts: MeCab (fugashi) with UniDic (unidic-lite), the bundled glossary and phrasebook. The
slips below are Whisper base's own, from the attribution benchmark's far-field counters.
"""

from __future__ import annotations

import pytest

from madoguchi.mt import reading
from madoguchi.mt.glossary import Glossary
from madoguchi.mt.phrasebook import Phrasebook
from madoguchi.mt.soundalike import Respelling, SoundAlikeTerms


def terms(glossary: Glossary) -> SoundAlikeTerms:
    return SoundAlikeTerms(entry.renderings["ja"].forms for entry in glossary.entries if "ja" in entry.renderings)


@pytest.fixture(scope="module")
def site() -> SoundAlikeTerms:
    return terms(Glossary.load())


@pytest.mark.parametrize(("heard", "written"), [
    ("自動手当ての申請ですね。", "児童手当の申請ですね。"),  # the same reading, another word's kanji
    ("材流カードはお持ちですか。", "在留カードはお持ちですか。"),
    ("手数量は300円です。", "手数料は300円です。"),
    ("国民健康保健に入っていますか。", "国民健康保険に入っていますか。"),
    ("住民表の映しも必要ですか。", "住民票の写しも必要ですか。"),  # a variant of 住民票, as the glossary writes it
    ("転入届けですね。", "転入届ですね。"),  # the site's spelling of its own term
    ("ざいりゅうかーどを見せてください。", "在留カードを見せてください。"),  # written out in kana
    ("委員官登録をご希望ですか。", "印鑑登録をご希望ですか。"),  # one drawn-out vowel too many (イーンカン)
    ("転出届けですね。 材流カードは", "転出届ですね。 在留カードは"),  # the space Whisper put in stays
    (" 手数量は300円です。 ", " 手数料は300円です。 "),  # and the spaces at either end
])
def test_a_term_heard_as_a_homophone_is_written_as_the_site_writes_it(site: SoundAlikeTerms, heard: str, written: str) -> None:
    assert site.respell(heard)[0] == written


def test_what_changed_is_told(site: SoundAlikeTerms) -> None:
    text, changes = site.respell("委員官登録をご希望ですか。自動手当ても")
    assert changes == (Respelling("委員官登録", "印鑑登録", 1), Respelling("自動手当て", "児童手当", 0))
    assert text == "印鑑登録をご希望ですか。児童手当も"


@pytest.mark.parametrize("said", [
    "住民税の映しも必要ですか。",  # one mora from 住民票の写し, but 住民税 is a term of its own
    "転出届ですね。",  # 転出/転入/転居 届 are two morae apart or more: never each other
    "引判登録は大切に。",  # a swapped mora (インバン) is another word, not a blurred beat
    "国民健康保険の加入ですね。",  # the term and a particle, not a slip of the term
    "自動で登録されます。",  # 自動 sounds like 児童, but short words are where homophones crowd
    "保健所はどちらですか。",
    "国民健康保険に入っていますか。",  # already as the site writes it
    "1300円です。",
    "",
])
def test_what_the_clerk_said_right_stays_as_it_is(site: SoundAlikeTerms, said: str) -> None:
    assert site.respell(said) == (said, ())


def test_no_curated_phrase_is_changed(site: SoundAlikeTerms) -> None:
    """The phrasebook's Japanese is written right: every phrase and variant reads back unchanged."""
    phrases = [form for entry in Phrasebook.load().entries if "ja" in entry.renderings for form in entry.renderings["ja"].forms]
    assert len(phrases) > 100
    assert [p for p in phrases if site.respell(p)[0] != p] == []


def test_a_sites_own_term_is_respelled_and_a_short_one_is_not() -> None:
    glossary = Glossary.from_entries([
        {"term_id": "premium", "ja": "保険料", "en": "insurance premium"},
        {"term_id": "seal", "ja": "印影", "en": "seal impression"},  # インエー: 4 morae, too short to judge by sound
    ])
    site = terms(glossary)
    assert site.respell("保健料は、前の年の所得で決まります。")[0] == "保険料は、前の年の所得で決まります。"
    assert site.respell("陰影があります。")[0] == "陰影があります。"


def test_without_a_reader_nothing_is_respelled(site: SoundAlikeTerms, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reading, "words", lambda text: None)
    assert SoundAlikeTerms([("児童手当",)]).respell("自動手当ての申請") == ("自動手当ての申請", ())
