"""Text normalisation shared by the phrasebook and the glossary: what counts as "the same words".

Speech recognition output differs from curated text in ways that do not change meaning: width
(全角/半角), case, punctuation (Whisper adds or drops "。" and "?"), spacing, kanji versus kana
spellings (下さい/ください), kanji versus Arabic numerals (三百円/300円), hesitation fillers
(えっと, um) and sentence-final softeners (ね/よ, ครับ/ค่ะ, ạ). ``normalise`` removes exactly
those. ``numbers`` and ``negations`` extract what must never differ between an utterance and
the phrase it is matched to (see fuzzy.py).

Languages: staff speak Japanese; residents the eleven below (ISO 639-1).
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter

from madoguchi.mt.langdata import (
    CANON,
    FILLERS_STRONG,
    FILLERS_WEAK,
    JA_KANA_NUMBERS,
    NEGATIONS,
    NUMBER_WORDS,
    STRIP_WORDS,
    TRAILING,
)

STAFF_LANGUAGE = "ja"
RESIDENT_LANGUAGES = ("en", "zh", "ko", "vi", "pt", "es", "tl", "ne", "id", "th", "my")
LANGUAGES = (STAFF_LANGUAGE, *RESIDENT_LANGUAGES)
# Compared character by character: no spaces between words (ja, zh, th, my), or spaces that
# speech recognition puts in unreliably before Korean particles and endings.
CHAR_LANGUAGES = frozenset({"ja", "zh", "ko", "th", "my"})
WORD_LANGUAGES = frozenset(LANGUAGES) - CHAR_LANGUAGES
# Other spellings of the same languages that files and callers may use.
_ALIASES = {"fil": "tl", "tgl": "tl", "jpn": "ja", "eng": "en", "zho": "zh", "kor": "ko", "vie": "vi", "por": "pt", "spa": "es", "nep": "ne", "npi": "ne", "ind": "id", "in": "id", "tha": "th", "mya": "my", "bur": "my"}
_CODE = re.compile(r"([A-Za-z]{2,3})(?:[-_][A-Za-z0-9]{2,8})*")

_KANJI_DIGITS = {"〇": 0, "零": 0, "一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9, "两": 2, "兩": 2}
_KANJI_SMALL = {"十": 10, "百": 100, "千": 1000}
_KANJI_BIG = {"万": 10**4, "萬": 10**4, "億": 10**8, "亿": 10**8}
_KANJI_RUN = re.compile("[" + "".join([*_KANJI_DIGITS, *_KANJI_SMALL, *_KANJI_BIG]) + "]+")
_DIGIT_GROUP = re.compile(r"(?<=\d)[,.](?=\d{3}(?!\d))")  # 1,000 円 / 1.000 reais: one number, not two
_APOSTROPHE = re.compile(r"['’ʼ`]")
_SPACES = re.compile(r"\s+")
_DIGITS = re.compile(r"\d+")


def language_code(code: str) -> str | None:
    """The base language of a tag (``pt-BR`` → ``pt``, ``fil`` → ``tl``) if it is one of ours, else None."""
    match = _CODE.fullmatch(code.strip()) if isinstance(code, str) else None
    if not match:
        return None
    base = match.group(1).lower()
    base = _ALIASES.get(base, base)
    return base if base in LANGUAGES else None


def _kanji_value(run: str) -> int | None:
    if all(ch in _KANJI_DIGITS for ch in run):  # positional: 三〇〇
        return int("".join(str(_KANJI_DIGITS[ch]) for ch in run))
    total = section = 0
    digit: int | None = None
    for ch in run:
        if ch in _KANJI_DIGITS:
            if digit is not None:
                return None
            digit = _KANJI_DIGITS[ch]
        elif ch in _KANJI_SMALL:
            section += (1 if digit is None else digit) * _KANJI_SMALL[ch]
            digit = None
        else:
            total += (section + (digit or 0) or 1) * _KANJI_BIG[ch]
            section, digit = 0, None
    return total + section + (digit or 0)


def _kanji_numerals(text: str) -> str:
    def value(match: re.Match[str]) -> str:
        parsed = _kanji_value(match.group(0))
        return match.group(0) if parsed is None else str(parsed)

    return _KANJI_RUN.sub(value, text)


def _ascii_digits(text: str) -> str:
    # Thai ๓, Devanagari ३, Myanmar ၃ … are the same numbers as 3.
    return "".join(str(unicodedata.decimal(ch)) if ch.isdecimal() and not ch.isascii() else ch for ch in text)


def _separators(text: str) -> str:
    """Punctuation and symbols become spaces; letters, marks (Thai, Myanmar, Devanagari vowels) and digits stay."""
    return "".join(ch if unicodedata.category(ch)[0] in "LMN" else " " for ch in text)


def fold(text: str, lang: str) -> str:
    """Width, case, spelling variants, numerals and punctuation; spaces collapsed (kept between words)."""
    text = unicodedata.normalize("NFKC", text).casefold().replace("’", "'").replace("ʼ", "'")
    for old, new in CANON.get(lang, ()):
        text = text.replace(old, new)
    if lang in ("ja", "zh"):
        text = re.sub(r"(.)々", r"\1\1", text)  # 少々 = 少少
        text = _kanji_numerals(text)
    text = _ascii_digits(_APOSTROPHE.sub("", text))
    text = _DIGIT_GROUP.sub("", text)
    return _SPACES.sub(" ", _separators(text)).strip()


def _strip_edges(text: str, lang: str) -> str:
    """Drop leading fillers and trailing softeners, as long as something is left."""
    strong, weak, trailing = FILLERS_STRONG.get(lang, ()), FILLERS_WEAK.get(lang, ()), TRAILING.get(lang, ())
    joined = lang in CHAR_LANGUAGES
    changed = True
    while changed:
        changed = False
        for filler in strong:
            rest = text[len(filler):].lstrip() if text.startswith(filler) else ""
            # a strong filler may run into the next word only where words are not spaced
            if rest and (joined or text[len(filler)] == " "):
                text, changed = rest, True
        for filler in weak:  # ambiguous words (あの = "that"): only when set off by a pause or comma
            if text.startswith(filler + " ") and text[len(filler) + 1:].strip():
                text, changed = text[len(filler) + 1:].lstrip(), True
        for particle in trailing:
            head = text[: -len(particle)] if text.endswith(particle) else ""
            if head.strip() and (joined or head.endswith(" ")):
                text, changed = head.rstrip(), True
    return text


def normalise(text: str, lang: str) -> str:
    """The form two texts are compared in: equal normal forms mean the same sentence.

    Char languages come back without spaces; word languages with single spaces between words.
    """
    text = _strip_edges(fold(text, lang), lang)
    strip = STRIP_WORDS.get(lang)
    if strip:  # pure politeness markers (Tagalog po/ho) carry no content
        text = " ".join(w for w in text.split(" ") if w not in strip) or text
    return text.replace(" ", "") if lang in CHAR_LANGUAGES else text


def words(normal: str) -> list[str]:
    return normal.split(" ") if normal else []


def numbers(normal: str, lang: str) -> Counter[int]:
    """Every number a normalised text states: digits, and number words where the language has them."""
    found: Counter[int] = Counter(int(d) for d in _DIGITS.findall(normal))
    if lang == "ja":
        for word, value in JA_KANA_NUMBERS:
            found[value] += len(re.findall(word, normal))
    table = NUMBER_WORDS.get(lang)
    if table:
        found.update(table[w] for w in words(normal) if w in table)
    return +found


def negations(normal: str, lang: str) -> Counter[str]:
    """Negation markers in a normalised text: substrings for char languages, whole words otherwise."""
    markers = NEGATIONS.get(lang, ())
    if lang in CHAR_LANGUAGES:
        return +Counter({m: normal.count(m) for m in markers})
    return Counter(w for w in words(normal) if w in markers)


def is_question(normal: str, lang: str) -> bool:
    """Japanese questions end in か (わかりますか / わかります); elsewhere the question word is content."""
    return lang == "ja" and normal.endswith(("か", "かな"))


def fold_char(ch: str) -> str:
    """One character's comparison form, one character long so positions map back to the original."""
    norm = unicodedata.normalize("NFKC", ch)
    if len(norm) != 1:
        return ch
    low = norm.casefold()
    return low if len(low) == 1 else norm


def fold_view(text: str) -> str:
    """Per-character fold_char: positions in the view are positions in the text."""
    return "".join(fold_char(ch) for ch in text)
