"""Beyond day one: a site may list any Whisper language; its script gets its Noto font, and
right-to-left scripts are aligned to the right."""

from __future__ import annotations

import dataclasses

import pytest

from madoguchi.config import LanguageSettings, Settings
from madoguchi.display.faces import site_fonts
from madoguchi.display.render import render_face
from madoguchi.display.view import FaceView, StatusLine

WAIT_THERE = {  # "Please wait there until your number is called."
    "ar": "يرجى الانتظار هناك حتى يتم استدعاء رقمك",
    "he": "אנא המתינו שם עד שיקראו למספר שלכם",
    "km": "សូមរង់ចាំនៅទីនោះរហូតដល់លេខរបស់អ្នកត្រូវបានហៅ",
    "lo": "ກະລຸນາລໍຖ້າຢູ່ບ່ອນນັ້ນຈົນກວ່າຈະເອີ້ນເລກຂອງທ່ານ",
    "ta": "உங்கள் எண் அழைக்கப்படும் வரை அங்கே காத்திருக்கவும்",
    "am": "ቁጥርዎ እስኪጠራ ድረስ እዚያ ይጠብቁ",
    "uk": "Будь ласка, зачекайте там, доки не викличуть ваш номер.",
}


@pytest.fixture(scope="module")
def fonts():
    settings = dataclasses.replace(Settings(), languages=LanguageSettings(residents=tuple(WAIT_THERE)))
    return site_fonts(settings)


@pytest.mark.parametrize("lang", list(WAIT_THERE))
def test_every_listed_script_has_a_font_and_no_missing_glyphs(fonts, lang: str) -> None:
    runs = fonts.runs(WAIT_THERE[lang], lang)
    assert all(fonts.missing(run) == "" for run in runs), [(r.font.name, fonts.missing(r)) for r in runs]


@pytest.mark.parametrize(("lang", "rtl"), [("ar", True), ("he", True), ("uk", False)])
def test_right_to_left_lines_are_aligned_right(fonts, lang: str, rtl: bool) -> None:
    status = StatusLine(None, lang, "ja", 0.0, False, "off", None, "interpret")
    image = render_face(FaceView("text", status, main=WAIT_THERE[lang], main_lang=lang), (256, 64), fonts=fonts)
    body = image.crop((0, 14, 256, 64))  # below the status band
    left, _, right, _ = body.getbbox()
    assert (256 - right < left) == rtl, (left, right)


def test_easy_japanese_breaks_lines_only_between_its_phrases(fonts) -> None:
    """分かち書き: a phrase, and a word with its reading in brackets, is never split across lines."""
    from madoguchi.display.layout import wrap

    easy = "この 転入届(てんにゅうとどけ)に 書いて ください。 転入届(てんにゅうとどけ)は 引(ひ)っ越(こ)して 来た ときに 出す 紙です。"
    phrases = easy.split(" ")
    lines = wrap(easy, "ja", 240, 16, fonts)
    assert len(lines) >= 3
    for line in lines:
        assert all(piece in phrases for piece in line.text.split(" ")), line.text
    plain = wrap("少々お待ちください。こちらの書類にご記入をお願いします。", "ja", 120, 16, fonts)
    assert len(plain) >= 2 and not any(line.text.startswith(("。", "、")) for line in plain)  # unspaced text: ICU's kinsoku
