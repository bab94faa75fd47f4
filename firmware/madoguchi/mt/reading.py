"""How Japanese text sounds: its reading in katakana morae, for matching Whisper's homophone slips.

Whisper hears the clerk right but often writes the wrong kanji for what it heard (店入届け for
転入届, 住民表の映し for 住民票の写し, 手数量 for 手数料). Compared by writing these are other words;
compared by sound they are the phrase. This module reads text with MeCab (fugashi) and UniDic
(unidic-lite); the phrasebook compares readings with ``cost`` below.

Readings: UniDic's pronunciation of words in kanji, words in kana as written (the tagger misreads
odd kana spellings); then a drawn-out vowel is written ー however it was spelled (ジュウ, じゅう,
ジュー; セイ, セー), within a word. Numbers stay one opaque unit ("300"): an amount is never
matched by sound, only by value (the phrasebook's number guard), so 10人票 (じゅうにんひょう, heard
for 住民票) stays unmatched. A kanji the tagger left on its own (店 in 店入: no such word) may also
be read with any of its Sino-Japanese readings (clipped ones too: 発 ハッ as in 発行), since that is
how Whisper picked it: by sound, inside what it took for a compound.

Which edits ``cost`` forgives: the ones the writing stage forgives (fuzzy.py), i.e. morae of text
written in hiragana (particles, endings, お/ご). A mora from kanji or katakana never: one mora turns
お掛け into お書き, 聞いて into 書いて, 10人 into 住民; and small against large kana (びょういん/
びよういん, きって/きて) is as much a different word.

Thresholds (used by the phrasebook): a reading match scores ``WEIGHT`` (0.95) times 1 - cost /
phrase morae, so it is never taken for an exact match, and it must still reach the usual cutoff
(0.80): a 10-mora phrase takes one hiragana edit, a 20-mora one three — stricter than the writing
stage, because the kanji themselves were already forgiven. Phrases under ``MIN_MORAE`` (6) morae
never match by reading: short words are where homophones crowd (市長/市庁, 保険/保健, 橋/箸).

Without fugashi or unidic-lite reading is simply off (logged once at INFO): phrases then match by
writing only.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NamedTuple

from madoguchi.mt.textnorm import normalise

log = logging.getLogger(__name__)

WEIGHT = 0.95
MIN_MORAE = 6
HEAVY = 1000.0  # the cost of an edit that is never allowed
_SMALL = frozenset("ァィゥェォャュョヮ")  # belong to the mora before them (キョ is one mora)
_ROWS = {"a": "アカガサザタダナハバパマヤラワァャヮ", "i": "イキギシジチヂニヒビピミリィ", "u": "ウクグスズツヅヌフブプムユルゥュヴ",
         "e": "エケゲセゼテデネヘベペメレェ", "o": "オコゴソゾトドノホボポモヨロヲォョ"}
_VOWEL = {ch: vowel for vowel, chars in _ROWS.items() for ch in chars}
_LONG = {"a": "ア", "i": "イ", "u": "ウ", "e": "イエ", "o": "ウオ"}  # what draws each vowel out (セイ, トウ, トオ)
_SINO = frozenset({"漢", "記号"})  # UniDic word origins of a lone kanji's on-readings (入/ニュー is 記号)


@dataclass(frozen=True)
class Segment:
    """One word of a text: its ways of being read (the tagger's first) and whether it is in hiragana."""

    readings: tuple[tuple[str, ...], ...]
    light: bool


@dataclass(frozen=True)
class Reading:
    segments: tuple[Segment, ...]

    @property
    def morae(self) -> tuple[str, ...]:
        """The tagger's reading, mora by mora."""
        return tuple(m for s in self.segments for m in s.readings[0])

    @property
    def light(self) -> tuple[bool, ...]:
        return tuple(s.light for s in self.segments for _ in s.readings[0])

    def heavy(self) -> frozenset[str]:
        """The morae that only an identical mora can match (not from hiragana)."""
        return frozenset(m for s in self.segments if not s.light for m in s.readings[0])

    def units(self) -> frozenset[str]:
        """Every mora any reading of the text has (for a cheap first cut)."""
        return frozenset(m for s in self.segments for r in s.readings for m in r)

    def span(self) -> tuple[int, int]:
        """The fewest and the most morae a reading of the text can have."""
        return (sum(min(len(r) for r in s.readings) for s in self.segments), sum(max(len(r) for r in s.readings) for s in self.segments))

    def kana(self) -> str:
        return "".join(self.morae)


class _State:
    """The taggers, loaded once on first use (``loaded`` also when they cannot be: tried once)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()  # one MeCab lattice per tagger: one caller at a time
        self.loaded = False
        self.tagger: Any = None
        self.all_morphs: Any = None  # "-a": every dictionary word at every position, for a lone kanji's readings
        self.sino: dict[str, tuple[str, ...]] = {}

    def load(self) -> bool:
        if not self.loaded:
            self.loaded = True
            try:
                import fugashi

                self.tagger, self.all_morphs = fugashi.Tagger(), fugashi.Tagger("-a")
            except (ImportError, RuntimeError) as err:  # RuntimeError: fugashi without a dictionary
                log.info("Japanese phrases match by writing only: no reader (%s; install fugashi and unidic-lite)", err)
                self.tagger = None
        return self.tagger is not None


_STATE = _State()


def available() -> bool:
    with _STATE.lock:
        return _STATE.load()


@contextmanager
def tagger() -> Iterator[Any]:
    """The shared fugashi tagger (None without one), held under the lock for the caller's block.

    Its nodes live in the tagger's lattice, which the next parse overwrites: copy what you need
    out of them inside the block (easy Japanese uses this; loading twice would cost ~50 MB).
    """
    with _STATE.lock:
        yield _STATE.tagger if _STATE.load() else None


def _katakana(text: str) -> str:
    return "".join(chr(ord(ch) + 0x60) if "\u3041" <= ch <= "\u3096" else ch for ch in text)


def _vowel(mora: str) -> str:
    return _VOWEL.get(mora[-1], "")


def _morae(kana: str) -> tuple[str, ...]:
    """Morae of one word's katakana reading, a drawn-out vowel as ー (as UniDic's pronunciations write it)."""
    out: list[str] = []
    for ch in kana:
        if ch in _SMALL and out:
            out[-1] += ch
        elif out and ch in _LONG.get(_vowel(out[-1]), ""):
            out.append("ー")
        else:
            out.append(ch)
    return tuple(out)


def _hiragana(surface: str) -> bool:
    return all("\u3041" <= ch <= "\u309f" or ch == "ー" for ch in surface)


def _is_kanji(ch: str) -> bool:
    return "\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf"


def _kana_only(surface: str) -> bool:
    return all("\u3041" <= ch <= "\u30fc" and ch not in "ヵヶ" for ch in surface)  # 3ヶ月: ヶ reads カ


def _pron(node: Any) -> str:
    """A word's pronunciation; words written in kana as written (the tagger reads a stray ゃ as ヤ)."""
    pron = getattr(node.feature, "pron", None)
    return _katakana(node.surface) if _kana_only(node.surface) or not pron or pron == "*" else pron


def _sino(ch: str) -> tuple[str, ...]:
    """The Sino-Japanese readings of one kanji (caller holds the lock)."""
    found = _STATE.sino.get(ch)
    if found is None:
        nodes = _STATE.all_morphs.parseToNodeList(ch)
        readings = [_pron(n) for n in nodes if n.surface == ch and getattr(n.feature, "goshu", None) in _SINO]
        # inside a compound ハツ, ガク, イチ, テキ are clipped before the next kanji (発行 ハッコー)
        found = tuple(dict.fromkeys([*readings, *(r[:-1] + "ッ" for r in readings if len(r) > 1 and r[-1] in "ツチクキ")]))
        _STATE.sino[ch] = found
    return found


def read(normal: str, *, alternatives: bool = False) -> Reading | None:
    """The reading of a normalised text (textnorm.normalise), or None when there is no reader.

    alternatives: also the Sino-Japanese readings of kanji the tagger left on their own (for
    what Whisper wrote; curated phrases are read as written).
    """
    with _STATE.lock:
        if not _STATE.load() or not normal:
            return None
        parsed = _parse(normal, alternatives)
    return Reading(tuple(Segment(tuple(dict.fromkeys(_unit(r) for r in word.readings)), word.light) for word in parsed))


def words(text: str) -> tuple[tuple[str, tuple[tuple[str, ...], ...]], ...] | None:
    """Each word of ``text`` as written, with the space before it, and its readings in morae (the
    tagger's first, then a lone kanji's Sino-Japanese ones); None when there is no reader. Joined
    in order the written words are the text, but for spaces at its end."""
    with _STATE.lock:
        if not _STATE.load():
            return None
        parsed = _parse(text, alternatives=True)
    return tuple((word.space + word.surface, tuple(dict.fromkeys(_unit(r) for r in word.readings))) for word in parsed)


class _Word(NamedTuple):
    space: str  # what the tagger skipped before it
    surface: str
    readings: list[str]  # katakana, the tagger's first
    light: bool  # in hiragana


def _parse(text: str, alternatives: bool) -> list[_Word]:
    """The tagger's words (caller holds the lock)."""
    parsed: list[_Word] = []
    for node in _STATE.tagger.parseToNodeList(text):
        surface = node.surface
        if not surface:
            continue
        if surface.isdecimal():  # an amount or a count: one unit, compared by value
            parsed.append(_Word(node.white_space, surface, [surface], False))
            continue
        readings = [_pron(node)]
        if parsed and readings[0][:1] in _SMALL and len(parsed[-1].readings) == 1 and not parsed[-1].readings[0].isdecimal():
            last = parsed.pop()  # odd kana spellings split a mora (ひ|ょー): join it again
            parsed.append(_Word(last.space, last.surface + node.white_space + surface, [last.readings[0] + readings[0]], last.light and _hiragana(surface)))
            continue
        if alternatives and len(surface) == 1 and _is_kanji(surface):
            readings += _sino(surface)
        parsed.append(_Word(node.white_space, surface, readings, _hiragana(surface)))
    return parsed


def _unit(reading: str) -> tuple[str, ...]:
    return (reading,) if reading.isdecimal() else _morae(reading)


def kana(text: str) -> str | None:
    """A text's reading in katakana, numbers as digits ("手数料は三百円です" → "テスーリョーハ300エンデス")."""
    reading = read(normalise(text, "ja"))
    return None if reading is None else reading.kana()


def cost(query: Reading, phrase: Reading, budget: float) -> float | None:
    """Weighted edit cost from any reading of ``query`` to ``phrase``'s, or None when above ``budget``.

    Hiragana morae may be inserted, dropped or swapped for one another at cost 1; every other mora
    must be matched exactly. The query's words are a sequence of alternatives, so each word's
    readings are aligned from the same row and the cheapest kept (a lattice against a string).
    """
    target, light = phrase.morae, phrase.light
    row = [0.0]
    for is_light in light:
        row.append(row[-1] + (1.0 if is_light else HEAVY))
    for segment in query.segments:
        ins = 1.0 if segment.light else HEAVY
        best = [HEAVY * 2] * len(row)
        for alternative in segment.readings:
            cur = row
            for unit in alternative:
                nxt = [cur[0] + ins]
                for j, (other, other_light) in enumerate(zip(target, light), 1):
                    sub = 0.0 if unit == other else (1.0 if segment.light and other_light else HEAVY)
                    nxt.append(min(cur[j - 1] + sub, cur[j] + ins, nxt[j - 1] + (1.0 if other_light else HEAVY)))
                cur = nxt
            best = [min(a, b) for a, b in zip(best, cur)]
        row = best
        if min(row) > budget:  # costs only grow from here
            return None
    return row[-1] if row[-1] <= budget else None


