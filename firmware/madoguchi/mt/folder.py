"""A translation model folder, checked before CTranslate2 or sentencepiece see it.

CTranslate2 reports a bad file as a bare ``RuntimeError`` and sentencepiece as an "INTERNAL"
error; the box must instead say which file of which model is missing, truncated or corrupt, and
how to fix it. ``inspect_model_folder`` checks presence, the ``model.bin`` header and variable
table (every variable's bytes present), the JSON files, and that the vocabularies match the
embedding sizes — all without reading the weights.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from madoguchi.models.ct2 import Ct2FormatError, read_ct2_model
from madoguchi.models.errors import ModelCorruptError, ModelMissingError, ModelTruncatedError
from madoguchi.mt.errors import MtModelUnsupportedError, MtVocabularyMapError
from madoguchi.mt.families import DAY_ONE, MARIAN, TOKENIZER_HINT, Family, family_from_vocabulary, marian_direction, marian_tags, tokenizer_family_candidates
from madoguchi.mt.vmap import VMAP_FILE, WORD_START, VocabularyMap, read_vocabulary_map

log = logging.getLogger(__name__)

TRANSLATOR_SPEC = "TransformerSpec"


def fix_hint(model_id: str) -> str:
    return f"fix: `madoguchi models verify {model_id}`, then `madoguchi models fetch {model_id}` or `madoguchi models import {model_id} FOLDER`"


@dataclass(frozen=True)
class ModelLayout:
    """What a checked folder holds: family, vocabularies, languages, config and the optional vocabulary map."""

    model_id: str
    folder: Path
    family: Family
    source_vocabulary: tuple[str, ...]
    target_vocabulary: tuple[str, ...]
    config: Mapping[str, object]
    sources: frozenset[str]  # ISO codes it translates from
    targets: frozenset[str]  # ISO codes it translates into
    vocabulary_map: VocabularyMap | None
    target_tag_in_source: bool  # <2vi> (MADLAD) or >>vie<< (multi-target Marian) starts the source

    @property
    def multilingual(self) -> bool:
        return self.family is not MARIAN

    @property
    def eos(self) -> str:
        return str(self.config.get("eos_token") or "</s>")


def inspect_model_folder(model_id: str, folder: Path) -> ModelLayout:
    """Check the folder and describe it; raises ModelMissingError / ModelTruncatedError / ModelCorruptError /
    MtModelUnsupportedError naming the file and the fix."""
    folder = Path(folder)
    fix = fix_hint(model_id)
    if not folder.is_dir():
        raise ModelMissingError(f"{model_id}: model folder {folder} does not exist; {fix}", model_id, folder)
    for name in ("model.bin", "config.json"):
        if not (folder / name).is_file():
            raise ModelMissingError(f"{model_id}: {folder / name} is missing; {fix}", model_id, folder / name)
    candidates = tokenizer_family_candidates(folder)
    if not candidates:
        raise ModelMissingError(f"{model_id}: {folder} has no tokenizer (expected {TOKENIZER_HINT}); {fix}", model_id, folder)
    for name in candidates[0].tokenizer_files if candidates == (MARIAN,) else ():
        if not (folder / name).is_file():
            raise ModelMissingError(f"{model_id}: {folder / name} is missing (a Marian model needs source.spm and target.spm); {fix}", model_id, folder / name)
    source_vocab, target_vocab = _read_vocabularies(model_id, folder, fix)
    config = _read_json(model_id, folder / "config.json", dict, fix)
    _check_model_bin(model_id, folder / "model.bin", len(source_vocab), len(target_vocab), fix)
    family = family_from_vocabulary(candidates, set(target_vocab))
    if family is None:
        raise MtModelUnsupportedError(f"{model_id}: {folder} has {' or '.join(f.tokenizer_files[0] for f in candidates)} but its vocabulary has no "
                                      f"language tokens of {' or '.join(f.title for f in candidates)}; supported: {TOKENIZER_HINT}", model_id, folder)
    # Marian's >>xxx<< tags are source tokens; with one shared vocabulary both sides hold them
    tags = set(source_vocab) if family is MARIAN else set(target_vocab)
    sources, targets = _languages(model_id, folder, family, tags)
    tag_in_source = family.target_tag_in_source or (family is MARIAN and marian_tags(tags))
    return ModelLayout(model_id, folder, family, source_vocab, target_vocab, config, sources, targets, _read_vmap(folder), tag_in_source)


def _languages(model_id: str, folder: Path, family: Family, vocabulary: set[str]) -> tuple[frozenset[str], frozenset[str]]:
    if family is not MARIAN:
        langs = family.languages(vocabulary)
        return langs, langs
    direction = marian_direction(model_id)
    if direction is None:
        raise MtModelUnsupportedError(f"{model_id}: cannot tell the direction of this Marian model from its id; name its folder "
                                      f"like opus-mt-<source>-<target> with ISO 639-1 codes (e.g. opus-mt-ja-en)", model_id, folder)
    source, target = direction
    sources = frozenset(DAY_ONE) if source == "mul" else frozenset({source})
    if marian_tags(vocabulary):
        targets = MARIAN.languages(vocabulary)
    elif target == "mul":
        raise MtModelUnsupportedError(f"{model_id}: a multi-target Marian model without >>xxx<< tokens in its vocabulary", model_id, folder)
    else:
        targets = frozenset({target})
    return sources, targets


def _read_json(model_id: str, path: Path, kind: type, fix: str):
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelCorruptError(f"{model_id}: {path} is corrupt ({err}); {fix}", model_id, path) from err
    if not isinstance(value, kind):
        raise ModelCorruptError(f"{model_id}: {path} is corrupt (expected a JSON {kind.__name__}); {fix}", model_id, path)
    return value


def _read_vocabulary(model_id: str, path: Path, fix: str) -> tuple[str, ...]:
    if path.suffix == ".json":
        tokens = _read_json(model_id, path, list, fix)
        if not tokens or not all(isinstance(t, str) for t in tokens):
            raise ModelCorruptError(f"{model_id}: {path} is corrupt (expected a non-empty JSON list of tokens); {fix}", model_id, path)
        return tuple(tokens)
    try:
        tokens = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise ModelCorruptError(f"{model_id}: {path} is corrupt ({err}); {fix}", model_id, path) from err
    if not tokens:
        raise ModelCorruptError(f"{model_id}: {path} is empty; {fix}", model_id, path)
    return tuple(tokens)


def _find(folder: Path, stem: str) -> Path | None:
    return next((folder / f"{stem}{ext}" for ext in (".json", ".txt") if (folder / f"{stem}{ext}").is_file()), None)


def _read_vocabularies(model_id: str, folder: Path, fix: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    shared = _find(folder, "shared_vocabulary")
    if shared:
        vocab = _read_vocabulary(model_id, shared, fix)
        return vocab, vocab
    source, target = _find(folder, "source_vocabulary"), _find(folder, "target_vocabulary")
    if source and target:
        return _read_vocabulary(model_id, source, fix), _read_vocabulary(model_id, target, fix)
    missing = folder / ("target_vocabulary.json" if source else "source_vocabulary.json" if target else "shared_vocabulary.json")
    raise ModelMissingError(f"{model_id}: {missing} is missing (a model needs shared_vocabulary.json, or source_ and target_vocabulary.json); {fix}", model_id, missing)


def _check_model_bin(model_id: str, path: Path, source_size: int, target_size: int, fix: str) -> None:
    if path.stat().st_size == 0:
        raise ModelTruncatedError(f"{model_id}: {path} is truncated (0 bytes); {fix}", model_id, path)
    try:
        model = read_ct2_model(path)
    except Ct2FormatError as err:
        # the reader says "truncated" when a declared variable runs past the end of the file
        kind = ModelTruncatedError if "truncated" in str(err) else ModelCorruptError
        raise kind(f"{model_id}: {path} is {'truncated' if kind is ModelTruncatedError else 'corrupt'} ({err}); {fix}", model_id, path) from err
    except (OSError, ValueError, UnicodeDecodeError, OverflowError) as err:
        raise ModelCorruptError(f"{model_id}: {path} is corrupt ({err}); {fix}", model_id, path) from err
    if model.spec != TRANSLATOR_SPEC:
        raise MtModelUnsupportedError(f"{model_id}: {path} is a CTranslate2 {model.spec or 'unnamed'} model, not a translation model ({TRANSLATOR_SPEC})", model_id, path)
    for name, size, side in (("encoder/embeddings_0/weight", source_size, "source"), ("decoder/embeddings/weight", target_size, "target")):
        if name in model and model.raw(name).shape[0] != size:
            raise ModelCorruptError(f"{model_id}: {path} has {model.raw(name).shape[0]} {side} embeddings but the {side} vocabulary has {size} tokens: "
                                    f"the files come from different models; {fix}", model_id, path)


def _read_vmap(folder: Path) -> VocabularyMap | None:
    """The optional vocabulary map; a bad one is logged and ignored (it only makes decoding faster)."""
    path = folder / VMAP_FILE
    if not path.is_file():
        return None
    try:
        return read_vocabulary_map(path)
    except MtVocabularyMapError as err:
        log.error("%s; translating without it", err)
        return None


class Tokenizer:
    """The model's sentencepiece model(s): source pieces in, target pieces out."""

    def __init__(self, layout: ModelLayout) -> None:
        names = layout.family.tokenizer_files
        self._source = _load_sentencepiece(layout, names[0])
        self._target = _load_sentencepiece(layout, names[-1]) if len(names) > 1 else self._source

    def encode_source(self, text: str) -> list[str]:
        return self._source.encode(text, out_type=str)

    def encode_target(self, text: str) -> list[str]:
        """Target-side pieces of a text in the target language (vocabulary-map building)."""
        return self._target.encode(text, out_type=str)

    def decode(self, pieces: Sequence[str]) -> str:
        # pieces the sentencepiece model lacks (added vocabulary tokens) come back verbatim, word mark included
        return " ".join(self._target.decode_pieces(list(pieces)).replace(WORD_START, " ").split())


def _load_sentencepiece(layout: ModelLayout, name: str):
    import sentencepiece

    path = layout.folder / name
    try:
        return sentencepiece.SentencePieceProcessor(model_file=str(path))
    except (RuntimeError, OSError) as err:
        raise ModelCorruptError(f"{layout.model_id}: {path} is corrupt (sentencepiece: {err}); {fix_hint(layout.model_id)}", layout.model_id, path) from err


def load_tokenizer(layout: ModelLayout) -> Tokenizer:
    return Tokenizer(layout)
