"""The counter phrasebook: the most frequent sentences, translated by people, matched before MT.

Lookup order for an utterance in language ``source``:
1. exact: its normal form (textnorm.normalise) equals a phrase's text or variant in ``source``;
2. exact in another language: speech recognition's language ID is unreliable on short utterances
   ("Thank you" tagged as Tagalog); the phrase is then matched in the language it is really in;
3. fuzzy, in ``source`` only, under the guards in fuzzy.py;
4. for Japanese, by reading (reading.py): Whisper's homophone slips (店入届け for 転入届) sound like
   the phrase. The same guards hold (numbers, negation, か, tense, demonstratives, on the writing),
   and the score is lower (×0.95) than a writing match. Sound never settles a choice: not when the
   writing stage found two phrases equally close, and not when the sound fits two phrases with
   different translations at all (not just nearly as well). So homophones in the book (保険/保健,
   市長/市庁: the same reading, different meanings) are never matched by reading where their
   translations differ (or one has none): the sound cannot tell which the clerk meant, MT gets it.
   Load logs such pairs at INFO, for curators.

Bundled phrases (data/phrasebook/counter.json) come first; site files (``<state_dir>/phrasebooks``)
override them (termfile.py). Translations carry a per-language review mark: ``needs_review`` is
true until a native speaker has checked that language.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from madoguchi.errors import MadoguchiError
from madoguchi.mt import fuzzy, reading
from madoguchi.mt.termfile import Entry, TermFileError, bundled_path, load_entries, merge, parse_document
from madoguchi.mt.textnorm import LANGUAGES, STAFF_LANGUAGE, language_code, normalise

log = logging.getLogger(__name__)

BUNDLED = ("phrasebook", "counter.json")


class PhrasebookFileError(TermFileError):
    """A phrasebook file is invalid (bad JSON, an entry without 'ja', an unknown language, wrong types)."""

    code = "phrasebook_invalid"


class PhraseLookupError(MadoguchiError, ValueError):
    """A lookup was called with a malformed argument (a score bound outside (0, 1])."""

    code = "phrase_lookup_invalid"


@dataclass(frozen=True)
class PhraseMatch:
    phrase_id: str
    source_text: str  # the phrase as curated, in the language that matched
    translation: str
    score: float  # 1.0 for exact matches
    exact: bool
    needs_review: bool  # the translation has not been checked by a native speaker
    source_lang: str = ""  # the language the utterance matched in (differs from the asked source after a language-ID slip)


@dataclass(frozen=True)
class _Sound:
    """A Japanese form's reading, precomputed at load."""

    reading: reading.Reading
    index: int
    heavy: frozenset[str]  # its morae that need an identical mora in the utterance
    guards: tuple[object, ...]  # fuzzy.guard_key: numbers, negation, か, tense, demonstratives


class Phrasebook:
    def __init__(self, entries: Sequence[Entry], problems: Sequence[str] = ()) -> None:
        self._entries = tuple(entries)
        self.problems = tuple(problems)  # bad files skipped by load(strict=False)
        self._exact: dict[str, dict[str, int]] = {lang: {} for lang in LANGUAGES}
        self._forms: dict[str, list[tuple[str, int]]] = {lang: [] for lang in LANGUAGES}
        for index, entry in enumerate(self._entries):
            for lang, rendering in entry.renderings.items():
                for form in rendering.forms:
                    normal = normalise(form, lang)
                    if not normal:
                        continue
                    self._exact[lang][normal] = index  # a later (site) phrase wins a tie
                    self._forms[lang].append((normal, index))
        self._sounds, self._homophones = self._read_forms()
        log.debug("phrasebook: %d phrases in %s", len(self._entries), ", ".join(sorted(self.languages())))

    @classmethod
    def load(cls, paths: Sequence[Path] = (), *, include_bundled: bool = True, strict: bool = True) -> Phrasebook:
        """The bundled phrases overridden by ``paths`` in order. strict=False logs and skips bad files
        (the daemon must keep running on a bad pushed file); their problems stay in ``problems``."""
        bundled, _ = load_entries([bundled_path(*BUNDLED)] if include_bundled else [], "phrase_id", strict=True, error=PhrasebookFileError)
        site, problems = load_entries(list(paths), "phrase_id", strict=strict, error=PhrasebookFileError)
        return cls(merge([*bundled, *site]), problems)

    @classmethod
    def from_entries(cls, entries: Sequence[Mapping[str, object]], name: str = "inline") -> Phrasebook:
        try:
            return cls(merge(parse_document({"entries": list(entries)}, name, "phrase_id")))
        except TermFileError as err:
            raise PhrasebookFileError(err.problems) from err

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def entries(self) -> tuple[Entry, ...]:
        """The phrases after overriding, bundled first."""
        return self._entries

    def phrase(self, phrase_id: str) -> Entry | None:
        return next((e for e in self._entries if e.key == phrase_id), None)

    def languages(self) -> frozenset[str]:
        return frozenset(lang for entry in self._entries for lang in entry.renderings)

    def lookup(self, text: str, source: str, target: str, *, min_score: float | None = None) -> PhraseMatch | None:
        """The curated translation of ``text`` from ``source`` to ``target``, or None (then use MT)."""
        if min_score is not None and not 0.0 < min_score <= 1.0:
            raise PhraseLookupError(f"min_score must be in (0, 1], got {min_score!r}")
        src, tgt = language_code(source), language_code(target)
        if src is None or tgt is None or src == tgt or not text or not text.strip():
            return None
        normal = normalise(text, src)
        if not normal:
            return None
        found = self._exact[src].get(normal)
        if found is not None:
            return self._match(found, 1.0, src, tgt, exact=True)
        for lang in LANGUAGES:  # a language-ID slip: the words are another language's phrase, verbatim
            if lang not in (src, tgt) and (found := self._exact[lang].get(normalise(text, lang))) is not None:
                log.debug("phrase %s matched as %s although tagged %s", self._entries[found].key, lang, src)
                return self._match(found, 1.0, lang, tgt, exact=True)
        cutoff = fuzzy.threshold(src) if min_score is None else min_score
        scores = self._fuzzy(normal, src, tgt, cutoff)
        if (picked := self._pick(scores, tgt, normal)) is not None:
            return self._match(*picked, src, tgt, exact=False)
        if src != STAFF_LANGUAGE or scores:  # scores but no pick: ambiguous, and sound will not settle it
            return None
        return self._by_reading(normal, tgt, cutoff)

    def _match(self, index: int, score: float, src: str, tgt: str, *, exact: bool) -> PhraseMatch | None:
        entry = self._entries[index]
        if tgt not in entry.renderings or src not in entry.renderings:
            return None
        target = entry.renderings[tgt]
        return PhraseMatch(entry.key, entry.renderings[src].text, target.text, round(score, 4), exact, target.needs_review, src)

    def _fuzzy(self, normal: str, src: str, tgt: str, cutoff: float) -> dict[int, float]:
        """Best writing score per phrase, of those at or above the cutoff."""
        forms = [(form, index) for form, index in self._forms[src] if tgt in self._entries[index].renderings]
        best: dict[int, float] = {}
        for i in fuzzy.prefilter(normal, [form for form, _ in forms], src, cutoff):
            form, index = forms[i]
            score = fuzzy.guarded_score(normal, form, src)
            if score is not None and score >= cutoff and score > best.get(index, -1.0):
                best[index] = score
        return best

    def _pick(self, best: dict[int, float], tgt: str, normal: str, margin: float = fuzzy.AMBIGUITY) -> tuple[int, float] | None:
        """The best phrase, unless another with another translation is within ``margin`` (then only MT should judge)."""
        if not best:
            return None
        ranked = sorted(best.items(), key=lambda item: item[1], reverse=True)
        top, score = ranked[0]
        translation = self._entries[top].renderings[tgt].text
        for other, other_score in ranked[1:]:
            if other_score >= score - margin and self._entries[other].renderings[tgt].text != translation:
                log.debug("ambiguous: %r is as close to %s as to %s", normal, self._entries[other].key, self._entries[top].key)
                return None
        return top, score

    def _read_forms(self) -> tuple[tuple[_Sound, ...], dict[int, frozenset[int]]]:
        """Readings of the Japanese forms long enough to match by sound, and which phrases sound alike."""
        forms = self._forms[STAFF_LANGUAGE]
        if not forms or not reading.available():
            return (), {}
        sounds, by_kana = [], {}
        for normal, index in forms:
            read = reading.read(normal)
            if read is not None and len(read.morae) >= reading.MIN_MORAE:
                sounds.append(_Sound(read, index, read.heavy(), fuzzy.guard_key(normal, STAFF_LANGUAGE)))
                by_kana.setdefault(read.kana(), set()).add(index)
        homophones: dict[int, set[int]] = {}
        for kana, indexes in by_kana.items():
            if len(indexes) > 1:
                log.info("phrases %s sound alike (%s): never matched by reading where their translations differ",
                         ", ".join(sorted(self._entries[i].key for i in indexes)), kana)
                for i in indexes:
                    homophones.setdefault(i, set()).update(indexes - {i})
        return tuple(sounds), {i: frozenset(others) for i, others in homophones.items()}

    def _by_reading(self, normal: str, tgt: str, cutoff: float) -> PhraseMatch | None:
        query = reading.read(normal, alternatives=True) if self._sounds and cutoff <= reading.WEIGHT else None
        if query is None:
            return None
        units, (shortest, longest), guards = query.units(), query.span(), fuzzy.guard_key(normal, STAFF_LANGUAGE)
        best: dict[int, float] = {}
        for sound in self._sounds:
            if tgt not in self._entries[sound.index].renderings or not sound.heavy <= units or sound.guards != guards:
                continue
            length = len(sound.reading.morae)
            budget = length * (1.0 - cutoff / reading.WEIGHT) + 1e-9  # the most cost that still scores >= cutoff
            if max(shortest - length, length - longest) > budget:
                continue
            cost = reading.cost(query, sound.reading, budget)
            if cost is not None and (score := reading.WEIGHT * (1.0 - cost / length)) > best.get(sound.index, -1.0):
                best[sound.index] = score
        picked = self._pick(best, tgt, normal, margin=1.0)  # a sound that fits two phrases settles neither
        if picked is None:
            return None
        translation = self._entries[picked[0]].renderings[tgt].text
        for other in self._homophones.get(picked[0], ()):
            rendering = self._entries[other].renderings.get(tgt)
            if rendering is None or rendering.text != translation:
                log.debug("homophones: %r sounds like %s and %s", normal, self._entries[picked[0]].key, self._entries[other].key)
                return None
        return self._match(*picked, STAFF_LANGUAGE, tgt, exact=False)
