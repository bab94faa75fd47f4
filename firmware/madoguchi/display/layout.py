"""Line breaking and measurement: text, language, width and size in; lines that fit out.

Break opportunities come from ICU's line BreakIterator for the language's locale: spaces for
spaced scripts, dictionary words for Thai and Burmese, and for Japanese the strict rules
(``ja@lb=strict``, kinsoku shori: 。、ー, small kana and closing brackets never start a line).
A piece with no opportunity that is still wider than the line (a long word, a URL, a line of
Thai the dictionary does not know) is cut between grapheme clusters, never inside one, so a
vowel sign or tone mark always stays on its consonant.

Widths are measured with the real fonts, run by run, as raqm shapes them; a line's extent covers
both its advance and its ink (a ``j`` hangs left of its origin). Everything here is a pure
function of its arguments and cached, so re-rendering the same text at 10 fps costs nothing.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache

import icu

from madoguchi.display.fonts import FontBook, Run, _spans, clusters

# Locales whose line breaking needs a keyword: ICU's strict rules are the kinsoku of Japanese
# typesetting; Chinese follows the same rules for its closing punctuation.
_LOCALES = {"ja": "ja@lb=strict", "zh": "zh@lb=strict"}

# A space between two Japanese characters: the text is written in phrases (分かち書き).
_WAKACHIGAKI = re.compile(r"[^\x00-\x7f] [^\x00-\x7f]")

# Strings whose ink reaches about as high and low as the language's text can: a line box at
# least this tall keeps lines still while partial text grows a descender or a stacked mark.
_PROBES = {
    "ja": "漢あg", "zh": "漢字g", "ko": "한글g", "vi": "Ệgy", "ne": "र्कि्यु", "th": "ป้ญู",
    "my": "ကြို့ချွ", "si": "ශ්‍රී", "bn": "র্কি",
}
_LATIN_PROBE = "ÁÉgjy"


@dataclass(frozen=True)
class Line:
    """One laid-out line: its runs, its extent left of the origin and its width (ink and advance)."""

    text: str
    runs: tuple[Run, ...]
    left: int  # ink left of the pen origin (≥ 0): draw at x + left to keep it inside
    width: int  # from the leftmost ink to the furthest of ink and advance, whole pixels


@dataclass(frozen=True)
class Metrics:
    """A line box: ink height above and below the baseline, and the distance between baselines."""

    size: int  # the font size (px) the lines were laid out at
    ascent: int
    descent: int
    pitch: int


def wrap(text: str, lang: str, width: int, size: int, fonts: FontBook) -> tuple[Line, ...]:
    """Break ``text`` into lines no wider than ``width`` pixels at ``size`` px."""
    return _wrap(text, lang, width, size, fonts)


@lru_cache(maxsize=1024)
def _wrap(text: str, lang: str, width: int, size: int, fonts: FontBook) -> tuple[Line, ...]:
    lines: list[Line] = []
    start = end = None  # the open line: text[start:end]
    for a, b, hard in _segments(text, lang):
        if start is not None and line_of(text[start:b], lang, size, fonts).width <= width:
            end = b
        else:
            if start is not None:
                lines.append(line_of(text[start:end], lang, size, fonts))
            start, end = a, b
            if line_of(text[a:b], lang, size, fonts).width > width:
                pieces = _cut(text[a:b], lang, width, size, fonts)
                lines.extend(pieces[:-1])
                start = b - len(pieces[-1].text) - _trailing_space(text[a:b])
        if hard:
            lines.append(line_of(text[start:end], lang, size, fonts))
            start = end = None
    if start is not None:
        lines.append(line_of(text[start:end], lang, size, fonts))
    return tuple(line for line in lines if line.text) or (line_of("", lang, size, fonts),)


def _trailing_space(s: str) -> int:
    return len(s) - len(s.rstrip())


def _cut(piece: str, lang: str, width: int, size: int, fonts: FontBook) -> list[Line]:
    """Cut one unbreakable piece between grapheme clusters into lines that fit (the last may be short)."""
    out: list[Line] = []
    start = 0
    spans = clusters(piece.rstrip())
    for a, b in spans:
        if a > start and line_of(piece[start:b], lang, size, fonts).width > width:
            out.append(line_of(piece[start:a], lang, size, fonts))
            start = a
    out.append(line_of(piece[start:].rstrip(), lang, size, fonts))
    return out


def _segments(text: str, lang: str) -> list[tuple[int, int, bool]]:
    """Spans between line-break opportunities, each with whether it ends in a mandatory break."""
    bi = icu.BreakIterator.createLineInstance(icu.Locale(_LOCALES.get(lang, lang)))
    spans = _spans(text, bi)
    if lang == "ja" and _WAKACHIGAKI.search(text):
        spans = _at_spaces_only(text, spans)
    out = []
    for a, b in spans:
        hard = text[b - 1] in "\n\r\u2028\u2029\x0b\x0c\x85"
        out.append((a, b, hard))
    return out


def _at_spaces_only(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Japanese written with spaces between phrases (分かち書き, easy Japanese) breaks only there:
    a phrase, and a word with its reading in brackets, stays whole on its line."""
    merged: list[tuple[int, int]] = []
    start = None
    for a, b in spans:
        start = a if start is None else start
        if text[b - 1].isspace() or b == len(text):
            merged.append((start, b))
            start = None
    return merged


def break_opportunities(text: str, lang: str) -> list[int]:
    """Indices where a line may start (for tests and for anyone who needs to reason about breaks)."""
    return [a for a, _, _ in _segments(text, lang)][1:]


@lru_cache(maxsize=8192)
def line_of(text: str, lang: str, size: int, fonts: FontBook) -> Line:
    """Lay out ``text`` as one line (trailing spaces and newlines dropped) and measure it."""
    text = text.rstrip()
    runs = fonts.runs(text, lang) if text else ()
    x = 0.0
    ink_left, ink_right = 0.0, 0.0
    for run in runs:
        font = fonts.font(run.font, size)
        left, _, right, _ = font.getbbox(run.text, anchor="ls", language=lang)
        if right > left:  # a run of spaces has no ink
            ink_left, ink_right = min(ink_left, x + left), max(ink_right, x + right)
        x += font.getlength(run.text, language=lang)
    left = math.ceil(-ink_left)
    return Line(text, runs, left, left + math.ceil(max(x, ink_right)))


def ink_rows(line: Line, lang: str, size: int, fonts: FontBook) -> tuple[int, int]:
    """Ink of a line above (as a positive number) and below its baseline, in pixels."""
    top = bottom = 0
    for run in line.runs:
        _, t, _, b = fonts.font(run.font, size).getbbox(run.text, anchor="ls", language=lang)
        if b > t:
            top, bottom = min(top, t), max(bottom, b)
    return -top, bottom


def metrics(lines: tuple[Line, ...], lang: str, size: int, fonts: FontBook, gap: int = 1, *, probe: bool = True
            ) -> Metrics:
    """The common line box of ``lines``: their ink (and the language's probe), plus ``gap`` between lines.

    Without the probe the box fits exactly the given lines: right for text that never changes.
    """
    return _metrics(lines, lang, size, fonts, gap, probe)


@lru_cache(maxsize=1024)
def _metrics(lines: tuple[Line, ...], lang: str, size: int, fonts: FontBook, gap: int, probe: bool) -> Metrics:
    if probe:
        lines = (line_of(_PROBES.get(lang, _LATIN_PROBE), lang, size, fonts), *lines)
    rows = [ink_rows(line, lang, size, fonts) for line in lines] or [(0, 0)]
    ascent, descent = max(r[0] for r in rows), max(r[1] for r in rows)
    return Metrics(size, ascent, descent, ascent + descent + gap)
