"""Glossary slots through MT: the placeholder format, and getting terms back out of what MT wrote.

Placeholders (strategy "placeholder", the default) are ``QZ<n>X``. ASCII letters and digits are
in every sentencepiece vocabulary we might run (OPUS-MT/Marian, M2M100, NLLB, MADLAD-400), and an
unknown capitalised alphanumeric code reads to these models like a product code or a name, which
they copy. The alternatives fare worse with models not trained on placeholders: a bare number is
reformatted, spelled out or hallucinated around (NLLB turns a lone "102" into a sentence), "x1"
gets translated as "1", and tags such as <1> or ${DNT1} are dropped or recased. No word in any of
our languages contains "QZ", so recovery can be generous: any case, full width, spaces, hyphens
or dots inside, native digits (३, ๓), and a lost Q, Z or X (or the number, when only one slot
is missing). Whatever placeholder debris is left after that is removed.

Strategy "inline" writes the target term itself into the source. Models with one multilingual
vocabulary (M2M100, NLLB) often copy a foreign chunk verbatim and keep the sentence grammatical
around it, but a pair model's source vocabulary may lack the target script, so it is opt-in. Its
recovery looks for the term, then for a near spelling (≥ 80 % similar: the model inflected it).

Either way a term whose slot did not survive is appended in parentheses and reported as lost.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from madoguchi.mt.fuzzy import similarity
from madoguchi.mt.textnorm import fold_view

Outcome = tuple[str, tuple[str, ...], tuple[str, ...]]  # text, lost terms, recovered terms

# Between the parts of a placeholder MT may put spaces, hyphens or dots (Q Z-1 X, ＱＺ１Ｘ, qz1x).
_SEP = r"[\s\-_.·・,]{0,2}"
_DIGITLESS = re.compile(rf"(?<![a-z])q{_SEP}z(?:{_SEP}x)?(?![a-z0-9])", re.I)
_LEFTOVER = (
    re.compile(rf"q{_SEP}z{_SEP}\d{{1,3}}(?:{_SEP}x)?", re.I),
    re.compile(rf"(?<![a-z])z{_SEP}\d{{1,3}}{_SEP}x(?![a-z])", re.I),
    _DIGITLESS,
)


def placeholder(n: int) -> str:
    return f"QZ{n}X"


def _recovery_patterns(n: int) -> list[tuple[re.Pattern[str], bool]]:
    """Regexes for slot n, strictest first; the flag says the match is a damaged placeholder."""
    d = str(n)
    return [
        (re.compile(rf"q{_SEP}z{_SEP}{d}{_SEP}x", re.I), False),
        (re.compile(rf"q{_SEP}z{_SEP}{d}(?!\d)", re.I), True),  # X lost
        (re.compile(rf"(?<![a-z])z{_SEP}{d}{_SEP}x(?![a-z])", re.I), True),  # Q lost
        (re.compile(rf"(?<![a-z])q{_SEP}{d}{_SEP}x(?![a-z])", re.I), True),  # Z lost
    ]


def _view(text: str) -> str:
    """fold_view plus native digits as ASCII, still one character per character of text."""
    return "".join(str(unicodedata.decimal(c)) if c.isdecimal() else c for c in fold_view(text))


def unspaced_script(ch: str) -> bool:
    """Han, kana, Thai, Myanmar and CJK punctuation: scripts written without spaces between words."""
    o = ord(ch)
    return 0x2E80 <= o <= 0x9FFF or 0xF900 <= o <= 0xFAFF or 0xFF00 <= o <= 0xFFEF or 0x0E00 <= o <= 0x0E7F or 0x1000 <= o <= 0x109F or 0xAA60 <= o <= 0xAA7F


def _ascii_alnum(ch: str) -> bool:
    return bool(ch) and ch.isascii() and ch.isalnum()


def _find_slots(view: str, count: int) -> tuple[list[tuple[int, int, int]], list[int], list[int]]:
    """(start, end, slot) spans, the slots found only damaged, and the slots not found."""
    spans: list[tuple[int, int, int]] = []
    damaged_slots: list[int] = []
    missing: list[int] = []

    def free(start: int, end: int) -> bool:
        return all(end <= s or start >= e for s, e, _ in spans)

    for k in range(count):
        for pattern, damaged in _recovery_patterns(k + 1):
            hits = [m.span() for m in pattern.finditer(view) if free(*m.span())]
            if hits:  # every copy: a model may repeat a placeholder
                spans += [(s, e, k) for s, e in hits]
                damaged_slots += [k] if damaged else []
                break
        else:
            missing.append(k)
    if len(missing) == 1:  # only one slot can have lost its number: a lone QZX is that slot
        hits = [m.span() for m in _DIGITLESS.finditer(view) if free(*m.span())]
        if len(hits) == 1:
            spans.append((*hits[0], missing[0]))
            damaged_slots.append(missing.pop())
    return sorted(spans), damaged_slots, missing


def restore_placeholders(translated: str, terms: Sequence[str], joined: bool) -> Outcome:
    """Each placeholder (damaged or not) replaced by its term; ``joined``: the target has no spaces between words."""
    spans, damaged, missing = _find_slots(_view(translated), len(terms))
    pieces: list[str] = []
    last = 0
    for start, end, k in spans:
        gap = translated[last:start]
        if joined and pieces and gap[:1].isspace() and not _ascii_alnum(gap.lstrip()[:1]):
            gap = gap.lstrip()  # MT spaced the code off from the Japanese/Thai around it
        if joined and gap[-1:].isspace() and not _ascii_alnum(gap.rstrip()[-1:]):
            gap = gap.rstrip()
        elif not joined and gap[-1:].isalpha() and not unspaced_script(gap[-1]):
            gap += " "  # glued to the word before: theQZ1X
        pieces += [gap, terms[k]]
        last = end
    tail = translated[last:]
    if joined and spans and tail[:1].isspace() and not _ascii_alnum(tail.lstrip()[:1]):
        tail = tail.lstrip()
    text = scrub("".join(pieces) + tail)
    return text, tuple(terms[k] for k in missing), tuple(terms[k] for k in damaged)


def scrub(text: str) -> str:
    """Remove placeholder debris MT invented or mangled beyond recognition: never shown to anyone."""
    for pattern in _LEFTOVER:
        for start, end in reversed([m.span() for m in pattern.finditer(_view(text))]):
            text = text[:start] + text[end:]
    return re.sub(r"[ \t]{2,}", " ", text).strip()


def restore_inline(translated: str, terms: Sequence[str]) -> Outcome:
    """Terms MT was given verbatim: kept if present, respelt back if MT altered them slightly."""
    text, lost, recovered = translated, [], []
    for term in terms:
        folded, view = fold_view(term), fold_view(text)
        if re.search(r"\s*".join(re.escape(c) for c in folded if not c.isspace()), view):
            continue
        best, where = 0.0, (0, 0)
        for length in range(max(1, len(folded) - 2), len(folded) + 3):
            for start in range(0, max(0, len(view) - length) + 1):
                score = similarity(folded, view[start:start + length])
                if score > best:
                    best, where = score, (start, start + length)
        if best >= 0.8:  # inflected or respelt by MT: put the glossary's form back
            text = text[: where[0]] + term + text[where[1]:]
            recovered.append(term)
        else:
            lost.append(term)
    return text, tuple(lost), tuple(recovered)


def append_lost(text: str, lost: Sequence[str], target: str) -> str:
    """A term MT dropped is still shown, in parentheses after the sentence."""
    for term in lost:
        text = f"{text}（{term}）" if target in ("ja", "zh") else f"{text} ({term})".strip()
    return text
