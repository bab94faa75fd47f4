"""The site's terms where Whisper heard them but wrote a homophone: written as the glossary writes them.

Whisper base hears a clerk's 児童手当 and writes 自動手当て; 在留カード comes out 材流カード,
手数料 手数量, 国民健康保険 国民健康保健, 印鑑登録 委員官登録 (one mora too many). The clerk's
screen then shows words that are not the term, and MT, finding no glossary term to hold, translates
what they say ("automatic allowance"). Read aloud they are the term, so before anything shows or
translates them, a run of whole words (the tagger's, reading.py) that sounds like a glossary form
is written as that form.

A correct sentence must never change, so the rules are narrow:

- Only the glossary's own forms (the site's vocabulary, not the language's), of ``MIN_MORAE`` (5)
  morae or more: short words are where homophones crowd (保険/保健, 市長/市庁, 自動/児童).
- The same reading (a drawn-out vowel however it is spelled): 自動手当て → 児童手当, 転入届け → 転入届.
- One beat more or less (a drawn-out vowel, a small ッ or ン, never first or last) only for forms
  of ``ONE_EDIT_MIN_MORAE`` (8) or more, and words only (no punctuation inside): 委員官登録
  (イーンカン) → 印鑑登録 (インカン). A swapped mora is another word (住民税/住民票, 引判/印鑑), and
  a particle at either end is not a slip of the term (国民健康保険の stays).
- One entry's form only: words that read as two terms, or are one beat from a term and within
  two edits of another, are left as they are (住民表 reads 住民票 and is one mora from 住民税:
  住民票; 転入届/転出届/転居届 differ by two morae or more and stay apart).
- Words already written as one of the entry's forms stay as they are, and so do words that
  contain another entry's form as written.

Checked on 1,594 Japanese texts (Whisper's decodes in the attribution benchmark's three scene
sets, the tests' data, the phrasebook, the article the project grew from): every change was to
the term the clerk said (README "Measured").

Without a reader (fugashi, unidic-lite) nothing is respelled.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from madoguchi.mt import reading
from madoguchi.mt.fuzzy import edit_distance

log = logging.getLogger(__name__)

MIN_MORAE = 5
ONE_EDIT_MIN_MORAE = 8
_BEATS = frozenset("ーッン")  # morae that only lengthen the one before them
MAX_WORDS = 6  # the most tagger words one heard term spans (材|流|カード, 委員|官|登録)
MAX_READINGS = 16  # ways of reading those words tried (a lone kanji has several: 療 リョー, 店 テン)


@dataclass(frozen=True)
class Respelling:
    heard: str  # the words as Whisper wrote them
    term: str  # the glossary's form they were written as
    edits: int  # morae apart (0: the same reading)


@dataclass(frozen=True)
class _Form:
    text: str
    morae: tuple[str, ...]
    entry: int


class SoundAlikeTerms:
    """One language's glossary forms, by sound; ``entries`` holds each entry's forms."""

    def __init__(self, entries: Iterable[Sequence[str]]) -> None:
        self._entries = [tuple(forms) for forms in entries]
        self._forms: list[_Form] | None = None  # read on first use: the tagger loads then

    def _read_forms(self) -> list[_Form]:
        if self._forms is None:
            forms = []
            for index, texts in enumerate(self._entries):
                for text in texts:
                    parsed = reading.words(text)
                    morae = tuple(m for _, readings in parsed or () for m in readings[0])  # as the site writes it
                    if len(morae) >= MIN_MORAE:
                        forms.append(_Form(text, morae, index))
            self._forms = forms
        return self._forms

    def respell(self, text: str) -> tuple[str, tuple[Respelling, ...]]:
        """``text`` with each run of words that sounds like a form written as that form, and what changed."""
        parsed = reading.words(text) if text else None
        forms = self._read_forms() if parsed else []
        if not forms:
            return text, ()
        assert parsed is not None
        tagged = "".join(surface for surface, _ in parsed)
        if not text.startswith(tagged):
            return text, ()  # the tagger dropped something inside: better as heard than a character lost
        rest = text[len(tagged):]  # the tagger leaves trailing spaces out
        out: list[str] = []
        changes: list[Respelling] = []
        i = 0
        while i < len(parsed):
            found = self._best(parsed, i, forms)
            if found is None:
                out.append(parsed[i][0])
                i += 1
                continue
            stop, form, edits = found
            written = "".join(surface for surface, _ in parsed[i:stop])
            space = written[: len(written) - len(written.lstrip())]
            out.append(space + form.text)
            changes.append(Respelling(written.strip(), form.text, edits))
            i = stop
        if changes:
            log.debug("wrote %s as the glossary writes them (same sound)", ", ".join(f"{c.heard} as {c.term}" for c in changes))
        return "".join(out) + rest, tuple(changes)

    def _best(self, parsed: Sequence[tuple[str, tuple[tuple[str, ...], ...]]], first: int, forms: Sequence[_Form]) -> tuple[int, _Form, int] | None:
        """The closest form the words from ``first`` sound like: (after the last word, form, edits)."""
        best: tuple[int, int, _Form] | None = None  # (edits, after the last word, form)
        heard: list[tuple[str, ...]] = [()]  # the ways the words so far can be read
        for stop in range(first + 1, min(len(parsed), first + MAX_WORDS) + 1):
            heard = [before + way for before in heard for way in parsed[stop - 1][1]][:MAX_READINGS]
            written = "".join(surface for surface, _ in parsed[first:stop]).strip()
            words_only = all(surface.strip().isalnum() for surface, _ in parsed[first:stop])
            for form in forms:
                edits = min((e for morae in heard if (e := _edits(morae, form.morae)) is not None), default=None)
                if edits is None or (edits and not (len(form.morae) >= ONE_EDIT_MIN_MORAE and words_only)):
                    continue
                if written in self._entries[form.entry]:
                    continue  # already the term, as the site writes it or as a variant
                if any(other.entry != form.entry and other.text in written for other in forms):
                    continue  # another of the site's terms, as written (住民税の映し is not 住民票の写し)
                if best is not None and (best[0], -best[1]) <= (edits, -stop):
                    continue  # as close already, over as many words or more
                if any(other.entry != form.entry and edit_distance(morae, other.morae) <= 2 * edits for morae in heard for other in forms):
                    continue  # sounds as much (a blurred beat: nearly as much) like another term: not ours to choose
                best = (edits, stop, form)
        return None if best is None else (best[1], best[2], best[0])


def _edits(heard: tuple[str, ...], term: tuple[str, ...]) -> int | None:
    """0: the term's reading; 1: one beat apart (``_one_beat_apart``); None: another word."""
    return 0 if heard == term else 1 if _one_beat_apart(heard, term) else None


def _one_beat_apart(a: Sequence[str], b: Sequence[str]) -> bool:
    """One of them has one more drawn-out vowel, small ッ or ン inside it than the other, and is
    otherwise the same: the beats a reverberant room blurs (委員官登録 イーンカン for 印鑑登録 インカン)."""
    longer, shorter = (a, b) if len(a) > len(b) else (b, a)
    if len(longer) != len(shorter) + 1:
        return False
    return any(longer[k] in _BEATS and longer[:k] + longer[k + 1 :] == shorter for k in range(1, len(longer) - 1))

