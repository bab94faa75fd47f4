"""The translation API the pipeline calls: pick models for a language pair and translate.

Routing, for ``source -> target``:

1. a model that covers the pair directly: a dedicated pair model (Marian) before a multilingual
   one, and among equals the one listed first;
2. else two hops through the pivot language (English by default): ``source -> en -> target``,
   each hop chosen as in 1. English is the pivot because it is the one language every family
   covers well in both directions (OPUS-MT has its most, and largest, pairs with English, and
   the multilingual models were trained mostly English-centric);
3. else ``MtRouteError`` naming the pair and what each installed model covers.

Same-language "translation" returns the text unchanged without a model (route ``(lang,)``).
Calls block; the pipeline runs them in a worker thread.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from madoguchi.mt.engine import EngineOutput, TranslationEngine
from madoguchi.mt.errors import MtClosedError, MtModelUnsupportedError, MtRouteError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Hop:
    source: str
    target: str
    model_id: str


@dataclass(frozen=True)
class MtResult:
    text: str
    route: tuple[str, ...]  # languages in order, e.g. ("ja", "en", "vi") through the pivot
    model_ids: tuple[str, ...]  # one per hop
    input_tokens: int  # subword tokens the first model read
    output_tokens: int  # subword tokens the last model wrote


class MachineTranslation:
    """Translation models loaded once; ``translate`` routes each call."""

    def __init__(self, engines: Sequence[TranslationEngine], pivot: str = "en") -> None:
        self._engines = list(engines)
        self.pivot = pivot
        self._closed = False

    @classmethod
    def from_store(cls, model_ids: Sequence[str], *, threads: int = 2, beam_size: int = 1, pivot: str = "en", root: Path | None = None) -> MachineTranslation:
        """Load installed models, each verified against the lock first (``ready_model``)."""
        from madoguchi.models.manifest import load_manifest
        from madoguchi.models.store import ready_model

        manifest = load_manifest()
        folders = {}
        for model_id in model_ids:
            entry = manifest.get(model_id)
            if entry.task != "mt":
                raise MtModelUnsupportedError(f"{model_id} is a {entry.task} model, not a translation model; translation models: "
                                              f"{', '.join(m.id for m in manifest.models.values() if m.task == 'mt')}", model_id)
            folders[model_id] = ready_model(model_id, root=root)
        return cls.from_folders(folders, threads=threads, beam_size=beam_size, pivot=pivot)

    @classmethod
    def from_folders(cls, folders: Mapping[str, Path], *, threads: int = 2, beam_size: int = 1, pivot: str = "en") -> MachineTranslation:
        """Load model folders as they are (id -> folder): the tests', or a folder not in the store."""
        engines: list[TranslationEngine] = []
        try:
            for model_id, folder in folders.items():
                engines.append(TranslationEngine(model_id, Path(folder), threads=threads, beam_size=beam_size))
        except BaseException:
            for engine in engines:  # do not keep half the models in memory after a failure
                engine.close()
            raise
        return cls(engines, pivot=pivot)

    @property
    def model_ids(self) -> tuple[str, ...]:
        return tuple(e.model_id for e in self._engines)

    def _direct(self, source: str, target: str) -> TranslationEngine | None:
        covering = [e for e in self._engines if e.covers(source, target)]
        covering.sort(key=lambda e: e.multilingual)  # stable: dedicated pairs first, then in the order given
        return covering[0] if covering else None

    def route(self, source: str, target: str) -> tuple[Hop, ...]:
        """The hops for ``source -> target``: one (direct), two (through the pivot) or none (same language)."""
        if source == target:
            return ()
        direct = self._direct(source, target)
        if direct:
            return (Hop(source, target, direct.model_id),)
        if self.pivot not in (source, target):
            first, second = self._direct(source, self.pivot), self._direct(self.pivot, target)
            if first and second:
                return (Hop(source, self.pivot, first.model_id), Hop(self.pivot, target, second.model_id))
        installed = "; ".join(f"{e.model_id}: {','.join(sorted(e.sources))} -> {','.join(sorted(e.targets))}" for e in self._engines) or "none"
        raise MtRouteError(f"no translation model for {source}->{target}, directly or through {self.pivot}; installed: {installed}")

    def can_translate(self, source: str, target: str) -> bool:
        try:
            self.route(source, target)
        except MtRouteError:
            return False
        return True

    def translate(self, text: str, source: str, target: str) -> MtResult:
        """Translate ``text``; blank text gives an empty result without running a model (the route is still checked)."""
        if self._closed:
            raise MtClosedError("machine translation was closed")
        hops = self.route(source, target)
        route = (source, *(h.target for h in hops))
        model_ids = tuple(h.model_id for h in hops)
        if not text.strip():
            return MtResult("", route, model_ids, 0, 0)
        if not hops:
            return MtResult(text, route, model_ids, 0, 0)
        engines = {e.model_id: e for e in self._engines}
        outputs: list[EngineOutput] = []
        current = text
        for hop in hops:
            outputs.append(engines[hop.model_id].translate(current, hop.source, hop.target))
            current = outputs[-1].text
        log.debug("translated %s via %s: %d -> %d tokens", "->".join(route), ",".join(model_ids), outputs[0].input_tokens, outputs[-1].output_tokens)
        return MtResult(current, route, model_ids, outputs[0].input_tokens, outputs[-1].output_tokens)

    def close(self) -> None:
        """Unload every model."""
        self._closed = True
        for engine in self._engines:
            engine.close()
