"""When an utterance is close enough to a curated phrase to show the phrase's translation instead.

A wrong fuzzy match at a counter is worse than none: the resident reads a confident, curated
sentence that is not what the clerk said. So similarity alone never decides. Both texts are
normalised (textnorm.py), then compared with an edit distance in which only *light* edits are
allowed at all — edits that cannot change what is asked or stated:

- Japanese: hiragana and ー (particles, okurigana, お/ご, politeness: お名前を書いて/名前を書いて).
  Kanji and katakana never: 転入/転出, 住民票/住民税, 印鑑/課税, カード/コード differ by one.
- Chinese, Korean: a short list of particles and politeness characters (的了呢吧您你请 / 은는을를에요…).
- Thai, Burmese: combining vowel and tone marks (the usual recognition slips), never base letters.
- Spaced languages, word by word: light words (please, the, po, ạ …) may come or go; a content word
  may only be a spelling slip of the same word (same first and last letter, ≥ 5 letters, ≥ 80 %
  similar: adress/address), never another word (new/old, moved/move).

On top, guards that must hold exactly: the same numbers (digits, kanji and number words: 一通 ≠
二通, 300円 ≠ 500円, "tree" ≠ "three"), the same negations (要ります/要りません), and for Japanese
the same question marker (か), tense (…た) and demonstratives (ここ/そこ). Phrases shorter than
``MIN_LENGTH`` match only exactly: in はい/いい or "No"/"Now" one slip is the whole meaning.

Thresholds (score = 1 - weighted edits / longer length): 0.80 for char languages lets a 10-character
Japanese phrase take 2 kana edits and a 20-character one 4; 0.85 for Thai and Burmese, whose
marks are separate code points and so inflate the length; 0.80 for word languages, where a light
word costs 0.25 and a spelling slip its dissimilarity, so a 4-word phrase survives "please" added
twice. ``AMBIGUITY`` rejects a match whose runner-up (another phrase, another translation) is nearly
as close: then the utterance is between two phrases and only MT should judge it.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence
from typing import TypeVar

from madoguchi.mt.langdata import JA_DEIXIS, LIGHT_CHARS, LIGHT_WORDS
from madoguchi.mt.textnorm import CHAR_LANGUAGES, is_question, negations, numbers, words

try:  # the C++ implementation; the pure-Python one below gives the same numbers, only slower
    from rapidfuzz.distance import Levenshtein as _rf_levenshtein
except ImportError:  # pragma: no cover - exercised by a test that hides rapidfuzz
    _rf_levenshtein = None

THRESHOLD = {"ja": 0.80, "zh": 0.80, "ko": 0.80, "th": 0.85, "my": 0.85}
WORD_THRESHOLD = 0.80
MIN_LENGTH = {"ja": 5, "zh": 4, "ko": 4, "th": 8, "my": 8}  # characters (code points)
MIN_WORDS = 3
AMBIGUITY = 0.03
LIGHT_WORD_COST = 0.25
_HEAVY = 1000.0

T = TypeVar("T")


def threshold(lang: str) -> float:
    return THRESHOLD.get(lang, WORD_THRESHOLD)


def _edit_cost(a: Sequence[T], b: Sequence[T], sub: Callable[[T, T], float], indel: Callable[[T], float]) -> float:
    """Weighted Levenshtein distance (two rows; the sequences are a sentence long)."""
    prev = [0.0]
    for y in b:
        prev.append(prev[-1] + indel(y))
    for x in a:
        cost_x = indel(x)
        row = [prev[0] + cost_x]
        for j, y in enumerate(b, 1):
            row.append(min(prev[j - 1] + (0.0 if x == y else sub(x, y)), prev[j] + cost_x, row[j - 1] + indel(y)))
        prev = row
    return prev[-1]


def edit_distance(a: Sequence[T], b: Sequence[T]) -> int:
    """Plain Levenshtein distance between two sequences (of characters, words, morae)."""
    if _rf_levenshtein is not None:
        return int(_rf_levenshtein.distance(a, b))
    return round(_edit_cost(a, b, lambda x, y: 1.0, lambda x: 1.0))


def similarity(a: str, b: str) -> float:
    """Plain normalised Levenshtein similarity, 1 - distance / longer length."""
    if not a and not b:
        return 1.0
    if _rf_levenshtein is not None:
        return float(_rf_levenshtein.normalized_similarity(a, b))
    return 1.0 - _edit_cost(a, b, lambda x, y: 1.0, lambda x: 1.0) / max(len(a), len(b))


def _light_char(ch: str, lang: str) -> bool:
    if lang == "ja":
        return "\u3041" <= ch <= "\u309f" or ch == "ー"
    if lang in ("th", "my"):
        return unicodedata.category(ch) in ("Mn", "Mc")
    return ch in LIGHT_CHARS.get(lang, ())


def _slip(x: str, y: str) -> float:
    """Cost of reading word y for word x: a spelling slip of the same word, or forbidden."""
    if min(len(x), len(y)) >= 5 and x[0] == y[0] and x[-1] == y[-1]:
        sim = similarity(x, y)
        if sim >= 0.8:
            return 1.0 - sim
    return _HEAVY


def _ja_past(normal: str) -> bool:
    return normal.rstrip("か").endswith("た")


_DEIXIS = sorted(((word, group) for group, items in JA_DEIXIS.items() for word in items), key=lambda item: -len(item[0]))


def _deixis(normal: str) -> Counter[str]:
    """Where a text points, by distance; longest words first, so あそこ does not also count as そこ."""
    found: Counter[str] = Counter()
    for word, group in _DEIXIS:
        if word in normal:
            found[group] += normal.count(word)
            normal = normal.replace(word, "\0")
    return found


def guards_hold(a: str, b: str, lang: str) -> bool:
    """What must be identical between two normalised texts however similar they are."""
    if numbers(a, lang) != numbers(b, lang) or negations(a, lang) != negations(b, lang):
        return False
    if lang == "ja":
        if is_question(a, lang) != is_question(b, lang) or _ja_past(a) != _ja_past(b):
            return False
        if _deixis(a) != _deixis(b):
            return False
    return True


def guard_key(normal: str, lang: str) -> tuple[object, ...]:
    """What guards_hold compares, as one value: equal keys iff the guards hold (to compute once per text)."""
    key: tuple[object, ...] = (frozenset(numbers(normal, lang).items()), frozenset(negations(normal, lang).items()))
    if lang == "ja":
        key += (is_question(normal, lang), _ja_past(normal), frozenset(_deixis(normal).items()))
    return key


def guarded_score(query: str, candidate: str, lang: str) -> float | None:
    """Score of a normalised query against a normalised phrase, or None if matching them is unsafe."""
    if not guards_hold(query, candidate, lang):
        return None
    if lang in CHAR_LANGUAGES:
        if min(len(query), len(candidate)) < MIN_LENGTH[lang]:
            return None
        light = {ch: _light_char(ch, lang) for ch in set(query) | set(candidate)}
        cost = _edit_cost(query, candidate, lambda x, y: 1.0 if light[x] and light[y] else _HEAVY, lambda x: 1.0 if light[x] else _HEAVY)
        length = max(len(query), len(candidate))
    else:
        qw, cw = words(query), words(candidate)
        if min(len(qw), len(cw)) < MIN_WORDS:
            return None
        light_words = LIGHT_WORDS.get(lang, frozenset())
        cost = _edit_cost(qw, cw, _slip, lambda w: LIGHT_WORD_COST if w in light_words else _HEAVY)
        length = max(len(qw), len(cw))
    if cost >= _HEAVY:
        return None
    return max(0.0, 1.0 - cost / length)


def prefilter(query: str, choices: Sequence[str], lang: str, cutoff: float, limit: int = 12) -> list[int]:
    """Indexes of the choices worth scoring. For char languages plain similarity bounds the guarded
    score from above (every allowed edit costs at least 1), so the cut loses nothing."""
    floor = cutoff if lang in CHAR_LANGUAGES else min(cutoff, 0.5)
    if _rf_levenshtein is None:  # without the C++ scorer, skip what cannot reach the floor first:
        have = Counter(query)  # an alignment matches at most the characters both share
        choices = [c if sum((have & Counter(c)).values()) >= floor * max(len(query), len(c)) else "" for c in choices]
    scored = [(similarity(query, c), i) for i, c in enumerate(choices) if c]
    return [i for s, i in sorted(scored, reverse=True)[:limit] if s >= floor]
