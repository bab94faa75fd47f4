"""One loaded translation model: CTranslate2 int8 on the CPU plus its sentencepiece tokenizer(s).

``TranslationEngine.translate`` splits the text into sentences (and over-long sentences into
chunks of tokens), translates them in one batch, greedy by default, and joins the results. The
output length is bounded by the input (2 × its tokens + 16, at most 256 per sentence), so a
model that starts repeating itself stops soon.

When the folder has a ``vmap.txt`` the output vocabulary is restricted (see ``vmap.py``): to the
target language's line when the map has one for it, or by the map's source rules when it is a
lexical map.
"""

from __future__ import annotations

import ctypes
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from madoguchi.models.errors import ModelCorruptError
from madoguchi.mt.errors import MtClosedError, MtLanguageError, MtTranslationError
from madoguchi.mt.folder import ModelLayout, fix_hint, inspect_model_folder, load_tokenizer
from madoguchi.mt.sentences import join_sentences, split_sentences
from madoguchi.mt.vmap import WORD_START, is_common_token, restrict_batch, switching_targets_is_safe

log = logging.getLogger(__name__)

MAX_SOURCE_TOKENS = 200  # per chunk: well inside every family's position table (Marian 512, M2M100/NLLB 1024)
MAX_OUTPUT_TOKENS = 256
_LEXICAL = "lexical"  # restriction key of a lexical map: depends on the source, so it changes at every call
_UNKNOWN = "unknown"  # after a failed call the output layer's state is unknown


@dataclass(frozen=True)
class EngineOutput:
    text: str
    input_tokens: int  # source pieces read (language tags and </s> not counted)
    output_tokens: int  # target pieces written (target prefix and </s> not counted)


def chunk_pieces(pieces: Sequence[str], limit: int) -> list[list[str]]:
    """Cut a piece sequence into chunks of at most ``limit``, preferring a word start or a punctuation mark in the last quarter."""
    chunks, start = [], 0
    while len(pieces) - start > limit:
        end = start + limit
        floor = start + max(1, limit * 3 // 4)
        cut = next((i for i in range(end, floor - 1, -1) if pieces[i].startswith(WORD_START) or is_common_token(pieces[i - 1])), end)
        chunks.append(list(pieces[start:cut]))
        start = cut
    chunks.append(list(pieces[start:]))
    return [c for c in chunks if c]


def release_freed_heap() -> None:
    """Give freed heap memory back to the system (glibc's malloc_trim; a no-op elsewhere).

    Reading the vocabulary (megabytes of JSON) before loading raises glibc's dynamic mmap threshold, so CTranslate2's
    load-time buffers come from the heap and stay resident after they are freed: M2M100 measured 830 MB resident
    instead of 500 MB. Trimming after the load gives the difference back.
    """
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):
        pass


class TranslationEngine:
    """A model folder loaded for translation. Blocking and thread-safe (one translation at a time)."""

    def __init__(self, model_id: str, folder: Path, *, threads: int = 2, beam_size: int = 1, max_source_tokens: int = MAX_SOURCE_TOKENS) -> None:
        import ctranslate2

        self.layout: ModelLayout = inspect_model_folder(model_id, folder)
        self.model_id = model_id
        self.beam_size = beam_size
        self.max_source_tokens = max_source_tokens
        self.tokenizer = load_tokenizer(self.layout)
        try:
            self._translator = ctranslate2.Translator(str(self.layout.folder), device="cpu", compute_type="int8", inter_threads=1, intra_threads=threads)
        except (RuntimeError, ValueError, OSError) as err:
            raise ModelCorruptError(f"{model_id}: CTranslate2 cannot load {self.layout.folder} ({err}); {fix_hint(model_id)}", model_id, self.layout.folder) from err
        release_freed_heap()
        self._lock = threading.Lock()
        self._last_restriction: str | None = None
        self._switch_needs_reset = self._check_switching()
        vmap = self.layout.vocabulary_map
        log.info("loaded %s (%s, %s -> %s, %d threads%s)", model_id, self.layout.family.title, ",".join(sorted(self.sources)), ",".join(sorted(self.targets)),
                 threads, f", vocabulary map for {','.join(sorted(vmap.by_target)) or 'all targets'}" if vmap else "")

    @property
    def sources(self) -> frozenset[str]:
        return self.layout.sources

    @property
    def targets(self) -> frozenset[str]:
        return self.layout.targets

    @property
    def multilingual(self) -> bool:
        return self.layout.multilingual

    def covers(self, source: str, target: str) -> bool:
        return source != target and source in self.sources and target in self.targets

    def translate(self, text: str, source: str, target: str) -> EngineOutput:
        """Translate ``text``; empty or blank text gives empty output without running the model."""
        if not self.covers(source, target):
            raise MtLanguageError(f"{self.model_id} does not translate {source}->{target}; it reads {','.join(sorted(self.sources))} "
                                  f"and writes {','.join(sorted(self.targets))}")
        chunks = [chunk for sentence in split_sentences(text) for chunk in chunk_pieces(self.tokenizer.encode_source(sentence), self.max_source_tokens)]
        if not chunks:
            return EngineOutput("", 0, 0)
        hypotheses = self.translate_pieces(chunks, source, target)
        return EngineOutput(join_sentences([self.tokenizer.decode(h) for h in hypotheses], target), sum(map(len, chunks)), sum(map(len, hypotheses)))

    def translate_pieces(self, chunks: Sequence[list[str]], source: str, target: str, *, min_output_tokens: int = 0, max_output_tokens: int | None = None) -> list[list[str]]:
        """Source pieces in (one list per sentence), target pieces out: tags, the forced prefix and </s> handled here."""
        layout, family = self.layout, self.layout.family
        source_tag = family.language_token(source, layout.source_vocabulary) if family.source_tag else None
        if layout.target_tag_in_source:
            head = [family.language_token(target, layout.source_vocabulary), source_tag]
            target_tag = head[0]
        else:
            target_tag = family.language_token(target, layout.target_vocabulary) if family.target_tag_as_prefix else None
            head = [source_tag]
        batch = [[t for t in head if t] + list(c) + [layout.eos] for c in chunks]
        prefix = [target_tag] if family.target_tag_as_prefix and target_tag else []
        longest = max(len(c) for c in chunks)
        bound = max_output_tokens or min(MAX_OUTPUT_TOKENS, 2 * longest + 16)
        # lengths count the forced prefix; at least one real token, so a sentence never comes back empty
        options = dict(beam_size=self.beam_size, max_decoding_length=len(prefix) + bound, min_decoding_length=len(prefix) + max(1, min_output_tokens))
        restriction = self._restriction(target)
        with self._lock:
            translator = self._translator
            if translator is None:
                raise MtClosedError(f"{self.model_id} was closed")
            try:
                if self._needs_reset(restriction):
                    self._reset_output_layer()
                if restriction and restriction != _LEXICAL:
                    batch, options["max_input_length"] = restrict_batch(batch, target)
                results = translator.translate_batch(batch, [prefix] * len(batch) if prefix else None, use_vmap=bool(restriction), **options)
                self._last_restriction = restriction
            except (RuntimeError, ValueError, IndexError) as err:
                self._last_restriction = _UNKNOWN
                raise MtTranslationError(f"{self.model_id}: translating {source}->{target} failed: {err}") from err
        drop = {self.layout.eos, "<s>", "<pad>", *(t for t in (target_tag, source_tag) if t)}
        return [[t for t in r.hypotheses[0][len(prefix):] if t not in drop] for r in results]

    def _restriction(self, target: str) -> str | None:
        """Which output restriction a call into ``target`` uses: the language (per-target map), lexical, or none."""
        vmap = self.layout.vocabulary_map
        if vmap is None:
            return None
        if vmap.per_target:
            return target if target in vmap.by_target else None
        return _LEXICAL

    def _needs_reset(self, restriction: str | None) -> bool:
        last = self._last_restriction
        if not restriction or not last:  # an unrestricted call clears the table itself; before a first restriction nothing is stale
            return False
        if _UNKNOWN in (last, restriction) or _LEXICAL in (last, restriction):  # a lexical map's list changes with every source
            return True
        return restriction != last and self._switch_needs_reset

    def _check_switching(self) -> bool:
        """Whether moving between target languages' restrictions needs a reset (see vmap.switching_targets_is_safe)."""
        layout, vmap = self.layout, self.layout.vocabulary_map
        if vmap is None or not vmap.per_target:
            return False
        config = layout.config
        fixed = [str(config.get(k) or d) for k, d in (("unk_token", "<unk>"), ("bos_token", "<s>"), ("eos_token", "</s>"))]
        start = [str(config["decoder_start_token"])] if config.get("decoder_start_token") else []
        mapped = {lang: [*start, layout.eos, *([t] if layout.family.target_tag_as_prefix and (t := layout.family.language_token(lang, layout.target_vocabulary)) else [])]
                  for lang in vmap.by_target}
        safe = switching_targets_is_safe(vmap, layout.target_vocabulary, fixed, mapped, fixed[0])
        if not safe:
            log.info("%s: its vocabulary map needs a reset between target languages (one extra one-token call)", self.model_id)
        return not safe

    def _reset_output_layer(self) -> None:
        """An unrestricted one-step call: it clears CTranslate2's stale id table of the previous restriction.
        (The source must not be ``</s>`` alone: CTranslate2 returns such an input without running the model.)"""
        unk = str(self.layout.config.get("unk_token") or "<unk>")
        self._translator.translate_batch([[unk]], beam_size=1, max_decoding_length=1)

    def close(self) -> None:
        """Free the model's memory; later calls raise MtClosedError."""
        with self._lock:
            translator, self._translator = self._translator, None
        if translator is not None:
            translator.unload_model()
            del translator
            log.info("unloaded %s", self.model_id)
