"""The site glossary: terms found longest first, protected through MT, restored in the target language."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from madoguchi.mt.glossary import Glossary, GlossaryFileError
from madoguchi.mt.termfile import pushed_files
from tests.test_phrasebook import box, bundled_entries, check_bundled, push  # noqa: F401 (box is a fixture)

DEBRIS = re.compile(r"q\W{0,2}z\W{0,2}\d|z\W{0,2}\d+\W{0,2}x|(?<![a-z])qz", re.I)


@pytest.fixture(scope="module")
def glossary() -> Glossary:
    return Glossary.load()


def squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def identity(text: str) -> str:
    return text


def test_bundled_terms_cover_every_language_in_its_own_script() -> None:
    entries = bundled_entries("glossary", "municipal.json")
    assert len(entries) >= 30
    assert check_bundled(entries, "term_id") == []


def test_longest_match_first_without_overlaps(glossary: Glossary) -> None:
    text = "住民票の写しとマイナンバーカードとマイナンバー、それに国民健康保険証と印鑑登録証明書"
    protected = glossary.protect(text, "ja", "en")
    assert [s.source_term for s in protected.slots] == ["住民票の写し", "マイナンバーカード", "マイナンバー", "国民健康保険証", "印鑑登録証明書"]
    assert [s.term_id for s in protected.slots] == ["juminhyo", "my_number_card", "my_number", "health_insurance_card", "seal_registration_certificate"]
    assert protected.text == "QZ1XとQZ2XとQZ3X、それにQZ4XとQZ5X"
    assert glossary.terms_in(text, "ja") == ("住民票", "マイナンバーカード", "マイナンバー", "保険証", "印鑑登録証明書")
    assert glossary.terms_in("国民健康保険に入りたい", "ja") == ("国民健康保険",)


def test_overlapping_terms_take_the_longest_wherever_it_starts() -> None:
    g = Glossary.from_entries([{"ja": "AB", "en": "x"}, {"ja": "BCD", "en": "y"}])
    assert [s.source_term for s in g.protect("ABCD", "ja", "en").slots] == ["BCD"]


def test_spaced_languages_match_whole_words_case_insensitively(glossary: Glossary) -> None:
    text = "I have my RESIDENCE CARD and two Residence Cards, but no counterfeit; where is the counter?"
    protected = glossary.protect(text, "en", "ja")
    assert [s.source_term for s in protected.slots] == ["RESIDENCE CARD", "Residence Cards", "counter"]
    assert [s.target_term for s in protected.slots] == ["在留カード", "在留カード", "窓口"]
    assert "counterfeit" in protected.text
    assert glossary.protect("residence\n  card", "en", "ja").slots[0].target_term == "在留カード"


@pytest.mark.parametrize(("text", "lang", "term"), [
    ("बसोबास प्रमाणपत्रको एक प्रति दिनुहोस्।", "ne", "住民票"),  # postposition attached
    ("주민표를 한 통 주세요", "ko", "住民票"),  # particle attached
    ("ขอใบรับรองถิ่นที่อยู่ 1 ฉบับ", "th", "住民票"),
    ("နေထိုင်ကြောင်းထောက်ခံစာ တစ်စောင် ပေးပါ။", "my", "住民票"),
    ("请给我一份住民票", "zh", "住民票"),
    ("Cho tôi một bản phiếu cư trú.", "vi", "住民票"),
    ("Preciso do Atestado de Residência", "pt", "住民票"),
    ("住 民 票をください", "ja", "residence certificate"),  # recogniser spaced the kanji out
    ("ＭＹ ＮＵＭＢＥＲ ＣＡＲＤ", "en", "マイナンバーカード"),  # full width
])
def test_terms_are_found_in_every_script(glossary: Glossary, text: str, lang: str, term: str) -> None:
    slots = glossary.protect(text, lang, "en" if lang == "ja" else "ja").slots
    assert [s.target_term for s in slots] == [term]


def test_no_slots_for_the_same_language_or_no_terms(glossary: Glossary) -> None:
    assert glossary.protect("住民票をください", "ja", "ja").slots == ()
    protected = glossary.protect("こんにちは", "ja", "en")
    assert protected.slots == () and glossary.restore("Hello", protected).text == "Hello"


def test_target_without_the_term_falls_back_to_english_then_the_source() -> None:
    g = Glossary.from_entries([{"ja": "特別永住者証明書", "en": "special permanent resident certificate"}, {"ja": "窓口番号", "zh": "窗口号"}])
    slots = g.protect("特別永住者証明書と窓口番号", "ja", "th").slots
    assert [(s.target_term, s.target_lang) for s in slots] == [("special permanent resident certificate", "en"), ("窓口番号", "ja")]


MANGLERS: dict[str, Callable[[str], str]] = {
    "identity": identity,
    "upper": str.upper,
    "lower": str.lower,
    "spaced": lambda t: re.sub(r"QZ(\d)X", r"Q Z \1 X", t),
    "hyphens": lambda t: re.sub(r"QZ(\d)X", r"QZ-\1-X", t),
    "full width": lambda t: re.sub(r"QZ\dX", lambda m: "".join(chr(ord(c) + 0xFEE0) for c in m.group(0)), t),
    "spaces around": lambda t: re.sub(r"(QZ\dX)", r" \1 ", t),
    "X dropped": lambda t: re.sub(r"QZ(\d)X", r"QZ\1", t),
    "Q dropped": lambda t: re.sub(r"QZ(\d)X", r"Z\1X", t),
    "Devanagari digit": lambda t: re.sub(r"QZ(\d)X", lambda m: "QZ" + chr(0x0966 + int(m.group(1))) + "X", t),
    "repeated": lambda t: t + " " + t,
}


@pytest.mark.parametrize("mangle", MANGLERS.values(), ids=MANGLERS.keys())
def test_placeholders_survive_what_mt_does_to_them(glossary: Glossary, mangle: Callable[[str], str]) -> None:
    protected = glossary.protect("住民票とマイナンバーカードを持ってきてください", "ja", "en")
    restored = glossary.restore(mangle("Please bring your QZ1X and QZ2X."), protected)
    assert restored.lost == ()
    assert "residence certificate" in restored.text and "My Number card" in restored.text
    assert not DEBRIS.search(restored.text), restored.text


def test_a_dropped_placeholder_is_appended_and_reported(glossary: Glossary) -> None:
    protected = glossary.protect("住民票とマイナンバーカードを持ってきてください", "ja", "en")
    restored = glossary.restore("Please bring your QZ1X.", protected)
    assert restored.lost == ("My Number card",)
    assert restored.text == "Please bring your residence certificate. (My Number card)"
    back = glossary.protect("I need a residence certificate", "en", "ja")
    assert glossary.restore("必要です。", back).text == "必要です。（住民票）"


def test_a_lost_number_is_recovered_when_only_one_slot_is_missing(glossary: Glossary) -> None:
    protected = glossary.protect("住民票とマイナンバーカード", "ja", "en")
    restored = glossary.restore("QZ1X and QZX", protected)
    assert restored.text == "residence certificate and My Number card" and restored.recovered == ("My Number card",)


def test_invented_placeholders_are_never_shown(glossary: Glossary) -> None:
    protected = glossary.protect("住民票をください", "ja", "en")
    restored = glossary.restore("QZ1X, QZ7X please qz 3 x", protected)
    assert restored.text == "residence certificate, please" and not DEBRIS.search(restored.text)


def test_restoring_into_unspaced_targets_closes_the_gaps_mt_opened(glossary: Glossary) -> None:
    protected = glossary.protect("I lost my residence card", "en", "ja")
    assert glossary.restore("QZ1X を なくしました", protected).text == "在留カードを なくしました"
    protected = glossary.protect("I lost my residence card", "en", "th")
    assert glossary.restore("ฉันทำ QZ1X หาย", protected).text == "ฉันทำบัตรผู้พำนักหาย"
    protected = glossary.protect("I lost my ID card", "en", "ja")
    assert protected.slots == ()


def test_inline_strategy_writes_the_target_term_into_the_source(glossary: Glossary) -> None:
    protected = glossary.protect("住民票をください", "ja", "en", strategy="inline")
    assert protected.text == "residence certificateをください" and protected.strategy == "inline"
    assert glossary.restore("A Residence Certificate, please.", protected).lost == ()
    fixed = glossary.restore("A residence certificat, please.", protected)
    assert fixed.text == "A residence certificate, please." and fixed.recovered == ("residence certificate",)
    lost = glossary.restore("Please.", protected)
    assert lost.lost == ("residence certificate",) and lost.text == "Please. (residence certificate)"
    with pytest.raises(ValueError, match="allowed: placeholder, inline"):
        glossary.protect("住民票", "ja", "en", strategy="xml")


def test_missing_terms_checks_a_translation_for_consistency(glossary: Glossary) -> None:
    assert glossary.missing_terms("住民票を1通ください", "One copy of my residence certificate, please.", "ja", "en") == ()
    assert glossary.missing_terms("住民票を1通ください", "One resident record, please.", "ja", "en") == ("residence certificate",)


def test_pushed_glossary_overrides_bundled_terms(box) -> None:  # noqa: F811
    push(box, "push_glossary", [{"ja": "住民票", "en": "certificate of residence"}, {"ja": "駐車券", "en": "parking ticket", "id": "karcis parkir"}])
    g = Glossary.load(pushed_files(Path(box[0].paths.state_dir), "glossaries"))
    assert g.protect("住民票", "ja", "en").slots[0].target_term == "certificate of residence"
    assert g.protect("住民票", "ja", "th").slots[0].target_term == "ใบรับรองถิ่นที่อยู่"
    assert g.protect("住民票の写し", "ja", "en").slots[0].target_term == "certificate of residence"  # bundled variants kept
    assert g.protect("駐車券", "ja", "id").slots[0].target_term == "karcis parkir"


def test_bad_glossary_files(tmp_path: Path) -> None:
    good, bad = tmp_path / "a.json", tmp_path / "b.json"
    good.write_text(json.dumps({"name": "a", "entries": [{"ja": "駐車券", "en": "parking ticket"}]}), encoding="utf-8")
    bad.write_text(json.dumps({"name": "b", "entries": [{"ja": "はい", "en": ["Yes"]}]}), encoding="utf-8")
    with pytest.raises(GlossaryFileError) as err:
        Glossary.load([good, bad])
    assert err.value.code == "glossary_invalid" and f"{bad}: entries[0].en: must be a string" in str(err.value)
    g = Glossary.load([good, bad], strict=False)
    assert g.protect("駐車券", "ja", "en").slots[0].target_term == "parking ticket" and len(g.problems) == 1
    with pytest.raises(GlossaryFileError, match="unknown language code 'xx'"):
        Glossary.from_entries([{"ja": "駐車券", "xx": "?"}])


_G = Glossary.load()
_JA_TERMS = [(e.renderings["ja"].text, e.renderings["en"].text) for e in _G.entries]
_EN_TERMS = [(e.renderings["en"].text, e.renderings["ja"].text) for e in _G.entries]


def _compose(pieces: list[tuple[str, str] | str]) -> tuple[str, str]:
    source = "".join(p if isinstance(p, str) else p[0] for p in pieces)
    expected = "".join(p if isinstance(p, str) else p[1] for p in pieces)
    return source, expected


# Fillers that cannot form or extend a term: small kana in Japanese, numbers and "and" in English.
_JA_PIECES = st.lists(st.one_of(st.sampled_from(_JA_TERMS), st.text("ぁぃぅぇぉゃゅょ、 ", min_size=1, max_size=4)), max_size=6)
_EN_PIECES = st.lists(st.one_of(st.sampled_from(_EN_TERMS), st.sampled_from([" and ", " 12 ", ", ", " or "])), max_size=6)


def _separated(pieces: list, filler: str) -> list:
    out: list = []
    for piece in pieces:  # two terms side by side could form a longer one (マイナンバー + カード)
        if out and not isinstance(piece, str) and not isinstance(out[-1], str):
            out.append(filler)
        out.append(piece)
    return out


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_JA_PIECES, st.sampled_from(list(MANGLERS)))
def test_property_japanese_source_round_trip(pieces, mangler: str) -> None:
    source, expected = _compose(_separated(pieces, "ぁ"))
    protected = _G.protect(source, "ja", "en")
    assert not any(term in protected.text for term, _ in _JA_TERMS if len(term) > 2)
    same = _G.restore(protected.text, protected)
    assert squash(same.text) == squash(expected) and same.lost == () and same.recovered == ()
    restored = _G.restore(MANGLERS[mangler](protected.text), protected)
    assert restored.lost == () and not DEBRIS.search(restored.text)
    assert all(s.target_term in restored.text for s in protected.slots)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_EN_PIECES, st.lists(st.integers(0, 9), max_size=3))
def test_property_dropped_placeholders_are_reported_never_shown(pieces, drop: list[int]) -> None:
    source, expected = _compose(_separated(pieces, " and "))
    protected = _G.protect(source, "en", "ja")
    no_space = re.compile(r"\s")  # Japanese output: spaces next to a restored term are closed up
    assert no_space.sub("", _G.restore(protected.text, protected).text) == no_space.sub("", expected)
    dropped = {k for k in drop if k < len(protected.slots)}
    mt = protected.text
    for k in dropped:
        mt = mt.replace(f"QZ{k + 1}X", "")
    restored = _G.restore(mt, protected)
    assert sorted(restored.lost) == sorted(protected.slots[k].target_term for k in dropped)
    assert all(f"（{term}）" in restored.text for term in restored.lost)
    assert not DEBRIS.search(restored.text)
