"""Easy Japanese (やさしい日本語) for the resident's panel: real counter sentences and their rules."""

from __future__ import annotations

import json
import re
import time
from dataclasses import replace
from pathlib import Path

import pytest
from kanji_lists import JOYO, KYOIKU

from madoguchi.config import EasyJapaneseSettings, Settings
from madoguchi.easyja import EasyJapanese, EasyJapaneseError, EasySentence, EasyText, Segment

DATA = Path(__file__).parent / "data" / "easyja" / "counter_sentences.json"
CASES = json.loads(DATA.read_text(encoding="utf-8"))["cases"]
# long keigo sentences the first rules did not fit; expected outputs written by judgement
LONG = json.loads((DATA.parent / "long_keigo_sentences.json").read_text(encoding="utf-8"))["cases"]
# held out: never tuned to, only properties are asserted (see test_held_out_properties)
UNSEEN = json.loads((DATA.parent / "unseen_sentences.json").read_text(encoding="utf-8"))["cases"]
PACKAGE = Path(__file__).parents[1] / "firmware" / "madoguchi"
RULES = json.loads((PACKAGE / "data" / "easyja" / "rules.json").read_text(encoding="utf-8"))
TERMS = json.loads((PACKAGE / "data" / "easyja" / "terms.json").read_text(encoding="utf-8"))
MUNICIPAL = json.loads((PACKAGE / "data" / "glossary" / "municipal.json").read_text(encoding="utf-8"))
# the keigo the resident must never see, whatever the rules file says
KEIGO = ("恐れ入り", "いただけ", "ございま", "いたしま", "でしょうか", "ご記入", "お待ちください", "おかけください", "お越し", "申し訳", "拝見", "お持ちですか", "おります")
# wider, for sentences no rule was written for: what plain polite Japanese never says
KEIGO_ANY = (*KEIGO, "いただ", "おりま", "おられ", "お持ち", "ご記入", "承", "ご不明", "お尋ね", "ご了承", "ことになって", "させて", "存じ", "申し上げ", "なられ", "お早め", "ご覧", "伺", "おかけ", "お待ち", "お越し", "くださいませ", "ご利用", "ご用意", "お受け取り", "出される", "された方")
_PREDICATE = re.compile(r"(です|ます|ください|ません|ましょう|ました|でした|ませんでした)[。！]$|[か？][。]?$|？$")
_KANJI = re.compile(r"[\u4e00-\u9fff々]+")
_GRADES = [KYOIKU.GRADE1, KYOIKU.GRADE2, KYOIKU.GRADE3, KYOIKU.GRADE4, KYOIKU.GRADE5, KYOIKU.GRADE6]


def grade(ch: str) -> int:
    """Independent of the code under test: 1-6 kyōiku, 7 other jōyō, 8 beyond."""
    return next((n for n, kanji in enumerate(_GRADES, 1) if ch in kanji), 7 if ch in JOYO else 8)


@pytest.fixture(scope="module")
def easy() -> EasyJapanese:
    return EasyJapanese(Settings().easy_japanese)


@pytest.fixture(scope="module")
def outputs(easy: EasyJapanese) -> list[EasyText]:
    return [easy.rewrite(case["ja"]) for case in CASES]


def test_the_set_is_real_and_broad() -> None:
    assert len(CASES) >= 40
    assert len({c["topic"] for c in CASES}) >= 15
    long_keigo = [c for c in CASES if len(c["ja"]) > 25 and re.search("ございま|いたしま|いただ|お越し|ご記入|お持ち|ので、", c["ja"])]
    assert len(long_keigo) >= 5


@pytest.mark.parametrize("case", CASES, ids=[c["ja"][:16] for c in CASES])
def test_counter_sentence(easy: EasyJapanese, case: dict[str, str]) -> None:
    assert easy.text(case["ja"]) == case["easy"]


def test_sentences_are_short(outputs: list[EasyText]) -> None:
    for case, out in zip(CASES, outputs):
        for sentence in out.sentences:
            assert len(sentence.plain) <= 30, (case["ja"], sentence.plain)


def test_long_keigo_sentences_are_split(easy: EasyJapanese) -> None:
    out = easy.rewrite("こちらは担当の窓口ではございませんので、3番の窓口へお越しください。")
    assert [s.plain for s in out.sentences] == ["ここは担当の窓口ではありません。", "3番の窓口へ行ってください。"]
    # a て chain is only cut when the sentence would be too long
    short = EasyJapanese(replace(Settings().easy_japanese, max_sentence_chars=12)).rewrite("番号札をお取りになって、お待ちください。")
    assert [s.plain for s in short.sentences] == ["番号札を取ってください。", "待ってください。"]


def test_every_hard_kanji_has_its_reading(outputs: list[EasyText]) -> None:
    for case, out in zip(CASES, outputs):
        for sentence in out.sentences:
            for segment in (s for phrase in sentence.phrases for s in phrase):
                if any(grade(ch) > 2 for ch in _KANJI.findall(segment.surface) for ch in ch):
                    assert segment.reading and re.fullmatch("[ぁ-ゖー]+", segment.reading), (case["ja"], segment)
        shown = out.display_text()
        for m in _KANJI.finditer(shown):  # in the text itself: a hard kanji run is followed by (かな)
            if any(grade(ch) > 2 for ch in m.group(0)):
                assert shown[m.end() : m.end() + 1] == "(", (case["ja"], shown, m.group(0))


def test_no_keigo_remains(outputs: list[EasyText]) -> None:
    patterns = [re.compile(re.sub(r"\{([A-Z_]+)\}", lambda m: RULES["macros"][m.group(1)], r["pattern"])) for r in RULES["rules"]]
    for case, out in zip(CASES, outputs):
        for sentence in out.sentences:
            assert not [w for w in KEIGO if w in sentence.plain], (case["ja"], sentence.plain)
            for rule, pattern in zip(RULES["rules"], patterns):
                assert not pattern.search(sentence.plain), (rule["id"], case["ja"], sentence.plain)


def test_rules_and_terms_carry_reasons() -> None:
    assert all(r["reason"].strip() for r in RULES["rules"])
    assert all(t["reason"].strip() and t["review"] == "needed" for t in TERMS["entries"])


def test_terms_cover_the_municipal_glossary() -> None:
    forms = {f for t in TERMS["entries"] for f in (t["ja"], *t.get("variants", []))}
    missing = [(e["term_id"], f) for e in MUNICIPAL["entries"] for f in (e["ja"]["text"], *e["ja"].get("variants", [])) if f not in forms and f != "はんこ"]
    assert not missing


def test_a_term_is_explained_once_per_utterance(easy: EasyJapanese) -> None:
    out = easy.rewrite("転入届を出してください。転入届は2枚あります。")
    assert sum(s.plain.startswith("転入届は引っ越して") for s in out.sentences) == 1


def test_phrases_and_plain(easy: EasyJapanese) -> None:
    out = easy.rewrite("この紙に名前を書いてください。")
    assert out.display_text() == "この 紙に 名前を 書いて ください。"
    assert out.sentences[0].plain == "この紙に名前を書いてください。"
    assert isinstance(out.sentences[0], EasySentence) and all(isinstance(s, Segment) for p in out.sentences[0].phrases for s in p)


def test_grade_zero_reads_every_kanji_word() -> None:
    easy0 = EasyJapanese(replace(EasyJapaneseSettings(), reading_above_grade=0))
    for case in CASES[:15]:
        shown = easy0.text(case["ja"])
        for m in _KANJI.finditer(shown):
            assert shown[m.end() : m.end() + 1] == "(", (shown, m.group(0))
    assert easy0.text("この紙に名前を書いてください。") == "この 紙(かみ)に 名前(なまえ)を 書(か)いて ください。"


def test_grade_eight_reads_nothing_and_options_hide_readings_and_spaces(outputs: list[EasyText]) -> None:
    easy8 = EasyJapanese(replace(EasyJapaneseSettings(), reading_above_grade=8))
    bare = EasyJapanese(replace(EasyJapaneseSettings(), readings="none", spaces=False))
    for case, out in zip(CASES, outputs):
        assert "(" not in easy8.text(case["ja"])
        assert easy8.text(case["ja"]) == out.display_text(readings=False)
        assert bare.text(case["ja"]) == out.plain == re.sub(r"\([ぁ-ゖー]+\)| ", "", case["easy"])


def test_whisper_spacing_and_width_are_normalised(easy: EasyJapanese) -> None:
    assert easy.text("３番の 窓口へ お越しください") == "3番の 窓口(まどぐち)へ 行って ください。"


def test_fast_enough_for_the_worker_thread(easy: EasyJapanese) -> None:
    start = time.perf_counter()
    for case in CASES:
        easy.rewrite(case["ja"])
    assert (time.perf_counter() - start) / len(CASES) < 0.05


def _terms_file(tmp_path: Path, **change: object) -> Path:
    entries = [dict(TERMS["entries"][0], **change)]
    path = tmp_path / "terms.json"
    path.write_text(json.dumps(dict(TERMS, entries=entries), ensure_ascii=False), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"action": "translate"}, "\"action\" must be one of replace, keep, explain"),
        ({"review": None}, "\"review\" must be one of needed, done"),
        ({"reading": "ジュウミンヒョウ"}, "\"reading\" must be hiragana"),
        ({"explain": ""}, "\"explain\" must be a short explanation"),
        ({"variants": "住民票の写し"}, "\"variants\" must be a list"),
    ],
)
def test_bad_terms_file_names_file_entry_and_what_is_allowed(tmp_path: Path, change: dict[str, object], says: str) -> None:
    path = _terms_file(tmp_path, **change)
    with pytest.raises(EasyJapaneseError) as err:
        EasyJapanese(EasyJapaneseSettings(), terms_path=path)
    assert str(path) in str(err.value) and "entries[0] (juminhyo)" in str(err.value) and says in str(err.value)
    assert err.value.code == "easyja_data_invalid" and isinstance(err.value, ValueError)


def test_unreadable_or_duplicate_terms(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(EasyJapaneseError, match="bad.json: not valid UTF-8 JSON"):
        EasyJapanese(EasyJapaneseSettings(), terms_path=bad)
    dup = tmp_path / "dup.json"
    dup.write_text(json.dumps(dict(TERMS, entries=TERMS["entries"][:1] * 2), ensure_ascii=False), encoding="utf-8")
    with pytest.raises(EasyJapaneseError, match=r"entries\[1\] \(juminhyo\): '住民票' is already"):
        EasyJapanese(EasyJapaneseSettings(), terms_path=dup)


@pytest.mark.parametrize("case", LONG, ids=[c["ja"][:16] for c in LONG])
def test_long_keigo_sentence(easy: EasyJapanese, case: dict[str, str]) -> None:
    assert easy.text(case["ja"]) == case["easy"]


def _check_properties(easy: EasyJapanese, ja: str, limit: int = 30) -> list[str]:
    """What is wrong with the easy Japanese of ``ja``, judged without the code's own helpers."""
    out = easy.rewrite(ja)
    problems = [] if out.sentences else ["empty"]
    for sentence in out.sentences:
        plain = sentence.plain
        if len(plain) > limit:
            problems.append(f"{len(plain)} > {limit}: {plain}")
        if not _PREDICATE.search(plain):
            problems.append(f"no predicate ending: {plain}")
        problems += [f"keigo {w!r}: {plain}" for w in KEIGO_ANY if w in plain]
    shown = out.display_text()
    for m in _KANJI.finditer(shown):
        if any(grade(ch) > 2 for ch in m.group(0)) and shown[m.end() : m.end() + 1] != "(":
            problems.append(f"no reading for {m.group(0)}: {shown}")
    return problems


@pytest.mark.parametrize("case", LONG + UNSEEN, ids=[c["ja"][:16] for c in LONG + UNSEEN])
def test_held_out_properties(easy: EasyJapanese, case: dict[str, str]) -> None:
    """Short sentences, readings, no keigo, a predicate at every end: on sentences no rule names."""
    assert not _check_properties(easy, case["ja"])


def test_held_out_set_is_broad() -> None:
    assert len(UNSEEN) >= 25 and len({c["topic"] for c in UNSEEN}) >= 12
    assert all("easy" not in c for c in UNSEEN)  # properties only: nothing to tune to


def test_length_is_guaranteed_at_any_limit() -> None:
    """The last resort (a cut between phrases) makes every sentence fit, even a very short limit."""
    for limit in (12, 20):
        tight = EasyJapanese(replace(EasyJapaneseSettings(), max_sentence_chars=limit))
        for case in CASES[::3] + LONG + UNSEEN[::2]:
            for sentence in tight.rewrite(case["ja"]).sentences:
                assert len(sentence.plain) <= limit or len(sentence.phrases) == 1, (limit, case["ja"], sentence.plain)


def test_term_explanations_fit() -> None:
    assert all(len(f"{t['ja']}は{t['explain']}です。") <= 30 for t in TERMS["entries"] if t["action"] == "explain")


@pytest.mark.parametrize(
    ("ja", "plain"),
    [
        ("窓口は午前八時半から午後五時十五分までです。", "窓口は午前8時半から午後5時15分までです。"),
        ("一通三百円で、二万五千円ではありません。", "1通300円で、2万5000円ではありません。"),
        ("十分ほどかかりますが、時間は十分あります。", "10分ほどかかります。時間は十分あります。"),
        ("もう一度一緒に来てください。", "もう一度一緒に来てください。"),
        ("一番近い窓口は三番です。", "一番近い窓口は3番です。"),
        ("二〇二四年十二月に来てください。", "2024年12月に来てください。"),
    ],
)
def test_kanji_numbers_become_digits_only_when_they_are_numbers(easy: EasyJapanese, ja: str, plain: str) -> None:
    assert easy.rewrite(ja).plain == plain


@pytest.mark.parametrize(
    ("ja", "plain"),
    [
        ("在留カードをお持ちいただく必要があります。", "在留カードを持ってきてください。"),  # お＋verb＋いただく
        ("この紙をお受け取りになってください。", "この紙を受け取ってください。"),  # お＋verb＋になる
        ("結果はお送りします。", "結果は送ります。"),  # お＋verb＋する
        ("ここでご利用いただけます。", "ここで利用できます。"),  # いただける: can
        ("ごみを出される場合は、先に電話してください。", "ごみを出すときは、先に電話してください。"),  # honorific passive
        ("申し込みは窓口で行っております。", "申し込みは窓口でしています。"),  # 行う → する
        ("予約は来月から始まることになっております。", "予約は来月から始まります。"),
        ("ご不明な点がございましたら、お尋ねください。", "わからないことがあったら、聞いてください。"),
        ("二階で承っております。", "2階で受け付けています。"),
        ("番号を呼ばれた方は、窓口へお越しください。", "番号を呼ばれた人は、窓口へ行ってください。"),  # a real passive stays
    ],
)
def test_general_keigo_patterns(easy: EasyJapanese, ja: str, plain: str) -> None:
    assert easy.rewrite(ja).plain == plain


@pytest.mark.parametrize(
    ("ja", "first"),
    [
        ("児童手当の申請は、お子様が生まれた日から十五日以内にお願いいたします。", "児童手当の申し込みの話です。"),
        ("外国人住民の方は、住所が変わった日から十四日以内に届け出をしてください。", "外国人住民の方への話です。"),
        ("粗大ごみを出される場合は、事前に受付センターへお電話でお申し込みください。", "大きいごみを出すときの話です。"),
        ("年金の免除申請については、二階の国民年金係の窓口で承っております。", "年金の免除申し込みの話です。"),
        ("課税証明書は一通三百円で、平日の午前八時半から午後五時十五分まで発行しております。", "課税証明書は1通300円です。"),
    ],
)
def test_too_long_sentences_are_cut_grammatically(easy: EasyJapanese, ja: str, first: str) -> None:
    sentences = [s.plain for s in easy.rewrite(ja).sentences]
    assert sentences[0] == first and all(len(s) <= 30 for s in sentences)
