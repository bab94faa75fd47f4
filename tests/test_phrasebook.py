"""The counter phrasebook: exact, variant and fuzzy matches, and the near-misses that must not match."""

from __future__ import annotations

import json
import logging
import unicodedata
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from madoguchi.config import config_layers, settings_from_layers
from madoguchi.mt import fuzzy
from madoguchi.mt.langdata import _ZH_TRAD
from madoguchi.mt.phrasebook import Phrasebook, PhrasebookFileError, PhraseLookupError
from madoguchi.mt.termfile import bundled_path, pushed_files
from madoguchi.mt.textnorm import LANGUAGES, RESIDENT_LANGUAGES, language_code, negations, normalise, numbers
from madoguchi.telemetry import commands

# Unicode blocks each language's letters and marks must come from (digits, spaces, punctuation are free).
SCRIPTS: dict[str, tuple[tuple[int, int], ...]] = {
    "latin": ((0x41, 0x5A), (0x61, 0x7A), (0xC0, 0x24F), (0x300, 0x36F), (0x1E00, 0x1EFF)),
    "ja": ((0x3040, 0x30FF), (0x3005, 0x3005), (0x4E00, 0x9FFF), (0x3400, 0x4DBF)),
    "zh": ((0x4E00, 0x9FFF), (0x3400, 0x4DBF)),
    "ko": ((0xAC00, 0xD7AF), (0x1100, 0x11FF), (0x3130, 0x318F)),
    "ne": ((0x0900, 0x097F), (0xA8E0, 0xA8FF)),
    "th": ((0x0E00, 0x0E7F),),
    "my": ((0x1000, 0x109F), (0xAA60, 0xAA7F), (0xA9E0, 0xA9FF)),
}


def script_problems(lang: str, text: str) -> list[str]:
    """Letters or marks of a text that lie outside the language's script, or no letters at all."""
    ranges = SCRIPTS.get(lang, SCRIPTS["latin"])
    letters = [ch for ch in text if unicodedata.category(ch)[0] in "LM"]
    if not letters:
        return [f"{lang}: {text!r} has no letters"]
    wrong = [ch for ch in letters if not any(lo <= ord(ch) <= hi for lo, hi in ranges)]
    return [f"{lang}: {text!r} has {''.join(wrong)!r} outside its script"] if wrong else []


def bundled_entries(*parts: str) -> list[dict]:
    return json.loads(bundled_path(*parts).read_text(encoding="utf-8"))["entries"]


def check_bundled(entries: list[dict], key: str) -> list[str]:
    problems = []
    for entry in entries:
        for lang in LANGUAGES:
            block = entry.get(lang)
            if not isinstance(block, dict) or not block.get("text", "").strip():
                problems.append(f"{entry[key]}: {lang} missing or empty")
                continue
            for form in [block["text"], *block.get("variants", [])]:
                problems += [f"{entry[key]}: {p}" for p in script_problems(lang, form)]
            if lang != "ja" and block.get("review") != "needed":
                problems.append(f"{entry[key]}: {lang} lacks review: needed")
        vi = entry.get("vi", {}).get("text", "")
        if vi and all(ch.isascii() for ch in vi):
            problems.append(f"{entry[key]}: vi {vi!r} has no diacritics")
        zh = entry.get("zh", {}).get("text", "")
        if any(ch in _ZH_TRAD for ch in zh):
            problems.append(f"{entry[key]}: zh {zh!r} is not simplified")
    return problems


@pytest.fixture(scope="module")
def book() -> Phrasebook:
    return Phrasebook.load()


def test_bundled_phrases_cover_every_language_in_its_own_script() -> None:
    entries = bundled_entries("phrasebook", "counter.json")
    assert len(entries) >= 60
    assert len({e["phrase_id"] for e in entries}) == len(entries)
    assert check_bundled(entries, "phrase_id") == []


def test_no_curated_form_belongs_to_two_phrases(book: Phrasebook) -> None:
    owners: dict[tuple[str, str], set[str]] = {}
    for entry in book.entries:
        for lang, rendering in entry.renderings.items():
            for form in rendering.forms:
                owners.setdefault((lang, normalise(form, lang)), set()).add(entry.key)
    assert {k: v for k, v in owners.items() if len(v) > 1} == {}  # else an exact match would depend on file order


def test_script_check_catches_wrong_scripts() -> None:
    assert script_problems("my", "ဒီမှာ လက်မှတ်ထိုးပေးပါ။") == []
    assert script_problems("ne", "कृपया ३ नम्बर") == []
    assert script_problems("my", "My Number ကတ်") and script_problems("th", "กรุณา OK") and script_problems("ko", "住民票 주세요")
    assert script_problems("ne", "नमस्ते Namaste") and script_problems("zh", "请 wait") and script_problems("en", "")


def test_languages(book: Phrasebook) -> None:
    assert book.languages() == frozenset(LANGUAGES)
    assert set(RESIDENT_LANGUAGES) == {"en", "zh", "ko", "vi", "pt", "es", "tl", "ne", "id", "th", "my"}


@pytest.mark.parametrize(("text", "source", "target", "phrase_id"), [
    ("少々お待ちください。", "ja", "en", "wait_moment"),
    ("少々お待ちください", "ja", "th", "wait_moment"),  # Whisper with and without 。
    ("少々お待ちくださいね。", "ja", "en", "wait_moment"),  # trailing softener
    ("えっと、少々お待ち下さい", "ja", "en", "wait_moment"),  # filler, kanji spelling
    ("ちょっと待ってください", "ja", "my", "wait_moment"),  # variant
    ("すみません、もう一回言ってください", "ja", "vi", "say_again"),
    ("手数料は三百円です", "ja", "en", "fee_300_yen"),  # kanji numerals = Arabic
    ("手数料は３００円です！", "ja", "en", "fee_300_yen"),  # full width
    ("住民票を一通ください", "ja", "en", "residence_cert_one_copy"),
    ("ありがとうございましたー", "ja", "en", "thank_you"),  # drawn-out last syllable
    ("在留カードはお持ちでしょうか", "ja", "en", "have_residence_card"),  # でしょうか = ですか, more politely
    ("Where's the toilet?", "en", "ja", "where_is_toilet"),
    ("WHERE IS THE RESTROOM", "en", "ja", "where_is_toilet"),
    ("Um, I don’t understand Japanese.", "en", "ja", "dont_understand_japanese"),  # curly apostrophe, filler
    ("请稍等", "zh", "ja", "wait_moment"),
    ("請稍等。", "zh", "ja", "wait_moment"),  # traditional characters
    ("화장실이 어디예요?", "ko", "ja", "where_is_toilet"),
    ("Nhà vệ sinh ở đâu ạ?", "vi", "ja", "where_is_toilet"),
    ("Onde é o banheiro?", "pt", "ja", "where_is_toilet"),
    ("¿Dónde está el baño?", "es", "ja", "where_is_toilet"),
    ("Salamat", "tl", "ja", "thank_you"),  # po is only politeness
    ("शौचालय कहाँ छ", "ne", "ja", "where_is_toilet"),
    ("Di mana toiletnya?", "id", "ja", "where_is_toilet"),
    ("ห้องน้ำอยู่ที่ไหนครับ", "th", "ja", "where_is_toilet"),  # gendered particle
    ("ห้องน้ำอยู่ไหนคะ", "th", "ja", "where_is_toilet"),
    ("အိမ်သာ ဘယ်မှာလဲ", "my", "ja", "where_is_toilet"),
    ("ကောင်တာနံပါတ် 3 ကို သွားပေးပါ", "my", "ja", "go_counter_3"),  # ASCII digit for ၃
])
def test_exact_and_variant_matches(book: Phrasebook, text: str, source: str, target: str, phrase_id: str) -> None:
    match = book.lookup(text, source, target)
    assert match is not None and match.phrase_id == phrase_id and match.exact and match.score == 1.0
    assert match.source_lang == source and match.needs_review
    assert match.translation == json_text(phrase_id, target)


def json_text(phrase_id: str, lang: str) -> str:
    entry = next(e for e in bundled_entries("phrasebook", "counter.json") if e["phrase_id"] == phrase_id)
    return entry[lang]["text"]


@pytest.mark.parametrize(("text", "source", "phrase_id"), [
    ("ここにお名前と住所を書いてください", "ja", "write_name_address"),  # お added
    ("番号札を取ってからお待ちください", "ja", "take_number"),
    ("ここにサインをお願いします", "ja", "sign_here"),  # ここ = こちら
    ("この書類はいります", "ja", "document_needed"),  # は for が
    ("where is the toilet please", "en", "where_is_toilet"),
    ("I want to register my new adress", "en", "register_new_address"),  # spelling slip
    ("请您在这里签名", "zh", "sign_here"),
    ("여기 서명해 주세요", "ko", "sign_here"),  # particle dropped
    ("por favor firme aquí señor", "es", "sign_here"),
    ("xin vui lòng ký tên vào đây", "vi", "sign_here"),
    ("tolong tunggu sebentar", "id", "wait_moment"),
    ("यहाँ हस्ताक्सर गर्नुहोस्", "ne", "sign_here"),  # कृपया dropped, ष/स slip
    ("กรุณารอสักครู", "th", "wait_moment"),  # tone mark lost
    ("ခဏစောင်ပေးပါ", "my", "wait_moment"),  # dot below lost
])
def test_fuzzy_matches_survive_small_recognition_slips(book: Phrasebook, text: str, source: str, phrase_id: str) -> None:
    match = book.lookup(text, source, "ja" if source != "ja" else "en")
    assert match is not None and match.phrase_id == phrase_id and not match.exact, match
    assert fuzzy.threshold(source) <= match.score < 1.0


@pytest.mark.parametrize(("text", "source", "not_this"), [
    ("住民票を二通ください", "ja", "residence_cert_one_copy"),  # number
    ("住民票を2通ください", "ja", "residence_cert_one_copy"),
    ("5番の窓口へお越しください", "ja", "go_counter_3"),
    ("手数料は500円です", "ja", "fee_300_yen"),  # amount
    ("窓口は午後6時15分までです", "ja", "counter_hours"),
    ("この書類はいらない", "ja", "document_needed"),  # negation
    ("この書類は要りませんか", "ja", "document_not_needed"),  # question
    ("住民税がほしいです", "ja", "want_residence_cert"),  # another document, one kanji apart
    ("引っ越す前に転入届を出してください", "ja", "moving_out_before"),  # 入/出
    ("わかります", "ja", "do_you_understand"),
    ("いい", "ja", "yes"),
    ("I understand Japanese", "en", "dont_understand_japanese"),
    ("I want to register my old address", "en", "register_new_address"),
    ("I want to register my new addresses", "en", "register_new_address"),
    ("Please go to counter 5", "en", "go_counter_3"),
    ("Please go to counter three", "en", "go_counter_2"),
    ("Where is the station", "en", "where_is_toilet"),
    ("请去5号窗口", "zh", "go_counter_3"),
    ("ต้องใช้เอกสารนี้ไหม", "th", "document_not_needed"),
    ("कृपया ५ नम्बर काउन्टरमा जानुहोस्", "ne", "go_counter_3"),
    ("Por favor, vaya a la ventanilla cinco", "es", "go_counter_2"),
    ("Você não precisa deste documento", "pt", "document_needed"),
])
def test_dangerous_near_misses_do_not_match(book: Phrasebook, text: str, source: str, not_this: str) -> None:
    match = book.lookup(text, source, "ja" if source != "ja" else "en")
    assert match is None or match.phrase_id != not_this, match


@pytest.mark.parametrize(("phrase", "query"), [
    ("ここにサインしてください", "そこにサインしてください"),  # demonstrative
    ("そこでお待ちください", "あそこでお待ちください"),  # あそこ is not そこ
    ("転出届を出します", "転出届を出しました"),  # tense
    ("印鑑証明書をください", "課税証明書をください"),  # 2 kanji in 10 characters: 0.8 by plain similarity
    ("ひとつください", "ふたつください"),  # kana numbers
    ("書類がいります", "書類がいりません"),
])
def test_guards_on_inline_phrases(phrase: str, query: str) -> None:
    book = Phrasebook.from_entries([{"ja": phrase, "en": "x"}])
    assert book.lookup(phrase + "ね", "ja", "en") is not None
    assert book.lookup(query, "ja", "en") is None


def test_ambiguous_fuzzy_match_is_refused() -> None:
    book = Phrasebook.from_entries([{"ja": "ここでお待ちください", "en": "Please wait here."}, {"ja": "ここでお待ちくださいな", "en": "Wait here, dear."}])
    assert book.lookup("ここでお待ちくださいよね", "ja", "en").exact  # softeners stripped: exact
    assert book.lookup("ここでお待ちくださいの", "ja", "en") is None  # one kana from each: as close to both


def test_min_score(book: Phrasebook) -> None:
    assert book.lookup("ここにお名前と住所を書いてください", "ja", "en", min_score=0.99) is None
    assert book.lookup("ここにお名前と住所を書いてください", "ja", "en", min_score=0.5) is not None
    with pytest.raises(PhraseLookupError) as err:
        book.lookup("はい", "ja", "en", min_score=1.5)
    assert err.value.code == "phrase_lookup_invalid" and isinstance(err.value, ValueError)


def test_language_id_slip_matches_the_language_the_words_are_in(book: Phrasebook) -> None:
    match = book.lookup("Thank you very much", "tl", "ja")
    assert match is not None and match.phrase_id == "thank_you" and match.source_lang == "en" and match.source_text == "Thank you."


def test_no_match_for_same_or_unknown_languages(book: Phrasebook) -> None:
    assert book.lookup("少々お待ちください", "ja", "ja") is None
    assert book.lookup("少々お待ちください", "ja", "fr") is None
    assert book.lookup("", "ja", "en") is None and book.lookup("。", "ja", "en") is None
    assert book.lookup("少々お待ちください", "ja", "pt-BR").translation == "Aguarde um momento, por favor."


def test_review_marks_per_language(tmp_path: Path) -> None:
    site = tmp_path / "site.json"
    site.write_text(json.dumps({"name": "site", "entries": [{
        "phrase_id": "wait_moment",
        "en": {"text": "One moment, please.", "review": "native", "reviewer": "J. Smith", "date": "2025-05-01"},
        "ja": "少々お待ちください。"}]}, ensure_ascii=False), encoding="utf-8")
    book = Phrasebook.load([site])
    en, th = book.lookup("少々お待ちください", "ja", "en"), book.lookup("少々お待ちください", "ja", "th")
    assert en.translation == "One moment, please." and not en.needs_review
    assert th.translation == "กรุณารอสักครู่" and th.needs_review  # the bundled Thai is kept


@pytest.fixture()
def box(tmp_path: Path):
    site = tmp_path / "site.toml"
    site.write_text(f'[paths]\nstate_dir = "{tmp_path / "state"}"\n', encoding="utf-8")
    layers = config_layers(site, system_layers=False)
    return settings_from_layers(layers), layers


def push(box, name: str, entries: list[dict]) -> None:
    settings, layers = box
    outcome = commands.decide(name, json.dumps({"id": "p1", "args": {"name": "site", "entries": entries}}).encode(), layers, settings)
    assert outcome.result["ok"], outcome.result
    commands.apply(outcome)


def test_pushed_phrasebook_overrides_bundled_by_japanese_text(box) -> None:
    push(box, "push_phrasebook", [
        {"ja": "少々お待ちください。", "en": "One moment please."},
        {"ja": "駐車券はありますか。", "en": "Do you have a parking ticket?", "id": "Apakah Anda punya karcis parkir?", "pt-BR": "Você tem o tíquete do estacionamento?"},
    ])
    files = pushed_files(Path(box[0].paths.state_dir), "phrasebooks")
    assert [f.name for f in files] == ["site.json"]
    book = Phrasebook.load(files)
    assert book.lookup("少々お待ちください", "ja", "en").translation == "One moment please."
    assert book.lookup("少々お待ちください", "ja", "es").translation == "Espere un momento, por favor."
    assert book.lookup("駐車券はありますか", "ja", "id").translation == "Apakah Anda punya karcis parkir?"  # "id" is Indonesian
    assert book.lookup("Do you have a parking ticket", "en", "ja").phrase_id == "site#1"
    assert book.lookup("駐車券はありますか", "ja", "pt").needs_review


@pytest.mark.parametrize(("content", "expected"), [
    ("{not json", "not valid UTF-8 JSON"),
    (json.dumps({"name": "x", "entries": [{"en": "Hello"}, {"ja": "はい", "en": "Yes"}]}), "entries[0]: has no Japanese ('ja') text"),
    (json.dumps({"name": "x", "entries": [{"ja": "はい", "fr": "Oui"}]}), "entries[0]: unknown language code 'fr'; allowed: ja, en, zh"),
    (json.dumps({"name": "x", "entries": [{"ja": "はい", "en": "Yes"}, {"ja": "いいえ", "en": 5}]}), "entries[1].en: must be a string or"),
    (json.dumps({"name": "x", "entries": [{"ja": "はい", "en": {"text": "Yes", "review": "native"}}]}), 'review "native" needs "reviewer"'),
    (json.dumps({"name": "x", "entries": [{"ja": "はい", "en": {"text": "Yes", "review": "ok"}}]}), "allowed: needed, native"),
    (json.dumps({"name": "x", "entries": [{"ja": "はい"}]}), "needs at least one language besides 'ja'"),
    (json.dumps({"name": "x", "entires": []}), 'must be an object {"name"'),
    (json.dumps({"name": "x", "entries": [{"phrase_id": "a b", "ja": "はい", "en": "Yes"}]}), "phrase_id: must be 1 to 64"),
])
def test_bad_files_name_file_entry_and_what_is_allowed(tmp_path: Path, content: str, expected: str) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(content, encoding="utf-8")
    with pytest.raises(PhrasebookFileError) as err:
        Phrasebook.load([bad], include_bundled=False)
    assert str(bad) in str(err.value) and expected in str(err.value), str(err.value)
    assert err.value.code == "phrasebook_invalid" and isinstance(err.value, ValueError)


def test_a_bad_file_does_not_lose_the_others(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    good, bad = tmp_path / "a_good.json", tmp_path / "b_bad.json"
    good.write_text(json.dumps({"name": "a", "entries": [{"ja": "駐車券はありますか", "en": "Parking ticket?"}]}), encoding="utf-8")
    bad.write_text(json.dumps({"name": "b", "entries": [{"ja": "はい", "xx": "?"}]}), encoding="utf-8")
    with pytest.raises(PhrasebookFileError) as err:
        Phrasebook.load([good, bad])
    assert str(bad) in str(err.value) and str(good) not in str(err.value)
    with caplog.at_level(logging.ERROR, logger="madoguchi.mt.termfile"):
        book = Phrasebook.load([good, bad], strict=False)
    assert book.lookup("駐車券はありますか", "ja", "en").translation == "Parking ticket?"
    assert book.lookup("はい", "ja", "en").translation == "Yes."  # bundled still there
    assert len(book.problems) == 1 and str(bad) in book.problems[0] and str(bad) in caplog.text


def test_inline_entries_are_validated() -> None:
    with pytest.raises(PhrasebookFileError, match=r"inline: entries\[0\]"):
        Phrasebook.from_entries([{"ja": ""}])


def test_kanji_numerals_and_number_words() -> None:
    assert normalise("三百円、二十三通、一万二千円、三〇〇", "ja") == "300円23通12000円300"
    assert numbers(normalise("ひとつと2通", "ja"), "ja") == {1: 1, 2: 1}
    assert numbers(normalise("three copies, 1,000 yen", "en"), "en") == {3: 1, 1000: 1}
    assert numbers(normalise("३०० येन", "ne"), "ne") == {300: 1}
    assert negations(normalise("I don't know", "en"), "en") == {"not": 1}
    assert language_code("pt-BR") == "pt" and language_code("fil") == "tl" and language_code("fr") is None


def test_pure_python_fallback_gives_the_same_answers(book: Phrasebook, monkeypatch: pytest.MonkeyPatch) -> None:
    queries = [("ここにお名前と住所を書いてください", "ja", "en"), ("I want to register my new adress", "en", "ja"), ("กรุณารอสักครู", "th", "ja"),
               ("住民票を2通ください", "ja", "en"), ("여기 서명해 주세요", "ko", "ja")]
    fast = [book.lookup(*q) for q in queries]
    monkeypatch.setattr(fuzzy, "_rf_levenshtein", None)
    assert [book.lookup(*q) for q in queries] == fast


_BOOK = Phrasebook.load()
_FORMS = [(lang, form) for entry in _BOOK.entries for lang, r in entry.renderings.items() for form in r.forms]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(_FORMS), st.sampled_from(["", "。", "？", "!", " ", "…", "、"]), st.booleans())
def test_every_curated_form_matches_exactly_however_punctuated(item, tail: str, wide: bool) -> None:
    lang, form = item
    text = unicodedata.normalize("NFKC", form).rstrip("。.?？!！") + tail
    if wide:  # ASCII to full width, as some recognisers write it
        text = "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)
    match = _BOOK.lookup(text, lang, "ja" if lang != "ja" else "en")
    assert match is not None and match.exact and normalise(text, lang) in {normalise(f, match.source_lang) for f in _BOOK.phrase(match.phrase_id).renderings[match.source_lang].forms}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([f for f in _FORMS if f[0] in ("ja", "en", "zh", "th", "es")]), st.integers(0, 60), st.sampled_from(["2", "7", "15", "500", "二", "ない", "not", "ไม่", "不", "no"]))
def test_a_match_never_changes_numbers_or_negation(item, where: int, insert: str) -> None:
    lang, form = item
    where = min(where, len(form))
    text = form[:where] + insert + form[where:]
    match = _BOOK.lookup(text, lang, "ja" if lang != "ja" else "en")
    if match is None:
        return
    query = normalise(text, match.source_lang)
    forms = _BOOK.phrase(match.phrase_id).renderings[match.source_lang].forms
    assert any(numbers(normalise(f, match.source_lang), match.source_lang) == numbers(query, match.source_lang)
               and negations(normalise(f, match.source_lang), match.source_lang) == negations(query, match.source_lang) for f in forms), (text, match)
