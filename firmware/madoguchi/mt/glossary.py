"""The site glossary: fixed translations of municipal terms that must come out of MT unchanged.

``protect`` swaps each glossary term in the source for a slot before MT; ``restore`` puts the
target-language term where the slot came out (placeholders.py: the placeholder format, why, and
how damaged ones are recovered). Terms are found longest first without overlaps (マイナンバーカード
before マイナンバー; 住民票の写し is a variant of 住民票), case- and width-insensitively, on word
boundaries in spaced languages (Nepali and Korean attach postpositions, so there only the start
must be a boundary); spaces a recogniser put inside a Japanese, Chinese, Thai or Burmese term
are tolerated.

A term with no text in the target language falls back to its English text (most residents read
some English), else stays as it was said; ``GlossarySlot.target_lang`` says which.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from madoguchi.mt.placeholders import append_lost, placeholder, restore_inline, restore_placeholders
from madoguchi.mt.termfile import Entry, TermFileError, bundled_path, load_entries, merge, parse_document
from madoguchi.mt.textnorm import CHAR_LANGUAGES, fold_view, language_code

log = logging.getLogger(__name__)

BUNDLED = ("glossary", "municipal.json")
STRATEGIES = ("placeholder", "inline")
_BOTH_BOUNDARIES = frozenset({"en", "es", "pt", "tl", "id", "vi"})
_START_BOUNDARY = frozenset({"ne", "ko"})


class GlossaryFileError(TermFileError):
    """A glossary file is invalid (bad JSON, an entry without 'ja', an unknown language, wrong types)."""

    code = "glossary_invalid"


@dataclass(frozen=True)
class GlossarySlot:
    placeholder: str  # what stands in the MT input: QZ<n>X, or the target term itself (inline)
    source_term: str  # as it was said
    target_term: str
    term_id: str = ""
    target_lang: str = ""  # the language of target_term: the target, or "en"/the source when the entry lacks it
    needs_review: bool = True


@dataclass(frozen=True)
class Protected:
    text: str
    slots: tuple[GlossarySlot, ...]
    source: str = ""
    target: str = ""
    strategy: str = "placeholder"


@dataclass(frozen=True)
class Restored:
    text: str
    lost: tuple[str, ...]  # target terms whose placeholder did not survive MT (appended in parentheses)
    recovered: tuple[str, ...] = ()  # target terms found only in a mangled form


class Glossary:
    def __init__(self, entries: Sequence[Entry], problems: Sequence[str] = ()) -> None:
        self._entries = tuple(entries)
        self.problems = tuple(problems)
        self._patterns: dict[str, list[tuple[re.Pattern[str], int]]] = {}

    @classmethod
    def load(cls, paths: Sequence[Path] = (), *, include_bundled: bool = True, strict: bool = True) -> Glossary:
        """The bundled terms overridden by ``paths`` in order; strict=False logs and skips bad files."""
        bundled, _ = load_entries([bundled_path(*BUNDLED)] if include_bundled else [], "term_id", strict=True, error=GlossaryFileError)
        site, problems = load_entries(list(paths), "term_id", strict=strict, error=GlossaryFileError)
        return cls(merge([*bundled, *site]), problems)

    @classmethod
    def from_entries(cls, entries: Sequence[Mapping[str, object]], name: str = "inline") -> Glossary:
        try:
            return cls(merge(parse_document({"entries": list(entries)}, name, "term_id")))
        except TermFileError as err:
            raise GlossaryFileError(err.problems) from err

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def entries(self) -> tuple[Entry, ...]:
        """The terms after overriding, bundled first."""
        return self._entries

    def languages(self) -> frozenset[str]:
        return frozenset(lang for entry in self._entries for lang in entry.renderings)

    def vocabulary(self, lang: str) -> tuple[str, ...]:
        """The terms as written in ``lang``, the site's own files before the bundled ones (Whisper's prompt)."""
        bundled = str(bundled_path(*BUNDLED))
        ordered = sorted(self._entries, key=lambda entry: entry.origin.startswith(bundled))  # stable: file order kept
        return tuple(entry.renderings[lang].text for entry in ordered if lang in entry.renderings)

    def _compiled(self, lang: str) -> list[tuple[re.Pattern[str], int]]:
        if lang not in self._patterns:  # built on first use per language: most boxes see few languages
            patterns = []
            for index, entry in enumerate(self._entries):
                rendering = entry.renderings.get(lang)
                for form in rendering.forms if rendering else ():
                    patterns.append((re.compile(self._regex(fold_view(form), lang)), index))
            self._patterns[lang] = patterns
        return self._patterns[lang]

    @staticmethod
    def _regex(form: str, lang: str) -> str:
        if lang in CHAR_LANGUAGES and lang != "ko":  # recognisers sometimes space out CJK, Thai, Burmese words
            body = r"\s*".join(re.escape(ch) for ch in form if not ch.isspace())
        else:
            body = r"[\s\-]+".join(re.escape(word) for word in form.split())
        if lang == "en":
            body += "(?:s|es)?"  # residence card(s)
        start = r"(?<![\w\u0900-\u097f])" if lang in _BOTH_BOUNDARIES | _START_BOUNDARY else ""
        end = r"(?![\w\u0900-\u097f])" if lang in _BOTH_BOUNDARIES else ""
        return start + body + end

    def _find(self, text: str, lang: str) -> list[tuple[int, int, int]]:
        """(start, end, entry index) of the terms in text: longest first, no overlaps, in text order."""
        view = fold_view(text)
        found = [(m.start(), m.end(), index) for pattern, index in self._compiled(lang) for m in pattern.finditer(view) if m.end() > m.start()]
        found.sort(key=lambda f: (f[0] - f[1], f[0]))
        taken: list[tuple[int, int, int]] = []
        for start, end, index in found:
            if all(end <= s or start >= e for s, e, _ in taken):
                taken.append((start, end, index))
        return sorted(taken)

    def terms_in(self, text: str, source: str) -> tuple[str, ...]:
        """The glossary terms in text, as the glossary spells them in ``source``, in order, each once."""
        lang = language_code(source)
        if lang is None:
            return ()
        names = [self._entries[index].renderings[lang].text for _, _, index in self._find(text, lang)]
        return tuple(dict.fromkeys(names))

    def _target(self, entry: Entry, surface: str, source: str, target: str) -> tuple[str, str, bool]:
        for lang in (target, "en"):
            if lang in entry.renderings and lang != source:
                rendering = entry.renderings[lang]
                return rendering.text, lang, rendering.needs_review
        return surface, source, False

    def protect(self, text: str, source: str, target: str, *, strategy: str = "placeholder") -> Protected:
        """Text for MT with each glossary term replaced by a slot that ``restore`` fills back in."""
        if strategy not in STRATEGIES:
            raise ValueError(f"strategy {strategy!r}; allowed: {', '.join(STRATEGIES)}")
        src, tgt = language_code(source), language_code(target)
        if src is None or tgt is None or src == tgt:
            return Protected(text, (), source, target, strategy)
        pieces: list[str] = []
        slots: list[GlossarySlot] = []
        last = 0
        for start, end, index in self._find(text, src):
            entry = self._entries[index]
            surface = text[start:end]
            term, lang, review = self._target(entry, surface, src, tgt)
            holder = placeholder(len(slots) + 1) if strategy == "placeholder" else term
            pieces += [text[last:start], holder]
            slots.append(GlossarySlot(holder, surface, term, entry.key, lang, review))
            last = end
        pieces.append(text[last:])
        if slots:
            log.debug("protected %d glossary term(s) for %s→%s", len(slots), src, tgt)
        return Protected("".join(pieces), tuple(slots), src, tgt, strategy)

    def restore(self, translated: str, protected: Protected) -> Restored:
        """MT output with every slot filled by its target term; lost slots appended in parentheses."""
        if not protected.slots:
            return Restored(translated, ())
        joined = protected.target in CHAR_LANGUAGES and protected.target != "ko"
        if protected.strategy == "inline":
            text, lost, recovered = restore_inline(translated, [s.target_term for s in protected.slots])
        else:
            text, lost, recovered = restore_placeholders(translated, [s.target_term for s in protected.slots], joined)
        text = append_lost(text, lost, protected.target)
        if lost:
            log.warning("MT dropped %d glossary term(s) (%s→%s); appended them", len(lost), protected.source, protected.target)
        return Restored(text, lost, recovered)

    def missing_terms(self, source_text: str, translated: str, source: str, target: str) -> tuple[str, ...]:
        """Target terms the source calls for that a translation (phrasebook or MT) does not contain."""
        wanted = self.protect(source_text, source, target).slots
        view = fold_view(translated)
        return tuple(dict.fromkeys(s.target_term for s in wanted if fold_view(s.target_term) not in view))


