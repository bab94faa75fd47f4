"""Line breaking and font runs: kinsoku, grapheme clusters, spaces, over-long words, mixed scripts."""

from __future__ import annotations

import unicodedata

import pytest

from madoguchi.display import errors
from madoguchi.display import fonts as fontmod
from madoguchi.display.fonts import CJK_JP, LATIN, MYANMAR, THAI, FontBook, clusters
from madoguchi.display.layout import line_of, wrap
from madoguchi.display.render import first_line, scroll_end_s


@pytest.fixture(scope="module")
def book() -> FontBook:
    return FontBook()


def starts(text: str, lines) -> list[int]:
    """Where each line starts in ``text`` (lines drop only whitespace between them)."""
    out, pos = [], 0
    for line in lines:
        pos = text.index(line.text, pos)
        out.append(pos)
        pos += len(line.text)
    return out


# Kinsoku shori: characters that must never begin a line in Japanese.
NO_START = set("。、，．・：；？！ー」』）］｝〉》〕ぁぃぅぇぉっゃゅょゎァィゥェォッャュョヮヵヶ々ゝゞ")
JA = "「マイナンバーカード」はお持ちですか。ちょっと待ってください、ファックスでよろしいですか？はい、っそうです。"


@pytest.mark.parametrize("width", range(56, 260, 7))  # ≥ 3.5 em: every ICU piece fits whole
def test_kinsoku_no_forbidden_line_start(book, width):
    lines = wrap(JA, "ja", width, 16, book)
    assert "".join(l.text for l in lines) == JA
    for line in lines[1:]:
        assert line.text[0] not in NO_START, (width, [l.text for l in lines])
    assert all(l.width <= width for l in lines)


@pytest.mark.parametrize("lang,text", [
    ("th", "กรุณายื่นแจ้งย้ายเข้าภายใน 14 วันนับจากวันที่ย้ายมา"),
    ("ne", "यहाँ सरेको १४ दिनभित्र बसाइँसराइ आगमन सूचना बुझाउनुहोस्।"),
    ("my", "ဒီကို ပြောင်းလာပြီး ရက် ၁၄ ရက်အတွင်း ပြောင်းရွှေ့ဝင်ရောက်ကြောင်း အကြောင်းကြားစာ တင်ပေးပါ။"),
    ("vi", unicodedata.normalize("NFD", "Vui lòng nộp thông báo chuyển đến trong vòng 14 ngày.")),
])
@pytest.mark.parametrize("width", [24, 40, 70, 128, 254])
def test_never_breaks_inside_a_grapheme_cluster(book, lang, text, width):
    bounds = {a for a, _ in clusters(text)}
    lines = wrap(text, lang, width, 16, book)
    assert "".join(l.text for l in lines) == "".join(text.split(" ")) or all(l.text in text for l in lines)
    for line, start in zip(lines, starts(text, lines)):
        assert start in bounds, (line.text, start)
        assert line.width <= width or len(clusters(line.text)) == 1


def test_thai_breaks_between_words_not_anywhere(book):
    text = "กรุณารอที่นั่นจนกว่าจะเรียกหมายเลขของคุณ"
    words = {"กรุณา", "รอ", "ที่", "นั่น", "จน", "กว่า", "จะ", "เรียก", "หมายเลข", "ของ", "คุณ"}
    lines = wrap(text, "th", 100, 16, book)
    assert len(lines) > 1
    for start in starts(text, lines)[1:]:
        assert any(text.startswith(w, start) for w in words) and any(text[:start].endswith(w) for w in words)


def test_english_breaks_at_spaces(book):
    text = "Please submit a moving-in notification within 14 days of moving here."
    for width in (90, 120, 150, 254):  # every word fits: breaks only at spaces and after hyphens
        lines = wrap(text, "en", width, 16, book)
        assert " ".join(l.text for l in lines).replace("- ", "-") == text
        assert all(not l.text.startswith(" ") and not l.text.endswith(" ") for l in lines)
        for start in starts(text, lines)[1:]:
            assert text[start - 1] in " -"  # a space, or after the hyphen of moving-in
        assert all(l.width <= width for l in lines)


def test_too_long_word_breaks_between_clusters(book):
    word = "Supercalifragilisticexpialidocious"
    lines = wrap(f"{word} word", "en", 60, 16, book)
    assert "".join(l.text for l in lines[:-1]) == word and lines[-1].text == "word"
    assert len(lines) > 3 and all(l.width <= 60 for l in lines)


def test_newline_is_a_hard_break(book):
    assert [l.text for l in wrap("one\ntwo", "en", 254, 16, book)] == ["one", "two"]


def test_mixed_scripts_split_into_runs(book):
    vi = book.runs("Vui lòng mang thẻ マイナンバー đến quầy 3.", "vi")
    assert [r.font for r in vi] == [LATIN, CJK_JP, LATIN] and vi[1].text.startswith("マイナンバー")
    assert [r.font for r in book.runs("受付は3番窓口です。", "ja")] == [CJK_JP]  # digits in the CJK face
    assert [r.font for r in book.runs("ยื่นภายใน 14 วัน", "th")] == [THAI, LATIN, THAI]
    assert [r.font for r in book.runs("ရက် ၁၄ ရက်", "my")] == [MYANMAR]
    for run in (*vi, *book.runs("ยื่นภายใน 14 วัน", "th")):
        assert book.missing(run) == ""


def test_combining_marks_stay_with_their_base_font(book):
    text = unicodedata.normalize("NFD", "Tiếng Việt 日本")  # marks as separate code points
    runs = book.runs(text, "vi")
    assert runs[0].text == unicodedata.normalize("NFD", "Tiếng Việt ") and runs[0].font == LATIN


def test_line_width_covers_ink_left_of_origin(book):
    line = line_of("just", "en", 16, book)
    assert line.left >= 1  # Noto Sans' j hangs left of the pen
    assert line.width >= line.left + round(book.font(LATIN, 16).getlength("just"))


def test_scroll_holds_steps_and_stops():
    assert [first_line(6, 2, t, False) for t in (0, 1.9, 2.0, 3.4, 3.5, 5.0, 99)] == [0, 0, 1, 1, 2, 3, 4]
    assert first_line(6, 2, 0, True) == 4  # partial: the newest lines
    assert first_line(2, 3, 50, False) == 0
    assert scroll_end_s(6, 2) == 2.0 + 3 * 1.5 and scroll_end_s(2, 2) == 0.0


def test_missing_font_names_the_package(tmp_path):
    with pytest.raises(errors.FontMissingError, match="fonts-noto-") as err:
        FontBook(root=tmp_path)
    assert isinstance(err.value, FileNotFoundError) and err.value.code == "font_missing"


def test_no_raqm_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(fontmod.features, "check", lambda name: False)
    with pytest.raises(errors.ShapingUnavailableError, match="Thai, Burmese and Devanagari"):
        FontBook()
