"""School grades of kanji (教育漢字 1-6 of the 2020 list; 7 = other jōyō; 8 = beyond jōyō)."""

from __future__ import annotations

from functools import cache

from kanji_lists import JOYO, KYOIKU

_GRADES = (KYOIKU.GRADE1, KYOIKU.GRADE2, KYOIKU.GRADE3, KYOIKU.GRADE4, KYOIKU.GRADE5, KYOIKU.GRADE6)


def is_kanji(ch: str) -> bool:
    # URO, extension A, compatibility ideographs, and extensions B+ (𠮷 of 𠮷田 is outside the BMP)
    return ("\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf" or "\uf900" <= ch <= "\ufaff"
            or "\U00020000" <= ch <= "\U0003134f" or ch in "々〆")


@cache
def grade(ch: str) -> int:
    """The grade a kanji is taught in (1-8); 0 for anything that is not a kanji."""
    if not is_kanji(ch):
        return 0
    for number, kanji in enumerate(_GRADES, 1):
        if ch in kanji:
            return number
    return 7 if ch in JOYO else 8


def needs_reading(word: str, above: int) -> bool:
    """Whether a word holds a kanji taught after grade ``above`` (々 repeats the kanji before it)."""
    return any(grade(ch) > above or (ch == "々" and above < 8) for ch in word if is_kanji(ch))
