"""Kanji numbers as Arabic digits (十五日 → 15日, 三百円 → 300円, 午前八時半 → 午前8時半).

The easy-Japanese guidelines ask for digits: learners read them at once and they are shorter.
Only what the tagger calls a number (UniDic 数詞) changes, so words that merely contain a number
kanji stay as they are: 一緒, 一番 (most), 一部, 一日 (ついたち), 十分 (enough) are other parts of
speech; 十分 (ten minutes) is 十 + 分 and becomes 10分. 一度 stays: もう一度 is a set phrase.
"""

from __future__ import annotations

from .analyse import Token, rewrite

_DIGITS = {"〇": 0, "零": 0, "一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_SMALL = {"十": 10, "百": 100, "千": 1000}
_LARGE = {"万": 10_000, "億": 100_000_000}
_KEEP_AFTER_ONE = frozenset({"度"})  # もう一度: a set phrase that learners know as いちど


def value(kanji: str) -> int | None:
    """二〇二四 → 2024 (digit by digit), 千二百 → 1200, 二万五千 → 25000; None if not a number."""
    if not kanji or any(ch not in _DIGITS and ch not in _SMALL and ch not in _LARGE for ch in kanji):
        return None
    if all(ch in _DIGITS for ch in kanji):
        return int("".join(str(_DIGITS[ch]) for ch in kanji))
    total = section = digit = 0
    for ch in kanji:
        if ch in _DIGITS:
            digit = digit * 10 + _DIGITS[ch]
        elif ch in _SMALL:
            section += (digit or 1) * _SMALL[ch]
            digit = 0
        else:
            total += (section + digit or 1) * _LARGE[ch]
            section = digit = 0
    return total + section + digit


def digits(kanji: str) -> str | None:
    """The number as written for learners: 300, 2024, and 万/億 kept as words (2万5000円, 1億円)."""
    number = value(kanji)
    if number is None:
        return None
    if number < 10_000 or not any(ch in _LARGE for ch in kanji):
        return str(number)
    parts = [(number // 100_000_000, "億"), (number // 10_000 % 10_000, "万"), (number % 10_000, "")]
    return "".join(f"{n}{unit}" for n, unit in parts if n)


def _kanji_number(tok: Token) -> bool:
    return tok.pos2 == "数詞" and value(tok.surface) is not None


def to_digits(text: str) -> str:
    """``text`` with every run of number words as digits; everything else (spaces too) kept."""

    def number_run(tokens: list[Token], starts: list[int], i: int) -> tuple[int, str | None] | None:
        j = i
        while j < len(tokens) and _kanji_number(tokens[j]):
            j += 1
        if j == i:
            return None
        kanji = text[starts[i] : starts[j - 1] + len(tokens[j - 1].surface)]
        after = tokens[j].surface if j < len(tokens) else ""
        number = digits(kanji)
        keep = number is None or (kanji == "一" and after in _KEEP_AFTER_ONE)
        return j - i, None if keep else number  # a run left as written is not looked into again

    return rewrite(text, number_run)
