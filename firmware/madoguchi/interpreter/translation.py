"""Text in one language to the other side's: phrasebook first, then glossary-protected MT.

A curated phrase is instant and right, so the whole text and then each sentence is looked up
first. Sentences the phrasebook does not know go to machine translation with the site's
glossary terms held in placeholders, so "住民票" is always the site's "residence certificate".
With no model for the pair, the known sentences are still shown and the rest is counted as
untranslated: a partial answer at a counter beats none.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from madoguchi.config import Settings
from madoguchi.events import Translation
from madoguchi.mt.glossary import Glossary
from madoguchi.mt.phrasebook import Phrasebook
from madoguchi.mt.router import MachineTranslation
from madoguchi.mt.sentences import join_clauses, join_sentences, split_clauses, split_sentences
from madoguchi.mt.soundalike import SoundAlikeTerms
from madoguchi.mt.termfile import pushed_files

log = logging.getLogger(__name__)

UNTRANSLATED_MARK = "…"  # stands for a sentence neither the phrasebook nor a model could translate


@dataclass(frozen=True)
class _Piece:
    text: str | None
    method: str
    needs_review: bool = False
    route: tuple[str, ...] = ()
    terms: tuple[str, ...] = ()


class TranslationStage:
    """Blocking; the pipeline calls it from its worker thread."""

    def __init__(self, phrasebook: Phrasebook | None, glossary: Glossary | None, mt: MachineTranslation | None) -> None:
        self.phrasebook = phrasebook
        self.glossary = glossary
        self.mt = mt
        self._japanese_terms: SoundAlikeTerms | None = None  # built on first use

    @classmethod
    def from_settings(cls, settings: Settings, model_root: Path | None = None) -> TranslationStage:
        """Bundled phrasebook and glossary plus the ones the fleet pushed; MT models from the store."""
        state = Path(settings.paths.state_dir)
        # A bad pushed file is logged and skipped (strict=False): the counter keeps working.
        phrasebook = Phrasebook.load(pushed_files(state, "phrasebooks"), strict=False) if settings.mt.phrasebook else None
        glossary = site_glossary(settings)
        mt = None
        if settings.mt.models:
            mt = MachineTranslation.from_store(settings.mt.models, threads=settings.mt.threads, beam_size=settings.mt.beam_size, pivot=settings.mt.pivot, root=model_root)
        return cls(phrasebook, glossary, mt)

    def close(self) -> None:
        if self.mt is not None:
            self.mt.close()

    def as_the_site_writes(self, text: str, lang: str) -> str:
        """Words heard in ``lang`` with the glossary's terms written as the glossary writes them where
        Whisper wrote a homophone (mt/soundalike.py: Japanese, which has a reader)."""
        if self.glossary is None or lang != "ja" or not text:
            return text
        if self._japanese_terms is None:
            self._japanese_terms = SoundAlikeTerms(entry.renderings["ja"].forms for entry in self.glossary.entries if "ja" in entry.renderings)
        return self._japanese_terms.respell(text)[0]

    def can_machine_translate(self, source: str, target: str) -> bool:
        return self.mt is not None and self.mt.can_translate(source, target)

    def translate(self, text: str, source: str, target: str) -> Translation:
        if source == target:
            return Translation(text, source, target, "same_language")
        whole = self._phrase(text, source, target)
        pieces = [whole] if whole is not None else [self._sentence(s, source, target) for s in split_sentences(text)]
        return _combine(pieces, source, target)

    def _clauses(self, sentence: str, source: str, target: str) -> _Piece | None:
        """A sentence made of curated phrases joined by commas ("Hello, I need to register my new
        address."): each clause from the phrasebook, or None unless every one of them is there."""
        clauses = split_clauses(sentence)
        if len(clauses) < 2:
            return None
        found = [self._phrase(c, source, target) for c in clauses]
        if any(p is None for p in found):
            return None
        return _Piece(join_clauses([p.text for p in found], target), "phrasebook", any(p.needs_review for p in found))

    def _phrase(self, text: str, source: str, target: str) -> _Piece | None:
        if self.phrasebook is None:
            return None
        match = self.phrasebook.lookup(text, source, target)
        return _Piece(match.translation, "phrasebook", match.needs_review) if match is not None else None

    def _sentence(self, sentence: str, source: str, target: str) -> _Piece:
        phrase = self._phrase(sentence, source, target) or self._clauses(sentence, source, target)
        if phrase is not None:
            return phrase
        if not self.can_machine_translate(source, target):
            return _Piece(None, "unavailable")
        assert self.mt is not None
        if self.glossary is None:
            result = self.mt.translate(sentence, source, target)
            return _Piece(result.text, "mt", route=result.route)
        protected = self.glossary.protect(sentence, source, target)
        result = self.mt.translate(protected.text, source, target)
        restored = self.glossary.restore(result.text, protected)
        if restored.lost:
            log.warning("MT dropped glossary placeholders for %s; appended the terms instead", ", ".join(restored.lost))
        return _Piece(restored.text, "mt", route=result.route, terms=tuple(slot.target_term for slot in protected.slots))


def _combine(pieces: Sequence[_Piece], source: str, target: str) -> Translation:
    done = [p for p in pieces if p.text]
    if not done:
        return Translation(None, source, target, "unavailable", untranslated=len(pieces))
    methods = {p.method for p in done}
    missing = len(pieces) - len(done)
    text = join_sentences([p.text or UNTRANSLATED_MARK for p in pieces], target)
    route = next((p.route for p in done if p.route), ())
    return Translation(
        text,
        source,
        target,
        methods.pop() if len(methods) == 1 else "mixed",
        needs_review=any(p.needs_review for p in done),
        route=route,
        untranslated=missing,
        glossary_terms=tuple(t for p in done for t in p.terms),
    )


def site_glossary(settings: Settings) -> Glossary | None:
    """The bundled glossary plus the ones the fleet pushed (None: ``[mt] glossary = false``); a bad
    pushed file is logged and skipped (strict=False): the counter keeps working."""
    return Glossary.load(pushed_files(Path(settings.paths.state_dir), "glossaries"), strict=False) if settings.mt.glossary else None
